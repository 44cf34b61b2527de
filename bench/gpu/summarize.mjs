// Summarises the launch-cost runs of bench/gpu/run.sh: the median of each mode's per-run medians, their spread, and
// the overhead as the median of paired differences (run i of a mode against run i of the baseline, which ran next
// to it), which cancels slow drifts of the machine. Usage: node summarize.mjs OUTDIR
import { readFileSync } from "node:fs";

const dir = process.argv[2];
const load = (f) => readFileSync(`${dir}/${f}`, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).median_ns);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const iqr = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]].map((x) => +x.toFixed(1));
};
const per = { plain: load("launch_plain.jsonl"), recording: load("launch_shim.jsonl"), no_reader: load("launch_shim_noreader.jsonl") };
const paired = (mode) => median(per[mode].map((x, i) => x - per.plain[i]));
const base = median(per.plain);
// launch_ab: per process, the median difference between paired bursts through the shim and through libcuda itself
const ab = readFileSync(`${dir}/ab.jsonl`, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const abMode = (m) => ab.filter((x) => x.mode === m).map((x) => x.r);
const abSummary = Object.fromEntries(["control", "recording", "no_reader"].map((m) => {
  const rs = abMode(m);
  const added = median(rs.map((r) => r.added_ns));
  const real = median(rs.map((r) => r.real_ns));
  return [m, { added_ns_median: +added.toFixed(1), added_ns_per_process: rs.map((r) => r.added_ns),
    real_launch_ns_median: +real.toFixed(1), overhead_pct: +((100 * added) / real).toFixed(2) }];
}));
console.log(JSON.stringify({
  machine: readFileSync(`${dir}/machine.txt`, "utf8").trim().split("\n"),
  in_process_ab: abSummary,
  cross_process_runs: per.plain.length,
  ns_per_launch_median: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, +median(v).toFixed(1)])),
  ns_per_launch_iqr: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, iqr(v)])),
  added_ns_paired_median: { recording: +paired("recording").toFixed(1), no_reader: +paired("no_reader").toFixed(1) },
  overhead_pct: {
    recording: +((100 * paired("recording")) / base).toFixed(2),
    no_reader: +((100 * paired("no_reader")) / base).toFixed(2),
  },
  per_run: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, v.map((x) => +x.toFixed(1))])),
}, null, 1));
