// Run core test functions on the 32-bit MicroPython (wasm32), each in a fresh instance.
//
//   node tests/mp32/run_core.mjs --build build/mpy --heapsize 81920 \
//        [--file HOST_PATH=FS_PATH ...] JOB [JOB ...]
//
// A JOB is MODULE::TEST (run that one test function of tests/core/MODULE.py) or MODULE (all of
// its tests). Each job gets its own MicroPython instance (a fresh heap, as a board after boot),
// whose filesystem holds the .mpy files of --build under /lib and each --file (the core's vector
// tests read docs/PROTOCOL.md by that relative path; the working directory is /). The job runs
// tests/run_core_mpy.py's main() from the build, as `micropython -m run_core_mpy` does on the
// unix port.
//
// Output, one JSON object a line on stdout:
//   {"start": JOB}                      before the job runs (a hang is then attributable)
//   {"job": JOB, "status": 0|1, "output": "...", "ms": N, "live": B, "areas": B, "maxsize": N}
// status 0: every test passed. live: heap in use after the job (after a collection, read in a
// later runPython call); areas: the size the heap had grown to; maxsize: the instance's
// sys.maxsize (2**31 - 1: a 32-bit build). Exit status 0 when every job
// passed, 1 when any failed, 2 on bad usage or a missing package.

import { loader, instance, collector, heapFigures, fail } from "./mp32.mjs";

function parseArgs(argv) {
  const opts = { build: null, heapsize: null, files: [], jobs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--build" || a === "--heapsize" || a === "--file") {
      if (i + 1 >= argv.length) fail(a + " needs a value; see the usage at the top of run_core.mjs");
      const v = argv[++i];
      if (a === "--build") opts.build = v;
      else if (a === "--heapsize") opts.heapsize = parseInt(v, 10);
      else {
        const eq = v.indexOf("=");
        if (eq < 1) fail("--file wants HOST_PATH=FS_PATH, got " + JSON.stringify(v));
        opts.files.push([v.slice(0, eq), v.slice(eq + 1).replace(/^\/+/, "")]);
      }
    } else if (a.startsWith("--")) {
      fail("unknown option " + a + "; see the usage at the top of run_core.mjs");
    } else {
      opts.jobs.push(a);
    }
  }
  if (!opts.build || !opts.heapsize || !(opts.heapsize > 0) || !opts.jobs.length) {
    fail("usage: node run_core.mjs --build DIR --heapsize BYTES [--file HOST=FS ...] JOB ...");
  }
  return opts;
}

// Python for one job: import the runner from the build and run the module's test(s).
function jobCode(job) {
  const sep = job.indexOf("::");
  const module = sep < 0 ? job : job.slice(0, sep);
  const tests = sep < 0 ? [] : [job.slice(sep + 2)];
  return (
    "import run_core_mpy\n" +
    "_mast_rc = run_core_mpy.main(" + JSON.stringify(module) + ", " + JSON.stringify(tests) +
    ", " + (tests.length ? "True" : "False") + ")\n"
  );
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const loadMicroPython = await loader();
  let failed = 0;
  for (const job of opts.jobs) {
    process.stdout.write(JSON.stringify({ start: job }) + "\n");
    const t0 = Date.now();
    const sink = collector();
    const mp = await instance(loadMicroPython, {
      build: opts.build,
      heapsize: opts.heapsize,
      files: opts.files,
      sink,
    });
    let status = 1;
    let heap = { live: null, areas: null, maxsize: null };
    try {
      mp.runPython(jobCode(job));
      status = mp.globals.get("_mast_rc") === 0 ? 0 : 1;
      heap = heapFigures(mp);
    } catch (e) {
      // An exception the runner did not catch (SystemExit, a MemoryError in the runner itself).
      sink(String(e) + "\n");
    }
    if (status) failed++;
    const rec = { job, status, output: sink.text(), ms: Date.now() - t0, ...heap };
    process.stdout.write(JSON.stringify(rec) + "\n");
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
