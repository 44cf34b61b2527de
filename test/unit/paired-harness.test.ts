// bench/gpu/paired.py, issue 18's paired measurement, on CPU-only stand-in workers: the controller, pipes, blocks and
// statistics end to end, a balanced block order, and the statistics (bench/gpu/paired_stats.py) against arithmetic done
// here; its copies of TELEMETRY_ENV and of the nearest-rank percentile agree with the agent's.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { TELEMETRY_ENV } from "../../agent/src/bench/orchestrate.js";
import { percentile } from "../../agent/src/stats.js";
import { root, testDir } from "../support/native.js";

const hasPython = spawnSync("python3", ["--version"]).status === 0;
if (!hasPython) console.warn("paired-harness.test.ts: python3 is not installed, so bench/gpu/paired.py is not tested");

const paired = path.join(root, "bench/gpu/paired.py");
const pairedStats = path.join(root, "bench/gpu/paired_stats.py");

/** paired.json and paired_stats.py's answers, as parsed */
type Json = any;

function runCase(args: string[]) {
  const out = testDir("paired");
  const r = spawnSync("python3", [paired, "--fake", ...args, "--out", out], { cwd: root, encoding: "utf8", timeout: 90_000 });
  try {
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    return { stdout: r.stdout, result: JSON.parse(readFileSync(path.join(out, "paired.json"), "utf8")) as Json };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

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

describe.skipIf(!hasPython)("bench/gpu/paired.py (needs python3)", () => {
  it("runs a case end to end on stand-ins: every block's raw numbers, host load, the summary, a balanced order", () => {
    const { stdout, result: r } = runCase(["--block", "0.3", "--rounds", "4"]);
    expect(r.case).toBe("graph-b1024");
    for (const k of ["gpu", "driver", "torch", "commit", "command", "cpu_model", "python"]) expect(r.machine).toHaveProperty(k);
    expect(r.machine.command.join(" ")).toContain("--rounds 4");
    expect(r.config).toMatchObject({ modes: ["alone", "native", "tailguard"], rounds: 4, block_s: 0.3, rate: 20, batch: 1024, fake: true });
    expect(Object.keys(r.workers).sort()).toEqual(["high-bare", "high-tg", "low-bare", "low-tg"]);
    expect(r.workers["high-tg"].env).toMatchObject({ TAILGUARD_PRIORITY: "high" });
    expect(r.workers["low-tg"].env).toMatchObject({ TAILGUARD_PRIORITY: "low" });
    expect(r.workers["high-bare"].env).toEqual({});
    // the shim, built by the tests' global setup, is preloaded into the stand-ins and their rings read
    expect(r.config.rings).toBe("drained");
    expect(r.attachment["high-tg"]).toMatchObject({ shim_loaded: true, ring_file: true, ring_priority: 10 });
    expect(r.attachment["low-tg"]).toMatchObject({ shim_loaded: true, ring_file: true, ring_priority: -10 });

    const order: string[][] = r.config.order;
    expect(order).toHaveLength(4);
    expectBalanced(order, r.config.modes, false);
    expect(r.blocks.map((b: Json) => b.mode)).toEqual(order.flat());
    expect(r.blocks).toHaveLength(12);
    for (const b of r.blocks) {
      expect(b.position).toBe(order[b.round].indexOf(b.mode));
      expect(b.high).not.toBeNull(); // every mode of this case has the high-priority worker
      expect(b.high.latency_ms).toHaveLength(6); // 0.3 s at 20/s
      expect(b.high.gpu_ms).toHaveLength(6);
      expect(b.high.p99_ms).toBe(Math.max(...b.high.latency_ms)); // 6 samples: P99 is the largest
      expect(b.high.p50_ms).toBeGreaterThan(0);
      if (b.mode === "alone") expect(b.low).toBeNull();
      else expect(b.low).toMatchObject({ worker: b.mode === "native" ? "low-bare" : "low-tg", iter_per_s: expect.any(Number) });
      expect(b.host.all.steal_pct).toBeGreaterThanOrEqual(0);
      expect(Object.keys(b.host.cpu_ms).sort()).toEqual(["high-bare", "high-tg", "low-bare", "low-tg", "rings"]);
      for (const idle of b.host.idle) expect(b.host.cpu_ms[idle], `${idle} idle in ${b.mode}`).toBeLessThanOrEqual(20);
      expect(b.host.cpu_ms[b.mode === "native" || b.mode === "tailguard" ? b.low.worker : b.high.worker]).toBeGreaterThanOrEqual(0);
    }

    const s = r.summary;
    expect(s.positions).toEqual(Object.fromEntries(r.config.modes.map((m: string) =>
      [m, [0, 1, 2].map((pos) => order.filter((row) => row[pos] === m).length)])));
    const byName = Object.fromEntries(s.ratios.map((x: Json) => [x.name, x]));
    expect(Object.keys(s.verdicts).sort()).toEqual(["batch it/s, tailguard / native", "request P50, tailguard / alone", "request P99, tailguard / alone"]);
    for (const v of Object.values(s.verdicts)) expect(["meets", "fails", "unresolved"]).toContain(v);
    const p99 = byName["request P99, tailguard / alone"];
    expect(p99.bound).toEqual({ op: "<=", value: 1.05 });
    // the per-round ratios are the blocks' own
    const block = (rnd: number, mode: string) => r.blocks.find((b: Json) => b.round === rnd && b.mode === mode);
    expect(p99.per_round).toEqual([0, 1, 2, 3].map((i) => block(i, "tailguard").high.p99_ms / block(i, "alone").high.p99_ms));
    expect(p99.n).toBe(4);
    expect(p99.ci[0]).toBeLessThanOrEqual(p99.geomean);
    expect(p99.ci[1]).toBeGreaterThanOrEqual(p99.geomean);
    expect(byName["batch it/s, tailguard / native"].per_round).toEqual([0, 1, 2, 3].map((i) =>
      block(i, "tailguard").low.iter_per_s / block(i, "native").low.iter_per_s));
    expect(Object.keys(s.rings).sort()).toEqual(["high-tg", "low-tg"]); // what the rings counted, drops included
    expect(s.pooled.alone.requests).toBe(24);
    expect(s.pooled.alone.p99_rests_on).toBe("P99 of 24: the 24th, 0 above it");
    expect(s.percentile_basis.alone.p99).toBe("P99 of 6: the 6th, 0 above it");
    // 6 requests a block have no P99 of their own: the verdict is the pooled one's, which 4 rounds cannot give
    expect(p99.judged_on).toBe("pooled");
    expect(p99.pooled).toMatchObject({ n: 4, ci: null, verdict: "unresolved" });
    expect(p99.verdict).toBe("unresolved");
    expect(byName["request P50, tailguard / alone"].judged_on).toBeUndefined();
    expect(stdout).toMatch(/request P99, tailguard \/ alone +[\d.]+ +[\d.]+-[\d.]+ +<= 1\.05 +\(per block: no P99 of its own\)/);
    expect(stdout).toMatch(/pooled over rounds \(round bootstrap\) +[\d.]+ +- +<= 1\.05 +unresolved/);
  });

  it("the attach case alternates A B, B A with the shim recording only (agent/src/bench's TELEMETRY_ENV)", () => {
    const { result: r } = runCase(["--case", "attach", "--block", "0.2", "--rounds", "4"]);
    expect(r.config.order).toEqual([["bare", "attached"], ["attached", "bare"], ["bare", "attached"], ["attached", "bare"]]);
    expect(r.workers["low-attached"].env).toMatchObject({ ...TELEMETRY_ENV, TAILGUARD_PRIORITY: "normal" });
    expect(r.attachment["low-attached"]).toMatchObject({ shim_loaded: true, ring_priority: 0 });
    expect(r.blocks.every((b: Json) => b.high === null && b.low.iter_per_s > 0)).toBe(true);
    expect(r.summary.verdicts).toEqual({ "batch it/s, attached / bare": expect.stringMatching(/^(meets|fails|unresolved)$/) });
  });

  it("statistics: pooled percentile ratios with a round bootstrap, repeatable, for blocks too short for a P99", () => {
    // 30 rounds of 20 samples: the numerator is the denominator times 1.5 in every round, then with noise
    const den = Array.from({ length: 30 }, (_, r) => Array.from({ length: 20 }, (_, i) => 1 + ((r * 7 + i * 13) % 17) / 10));
    const exact = den.map((row) => row.map((x) => x * 1.5));
    const noisy = den.map((row, r) => row.map((x, i) => x * (1.2 + ((r * 31 + i * 11) % 23) / 100)));
    const ask = {
      pooled: [
        { num: exact, den, p: 99, bound: { op: "<=", value: 1.6 } },
        { num: noisy, den, p: 99, bound: { op: "<=", value: 1.0 } },
        { num: exact.slice(0, 10), den: den.slice(0, 10), p: 99 },
      ],
    };
    const out = statsOf(ask);
    const [a, b, c] = out.pooled;
    expect(a.ratio).toBeCloseTo(1.5, 12);
    expect(a.ci[0]).toBeCloseTo(1.5, 12);
    expect(a.ci[1]).toBeCloseTo(1.5, 12);
    expect(a.verdict).toBe("meets");
    const all = (rows: number[][]) => rows.flat().sort((x, y) => x - y);
    const p99 = (v: number[]) => v[Math.ceil(0.99 * v.length) - 1];
    expect(b.ratio).toBeCloseTo(p99(all(noisy)) / p99(all(den)), 12);
    expect(b.ci[0]).toBeLessThanOrEqual(b.ratio);
    expect(b.ci[1]).toBeGreaterThanOrEqual(b.ratio);
    expect(b.ci[1]).toBeGreaterThan(b.ci[0]);
    expect(b.verdict).toBe("fails");
    expect(c).toMatchObject({ n: 10, ci: null });
    expect(c.method).toContain("needs 20");
    expect(statsOf(ask).pooled).toEqual(out.pooled); // seeded: the same interval every time
  });

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
