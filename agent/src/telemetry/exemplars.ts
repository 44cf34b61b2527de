// Exemplars: for each bucket of a latency histogram series, one request (or hold) whose span was exported, so that a
// P99 spike in Prometheus or Grafana opens that request's trace. The span pipeline (spans.ts) offers the span it has
// just written, with the ids the span itself carries, and tells when each export has settled; only spans whose export
// succeeded become exemplars: an exemplar never points at a span that was dropped, failed or not sampled.
import type { SpanContext } from "@opentelemetry/api";

/** One exemplar as both ways out show it (OpenMetrics text, OTLP). */
export interface Exemplar {
  traceId: string;
  spanId: string;
  /** the observed value, s */
  value: number;
  /** when it was observed (the span's end), Unix epoch ns */
  timeNs: bigint;
}

/** An exemplar and the bucket it belongs to (index into the histogram's counts: the last is +Inf). */
export interface BucketExemplar extends Exemplar {
  bucket: number;
}

/** The histograms with exemplars, and what offers them. */
export type ExemplarMetric = "request_latency" | "hold_time";

/**
 * What the span pipeline tells the metrics (AgentMetrics): each request or hold span as it is written, at position
 * `at` in the pipeline's order of spans, and, after each export, that the spans at positions [from, to) were exported
 * (ok) or lost. Positions are the pipeline's own count of spans written, in the order they are exported.
 */
export interface ExemplarSink<M> {
  /** whether a span of this value would be taken now (asked before it is written, so it can say so) */
  wants(meta: M, metric: ExemplarMetric, reason: string | undefined, valueNs: number): boolean;
  offer(meta: M, metric: ExemplarMetric, reason: string | undefined, valueNs: number, endNs: bigint, ctx: SpanContext, at: number): void;
  settled(from: number, to: number, ok: boolean): void;
}

type Pending = Exemplar & { at: number };

/**
 * One series' exemplars: per bucket, the latest whose span was exported, and one waiting for its export to settle.
 * Memory is two exemplars per bucket at most, whatever the rate. The waiting one is not replaced until its export
 * settles: replacing it at every offer would, under steady load, always hold a span newer than the last export and
 * never confirm one. So the exemplar a scrape shows is the latest exported when the bucket's previous one settled:
 * at most about one export interval older than the newest (docs/metrics.md, "Exemplars").
 */
export class ExemplarReservoir {
  private readonly kept: (Exemplar | undefined)[];
  private readonly waiting: (Pending | undefined)[];
  /** buckets with a waiting exemplar, so that settle() need not look at the others */
  private waitingCount = 0;

  /** `boundsNs`: the histogram's bucket upper bounds, inclusive, in ns (the bucket after the last is +Inf) */
  constructor(private readonly boundsNs: Float64Array) {
    this.kept = new Array<Exemplar | undefined>(boundsNs.length + 1).fill(undefined);
    this.waiting = new Array<Pending | undefined>(boundsNs.length + 1).fill(undefined);
  }

  /** The bucket `ns` falls in, as the histogram counts it (upper bounds inclusive). */
  bucketOf(ns: number): number {
    let i = 0;
    const bounds = this.boundsNs;
    while (i < bounds.length && ns > bounds[i]) i++;
    return i;
  }

  /** Whether offer() would take a value now: its bucket has no exemplar waiting. */
  wants(valueNs: number): boolean {
    return this.waiting[this.bucketOf(valueNs)] === undefined;
  }

  offer(valueNs: number, endNs: bigint, ctx: SpanContext, at: number): void {
    const b = this.bucketOf(valueNs);
    if (this.waiting[b] !== undefined) return;
    this.waiting[b] = { traceId: ctx.traceId, spanId: ctx.spanId, value: valueNs / 1e9, timeNs: endNs, at };
    this.waitingCount++;
  }

  /** The spans at positions [from, to) were exported (ok) or lost: their waiting exemplars are kept, or forgotten. */
  settle(from: number, to: number, ok: boolean): void {
    if (this.waitingCount === 0) return;
    for (let b = 0; b < this.waiting.length; b++) {
      const w = this.waiting[b];
      // a position before `from` was in an export that settled before this reservoir heard of it: never the case
      // while exports settle in order, and then lost rather than kept
      if (w === undefined || w.at >= to) continue;
      if (ok && w.at >= from) this.kept[b] = { traceId: w.traceId, spanId: w.spanId, value: w.value, timeNs: w.timeNs };
      this.waiting[b] = undefined;
      this.waitingCount--;
    }
  }

  /** The exemplars to show, one per bucket at most, in bucket order. */
  exemplars(): BucketExemplar[] {
    const out: BucketExemplar[] = [];
    this.kept.forEach((e, bucket) => {
      if (e) out.push({ ...e, bucket });
    });
    return out;
  }
}
