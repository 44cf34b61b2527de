#!/usr/bin/env node
// The eager batch-8 question of docs/scheduling.md as one table: every H100 run pair of native and tailguard made in
// the same `tailguard bench` invocation and repetition (minutes apart at most), the low-priority worker's throughput
// under tailguard over native's, with the worker's CPU ms per iteration where the bench recorded it; then the
// median, the geometric mean and how many pairs fell below 1, for the runs before and after the bench pinned itself.
// The published figures have this one source: test/e2e/bench.test.ts checks that bench/results/README.md and
// docs/scheduling.md hold exactly this output.
// Usage: node bench/gpu/pairs-b8.mjs [DIR]   (DIR: a folder laid out as the results branch; default: the pairs in
//        bench/results/figures/pairs-b8.json, bench/gpu/figures.mjs)
import fs from "node:fs";
import { fileURLToPath } from "node:url";

import { median } from "../common.mjs";
import { publishedFigures, rawFiles } from "./figures.mjs";

/** Invocations with the `default` eager scenario's native and tailguard modes, in the order they ran. */
export const SOURCES = [
  ...[1, 2, 3].map((r) => ({ dir: `h100-bench-2026-11-24/parts/default-eager-r${r}`, label: `bench r${r} (60 s)` })),
  ...[1, 2, 3, 4].map((r) => ({ dir: `h100-batch8-2026-11-24/levers-b8/r${r}-base`, label: `levers-b8 r${r} (30 s)` })),
  { dir: "h100-batch8-2026-11-24/alternating-a", label: "alternating-a (15 s)" },
  { dir: "h100-batch8-2026-11-24/alternating-cpu", label: "alternating-cpu (15 s)" },
  { dir: "h100-batch8-2026-11-24/alternating-b", label: "alternating-b (15 s)" },
  // the bench's own threads pinned off the workers' CPUs from here on (result.pinning.orchestrator)
  { dir: "h100-pinned-2026-11-24/alternating-3modes", label: "pinned, 3 modes (15 s)" },
  { dir: "h100-pinned-2026-11-24/full", label: "pinned, full (15 s)" },
  { dir: "h100-pinned-2026-11-24/high-alone", label: "pinned, high-alone (15 s)" },
];

/** Every pair, from the raw result files (`read`: path on the results branch -> parsed JSON): the invocation, the
 *  repetition, which of the two ran first, whether the bench was pinned, and native's and tailguard's low-priority
 *  worker: it/s and, where the bench recorded it, CPU ms per iteration (else null). */
export function extract(read) {
  const out = [];
  for (const s of SOURCES) {
    const result = read(`${s.dir}/result.json`);
    if (result.scenario.name !== "default" || result.scenario.high.flavour !== "eager")
      throw new Error(`${s.dir}: not the default eager scenario`);
    const reps = [...new Set(result.runs.map((r) => r.repetition))].sort((a, b) => a - b);
    for (const rep of reps) {
      const of = (m) => result.runs.find((r) => r.repetition === rep && r.mode === m);
      const native = of("native"), tg = of("tailguard");
      if (!native || !tg) continue;
      const low = (r) => ({ iterPerS: r.low.iterPerS, cpuMsPerIter: r.low.cpu?.msPerIter ?? null });
      out.push({ source: s.label, rep, tgFirst: tg.order < native.order, pinned: Boolean(result.pinning?.orchestrator),
        native: low(native), tailguard: low(tg) });
    }
  }
  return out;
}

/** The pairs as published (bench/results/figures/pairs-b8.json). */
export function pairs() {
  return publishedFigures("pairs-b8");
}

export function pairsTable(ps = pairs()) {
  const cpu = (low) => (low.cpuMsPerIter !== null ? low.cpuMsPerIter.toFixed(2) : "–");
  const rows = [
    "| invocation | repetition | first | native it/s | tailguard it/s | tailguard ÷ native | CPU ms/it native | CPU ms/it tailguard |",
    "|---|---|---|---|---|---|---|---|",
    ...ps.map((p) => `| ${p.source} | ${p.rep} | ${p.tgFirst ? "tailguard" : "native"} | ${p.native.iterPerS.toFixed(1)} | ` +
      `${p.tailguard.iterPerS.toFixed(1)} | ${(p.tailguard.iterPerS / p.native.iterPerS).toFixed(2)} | ${cpu(p.native)} | ${cpu(p.tailguard)} |`),
  ];
  rows.push("");
  for (const [name, group] of [["orchestrator not pinned", ps.filter((p) => !p.pinned)], ["orchestrator pinned", ps.filter((p) => p.pinned)]]) {
    const ratios = group.map((p) => p.tailguard.iterPerS / p.native.iterPerS);
    const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
    const withCpu = group.filter((p) => p.native.cpuMsPerIter !== null && p.tailguard.cpuMsPerIter !== null);
    const cpuRatio = median(withCpu.map((p) => p.tailguard.cpuMsPerIter / p.native.cpuMsPerIter));
    rows.push(`${name}, ${group.length} pairs: tailguard ÷ native median ${median(ratios).toFixed(2)}, geometric mean ${geo.toFixed(2)}, ` +
      `range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}, below 1 in ${ratios.filter((r) => r < 1).length}; ` +
      `CPU ms per iteration, tailguard ÷ native, median of ${withCpu.length} pairs: ${cpuRatio.toFixed(2)}.`);
  }
  return rows.join("\n");
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  console.log(pairsTable(process.argv[2] ? extract(rawFiles(process.argv[2])) : undefined));
