// A 32-bit MicroPython (the wasm32 build of the npm package
// @micropython/micropython-webassembly-pyscript, pinned in package.json here) for MAST's tests
// and benchmarks. Shared by run_core.mjs (the core tests) and run_steps.mjs (bench/alloc.py).
//
// What this build is (measured; see tests/test_micropython32_core.py): 4-byte words and 31-bit
// small ints like an ESP32 or RP2040. `heapsize` sizes only the first heap area: the heap grows
// by new areas on demand (split heap), and a collection asked for inside one runPython call runs
// only when that call returns to JavaScript, so inside a call nothing is reclaimed.

import fs from "fs";
import path from "path";
import url from "url";

const HERE = path.dirname(url.fileURLToPath(import.meta.url));
export const PACKAGE = "@micropython/micropython-webassembly-pyscript";
const ENTRY = path.join(HERE, "node_modules", PACKAGE, "micropython.mjs");

// Where the build's gc.mem_free() adds the room it may still grow by (gc_get_max_new_split of
// the webassembly port: 128 MiB), so gc.mem_alloc() + gc.mem_free() - this = the heap's areas.
export const MAX_NEW_SPLIT = 128 * 1024 * 1024;

export function fail(msg) {
  process.stderr.write("mast: " + msg + "\n");
  process.exit(2);
}

export async function loader() {
  if (!fs.existsSync(ENTRY)) {
    fail(PACKAGE + " is not installed in " + HERE + "; run `make test` (or `npm ci` in tests/mp32)");
  }
  const mod = await import(url.pathToFileURL(ENTRY).href);
  return mod.loadMicroPython;
}

// Copy every .mpy file under `src` (a host folder) to `dst` in the instance's filesystem.
function copyMpyTree(mp, src, dst) {
  for (const e of fs.readdirSync(src, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const s = path.join(src, e.name);
    const d = dst + "/" + e.name;
    if (e.isDirectory()) {
      mp.FS.mkdir(d);
      copyMpyTree(mp, s, d);
    } else if (e.name.endsWith(".mpy")) {
      mp.FS.writeFile(d, fs.readFileSync(s));
    }
  }
}

// Make each parent folder of `p` (an absolute path in the instance's filesystem).
function mkdirs(mp, p) {
  let cur = "";
  for (const part of p.split("/").slice(1, -1)) {
    cur += "/" + part;
    try {
      mp.FS.mkdir(cur);
    } catch (e) {
      // exists already
    }
  }
}

// A fresh MicroPython instance (its own wasm memory, so a fresh heap) whose filesystem holds
// the .mpy files of `build` under /lib (the only entry of sys.path) and each host file of
// `files` ([[hostPath, fsPath relative to /]]), with / as the working directory. Its output
// goes to `sink(text)`.
export async function instance(loadMicroPython, { build, heapsize, files, sink }) {
  const mp = await loadMicroPython({
    heapsize,
    stdout: sink,
    stderr: sink,
    linebuffer: false,
  });
  mp.FS.mkdir("/lib");
  copyMpyTree(mp, build, "/lib");
  for (const [host, rel] of files || []) {
    mkdirs(mp, "/" + rel);
    mp.FS.writeFile("/" + rel, fs.readFileSync(host));
  }
  mp.FS.chdir("/");
  // Only the build output is importable: nothing from the working directory, nor .frozen (this
  // build's frozen micropython-lib modules: hmac, logging, a Python binascii, ...; a board has
  // none of them).
  mp.runPython("import sys\nsys.path[:] = ['/lib']");
  return mp;
}

// The text a sink collected: linebuffer false hands over one byte (a Uint8Array) at a time.
export function collector() {
  const chunks = [];
  const sink = (b) => chunks.push(typeof b === "string" ? Buffer.from(b) : Buffer.from(b));
  sink.text = () => Buffer.concat(chunks).toString("utf8");
  sink.clear = () => chunks.splice(0, chunks.length);
  return sink;
}

// Live heap and the size of the heap's areas, read at the start of a runPython call after a
// collection was asked for in an earlier one (the only time this build reclaims anything), and
// sys.maxsize (2**31 - 1 on a 32-bit build).
export function heapFigures(mp) {
  mp.runPython("import gc\ngc.collect()");
  mp.runPython("import gc, sys\n_mast_heap = '%d %d %d' % (gc.mem_alloc(), gc.mem_free(), sys.maxsize)");
  const [live, free, maxsize] = mp.globals.get("_mast_heap").split(" ").map(Number);
  return { live, areas: live + free - MAX_NEW_SPLIT, maxsize };
}
