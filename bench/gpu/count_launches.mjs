// Counts the launches a tailguard recording saw inside the window the ResNet script reports, and compares them with
// CUPTI's count of the kernels that ran. Usage: node count_launches.mjs RECORDING.jsonl SCRIPT_OUTPUT.json
import { readFileSync } from "node:fs";

const lines = readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const script = JSON.parse(readFileSync(process.argv[3], "utf8").trim().split("\n").pop());
const origin = BigInt(lines[0].origin_monotonic_ns);
const [w0, w1] = [BigInt(script.window_start_ns), BigInt(script.window_end_ns)];
const inWindow = lines.filter((l) => l.kind === "launch" && !l.captured && l.op === "kernel")
  .filter((l) => { const t = origin + BigInt(l.t); return t >= w0 && t <= w1; });
const byKernel = {};
for (const l of inWindow) byKernel[l.kernel] = (byKernel[l.kernel] ?? 0) + 1;
const detach = lines.filter((l) => l.kind === "process" && l.op === "detach");
const all = lines.filter((l) => l.kind === "launch");
console.log(JSON.stringify({
  iters: script.iters,
  cupti_kernels: script.cupti_kernels,
  tailguard_launches_in_window: inWindow.length,
  match: inWindow.length === script.cupti_kernels,
  tailguard_launches_whole_run: all.length,
  launches_by_api: Object.fromEntries(Object.entries(all.reduce((a, l) => ((a[l.api] = (a[l.api] ?? 0) + 1), a), {}))),
  distinct_kernels_tailguard: Object.keys(byKernel).length,
  distinct_kernels_cupti: Object.keys(script.cupti_by_kernel).length,
  dropped: detach.reduce((a, d) => a + d.dropped, 0),
  attach_paths: detach.map((d) => d.attach_paths),
  gpu: detach.map((d) => d.gpu),
  gpu_name_torch: script.gpu,
  torch: script.torch,
  sample_kernels: Object.entries(byKernel).slice(0, 5),
}, null, 1));
