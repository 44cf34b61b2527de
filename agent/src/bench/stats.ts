// Statistics of `tailguard bench`: nearest-rank percentiles of one run's latencies, the median and spread of a figure
// over repetitions, its ratio to the standalone reference of the same invocation, and the low-priority throughput
// inside the measurement window.
import { median, percentile } from "../stats.js";

export { median, percentile };

/** P99.9 is reported only from this many samples on (below it, it is the maximum or close to it). */
export const P999_MIN_SAMPLES = 1000;

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  /** null with fewer than P999_MIN_SAMPLES samples */
  p999: number | null;
  max: number;
}

export const LATENCY_STATS = ["p50", "p90", "p99", "p999", "max"] as const;
export type LatencyStat = (typeof LATENCY_STATS)[number];

export function summarize(values: readonly number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: s.length >= P999_MIN_SAMPLES ? percentile(s, 99.9) : null,
    max: s.length ? s[s.length - 1] : NaN,
  };
}

/** A figure over repetitions: its median, its range, and the median's ratio to the reference's median. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** median / reference median (null where there is no reference or it is 0) */
  ratio: number | null;
}

export function spread(values: readonly number[], reference?: readonly number[]): Spread {
  const m = median(values);
  return { median: m, min: Math.min(...values), max: Math.max(...values), ratio: reference ? ratio(m, median(reference)) : null };
}

export function ratio(value: number, reference: number): number | null {
  return Number.isFinite(value) && Number.isFinite(reference) && reference !== 0 ? value / reference : null;
}

/** Iterations per second inside [from, to] (ns) while none of the `busy` intervals (e.g. the high-priority requests,
 *  from arrival to completion) was under way: each iteration counts for the fraction of it inside that time, its
 *  progress taken as uniform over its duration, so a run of 6 iterations/s measured over 2 s is not quantised to whole
 *  iterations. NaN when no time inside the window is outside them. */
export function throughputOutside(iterations: readonly (readonly [number, number])[], from: number, to: number,
  busy: readonly (readonly [number, number])[]): number {
  // the busy intervals clipped to the window, sorted and merged
  const merged: [number, number][] = [];
  for (const [b, e] of [...busy].map(([b, e]) => [Math.max(b, from), Math.min(e, to)] as const).filter(([b, e]) => e > b)
    .sort((x, y) => x[0] - y[0])) {
    const last = merged.at(-1);
    if (last && b <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([b, e]);
  }
  const busyIn = (b: number, e: number) => {
    let sum = 0;
    for (const [mb, me] of merged) {
      if (mb >= e) break;
      sum += Math.max(0, Math.min(me, e) - Math.max(mb, b));
    }
    return sum;
  };
  const idle = to - from - busyIn(from, to);
  if (idle <= 0) return NaN;
  let done = 0;
  for (const [begin, end] of iterations) {
    if (end <= begin) continue;
    const b = Math.max(begin, from), e = Math.min(end, to);
    if (e > b) done += (e - b - busyIn(b, e)) / (end - begin);
  }
  return done / (idle / 1e9);
}

/** Iterations per second inside [from, to] (ns): throughputOutside with nothing busy. */
export function windowThroughput(iterations: readonly (readonly [number, number])[], from: number, to: number): number {
  return throughputOutside(iterations, from, to, []);
}
