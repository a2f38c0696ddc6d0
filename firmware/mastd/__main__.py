import signal
import sys

# (first: a SIGHUP while the imports below run, ~40 ms, ended mastd by its default action; none
# is lost, as the configuration is read after them; main() notes one from then on)
signal.signal(signal.SIGHUP, signal.SIG_IGN)

from mastd.main import main  # noqa: E402

sys.exit(main())
