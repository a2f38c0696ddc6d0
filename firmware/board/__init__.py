# The MAST board firmware: uplink managers, the serial console, persistence and the
# app hook, around the core (mast/) and the runtime (runtime/). Entry: board.main.run().
