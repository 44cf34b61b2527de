// `npm run bench:ioctl`: the time the shim's exported `ioctl` interposer adds to an ioctl that is not a GPU's.
//
// The shim exports `ioctl` to catch the NVIDIA driver's channel-group timeslice control (native/shim/interpose/
// ioctl.c), so every ioctl of a preloaded process goes through it. A C loop (bench/shim/ioctl_loop.c) times
// ioctl calls on a pipe, in rounds, and reports the median ns per call. Two cases: FIONREAD (an ordinary request:
// the interposer's one comparison of the request type) and NVIDIA's control escape _IOWR('F', 0x2A, 32 bytes) with
// a zeroed argument (not the timeslice control: the interposer decodes the escape and passes it on; a pipe answers
// ENOTTY). The program never touches a GPU. Each case runs, alternating, without the shim (baseline) and with it
// preloaded; each mode's figure is the median over runs, overhead = median(shim) - median(baseline).
//
// Usage: node bench/ioctl.mjs [--runs 11] [--calls 200000] [--rounds 25] [--out FILE.json]
// (default: results/ioctl-DATE/ioctl.json, bench/report.mjs)
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { median, quartiles, root } from "./common.mjs";
import { provenance, resultsPath } from "./report.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "11" },
    calls: { type: "string", default: "200000" },
    rounds: { type: "string", default: "25" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const shim = path.join(root, "native/build/libtailguard.so");
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-ioctl-"));
const loop = path.join(work, "ioctl_loop");
execFileSync("gcc", ["-std=gnu11", "-O2", "-o", loop, path.join(root, "bench/shim/ioctl_loop.c")]);

function runOnce(kase, mode) {
  const env = { ...process.env, TAILGUARD_DIR: path.join(work, "shm") };
  delete env.LD_PRELOAD;
  delete env.TAILGUARD_PRIORITY;
  if (mode === "shim") env.LD_PRELOAD = shim;
  const r = spawnSync(loop, [kase, String(calls), String(rounds)], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ioctl loop failed (${kase}, ${mode}): ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  // a shim that did not load would make both modes a baseline: refuse to report that
  if ((mode === "shim") !== (path.resolve(out.ioctl_from) === shim))
    throw new Error(`${kase}, ${mode}: ioctl resolved to ${out.ioctl_from}`);
  return out.median_ns;
}


const cases = {
  fionread: "ioctl(pipe, FIONREAD, &n)",
  nvidia: "ioctl(pipe, _IOWR('F', 0x2A, 32-byte struct), &zeroed): NVIDIA escape, not the timeslice control (ENOTTY)",
};
const results = {};
for (const kase of Object.keys(cases)) {
  const per = { baseline: [], shim: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of i % 2 ? ["shim", "baseline"] : ["baseline", "shim"]) per[mode].push(runOnce(kase, mode));
    process.stderr.write(".");
  }
  const m = { baseline: median(per.baseline), shim: median(per.shim) };
  results[kase] = {
    call: cases[kase],
    median_ns_per_call: m,
    overhead_ns: +(m.shim - m.baseline).toFixed(2),
    ratio: +(m.shim / m.baseline).toFixed(4),
    iqr_ns: { baseline: quartiles(per.baseline), shim: quartiles(per.shim) },
    per_run_ns: per,
  };
}
process.stderr.write("\n");
rmSync(work, { recursive: true, force: true });

console.log(`ioctl cost with and without the shim preloaded; medians of ${runs} runs (${rounds} rounds x ${calls} calls each)`);
console.log(`${"case".padEnd(10)}${"baseline ns".padStart(13)}${"shim ns".padStart(10)}${"overhead ns".padStart(13)}${"ratio".padStart(9)}`);
for (const [kase, r] of Object.entries(results))
  console.log(`${kase.padEnd(10)}${r.median_ns_per_call.baseline.toFixed(2).padStart(13)}${r.median_ns_per_call.shim.toFixed(2).padStart(10)}` +
    `${r.overhead_ns.toFixed(2).padStart(13)}${r.ratio.toFixed(4).padStart(9)}`);

const out = resultsPath("ioctl", values.out, "ioctl.json");
const report = {
  benchmark: "ioctl interposer overhead on an unrelated ioctl",
  ...provenance(),
  parameters: { runs, calls_per_round: calls, rounds },
  results,
};
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
console.log(`results: ${path.relative(process.cwd(), out)}`);
