// `npm run bench:shim`: the time the shim adds to each intercepted launch.
//
// A C loop (bench/shim/launch_loop.c) launches 0-microsecond kernels through libcuda's exported symbols, in rounds
// during which the stream is held behind a host callback (so the simulated GPU does not execute while launches are
// timed), and reports the median ns per launch. Its warm-up fills one lap of the ring first: the shim reserves ring
// memory in chunks as the ring first fills (a one-time cost per process, about 2 ms per 16 MiB), and the steady
// state is what a long-running server sees. It runs, alternating, without the shim (the baseline), with the shim while a collector drains its ring
// (recording on: the number that matters), and with the shim and nobody reading (the ring fills, records are dropped
// and counted), and recording with measured GPU time off (TAILGUARD_GPU_TIME=off: each round is one request window,
// whose two timing events the default mode records; the cost of those against this mode is reported), and, on the
// simulated driver, recording with per-kernel device time through CUPTI (TAILGUARD_KERNEL_TIMING=sampled and all,
// the simulated CUPTI: the shim's external-id push and pop around a timed launch, and the simulated CUPTI's own
// bookkeeping; against recording). Two drivers: the simulated GPU (what the acceptance asks for) and a do-nothing driver, where the
// difference is the shim's cost alone, free of the simulated GPU's own noise. Each mode's result is the median over
// repeated runs; overhead = median(mode) - median(baseline) from the same session.
//
// Usage: node bench/shim.mjs [--runs 11] [--launches 1000] [--rounds 400] [--out FILE.json]
// (default: results/shim-DATE/shim.json, bench/report.mjs)
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildNullDriver, include, median, quartiles, root, runTimedLoop } from "./common.mjs";
import { resultsPath } from "./report.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "11" },
    launches: { type: "string", default: "1000" },
    rounds: { type: "string", default: "400" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const launches = Number(values.launches);
const rounds = Number(values.rounds);

const addon = createRequire(import.meta.url)(path.join(root, "build/Release/tailguard.node"));
const shim = path.join(root, "native/build/libtailguard.so");
const simDir = path.join(root, "native/build/sim");
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-shim-"));

// the loop, and the do-nothing driver
const loop = path.join(work, "launch_loop");
execFileSync("gcc", ["-std=gnu11", "-O2", include, "-o", loop, path.join(root, "bench/shim/launch_loop.c"), `-L${simDir}`, "-lcuda"]);
const nullDir = buildNullDriver(path.join(work, "null"));

function runOnce(driverDir, mode, i) {
  const env = {
    ...process.env,
    LD_LIBRARY_PATH: driverDir,
    TAILGUARD_SIM_DEVICE: path.join(work, `gpu-${i}`),
    TAILGUARD_DIR: path.join(work, "rings"),
    // more room than the default so the collector keeps up with 10-25 M launches/s on a small machine; the
    // launch loop's warm-up still fills one whole lap before timing
    TAILGUARD_RING_RECORDS: "262144",
  };
  delete env.LD_PRELOAD;
  if (mode !== "baseline") env.LD_PRELOAD = shim;
  if (mode === "gpu_time_off") env.TAILGUARD_GPU_TIME = "off";
  if (mode === "kernel_sampled") env.TAILGUARD_KERNEL_TIMING = "sampled";
  if (mode === "kernel_all") env.TAILGUARD_KERNEL_TIMING = "all";
  const session = mode !== "baseline" && mode !== "no_reader" ? `${process.pid}-bench${i}` : null;
  const { out, drained } = runTimedLoop(addon, loop, [launches, rounds], env, session, `launch loop (${mode})`);
  return { ns: out.median_ns, drained };
}


const modes = ["baseline", "recording", "no_reader", "gpu_time_off"];
// kernel timing needs a CUPTI: the simulated GPU has one, the do-nothing driver none
const modesOf = (driver) => (driver === "simulated" ? [...modes, "kernel_sampled", "kernel_all"] : modes);
const results = {};
// per round: a host callback, the launches, a sync; plus the warm-up rounds, the stream, process start and exit
const expectedRecords = (launches + 2) * (rounds + Math.floor(300000 / launches) + 1) + 3;
// A record the collector could not take in time is dropped and counted by the shim, and a dropped record costs less
// than a recorded one: the report says how many were lost, so a "recording" figure built on drops is visible.
for (const [driver, dir] of [["simulated", simDir], ["null", nullDir]]) {
  const modes = modesOf(driver);
  const per = Object.fromEntries(modes.map((m) => [m, []]));
  let lost = 0;
  for (let i = 0; i < runs; i++) {
    // rotate the order so no mode always runs first (caches, frequency)
    for (let k = 0; k < modes.length; k++) {
      const mode = modes[(i + k) % modes.length];
      const r = runOnce(dir, mode, i);
      per[mode].push(r.ns);
      if (mode !== "baseline" && mode !== "no_reader") {
        // a shim that did not load would make every mode a baseline: refuse to report that
        if (r.drained === 0) throw new Error(`the shim recorded nothing (${shim} not loaded?): no results`);
        if (mode === "recording") lost += expectedRecords - r.drained;
      }
    }
    process.stderr.write(".");
  }
  const m = Object.fromEntries(modes.map((k) => [k, median(per[k])]));
  results[driver] = {
    median_ns_per_launch: m,
    added_ns: { recording: +(m.recording - m.baseline).toFixed(1), no_reader: +(m.no_reader - m.baseline).toFixed(1) },
    ratio: { recording: +(m.recording / m.baseline).toFixed(4), no_reader: +(m.no_reader / m.baseline).toFixed(4) },
    gpu_time: { added_ns: +(m.recording - m.gpu_time_off).toFixed(1), ratio: +(m.recording / m.gpu_time_off).toFixed(4) },
    ...(m.kernel_all !== undefined && {
      kernel_timing: {
        added_ns: { sampled: +(m.kernel_sampled - m.recording).toFixed(1), all: +(m.kernel_all - m.recording).toFixed(1) },
        ratio: { sampled: +(m.kernel_sampled / m.recording).toFixed(4), all: +(m.kernel_all / m.recording).toFixed(4) },
      },
    }),
    iqr_ns: Object.fromEntries(modes.map((k) => [k, quartiles(per[k]).map((x) => +x.toFixed(1))])),
    records_lost_while_recording: lost,
    per_run_ns: per,
  };
}
process.stderr.write("\n");

const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1];
const clocksource = existsSync("/sys/devices/system/clocksource/clocksource0/current_clocksource")
  ? readFileSync("/sys/devices/system/clocksource/clocksource0/current_clocksource", "utf8").trim()
  : "unknown";
let commit = process.env.TG_COMMIT ?? "unknown";
try {
  commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8", stdio: "pipe" }).trim();
} catch {}
const report = {
  benchmark: "shim launch overhead",
  command: `node bench/shim.mjs --runs ${runs} --launches ${launches} --rounds ${rounds}`,
  commit,
  date: new Date().toISOString(),
  machine: { cpu, cores: os.cpus().length, clocksource, node: process.version, kernel: os.release() },
  target: "recording on, simulated driver: <= 50 ns added per launch",
  results,
};
const out = resultsPath("shim", values.out, "shim.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + "\n");

for (const [driver, r] of Object.entries(results)) {
  const m = r.median_ns_per_launch;
  console.log(`${driver} driver: ${m.baseline.toFixed(1)} ns/launch without the shim; ` +
    `+${r.added_ns.recording} ns recording (x${r.ratio.recording}), +${r.added_ns.no_reader} ns with no reader` +
    (r.records_lost_while_recording ? `; ${r.records_lost_while_recording} records dropped while recording` : "") +
    `; measured GPU time ${r.gpu_time.added_ns >= 0 ? "+" : ""}${r.gpu_time.added_ns} ns (x${r.gpu_time.ratio} against TAILGUARD_GPU_TIME=off)` +
    (r.kernel_timing ? `; kernel timing (CUPTI) sampled +${r.kernel_timing.added_ns.sampled} ns (x${r.kernel_timing.ratio.sampled}), ` +
      `all +${r.kernel_timing.added_ns.all} ns (x${r.kernel_timing.ratio.all}) against recording` : ""));
}
console.log(`results: ${path.relative(root, out)}`);
