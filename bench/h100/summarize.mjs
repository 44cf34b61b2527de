// Medians of the launch-cost runs and the overhead ratio. Usage: node summarize.mjs OUTDIR
import { readFileSync } from "node:fs";
const dir = process.argv[2];
const load = (f) => readFileSync(`${dir}/${f}`, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const plain = load("launch_plain.jsonl").map((r) => r.median_ns);
const shim = load("launch_shim.jsonl").map((r) => r.median_ns);
const noreader = load("launch_shim_noreader.jsonl").map((r) => r.median_ns);
const m = { plain: median(plain), recording: median(shim), no_reader: median(noreader) };
console.log(JSON.stringify({
  machine: readFileSync(`${dir}/machine.txt`, "utf8").trim().split("\n"),
  runs: plain.length,
  ns_per_launch_median: m,
  overhead_recording_pct: +(100 * (m.recording / m.plain - 1)).toFixed(2),
  overhead_no_reader_pct: +(100 * (m.no_reader / m.plain - 1)).toFixed(2),
  per_run: { plain, recording: shim, no_reader: noreader },
}, null, 1));
