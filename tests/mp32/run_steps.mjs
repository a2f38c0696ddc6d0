// Run Python source in steps on the 32-bit MicroPython (wasm32): one fresh instance, one
// runPython call a step, in order. bench/alloc.py drives its measurements with it.
//
//   node tests/mp32/run_steps.mjs --build DIR --heapsize BYTES STEP [STEP ...]
//
// The instance's filesystem holds the .mpy files of DIR under /lib (its whole sys.path). Each
// STEP is Python source run as one call. Steps matter on this build: a collection asked for
// inside a call (gc.collect()) runs only when the call returns, so a step that collects and the
// next step that reads gc.mem_alloc() measure the live heap, while gc.mem_alloc() deltas inside
// one step count every block allocated (nothing is reclaimed meanwhile).
//
// Output: what the steps print, on stdout. A step that raises ends the run: its traceback goes
// to stderr, and the exit status is 1 (2 on bad usage or a missing package).

import { loader, instance, fail } from "./mp32.mjs";

function parseArgs(argv) {
  const opts = { build: null, heapsize: null, steps: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--build" || a === "--heapsize") {
      if (i + 1 >= argv.length) fail(a + " needs a value; see the usage at the top of run_steps.mjs");
      const v = argv[++i];
      if (a === "--build") opts.build = v;
      else opts.heapsize = parseInt(v, 10);
    } else {
      opts.steps.push(a);
    }
  }
  if (!opts.build || !(opts.heapsize > 0) || !opts.steps.length) {
    fail("usage: node run_steps.mjs --build DIR --heapsize BYTES STEP [STEP ...]");
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const loadMicroPython = await loader();
  const sink = (b) => process.stdout.write(typeof b === "string" ? b : Buffer.from(b));
  const mp = await instance(loadMicroPython, { build: opts.build, heapsize: opts.heapsize, sink });
  for (let i = 0; i < opts.steps.length; i++) {
    try {
      mp.runPython(opts.steps[i]);
    } catch (e) {
      process.stderr.write("mast: step " + (i + 1) + " of " + opts.steps.length + " raised:\n" + String(e) + "\n");
      process.exitCode = 1;
      return;
    }
  }
}

await main();
