// What device timing (TAILGUARD_GPU_TIME) costs per request window on a real GPU: bench/gpu/window_ab.c in processes
// that alternate between TAILGUARD_GPU_TIME=on and =off (--pairs pairs, order alternating), each with a collector
// draining its ring as the agent would. Each process measures what the shim adds per window against the real entry
// points in the same process (which cancels what varies between processes); the cost of device timing is the
// difference between an "on" process's figure and its pair's "off" one. Prints one JSON line per process and a
// summary: the median of the per-pair differences with a t interval (ns per window), which a request's latency and
// a batch job's iteration time turn into ratios (issue 16's 1 %).
//
// Usage: node bench/gpu/window-ab.mjs [--pairs 8] [--windows 200] [--rounds 200] [--cpu 2]
//        (needs gcc, a libcuda to link against (the CUDA toolkit's stub will do), the built shim and addon)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({ options: { pairs: { type: "string", default: "8" }, windows: { type: "string", default: "200" },
  rounds: { type: "string", default: "200" }, cpu: { type: "string", default: "2" } } });
const addon = createRequire(import.meta.url)(path.join(root, "build/Release/tailguard.node"));
const shim = path.join(root, "native/build/libtailguard.so");
const work = mkdtempSync(path.join(os.tmpdir(), "tg-window-ab-"));
const bin = path.join(work, "window_ab");
const stub = ["/usr/local/cuda/lib64/stubs", "/usr/local/cuda/targets/x86_64-linux/lib/stubs", path.join(root, "native/build/sim")]
  .find((d) => existsSync(path.join(d, "libcuda.so")));
execFileSync("gcc", ["-O2", `-I${path.join(root, "native/include")}`, "-o", bin, path.join(root, "bench/gpu/window_ab.c"),
  ...(stub ? [`-L${stub}`] : []), "-lcuda", "-ldl"]); // no stub found: the system's libcuda.so
const dir = path.join(work, "rings");

function runOnce(mode, i) {
  const session = `${process.pid}-w${i}${mode}`;
  const c = new addon.Collector(dir, { session });
  const r = spawnSync("taskset", ["-c", values.cpu, bin, values.windows, values.rounds], { encoding: "utf8",
    env: { ...process.env, LD_PRELOAD: shim, TAILGUARD_DIR: dir, TAILGUARD_SESSION: session, TAILGUARD_GPU_TIME: mode } });
  let drained = 0;
  for (let idle = 0; idle < 20;) {
    const k = c.take(1 << 24).records;
    drained += k;
    if (k) idle = 0;
    else { idle++; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); }
  }
  c.close();
  if (r.status !== 0) throw new Error(`window_ab (${mode}) failed: ${r.status} ${r.stderr}`);
  const out = { mode, pair: i, ...JSON.parse(r.stdout), drained };
  console.log(JSON.stringify(out));
  return out;
}

const diffs = [];
for (let i = 0; i < Number(values.pairs); i++) {
  const order = i % 2 ? ["off", "on"] : ["on", "off"];
  const got = Object.fromEntries(order.map((m) => [m, runOnce(m, i)]));
  diffs.push(got.on.added_ns - got.off.added_ns);
}
const n = diffs.length, mean = diffs.reduce((a, b) => a + b, 0) / n;
const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
const t = [0, 12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13, 2.12][n - 1] ?? 2.0;
const sorted = [...diffs].sort((a, b) => a - b);
console.log(JSON.stringify({ summary: "device timing's cost per window, on - off (ns)", pairs: n, diffs,
  median_ns: sorted[Math.floor((n - 1) / 2)], mean_ns: mean, ci95_ns: [mean - (t * sd) / Math.sqrt(n), mean + (t * sd) / Math.sqrt(n)] }));
