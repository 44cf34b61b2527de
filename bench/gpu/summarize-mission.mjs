// Summarizes bench/gpu/mission.sh results: per setting (and variant), low batch, flavour and rate, the median over
// repetitions of the high-priority P50/P90/P99, the P99 of all repetitions' requests pooled, their ratios to the
// standalone reference of the same files, the high-priority requests' GPU time and SM clock (runs that recorded them),
// and the low-priority throughput against native.
// Usage: node bench/gpu/summarize-mission.mjs FILE.jsonl [FILE.jsonl ...]
import { readFileSync } from "node:fs";

const runs = process.argv.slice(2).flatMap((f) => readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)));
const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };
const label = (r) => (r.setting === "tailguard" && r.variant ? `tailguard (${r.variant})` : r.setting);
const groups = new Map();
for (const r of runs) {
  const key = `${label(r)}|${r.low_batch ?? "-"}`;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(r);
}
const cell = (rs, flavour, rate) => {
  const ph = rs.map((r) => r.high.find((p) => p.flavour === flavour && p.rate === rate));
  const known = (xs) => xs.filter((x) => x !== undefined && x !== null);
  const gpu = known(ph.map((p) => p.gpu_p50));
  const sm = known(ph.map((p) => p.gpu?.sm_mhz_p50));
  return { reps: ph.length, p50: median(ph.map((p) => p.p50)), p90: median(ph.map((p) => p.p90)), p99: median(ph.map((p) => p.p99)),
    pooledP99: pct(ph.flatMap((p) => p.latency_ms), 99), n: ph.reduce((a, p) => a + p.n, 0),
    gpuP50: gpu.length ? median(gpu) : undefined, smMhz: sm.length ? median(sm) : undefined };
};
const standalone = groups.get("standalone|-") ?? [];
const native = (b) => groups.get(`native|${b}`) ?? [];
const f = (x) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(3));
const r2 = (x) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(2));
console.log("| setting | low batch | flavour | rate | reps | P50 ms | P90 ms | P99 ms | pooled P99 ms (n) | P50 / standalone | P99 / standalone | GPU P50 ms | SM MHz | low iter/s | low / native |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const [key, rs] of groups) {
  const [name, batch] = key.split("|");
  const low = rs.every((r) => r.low) ? median(rs.map((r) => r.low.iter_per_s)) : undefined;
  const nat = batch !== "-" && native(batch).length ? median(native(batch).map((r) => r.low.iter_per_s)) : undefined;
  for (const flavour of ["graph", "eager"])
    for (const rate of [20, 10]) {
      const c = cell(rs, flavour, rate);
      const s = standalone.length ? cell(standalone, flavour, rate) : undefined;
      console.log(`| ${name} | ${batch} | ${flavour} | ${rate} | ${c.reps} | ${f(c.p50)} | ${f(c.p90)} | ${f(c.p99)} | ${f(c.pooledP99)} (${c.n}) | ` +
        `${s ? r2(c.p50 / s.p50) : "-"} | ${s ? r2(c.p99 / s.p99) : "-"} | ${f(c.gpuP50)} | ${c.smMhz ?? "-"} | ` +
        `${low ? low.toFixed(2) : "-"} | ${low && nat ? r2(low / nat) : "-"} |`);
    }
}
