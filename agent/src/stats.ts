// The two statistics every part of tailguard reports the same way: the nearest-rank percentile (as HdrHistogram and
// Prometheus' exact gauges give it) and the median. The live view, `tailguard bench` and its summaries use these.

/** Nearest-rank percentile (the smallest sample with at least p % of the samples at or below it) of ascending data. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  // the rank p/100 * n, rounded to 12 digits first: 99.9 / 100 * 1000 is 999.0000000000001 in binary floating point
  const rank = Math.ceil(Number(((p / 100) * sorted.length).toPrecision(12)));
  const k = Math.min(sorted.length - 1, Math.max(0, rank - 1));
  return sorted[k];
}

/** The median: the middle value, or the mean of the two middle values. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
