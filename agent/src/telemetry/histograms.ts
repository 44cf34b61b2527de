// The agent's latency histograms: one HdrHistogram (hdr-histogram-js, WebAssembly build) per metric and series
// (model.ts), cumulative since the agent started, and optionally a second one per series holding the current
// interval for an HdrHistogram interval log (IntervalLog), in the standard format Java's HistogramLogWriter writes
// and every HdrHistogram tool reads. readIntervalLog reads such logs back, aggregated per tag.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

import {
  build,
  encodeIntoCompressedBase64,
  HistogramLogReader,
  initWebAssemblySync,
  PackedHistogram,
  type Histogram,
} from "hdr-histogram-js";

import {
  HISTOGRAM_METRICS,
  PERCENTILES,
  type HistogramMetricName,
  type SeriesKey,
  type SeriesSnapshot,
} from "../model.js";

/** Every value is recorded in integer nanoseconds from 0 up to this: one hour. Longer values (a batch process that
 *  never idles is one long request window) are recorded as one hour and counted in `clamped`. */
export const HIGHEST_NS = 3_600_000_000_000;
/** 3 significant digits: each value is kept within 1/1024 (0.1%) of itself; below 2048 ns, exactly. */
const SIGNIFICANT_DIGITS = 3;
/**
 * Memory: with 1 ns resolution, one hour's range and 3 digits a histogram has 34,816 counters; 32-bit counters (a
 * count per bucket and interval never nears 2^32) make that 136 KiB. Measured (50 processes × 4 metrics, 20,000
 * log-spread values each, RSS after GC): about 145 KiB per series, 280 KiB with interval logging; 200 series add
 * 29 MiB (55 MiB with intervals) to the agent's RSS. 64-bit counters would double it; the "packed" (sparse) variant
 * measured 189 KiB of RSS per histogram (its garbage stays in the WebAssembly heap) and 17× the recording cost.
 */
const BUCKET_BITS = 32;

/** A distribution without its series. */
export type Distribution = Omit<SeriesSnapshot, "metric" | "key">;

function newHistogram(): Histogram {
  return build({
    useWebAssembly: true,
    bitBucketSize: BUCKET_BITS,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    autoResize: false,
  });
}

/** Percentiles of `h`, kept within [min, max]: a percentile is reported as the highest value of its bucket, which
 *  can exceed the largest value actually recorded. */
function percentilesOf(h: Histogram, min: number, max: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [label, p] of Object.entries(PERCENTILES))
    out[label] = Math.min(max, Math.max(min, h.getValueAtPercentile(p)));
  return out;
}

/** The histograms' buckets, for percentileOfSorted: a JavaScript histogram of the same range and precision (its
 *  bucket functions only; nothing is recorded in it). */
const buckets = new PackedHistogram(1, HIGHEST_NS, SIGNIFICANT_DIGITS);

/**
 * What getValueAtPercentile of a histogram holding `sorted` (ascending, in range) would say, without the histogram:
 * the value at rank ceil(p% of n) (never below 1; less one ulp, as HdrHistogram rounds), reported as the highest value
 * of its bucket (the lowest for p = 0). HdrHistogram finds that rank by scanning its buckets from the first (about
 * 0.2 ms for a series of a few values of milliseconds, with the reset of a histogram to hold them); here it is a sort.
 * test/unit/property.test.ts checks that both agree, on random values and percentiles.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const fp = (Math.min(p, 100) / 100) * n;
  const rank = Math.max(Math.ceil(fp - (fp > 0 ? 2 ** (Math.floor(Math.log2(fp)) - 52) : 0)), 1);
  const v = sorted[Math.min(rank, n) - 1];
  return p === 0 ? buckets.lowestEquivalentValue(v) : buckets.highestEquivalentValue(v);
}

/** percentilesOf for values kept rather than recorded in a histogram (a compact series). */
function percentilesOfSorted(sorted: ArrayLike<number>, min: number, max: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [label, p] of Object.entries(PERCENTILES)) out[label] = Math.min(max, Math.max(min, percentileOfSorted(sorted, p)));
  return out;
}

const empty = (): Distribution => ({
  count: 0,
  min: 0,
  max: 0,
  mean: 0,
  percentiles: Object.fromEntries(Object.keys(PERCENTILES).map((label) => [label, 0])),
});

/** A distribution read from a histogram alone (min and max to its precision; the mean from bucket midpoints). */
function distributionOf(h: Histogram): Distribution {
  const count = h.totalCount;
  if (count === 0) return empty();
  const min = h.getValueAtPercentile(0);
  const max = h.maxValue;
  return { count, min, max, mean: h.mean, percentiles: percentilesOf(h, min, max) };
}

/** Stands in for the histograms of a forgotten series, which are reused by others: its stale handles must fail. */
const FORGOTTEN = new Proxy({} as Histogram, {
  get() {
    throw new Error("this series was forgotten (Histograms.forget): get a new handle from Histograms.series");
  },
});

/** The histogram of a compact series that still keeps its values itself: none yet. */
const NOT_YET = new Proxy({} as Histogram, {
  get() {
    throw new Error("a compact series has no histogram until it has more than BUFFERED_MAX values");
  },
});

/** One series of one metric. Handles stay valid until the series is forgotten or the Histograms closed. */
export class Series {
  count = 0;
  /** exact, unlike the histogram's (which knows values only to its precision) */
  min = Infinity;
  max = 0;
  sum = 0;
  /** values recorded as 0 (negative or not a number) or as HIGHEST_NS (longer) */
  clamped = 0;

  constructor(
    readonly metric: HistogramMetricName,
    readonly key: SeriesKey,
    /** @internal cumulative since the series began */
    public cumulative: Histogram,
    /** @internal since the last interval written, when interval logging is on */
    public interval: Histogram | null,
  ) {}

  /** Records a duration in nanoseconds (rounded to an integer). Allocates nothing. */
  record(ns: number): void {
    const v = this.counted(ns);
    this.cumulative.recordValue(v);
    if (this.interval !== null) this.interval.recordValue(v);
  }

  /** A duration as the histograms take it (an integer in [0, HIGHEST_NS]), counted in count, sum, min, max, clamped. */
  protected counted(ns: number): number {
    let v = Math.round(ns);
    if (!(v >= 0)) {
      v = 0;
      this.clamped++;
    } else if (v > HIGHEST_NS) {
      v = HIGHEST_NS;
      this.clamped++;
    }
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    return v;
  }

  snapshot(): SeriesSnapshot {
    if (this.count === 0) return { metric: this.metric, key: this.key, ...empty() };
    return {
      metric: this.metric,
      key: this.key,
      count: this.count,
      min: this.min,
      max: this.max,
      mean: this.sum / this.count,
      percentiles: this.percentiles(),
    };
  }

  /** The value at percentile p (0-100), within [min, max]; the series has recorded something. */
  percentile(p: number): number {
    return Math.min(this.max, Math.max(this.min, this.cumulative.getValueAtPercentile(p)));
  }

  protected percentiles(): Record<string, number> {
    return percentilesOf(this.cumulative, this.min, this.max);
  }
}

/** Values a compact series keeps itself (8 bytes each) before it takes a histogram: at this many they weigh about
 *  what a histogram does. */
export const BUFFERED_MAX = 16_384;

/**
 * A series of compact Histograms: its values themselves, exact, until it has BUFFERED_MAX of them, then a histogram
 * (from `take`) like any series. For many series of few values each (`tailguard report` of a recording of 20,000
 * processes): a few hundred bytes each where a histogram is 136 KiB, and percentiles by a sort (percentileOfSorted)
 * where a histogram's scan costs some 100 µs.
 */
class CompactSeries extends Series {
  /** a plain array (of doubles, to V8): a few dozen bytes for a few values, where a typed array costs hundreds */
  private values: number[] | null = [];
  private sorted = true;

  constructor(metric: HistogramMetricName, key: SeriesKey, private readonly take: () => Histogram) {
    super(metric, key, NOT_YET, null);
  }

  /** Bytes of memory its values or its histogram hold (values: 8 bytes each). */
  get bytes(): number {
    return this.values === null ? HISTOGRAM_BYTES : this.values.length * 8;
  }

  override record(ns: number): void {
    const v = this.counted(ns);
    const values = this.values;
    if (values === null) {
      this.cumulative.recordValue(v);
      return;
    }
    if (values.length === BUFFERED_MAX) {
      this.cumulative = this.take();
      for (const x of values) this.cumulative.recordValue(x);
      this.cumulative.recordValue(v);
      this.values = null;
      return;
    }
    if (values.length > 0 && v < values[values.length - 1]) this.sorted = false;
    values.push(v);
  }

  override percentile(p: number): number {
    if (this.values === null) return super.percentile(p);
    return Math.min(this.max, Math.max(this.min, percentileOfSorted(this.sortedValues(), p)));
  }

  protected override percentiles(): Record<string, number> {
    if (this.values === null) return super.percentiles();
    return percentilesOfSorted(this.sortedValues(), this.min, this.max);
  }

  private sortedValues(): number[] {
    if (!this.sorted) this.values!.sort((a, b) => a - b);
    this.sorted = true;
    return this.values!;
  }
}

/** What one histogram holds in memory (measured: 145 KiB of RSS per series, BUCKET_BITS). */
const HISTOGRAM_BYTES = 34_816 * 4;

/** The tag of a series in an interval log: `<metric>;pid=<pid>;priority=<p>;gpu=<uuid>`. Tags end at a comma and
 *  readers split lines on spaces too, so anything but [A-Za-z0-9_.:-] in the GPU's name becomes "_". */
export function seriesTag(metric: HistogramMetricName, key: SeriesKey): string {
  return `${metric};pid=${key.pid};priority=${key.priority};gpu=${key.gpu.replace(/[^A-Za-z0-9_.:-]/g, "_")}`;
}

/** The metric and series a tag names, or null for a tag that is not seriesTag's. */
export function parseTag(tag: string): { metric: HistogramMetricName; key: SeriesKey } | null {
  const m = /^(\w+);pid=(\d+);priority=(-?\d+);gpu=([^;,\s]+)$/.exec(tag);
  if (!m || !(HISTOGRAM_METRICS as readonly string[]).includes(m[1])) return null;
  return { metric: m[1] as HistogramMetricName, key: { pid: Number(m[2]), priority: Number(m[3]), gpu: m[4] } };
}

const METRIC_ORDER: readonly string[] = HISTOGRAM_METRICS;

/** Snapshot order: by metric (as model.ts lists them), pid, priority, GPU. */
export function bySeries(a: SeriesSnapshot, b: SeriesSnapshot): number {
  return (
    METRIC_ORDER.indexOf(a.metric) - METRIC_ORDER.indexOf(b.metric) ||
    a.key.pid - b.key.pid ||
    a.key.priority - b.key.priority ||
    a.key.gpu.localeCompare(b.key.gpu)
  );
}

/**
 * The agent's histograms, per metric and series.
 *
 * Histograms of forgotten series are reset and reused rather than destroyed: destroy() only hands a WebAssembly
 * histogram to AssemblyScript's garbage collector, whose heap never shrinks, and 50 processes × 4 metrics replaced
 * over and over measured 38 MiB more RSS than the live ones (the collector keeps about one generation of garbage);
 * reused, memory stays at the most histograms ever live at once. close() destroys them all.
 */
export class Histograms {
  /** pid → (metric, priority, gpu) → series: a process's series go together when it is forgotten */
  private readonly byPid = new Map<number, Map<string, Series>>();
  /** interval histograms of forgotten series, kept for the next interval written */
  private retired: { tag: string; histogram: Histogram }[] = [];
  /** reset histograms of forgotten series, for new ones */
  private spare: Histogram[] = [];
  private clampedForgotten = 0;
  private closed = false;
  private count = 0;
  readonly intervals: boolean;
  readonly compact: boolean;

  /** `intervals`: also keep each series' data since the last interval, for an IntervalLog (which must then write
   *  intervals: forgotten series' interval data is kept until it does). `compact`: series keep their values until
   *  they have many (CompactSeries), for many series of few values; not with `intervals`. */
  constructor(opts: { intervals?: boolean; compact?: boolean } = {}) {
    initWebAssemblySync();
    this.intervals = opts.intervals ?? false;
    this.compact = opts.compact ?? false;
    if (this.compact && this.intervals) throw new Error("compact histograms keep no intervals");
  }

  /** Series held now. */
  get size(): number {
    return this.count;
  }

  /** Bytes their values and histograms hold (compact: what CompactSeries say; else a histogram per series, two with
   *  intervals). Walks every series: for now and then, not for every record. */
  get bytes(): number {
    let n = 0;
    for (const s of this.all()) n += s instanceof CompactSeries ? s.bytes : HISTOGRAM_BYTES * (s.interval ? 2 : 1);
    return n;
  }

  /** The series' handle, created on first use; keep it for the hot path. */
  series(metric: HistogramMetricName, key: SeriesKey): Series {
    if (this.closed) throw new Error("histograms are closed");
    let own = this.byPid.get(key.pid);
    if (!own) this.byPid.set(key.pid, (own = new Map()));
    const id = `${metric};${key.priority};${key.gpu}`;
    let s = own.get(id);
    if (!s) {
      s = this.compact
        ? new CompactSeries(metric, { ...key }, () => this.histogram())
        : new Series(metric, { ...key }, this.histogram(), this.intervals ? this.histogram() : null);
      own.set(id, s);
      this.count++;
    }
    return s;
  }

  record(metric: HistogramMetricName, key: SeriesKey, ns: number): void {
    this.series(metric, key).record(ns);
  }

  /** Every series that recorded something, cumulative since it began, ordered by metric, pid, priority, GPU. */
  snapshot(): SeriesSnapshot[] {
    const out: SeriesSnapshot[] = [];
    for (const s of this.all()) if (s.count > 0) out.push(s.snapshot());
    return out.sort(bySeries);
  }

  /** The value at percentile p (0-100) of a series, or null when it has recorded nothing. */
  percentile(metric: HistogramMetricName, key: SeriesKey, p: number): number | null {
    const s = this.byPid.get(key.pid)?.get(`${metric};${key.priority};${key.gpu}`);
    if (!s || s.count === 0) return null;
    if (p <= 0) return s.min;
    return s.percentile(p);
  }

  /** Drops a process's series (its handles must not be used again). What they recorded since the last interval is
   *  still written with the next one. */
  forget(pid: number): void {
    const own = this.byPid.get(pid);
    if (!own) return;
    for (const s of own.values()) {
      this.clampedForgotten += s.clamped;
      if (s.cumulative !== NOT_YET) this.recycle(s.cumulative);
      if (s.interval && s.interval.totalCount > 0)
        this.retired.push({ tag: seriesTag(s.metric, s.key), histogram: s.interval });
      else if (s.interval) this.recycle(s.interval);
      s.cumulative = FORGOTTEN;
      if (s.interval) s.interval = FORGOTTEN;
    }
    this.count -= own.size;
    this.byPid.delete(pid);
  }

  /** Values clamped into [0, HIGHEST_NS] so far, forgotten series included. */
  get clamped(): number {
    let n = this.clampedForgotten;
    for (const s of this.all()) n += s.clamped;
    return n;
  }

  /** @internal for IntervalLog: hands each series' interval histogram that holds data (forgotten series' too) to
   *  `write`, then starts the next interval. */
  drainIntervals(write: (tag: string, interval: Histogram) => void): void {
    for (const r of this.retired) {
      write(r.tag, r.histogram);
      this.recycle(r.histogram);
    }
    this.retired = [];
    for (const s of this.all())
      if (s.interval && s.interval.totalCount > 0) {
        write(seriesTag(s.metric, s.key), s.interval);
        s.interval.reset();
      }
  }

  close(): void {
    for (const s of this.all()) {
      if (s.cumulative !== NOT_YET) s.cumulative.destroy();
      s.interval?.destroy();
    }
    for (const r of this.retired) r.histogram.destroy();
    for (const h of this.spare) h.destroy();
    this.byPid.clear();
    this.count = 0;
    this.retired = [];
    this.spare = [];
    this.closed = true;
  }

  private histogram(): Histogram {
    return this.spare.pop() ?? newHistogram();
  }

  private recycle(h: Histogram) {
    h.reset();
    this.spare.push(h);
  }

  private *all(): Iterable<Series> {
    for (const own of this.byPid.values()) yield* own.values();
  }
}

const LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"';

/**
 * An HdrHistogram interval log, line for line as Java's HistogramLogWriter writes one (log format 1.3), so that
 * HdrHistogram's log readers and tools read it (the tests read it with hdr-histogram-js's HistogramLogReader).
 * Timestamps are seconds after `#[BaseTime]`; values are nanoseconds, Interval_Max is in milliseconds (the Java
 * writer's default ratio of 10^6).
 */
export class IntervalLog {
  private fd: number | null;
  private readonly baseMs: number;

  constructor(
    readonly path: string,
    private readonly histograms: Histograms,
    startMs: number = Date.now(),
  ) {
    if (!histograms.intervals) throw new Error("IntervalLog needs Histograms created with { intervals: true }");
    this.baseMs = startMs;
    this.fd = openSync(path, "w");
    const sec = (startMs / 1000).toFixed(3);
    this.write(
      "#[Logged with tailguard: values in nanoseconds, Tag=<metric>;pid=<pid>;priority=<priority>;gpu=<uuid>]\n" +
        "#[Histogram log format version 1.3]\n" +
        `#[StartTime: ${sec} (seconds since epoch), ${new Date(startMs).toString()}]\n` +
        `#[BaseTime: ${sec} (seconds since epoch)]\n` +
        `${LEGEND}\n`,
    );
  }

  /** Writes one line per series that recorded something since the last interval, and starts the next interval.
   *  Returns the number of lines written. */
  writeInterval(startMs: number, endMs: number): number {
    if (this.fd === null) throw new Error(`interval log ${this.path} is closed`);
    const start = ((startMs - this.baseMs) / 1000).toFixed(3);
    const length = ((endMs - startMs) / 1000).toFixed(3);
    const lines: string[] = [];
    this.histograms.drainIntervals((tag, h) =>
      lines.push(`Tag=${tag},${start},${length},${(h.maxValue / 1e6).toFixed(3)},${encodeIntoCompressedBase64(h)}\n`),
    );
    if (lines.length > 0) this.write(lines.join(""));
    return lines.length;
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private write(s: string) {
    writeSync(this.fd!, s);
  }
}

/** A tag's intervals of an interval log, added up. */
export interface LoggedSeries extends Distribution {
  /** the line's Tag= ("NO TAG" for lines without one) */
  tag: string;
  intervals: number;
  /** the first interval's start and the last one's end, epoch ms (when the log gives a StartTime or BaseTime) */
  startMs: number;
  endMs: number;
}

/** An interval line: [Tag=...,]start,length,max,base64 (a number may be written with an exponent by some tools). */
const INTERVAL_LINE = /^(Tag=[^,\s]*,)?\s*[-+\d.eE]+,\s*[-+\d.eE]+,\s*[-+\d.eE]+,\s*[A-Za-z0-9+/=]+\s*$/;

/** True when `text` looks like an HdrHistogram interval log (its header, legend or interval lines). */
export function isIntervalLog(text: string): boolean {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== "");
  if (first === undefined) return false;
  return first.startsWith("#") || first.startsWith('"StartTimestamp"') || INTERVAL_LINE.test(first.trim());
}

/**
 * Adds up the intervals of an HdrHistogram interval log (any writer's) per tag, fed one line at a time, so that a log
 * is read in bounded memory: a tag's sum is a packed histogram (its memory grows with the buckets it uses), and each
 * line is decoded with the log's StartTime and BaseTime lines seen before it, as HistogramLogReader would.
 */
export class IntervalLogSums {
  /** the latest #[StartTime: ...] and #[BaseTime: ...] lines: what decoding an interval line needs of the header */
  private startTime = "";
  private baseTime = "";
  private readonly byTag = new Map<string, { sum: Histogram; intervals: number; startMs: number; endMs: number }>();

  /** Tags so far. */
  get tags(): number {
    return this.byTag.size;
  }

  /** Adds one line; throws an Error saying what is wrong with it (and adds nothing) if it is not part of the format. */
  add(line: string): void {
    if (line.startsWith("#[StartTime:")) this.startTime = line;
    else if (line.startsWith("#[BaseTime:")) this.baseTime = line;
    if (line === "" || line.startsWith("#") || line.startsWith('"StartTimestamp"')) return;
    if (!INTERVAL_LINE.test(line)) throw new Error(`not an HdrHistogram interval log line: ${line.slice(0, 80)}`);
    let h: Histogram | null;
    try {
      h = new HistogramLogReader([this.startTime, this.baseTime, line].join("\n"), "packed").nextIntervalHistogram();
    } catch (err) {
      throw new Error(`cannot decode its histogram (${(err as Error).message})`);
    }
    if (!h) return;
    const seen = this.byTag.get(h.tag);
    if (!seen) {
      // the first interval becomes the tag's sum; later ones may hold values beyond its range
      h.autoResize = true;
      this.byTag.set(h.tag, { sum: h, intervals: 1, startMs: h.startTimeStampMsec, endMs: h.endTimeStampMsec });
      return;
    }
    seen.sum.add(h);
    seen.intervals++;
    seen.startMs = Math.min(seen.startMs, h.startTimeStampMsec);
    seen.endMs = Math.max(seen.endMs, h.endTimeStampMsec);
  }

  /** Each tag's intervals, added up, in the order the tags first appeared. */
  result(): LoggedSeries[] {
    return [...this.byTag].map(([tag, t]) => ({
      tag,
      intervals: t.intervals,
      startMs: t.startMs,
      endMs: t.endMs,
      ...distributionOf(t.sum),
    }));
  }
}

/** Reads an HdrHistogram interval log (any writer's) and adds up each tag's intervals. Throws, naming the file and
 *  line, on a line that is not part of the format. */
export function readIntervalLog(path: string): LoggedSeries[] {
  const sums = new IntervalLogSums();
  readFileSync(path, "utf8")
    .split(/\r\n|\r|\n/)
    .forEach((line, i) => {
      try {
        sums.add(line);
      } catch (err) {
        throw new Error(`${path}:${i + 1}: ${(err as Error).message}`);
      }
    });
  return sums.result();
}
