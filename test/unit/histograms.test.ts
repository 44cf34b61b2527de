// The agent's HDR histograms (agent/src/telemetry/histograms.ts): percentiles against the exact ones of known distributions,
// clamping, forgetting processes, and the interval log as the standard reader (hdr-histogram-js's
// HistogramLogReader, a port of Java's) reads it back.
import { readFileSync } from "node:fs";
import path from "node:path";
import { HistogramLogReader, listTags, type Histogram } from "hdr-histogram-js";
import { describe, expect, it } from "vitest";

import { BUFFERED_MAX, HIGHEST_NS, Histograms, IntervalLog, parseTag, readIntervalLog, seriesTag } from "../../agent/src/telemetry/histograms.js";
import { PERCENTILES, type SeriesKey } from "../../agent/src/model.js";
import { testDir } from "../support/native.js";

/** The value HdrHistogram means by percentile p: the one at rank round(p% of n), at least the first. */
function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(1, Math.round((p / 100) * sorted.length)) - 1];
}

/** Within 3 significant digits: HdrHistogram keeps each value within 1/1024 of itself. */
function expectWithinPrecision(actual: number, exact: number, what: string) {
  expect(Math.abs(actual - exact), `${what}: ${actual} vs exact ${exact}`).toBeLessThanOrEqual(exact / 1000);
}

/** A small seeded generator (mulberry32), so a failure can be reproduced. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key = (pid: number, priority = 0, gpu = "GPU-5f2c7a10-0000-0000-0000-000000000001"): SeriesKey => ({ pid, priority, gpu });

function expectDistribution(h: Histograms, metric: "request_latency" | "hold_time", k: SeriesKey, values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const s = h.snapshot().find((x) => x.metric === metric && x.key.pid === k.pid)!;
  expect(s).toBeDefined();
  expect(s.count).toBe(values.length);
  expect(s.min).toBe(sorted[0]);
  expect(s.max).toBe(sorted[sorted.length - 1]);
  expect(s.mean).toBeCloseTo(sorted.reduce((a, b) => a + b, 0) / sorted.length, 3);
  expect(Object.keys(s.percentiles)).toEqual(Object.keys(PERCENTILES));
  for (const [label, p] of Object.entries(PERCENTILES)) {
    expectWithinPrecision(s.percentiles[label], exactPercentile(sorted, p), `${metric} ${label}`);
    expect(h.percentile(metric, k, p)).toBe(s.percentiles[label]);
  }
}

describe("Histograms", () => {
  it("compact: a series keeps its values until it has BUFFERED_MAX, then a histogram; either way the dense snapshot", () => {
    const next = random(7);
    const values = Array.from({ length: BUFFERED_MAX + 2000 }, () => Math.floor(Math.exp(next() * 20)));
    const c = new Histograms({ compact: true });
    const d = new Histograms();
    try {
      values.forEach((v, i) => {
        c.record("hold_time", key(3), v);
        d.record("hold_time", key(3), v);
        if (i === 99) {
          expect(c.snapshot()).toEqual(d.snapshot());
          expect(c.bytes).toBe(100 * 8); // its 100 values
          expect(d.bytes).toBe(34_816 * 4); // a histogram from the first
        }
      });
      expect(c.snapshot()).toEqual(d.snapshot());
      expect(c.bytes).toBe(34_816 * 4); // past BUFFERED_MAX: a histogram like any
      for (const p of [50, 99, 99.99]) expect(c.percentile("hold_time", key(3), p)).toBe(d.percentile("hold_time", key(3), p));
      expect(c.size).toBe(1);
      c.forget(3);
      expect(c.size).toBe(0);
    } finally {
      c.close();
      d.close();
    }
  });

  it("uniform 1..100000 µs: every percentile within HDR precision of the exact one; count, min, max exact", () => {
    const h = new Histograms();
    try {
      const next = random(1);
      const values = Array.from({ length: 100_000 }, (_, i) => (i + 1) * 1000);
      // recorded in a random order: the histogram must not depend on it
      for (let i = values.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [values[i], values[j]] = [values[j], values[i]];
      }
      const series = h.series("request_latency", key(101));
      expect(h.series("request_latency", key(101))).toBe(series); // cached handle
      for (const v of values) series.record(v);
      expectDistribution(h, "request_latency", key(101), values);
      expect(h.percentile("request_latency", key(101), 50)).toBeGreaterThan(49_900_000);
      expect(h.clamped).toBe(0);
    } finally {
      h.close();
    }
  });

  it("a heavy tail (Pareto, up to seconds) and fractional values: percentiles, min and max", () => {
    const h = new Histograms();
    try {
      const next = random(7);
      // Pareto with shape 1.1 from 20 µs: most values tens of µs, P99.99 near 0.1 s, the largest seconds; as floats
      const values = Array.from({ length: 200_000 }, () => 20_000 / Math.pow(1 - next(), 1 / 1.1) + 0.4);
      const k = key(202, 10);
      for (const v of values) h.record("hold_time", k, v);
      const recorded = values.map((v) => Math.min(Math.round(v), HIGHEST_NS));
      expectDistribution(h, "hold_time", k, recorded);
      expect(recorded.reduce((a, b) => Math.max(a, b))).toBeGreaterThan(1e9); // the tail really reaches seconds
      expect(h.clamped).toBe(values.filter((v) => v > HIGHEST_NS).length);
    } finally {
      h.close();
    }
  });

  it("values outside 0 ns .. 1 hour are recorded at the edge and counted", () => {
    const h = new Histograms();
    try {
      const k = key(303);
      const s = h.series("launch_api_time", k);
      for (const v of [5_000, -3, Number.NaN, 2 * HIGHEST_NS, HIGHEST_NS, 0]) s.record(v);
      expect(s.clamped).toBe(3);
      expect(h.clamped).toBe(3);
      const snap = h.snapshot()[0];
      expect(snap).toMatchObject({ count: 6, min: 0, max: HIGHEST_NS });
      expect(h.percentile("launch_api_time", k, 100)).toBe(HIGHEST_NS);
      // the clamped ones count even after their process is forgotten
      h.forget(303);
      expect(h.clamped).toBe(3);
    } finally {
      h.close();
    }
  });

  it("series are per (metric, pid, priority, GPU); forget(pid) drops all of a process's and only those", () => {
    const h = new Histograms();
    try {
      h.record("request_latency", key(1), 1000);
      h.record("request_latency", key(1, 10), 2000);
      h.record("request_latency", key(1, 0, "GPU-other"), 3000);
      h.record("hold_time", key(1), 4000);
      const kept = h.series("request_latency", key(2));
      kept.record(5000);
      h.series("kernel_gpu_time", key(3)); // created, nothing recorded: not in snapshots
      expect(h.snapshot().map((s) => [s.metric, s.key.pid, s.key.priority, s.key.gpu.slice(0, 9), s.count])).toEqual([
        ["request_latency", 1, 0, "GPU-5f2c7", 1],
        ["request_latency", 1, 0, "GPU-other", 1],
        ["request_latency", 1, 10, "GPU-5f2c7", 1],
        ["request_latency", 2, 0, "GPU-5f2c7", 1],
        ["hold_time", 1, 0, "GPU-5f2c7", 1],
      ]);
      expect(h.percentile("kernel_gpu_time", key(3), 50)).toBeNull();
      expect(h.percentile("kernel_gpu_time", key(9), 50)).toBeNull();
      const stale = h.series("hold_time", key(1));
      h.forget(1);
      expect(h.snapshot().map((s) => s.key.pid)).toEqual([2]);
      expect(() => stale.record(1)).toThrow(/forgotten/); // its histograms now serve other series
      expect(h.percentile("request_latency", key(1), 50)).toBeNull();
      kept.record(7000); // other processes' handles stay valid
      expect(h.percentile("request_latency", key(2), 100)).toBe(7000);
      // a new process with the pid starts from nothing
      h.record("request_latency", key(1), 9000);
      expect(h.snapshot().find((s) => s.key.pid === 1)).toMatchObject({ count: 1, min: 9000, max: 9000 });
    } finally {
      h.close();
    }
    expect(() => h.series("request_latency", key(1))).toThrow(/closed/);
  });

  it("tags name the series without commas or spaces and parse back", () => {
    const k = { pid: 42, priority: -10, gpu: "GPU-a b,c;d=e" };
    const tag = seriesTag("launch_api_time", k);
    expect(tag).toBe("launch_api_time;pid=42;priority=-10;gpu=GPU-a_b_c_d_e");
    expect(parseTag(tag)).toEqual({ metric: "launch_api_time", key: { ...k, gpu: "GPU-a_b_c_d_e" } });
    expect(parseTag("NO TAG")).toBeNull();
    expect(parseTag("constructor;pid=1;priority=0;gpu=x")).toBeNull();
  });
});

describe("IntervalLog", () => {
  it("writes the standard format: the standard reader gets each interval's tags, times and distributions", () => {
    const dir = testDir("hdrlog");
    const file = path.join(dir, "latency.hlog");
    const h = new Histograms({ intervals: true });
    const t0 = 1_795_000_000_123; // epoch ms
    const log = new IntervalLog(file, h, t0);
    const next = random(3);
    const a = key(500, 10);
    const b = { pid: 501, priority: -10, gpu: "unknown" };
    /** what each interval should hold: tag → values */
    const expected: Map<string, number[]>[] = [];
    const recordAll = (metric: "request_latency" | "hold_time", k: SeriesKey, n: number, scale: number) => {
      const values = Array.from({ length: n }, () => Math.round(scale * (0.5 + next()) * (next() < 0.01 ? 50 : 1)));
      const s = h.series(metric, k);
      for (const v of values) s.record(v);
      const tag = `${metric};pid=${k.pid};priority=${k.priority};gpu=${k.gpu}`;
      expected[expected.length - 1].set(tag, [...(expected[expected.length - 1].get(tag) ?? []), ...values]);
    };
    try {
      expected.push(new Map());
      recordAll("request_latency", a, 5000, 2e6);
      recordAll("request_latency", b, 3000, 30e6);
      recordAll("hold_time", b, 200, 1e6);
      expect(log.writeInterval(t0, t0 + 1000)).toBe(3);
      expected.push(new Map());
      recordAll("request_latency", a, 4000, 3e6); // b is idle: no line for it
      expect(log.writeInterval(t0 + 1000, t0 + 2000)).toBe(1);
      expected.push(new Map());
      recordAll("request_latency", b, 100, 1e6);
      h.forget(b.pid); // what it recorded in the interval is still written
      expect(log.writeInterval(t0 + 2000, t0 + 3500)).toBe(1);
      expect(log.writeInterval(t0 + 3500, t0 + 4000)).toBe(0);
    } finally {
      log.close();
    }

    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    expect(lines[1]).toBe("#[Histogram log format version 1.3]");
    expect(lines[2]).toMatch(/^#\[StartTime: 1795000000\.123 \(seconds since epoch\), .+\]$/);
    expect(lines[3]).toBe("#[BaseTime: 1795000000.123 (seconds since epoch)]");
    expect(lines[4]).toBe('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"');
    expect(lines[5]).toMatch(/^Tag=request_latency;pid=500;priority=10;gpu=GPU-[\w-]+,0\.000,1\.000,\d+\.\d{3},HISTF\S+$/);

    const reader = new HistogramLogReader(text);
    const read: Histogram[] = [];
    for (let hist = reader.nextIntervalHistogram(); hist; hist = reader.nextIntervalHistogram()) read.push(hist);
    const starts = [t0, t0 + 1000, t0 + 2000];
    const ends = [t0 + 1000, t0 + 2000, t0 + 3500];
    const got = read.map((x) => ({ tag: x.tag, start: x.startTimeStampMsec, end: x.endTimeStampMsec }));
    const want = expected.flatMap((m, i) => [...m.keys()].map((tag) => ({ tag, start: starts[i], end: ends[i] })));
    expect(got.map((g) => g.tag)).toEqual(want.map((w) => w.tag));
    got.forEach((g, i) => {
      expect(g.start).toBeCloseTo(want[i].start, 0);
      expect(g.end).toBeCloseTo(want[i].end, 0);
    });
    let i = 0;
    for (const interval of expected)
      for (const values of interval.values()) {
        const hist = read[i++];
        const sorted = [...values].sort((x, y) => x - y);
        expect(hist.totalCount).toBe(values.length);
        for (const p of [50, 90, 99, 99.9])
          expectWithinPrecision(hist.getValueAtPercentile(p), exactPercentile(sorted, p), `${hist.tag} p${p}`);
        expectWithinPrecision(hist.maxValue, sorted[sorted.length - 1], `${hist.tag} max`);
      }
    expect(new Set(listTags(text))).toEqual(new Set(want.map((w) => w.tag)));

    // readIntervalLog adds each tag's intervals up
    const logged = readIntervalLog(file);
    for (const tag of new Set(want.map((w) => w.tag))) {
      const all = expected.flatMap((m) => m.get(tag) ?? []).sort((x, y) => x - y);
      const l = logged.find((x) => x.tag === tag)!;
      expect(l.count).toBe(all.length);
      expect(l.intervals).toBe(expected.filter((m) => m.has(tag)).length);
      expectWithinPrecision(l.percentiles.p99, exactPercentile(all, 99), `${tag} p99`);
      expectWithinPrecision(l.max, all[all.length - 1], `${tag} max`);
    }
    expect(logged.find((x) => x.tag.startsWith("request_latency;pid=500"))).toMatchObject({ startMs: t0, endMs: t0 + 2000 });
    h.close();
  });

  it("needs histograms that keep intervals", () => {
    const h = new Histograms();
    expect(() => new IntervalLog(path.join(testDir("hdrlog"), "x.hlog"), h)).toThrow(/intervals: true/);
    h.close();
  });
});
