// `node bench/nvtx.mjs`: the time the shim adds to each NVTX call (issue 15: <= 50 ns).
//
// A C loop (bench/shim/nvtx_loop.c, built against the CUDA toolkit's header-only NVTX v3) times push/pop pairs of an
// ASCII message and reports the median ns per call over rounds. It runs, alternating, without the shim (the baseline:
// NVTX with no tool attached, its no-op path), with the shim while a collector drains its ring (recording on: the
// number that matters), and with the shim and nobody reading (the ring fills, records are dropped and counted). Each
// mode's result is the median over repeated runs; overhead = median(mode) - median(baseline) from the same session.
//
// Usage: node bench/nvtx.mjs [--runs 11] [--pairs 1000] [--rounds 200] [--out FILE.json]
// (default: results/nvtx-DATE/nvtx.json). NVTX_INCLUDE names a directory holding nvtx3/ if the toolkit's is elsewhere.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { median, quartiles, root, runTimedLoop } from "./common.mjs";
import { resultsPath } from "./report.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "11" },
    pairs: { type: "string", default: "1000" },
    rounds: { type: "string", default: "200" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const pairs = Number(values.pairs);
const rounds = Number(values.rounds);

const nvtxInclude = process.env.NVTX_INCLUDE ?? path.join(process.env.CUDA_HOME ?? "/usr/local/cuda", "include");
if (!existsSync(path.join(nvtxInclude, "nvtx3/nvToolsExt.h"))) {
  console.error(`bench/nvtx.mjs: no ${path.join(nvtxInclude, "nvtx3/nvToolsExt.h")}: install the CUDA toolkit's headers, ` +
    "or set NVTX_INCLUDE to a directory holding nvtx3/");
  process.exit(2);
}
const addon = createRequire(import.meta.url)(path.join(root, "build/Release/tailguard.node"));
const shim = path.join(root, "native/build/libtailguard.so");
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-nvtx-"));
const loop = path.join(work, "nvtx_loop");
execFileSync("gcc", ["-std=gnu11", "-O2", `-I${nvtxInclude}`, "-o", loop, path.join(root, "bench/shim/nvtx_loop.c"), "-ldl"]);

function runOnce(mode, i) {
  const env = { ...process.env, TAILGUARD_DIR: path.join(work, "rings"), TAILGUARD_RING_RECORDS: "262144" };
  delete env.LD_PRELOAD;
  delete env.NVTX_INJECTION64_PATH; // the shim sets it; the baseline has no tool
  if (mode !== "baseline") env.LD_PRELOAD = shim;
  const session = mode === "recording" ? `${process.pid}-nvtx${i}` : null;
  const { out, drained } = runTimedLoop(addon, loop, [pairs, rounds], env, session, `nvtx loop (${mode})`);
  return { ns: out.median_ns, drained };
}

const modes = ["baseline", "recording", "no_reader"];
const per = Object.fromEntries(modes.map((m) => [m, []]));
// two records per pair (warm-up and rounds), and the process's start and exit
const expectedRecords = 2 * (150000 + pairs * rounds) + 2;
let lost = 0;
for (let i = 0; i < runs; i++) {
  for (let k = 0; k < modes.length; k++) {
    const mode = modes[(i + k) % modes.length];
    const r = runOnce(mode, i);
    per[mode].push(r.ns);
    if (mode === "recording") {
      // a shim that did not load (or was not NVTX's tool) would make every mode a baseline: refuse to report that
      if (r.drained === 0) throw new Error(`the shim recorded nothing (${shim} not NVTX's tool?): no results`);
      lost += expectedRecords - r.drained;
    }
  }
  process.stderr.write(".");
}
process.stderr.write("\n");
const m = Object.fromEntries(modes.map((k) => [k, median(per[k])]));
let commit = "unknown";
try {
  commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8", stdio: "pipe" }).trim();
} catch {}
const report = {
  benchmark: "shim NVTX call overhead",
  command: `node bench/nvtx.mjs --runs ${runs} --pairs ${pairs} --rounds ${rounds}`,
  commit,
  date: new Date().toISOString(),
  machine: { cpu: readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1], cores: os.cpus().length, node: process.version },
  target: "recording on: <= 50 ns added per NVTX call",
  results: {
    median_ns_per_call: m,
    added_ns: { recording: +(m.recording - m.baseline).toFixed(1), no_reader: +(m.no_reader - m.baseline).toFixed(1) },
    iqr_ns: Object.fromEntries(modes.map((k) => [k, quartiles(per[k]).map((x) => +x.toFixed(1))])),
    records_lost_while_recording: lost,
    per_run_ns: per,
  },
};
const out = resultsPath("nvtx", values.out, "nvtx.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
console.log(`NVTX call: ${m.baseline.toFixed(1)} ns without the shim, ${m.recording.toFixed(1)} ns recording ` +
  `(+${report.results.added_ns.recording} ns), ${m.no_reader.toFixed(1)} ns with no reader (+${report.results.added_ns.no_reader} ns); ` +
  `${lost} records lost while recording; ${out}`);
