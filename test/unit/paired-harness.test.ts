// The statistics of issue 18's paired measurement (bench/gpu/paired_stats.py) against arithmetic done here; its copy
// of the nearest-rank percentile agrees with the agent's.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { percentile } from "../../agent/src/stats.js";
import { root } from "../support/native.js";

const hasPython = spawnSync("python3", ["--version"]).status === 0;
if (!hasPython) console.warn("paired-harness.test.ts: python3 is not installed, so bench/gpu/ is not tested");

const pairedStats = path.join(root, "bench/gpu/paired_stats.py");

/** paired.json and paired_stats.py's answers, as parsed */
type Json = any;

function statsOf(ask: object): Json {
  const r = spawnSync("python3", [pairedStats], { input: JSON.stringify(ask), encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** Each mode's count per position differs by at most one (exactly equal when `exact`), and every round has each mode once. */
function expectBalanced(order: string[][], modes: string[], exact: boolean) {
  for (const row of order) expect([...row].sort()).toEqual([...modes].sort());
  for (const m of modes) {
    const counts = modes.map((_, pos) => order.filter((row) => row[pos] === m).length);
    expect(Math.max(...counts) - Math.min(...counts), `${m}: ${counts}`).toBeLessThanOrEqual(exact ? 0 : 1);
  }
}

describe.skipIf(!hasPython)("bench/gpu/paired_stats.py (needs python3)", () => {
  it("statistics: geometric mean, t interval on log ratios and verdicts as computed here", () => {
    const ratios = [1.2, 0.9, 1.1, 1.0, 1.05, 0.95, 1.15, 0.98];
    const logs = ratios.map(Math.log);
    const mean = logs.reduce((a, b) => a + b) / logs.length;
    const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / (logs.length - 1));
    const half = 2.364624 * sd / Math.sqrt(logs.length); // t(0.975, 7 degrees of freedom), from a table
    const gm = Math.exp(mean), lo = Math.exp(mean - half), hi = Math.exp(mean + half);
    expect([gm, lo, hi].map((x) => x.toFixed(4))).toEqual(["1.0368", "0.9549", "1.1258"]);

    const bounds = [
      [{ op: "<=", value: 1.2 }, "meets"], [{ op: "<=", value: 0.9 }, "fails"], [{ op: "<=", value: 1.05 }, "unresolved"],
      [{ op: ">=", value: 0.9 }, "meets"], [{ op: ">=", value: 1.2 }, "fails"], [{ op: ">=", value: 1.0 }, "unresolved"],
    ] as const;
    const out = statsOf({
      intervals: [...bounds.map(([bound]) => ({ ratios, bound })), { ratios: [1.3], bound: { op: "<=", value: 2 } },
        { ratios: [1.1, null, 1.1, 1.1] }],
      t_df: [1, 2, 3, 5, 7, 10, 30],
    });
    for (const [i, [, v]] of bounds.entries()) {
      const iv = out.intervals[i];
      expect(iv.n).toBe(8);
      expect(iv.geomean).toBeCloseTo(gm, 12);
      expect(iv.ci[0]).toBeCloseTo(lo, 6);
      expect(iv.ci[1]).toBeCloseTo(hi, 6);
      expect(iv.half_width_pct).toBeCloseTo((Math.exp(half) - 1) * 100, 4);
      expect(iv.verdict, JSON.stringify(bounds[i])).toBe(v);
    }
    expect(out.intervals[6]).toMatchObject({ n: 1, ci: null, verdict: "unresolved" }); // one round: no interval
    expect(out.intervals[7]).toMatchObject({ n: 3, verdict: null }); // a missing round is left out; no bound, no verdict
    expect(out.intervals[7].ci[0]).toBeCloseTo(1.1, 12); // no spread: a zero-width interval
    const table: Record<string, number> = { 1: 12.706205, 2: 4.302653, 3: 3.182446, 5: 2.570582, 7: 2.364624, 10: 2.228139, 30: 2.042272 };
    for (const [df, t] of Object.entries(table)) expect(out.t975[df], `t(${df})`).toBeCloseTo(t, 5);
  });

  it("statistics: the nearest-rank percentile as agent/src/stats.ts defines it, and balanced orders", () => {
    const cases = [
      { values: [5, 1, 4, 2, 3], p: 50 }, { values: [5, 1, 4, 2, 3], p: 99 }, { values: [7], p: 99 },
      { values: Array.from({ length: 200 }, (_, i) => (i * 37) % 200), p: 99 },
      { values: Array.from({ length: 1000 }, (_, i) => i), p: 99.9 }, { values: Array.from({ length: 100 }, (_, i) => i), p: 90 },
    ];
    const out = statsOf({
      percentiles: cases,
      orders: [{ modes: ["a", "b", "c"], rounds: 6 }, { modes: ["a", "b", "c"], rounds: 8 }, { modes: ["A", "B"], rounds: 8 }],
    });
    cases.forEach((c, i) => expect(out.percentiles[i].value, JSON.stringify(c.p)).toBe(percentile([...c.values].sort((a, b) => a - b), c.p)));
    expect(out.percentiles[3].note).toBe("P99 of 200: the 198th, 2 above it");
    expect(out.percentiles[4].rank).toBe(999);

    const [williams, eight, abba] = out.orders.map((o: Json) => o.order as string[][]);
    expectBalanced(williams, ["a", "b", "c"], true);
    // and carry-over: each mode directly after each other mode equally often
    const after = new Map<string, number>();
    for (const row of williams) for (let i = 1; i < row.length; i++) after.set(row[i - 1] + row[i], (after.get(row[i - 1] + row[i]) ?? 0) + 1);
    expect([...after.values()]).toEqual([2, 2, 2, 2, 2, 2]);
    expectBalanced(eight, ["a", "b", "c"], false);
    expect(abba.map((row) => row.join("")).join(" ")).toBe("AB BA AB BA AB BA AB BA");
  });
});
