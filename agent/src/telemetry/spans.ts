// Request windows and scheduler holds as OpenTelemetry spans: a span per request window that the span policy keeps
// (spanDecision), launch child spans only for slow windows (tail-based) and a small random sample, a hold span with a
// link to the window that caused it. Spans are built here as ReadableSpans, not through a Tracer, because their ids, times and resources come from
// the shim's records (other processes, the past) rather than from the agent's own clock and context. They leave through
// a bounded queue drained in batches, so a slow or dead collector costs dropped spans, never a blocked caller.
import { hash } from "node:crypto";
import { open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";

import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type Link, type SpanContext, type SpanStatus } from "@opentelemetry/api";
import { ExportResultCode, TraceState, type ExportResult, type InstrumentationScope } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import type { OTLPExporterNodeConfigBase } from "@opentelemetry/otlp-exporter-base";
import { createOtlpHttpExportDelegate, convertLegacyHttpOptions } from "@opentelemetry/otlp-exporter-base/node-http";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

import { deviceNs, epochNs, type Hold, type Launch, type ProcessMeta, type RequestId, type RequestWindow, type TraceContext, type TracedRequest } from "../model.js";
import type { ExemplarMetric, ExemplarSink } from "./exemplars.js";
import { exporterOptions, type OtlpExport } from "./otel-env.js";
import { exportRequest, ProtoWriter, resourceBytes, scopeBytes, span as writeSpan, type EncodedSpans } from "./otlp-proto.js";
import { agentVersion } from "./own-process.js";

const scope: InstrumentationScope = { name: "tailguard", version: agentVersion };

/** Why a window's launches were attached as child spans: over the SLO, over the process's running P99, or sampled. */
export type SampleReason = "slo" | "slow" | "random";

/**
 * Why a request window became a span (`tailguard.span.reason`): a request over the SLO; its process runs at or above
 * normal priority (requests); it was held; it caused a hold whose span is exported (so that the hold's link resolves);
 * it was in the `batchSample` share; or, with mode "all", none of these. "traced": its work ran under an application's
 * trace context that the application samples (docs/tracing.md): the application decided to trace it.
 */
export type SpanReason = "slo" | "priority" | "traced" | "held" | "cause" | "sampled" | "all";

/** Which request windows become spans: `--spans` and `--batch-sample`, and `--slo-ms`. */
export interface SpanPolicy {
  /** "all": every window; "policy": only those spanDecision gives a reason */
  mode: "all" | "policy";
  /** request windows (at or above normal priority) longer than this breached the SLO (ns); null: no SLO */
  sloNs: number | null;
  /** share of the other windows (batch work, below normal priority) that become spans anyway, 0 to 1 */
  batchSample: number;
}

export const SPAN_MODES = ["policy", "all"] as const;
export const DEFAULT_BATCH_SAMPLE = 0.01;

/** Priority.NORMAL (ingest/native.ts): processes at or above it serve requests, those below are batch work. */
const NORMAL_PRIORITY = 0;

/**
 * Whether a request window becomes a span, and why (null: it does not). The first reason that applies, in this order:
 * a request over the SLO, a process at or above normal priority, traced (its work ran under a trace context the
 * application samples), held (has holds), `caused` (it caused a hold that is exported), sampled; with mode "all" every window is kept, "all" where none of those applies. The SLO is the
 * requests': a batch window (below normal priority) is never over it, or every window of a batch job longer than the
 * SLO would be an error and a span (issue 17: 304 k spans in 15 s for the demo with --slo-ms 3). Sampling is
 * deterministic per window (a hash of pid, clock anchor and window number), so a rerun over the same recording keeps the same windows.
 */
export function spanDecision(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic" | "priority">, w: Pick<RequestWindow, "seq" | "durNs" | "holds" | "contexts">, policy: SpanPolicy, caused = false): SpanReason | null {
  if (meta.priority >= NORMAL_PRIORITY) return overSlo(meta, w, policy.sloNs) ? "slo" : "priority";
  if (w.contexts?.some((c) => c.context?.sampled)) return "traced";
  if (w.holds.length > 0) return "held";
  if (caused) return "cause";
  if (windowSampled(meta, w.seq, policy.batchSample)) return "sampled";
  return policy.mode === "all" ? "all" : null;
}

/**
 * Whether a request with a trace context (TracedRequest, made at its end) becomes a span, and why: as spanDecision for
 * a window, with the request's own duration and holds (`cause` does not apply: a hold links to a request span only
 * where that request is known, and a request the application samples is always kept). Sampling hashes (pid, clock
 * anchor, the request's thread and begin).
 */
export function requestSpanDecision(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic" | "priority">, r: Pick<TracedRequest, "id" | "durNs" | "holdCount" | "context">, policy: SpanPolicy): SpanReason | null {
  if (meta.priority >= NORMAL_PRIORITY) return overSlo(meta, r, policy.sloNs) ? "slo" : "priority";
  if (r.context.sampled) return "traced";
  if (r.holdCount > 0) return "held";
  if (windowSampled(meta, (r.id.tid ^ Number(BigInt.asUintN(32, r.id.t))) >>> 0, policy.batchSample)) return "sampled";
  return policy.mode === "all" ? "all" : null;
}

/** Whether a window is a request (at or above normal priority) longer than the SLO. */
export function overSlo(meta: Pick<ProcessMeta, "priority">, w: Pick<RequestWindow, "durNs">, sloNs: number | null): boolean {
  return sloNs != null && meta.priority >= NORMAL_PRIORITY && w.durNs > sloNs;
}

/** Whether window `seq` of a process falls in the `ratio` share: fmix32 over (pid, clock anchor, seq), compared with
 *  ratio × 2^32. Uniform enough for sampling, and far cheaper than the SHA-256 of the window's span id. */
export function windowSampled(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, seq: number, ratio: number): boolean {
  if (ratio <= 0) return false;
  if (ratio >= 1) return true;
  const anchor = Number(BigInt.asUintN(32, meta.anchorMonotonic));
  const h = fmix32(fmix32(fmix32(meta.pid ^ 0x9e3779b9) ^ anchor) ^ seq);
  return h < ratio * 2 ** 32;
}

/** What the pipeline decided of a window: its span (null: none) and its launch spans (null: none). */
export interface WindowDecision {
  span: SpanReason | null;
  launches: SampleReason | null;
}

/** Windows remembered at most, as not exported (a later hold may name one as its cause) or as named by an exported
 *  hold before they ended: some seconds of windows at the demo's rates; a link older than that may not resolve. */
const CAUSE_MEMORY = 8192;

/**
 * An exporter of OTLP/protobuf trace requests that the pipeline writes itself (otlp-proto.ts) as windows arrive, so that
 * what waits for export is bytes rather than objects: OtlpProtobufSpanExporter. Any other SpanExporter gets ReadableSpans
 * built at export time.
 */
export interface EncodedSpanExporter {
  readonly encoded: true;
  /** sends one ExportTraceServiceRequest holding `spans` spans */
  export(request: Uint8Array, spans: number, done: (result: ExportResult) => void): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

function isEncoded(e: SpanExporter | EncodedSpanExporter): e is EncodedSpanExporter {
  return (e as EncodedSpanExporter).encoded === true;
}

export interface SpanOptions {
  exporter: SpanExporter | EncodedSpanExporter;
  /** the process's running P99 request latency (ns), null while it has too few windows to say; called once per window,
   *  so it should return a cached value */
  slowThresholdNs?: (meta: ProcessMeta) => number | null;
  /** request windows (at or above normal priority) longer than this breached the SLO: a span with status ERROR, and
   *  launch spans */
  sloMs?: number;
  /** share of the remaining windows that get launch spans anyway (default 0.01) */
  sampleRate?: number;
  /** which windows become spans (default: mode "policy", sloMs, batchSample 0.01) */
  spans?: SpanPolicy["mode"];
  batchSample?: number;
  /** launch spans per window at most (default 256) */
  maxLaunchSpans?: number;
  /** the process a hold names as its cause, so the hold can link to that process's window span */
  processByPid?: (pid: number) => ProcessMeta | undefined;
  /** spans waiting for export at most; more are dropped and counted (default 20000) */
  queueLimit?: number;
  /** spans per export call at most (default 512) */
  batchSize?: number;
  /** how long a partial batch waits for more spans before it is exported (default 1000 ms) */
  exportDelayMs?: number;
  /** an export that has not answered by then counts as failed, and the next one may start (default 30000 ms) */
  exportTimeoutMs?: number;
  /** told of each request and hold span written, and of each export's outcome: the histograms' exemplars
   *  (exemplars.ts) */
  exemplars?: ExemplarSink<ProcessMeta>;
  /** the requests with a trace context of process `pid` open at time t (ingest/traced.ts): a hold it caused then links
   *  to the request span when there is exactly one */
  causeRequests?: (pid: number, t: bigint) => CauseRequest[];
}

/** A request with a trace context of another process, as a hold's link names it. */
export type CauseRequest = { id: RequestId; traceId: string; sampled: boolean };

/** Span counts since the pipeline started: each span given to it (by window() and hold()) is exactly one of these, or
 *  in the one export in flight. */
export interface SpanStats {
  exported: number;
  /** did not fit in the queue, or arrived after shutdown */
  dropped: number;
  /** in an export that failed or timed out */
  failed: number;
  /** waiting for export */
  queued: number;
}

const NS_PER_S = 1_000_000_000n;

/** Epoch ns → HrTime, in bigint so that times past 2^53 ns (all of them, since 1970 + 104 days) stay exact. */
export function hrTimeOf(ns: bigint): HrTime {
  return [Number(ns / NS_PER_S), Number(ns % NS_PER_S)];
}

function hrDuration(ns: number): HrTime {
  return [Math.floor(ns / 1e9), ns % 1e9];
}

/** 32 bytes of SHA-256 as hex: trace id (16 bytes), span id (8), and 8 more that seed the ids of the trace's children. */
function digest(key: string): string {
  return hash("sha256", key, "hex");
}

function contextOf(hex: string): SpanContext {
  return { traceId: hex.slice(0, 32), spanId: hex.slice(32, 48), traceFlags: TraceFlags.SAMPLED };
}

/**
 * The span context of a process's request window, derived rather than random so that anyone can name it without
 * having seen it: a hold in another process links to it, possibly before the window has ended and its span exists.
 * SHA-256 of `tailguard/window/<pid>/<anchorMonotonic>/<seq>`: bytes 0–15 are the trace id, 16–23 the span id. The
 * clock anchor tells apart two processes that had the same pid.
 */
export function windowSpanContext(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, seq: number): SpanContext {
  return contextOf(digest(`tailguard/window/${meta.pid}/${meta.anchorMonotonic}/${seq}`));
}

/** A hold outside any window is a trace of its own: `tailguard/hold/<pid>/<anchorMonotonic>/<t>`, as for windows. */
export function holdSpanContext(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, t: bigint): SpanContext {
  return contextOf(digest(`tailguard/hold/${meta.pid}/${meta.anchorMonotonic}/${t}`));
}

/** murmur3's 32-bit finaliser: a bijection, so distinct inputs give distinct outputs. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Span id of child `k` of a window (holds: 0x80000000 | i+1, launches: i+1), from the window digest's bytes 24–31:
 * each 32-bit half xor k through fmix32. Cheaper than a hash per launch, and distinct k give distinct ids.
 */
function childSpanId(windowDigest: string, k: number): string {
  const hi = fmix32(parseInt(windowDigest.slice(48, 56), 16) ^ k);
  const lo = fmix32(parseInt(windowDigest.slice(56, 64), 16) ^ k);
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** The child id spaces of a window's spans (childSpanId's k), one table so that no two kinds share one: launches
 *  1..launchLimit, holds HOLD_CHILD | i+1, NVTX ranges RANGE_CHILD | i+1, joined request spans CONTEXT_CHILD | k+1,
 *  device-time spans DEVICE_CHILD | 1 (gpu.queue), 2 (gpu.exec). */
const HOLD_CHILD = 0x80000000;
/** the request span of a window's k-th trace context (docs/tracing.md): 0x20000000 | k+1 */
const CONTEXT_CHILD = 0x20000000;
const DEVICE_CHILD = 0x10000000;

/** The span context of the request span a window's work under an application's trace context gets: in that trace,
 *  with a span id derived from the window's digest as its other children's are. */
function joinedContext(windowDigest: string, c: TraceContext, k: number): SpanContext {
  const ctx: SpanContext = {
    traceId: c.traceId,
    spanId: childSpanId(windowDigest, (CONTEXT_CHILD | (k + 1)) >>> 0),
    traceFlags: c.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
  };
  if (c.traceState) ctx.traceState = new TraceState(c.traceState);
  return ctx;
}

/**
 * The span context of the span of a request with a trace context (TracedRequest): in the application's trace, with a
 * span id derived from what the agent knows at the request's begin, SHA-256 of
 * `tailguard/request/<pid>/<anchorMonotonic>/<tid>/<begin>/<depth>` (bytes 16–23), so that a window's device spans
 * and another process's holds can name it before it has ended. Its children's ids come from bytes 24–31, as a
 * window's do.
 */
export function requestSpanContext(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, r: { id: RequestId; traceId: string; sampled: boolean; traceState?: string }): SpanContext {
  return requestContextOf(requestDigest(meta, r.id), r);
}

function requestDigest(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, id: RequestId): string {
  return digest(`tailguard/request/${meta.pid}/${meta.anchorMonotonic}/${id.tid}/${id.t}/${id.depth}`);
}

function requestContextOf(d: string, r: { traceId: string; sampled: boolean; traceState?: string }): SpanContext {
  const ctx: SpanContext = { traceId: r.traceId, spanId: d.slice(32, 48), traceFlags: r.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE };
  if (r.traceState) ctx.traceState = new TraceState(r.traceState);
  return ctx;
}

/** The span of each of a window's trace contexts: a thread request's own (made at its end), else the joined span the
 *  window makes for that context, else (no context) the window's. */
function contextOwns(meta: ProcessMeta, w: RequestWindow, d: string, ctx: SpanContext): SpanContext[] {
  return w.contexts!.map((c, k) =>
    c.request && c.context ? requestSpanContext(meta, { id: c.request, ...c.context }) : c.context ? joinedContext(d, c.context, k) : ctx);
}

/** The spans windowSpans makes of a window with `launchSpans` launch spans: exactly, or the queue's count drifts. */
function windowSpanCount(w: RequestWindow, launchSpans: number): number {
  const device = w.device ? 2 : 0;
  if (!w.contexts) return 1 + w.holds.length + launchSpans + (w.ranges?.length ?? 0) + device;
  let n = device;
  for (const c of w.contexts) {
    if (c.request) continue; // the request's own spans, made at its end
    n += 1 + c.holds.length + c.ranges.length;
    for (const i of c.launches) if (i < launchSpans) n++;
  }
  return n;
}

/** The application's span a joined request span is the child of: remote, in another process. */
function appParent(c: TraceContext, own: SpanContext): SpanContext {
  return { traceId: c.traceId, spanId: c.parentSpanId, traceFlags: own.traceFlags, isRemote: true };
}

const RANGE_CHILD = 0x40000000;
/** a request's sync waits (its launch spans' company): SYNC_CHILD | i+1 */
const SYNC_CHILD = 0x08000000;

/** The spans requestSpans makes of a request with `launchSpans` launch spans (syncs go with launch spans). */
function requestSpanCount(r: TracedRequest, launchSpans: number, syncs: boolean): number {
  return 1 + r.holds.length + r.ranges.length + launchSpans + (syncs ? r.syncs.length : 0);
}

/**
 * A window's NVTX ranges (w.ranges) as its child spans, named by their messages and nested as pushed (a range opened
 * inside a push range of its thread is that span's child; the others the window's). Returns the parent of each launch
 * span: the innermost range that contains the launch (a push range of the launching thread, or a start/end range of
 * any thread), else the window. Where the window's work ran under trace contexts, `ownOf(i)` is the request span of
 * range i's context (undefined: the range is not shown in this window): ranges and launches nest only within one
 * trace, else under their own request span.
 */
function rangeSpans(meta: ProcessMeta, w: Pick<RequestWindow, "ranges">, d: string, ctx: SpanContext, emit: Emit, ownOf: (i: number) => SpanContext | undefined = () => ctx): (l: Launch, own?: SpanContext) => SpanContext {
  const ranges = w.ranges ?? [];
  const contexts = ranges.map((_, i) => {
    const own = ownOf(i);
    return own ? { ...own, spanId: childSpanId(d, (RANGE_CHILD | (i + 1)) >>> 0) } : null;
  });
  ranges.forEach((r, i) => {
    const own = contexts[i];
    if (!own) return;
    const attributes: Attributes = { "tailguard.nvtx.op": r.op, "thread.id": r.tid };
    if (r.domain !== null) attributes["nvtx.domain"] = r.domain;
    if (r.category !== 0) attributes["nvtx.category"] = r.category;
    if (r.open) attributes["tailguard.nvtx.open"] = true;
    const up = r.parent >= 0 ? contexts[r.parent] : null;
    const parent = up && up.traceId === own.traceId ? up : ownOf(i)!;
    emit(meta, r.name || "(nvtx range)", own, parent, epochNs(meta, r.t), r.durNs, attributes, []);
  });
  if (ranges.length === 0) return (_l, own = ctx) => own;
  return (l, own = ctx) => {
    let best = -1;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      if (r.op === "mark" || (r.op === "push" && r.tid !== l.tid) || contexts[i]?.traceId !== own.traceId) continue;
      if (l.t < r.t || l.t > r.t + BigInt(r.durNs)) continue;
      if (best < 0 || r.t >= ranges[best].t) best = i;
    }
    return best < 0 ? own : contexts[best]!;
  };
}


/** A window's device times (docs/gpu-time.md) as two children of its request span: `gpu.queue`, from its first work's
 *  submission to the GPU starting it, and `gpu.exec`, from then to the GPU finishing its last work. The queue span
 *  names the process it waited behind, when one had work in flight then, and links to that window's span. */
function deviceSpans(meta: ProcessMeta, w: RequestWindow, windowDigest: string, ctx: SpanContext, emit: Emit,
  processByPid: (pid: number) => ProcessMeta | undefined): void {
  const dv = w.device;
  if (!dv) return;
  const submitted = epochNs(meta, dv.submitted);
  const attributes: Attributes = {
    "tailguard.gpu.queue_ns": dv.queueNs,
    "tailguard.gpu.exec_ns": dv.gpuNs,
    "tailguard.gpu.completion_ns": dv.completionNs,
  };
  const queueAttributes: Attributes = { ...attributes };
  const links: Link[] = [];
  if (dv.behind) {
    queueAttributes["tailguard.gpu.queue.behind.pid"] = dv.behind.pid;
    queueAttributes["tailguard.gpu.queue.behind.priority"] = dv.behind.priority;
    queueAttributes["tailguard.gpu.queue.behind.window"] = dv.behind.window;
    queueAttributes["tailguard.gpu.queue.behind_ns"] = dv.behind.ns;
    const other = processByPid(dv.behind.pid);
    if (other) links.push({ context: windowSpanContext(other, dv.behind.window), attributes: { "tailguard.link": "gpu.queue.behind" } });
  }
  emit(meta, "gpu.queue", { ...ctx, spanId: childSpanId(windowDigest, DEVICE_CHILD | 1) }, ctx, submitted, dv.queueNs, queueAttributes, links);
  emit(meta, "gpu.exec", { ...ctx, spanId: childSpanId(windowDigest, DEVICE_CHILD | 2) }, ctx, submitted + BigInt(dv.queueNs),
    dv.gpuNs, attributes, []);
}

/** The resource of a GPU process: who it is (service, command, pod), where it runs (host, GPU), its priority. */
export function processResource(meta: ProcessMeta): Resource {
  const attrs: Attributes = {
    ...meta.resource,
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES, as in the SDKs
    "service.name": meta.serviceName ?? meta.resource["service.name"] ?? (meta.cmdline[0] ? path.basename(meta.cmdline[0]) : "unknown_service"),
    "process.pid": meta.pid,
    "process.parent_pid": meta.ppid,
    "process.command_args": meta.cmdline,
    "host.name": hostname(),
    "tailguard.priority": meta.priority,
  };
  if (meta.gpu) {
    attrs["tailguard.gpu.uuid"] = meta.gpu.uuid;
    attrs["tailguard.gpu.name"] = meta.gpu.name;
    if (meta.gpu.pci) attrs["tailguard.gpu.pci"] = meta.gpu.pci;
  }
  return resourceFromAttributes(attrs);
}

/** What window(), request() and hold() queue: the records themselves, turned into spans only when a batch is exported,
 *  or (for an EncodedSpanExporter) the spans already written as protobuf, bytes [start, end) of the pipeline's pending
 *  buffer. */
type Work =
  | { meta: ProcessMeta; window: RequestWindow; decision: WindowDecision; spans: number }
  | { meta: ProcessMeta; request: TracedRequest; decision: WindowDecision; spans: number }
  | { meta: ProcessMeta; hold: Hold; spans: 1 }
  | { meta: ProcessMeta; start: number; end: number; spans: number };

/** Where the span-making functions put a span: built as a ReadableSpan, or written as protobuf. */
type Emit = (
  meta: ProcessMeta,
  name: string,
  ctx: SpanContext,
  parent: SpanContext | undefined,
  startNs: bigint,
  durNs: number,
  attributes: Attributes,
  links: Link[],
  status?: SpanStatus,
) => void;

/** The key of a process's window in the pipeline's memory of windows: what windowSpanContext hashes. */
function windowKey(meta: Pick<ProcessMeta, "pid" | "anchorMonotonic">, seq: number): string {
  return `${meta.pid}/${meta.anchorMonotonic}/${seq}`;
}

/** Adds to a map kept to CAUSE_MEMORY entries by forgetting the oldest. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > CAUSE_MEMORY) map.delete(map.keys().next().value!);
}

const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };

/** ms with at most 3 decimals, for people */
function msText(ns: number): string {
  return String(Math.round(ns / 1e3) / 1e3);
}

export class SpanPipeline {
  private readonly exporter: SpanExporter | EncodedSpanExporter;
  private readonly slowThresholdNs?: (meta: ProcessMeta) => number | null;
  private readonly sloNs: number | null;
  private readonly sampleRate: number;
  private readonly policy: SpanPolicy;
  private readonly maxLaunchSpans: number;
  private readonly processByPid: (pid: number) => ProcessMeta | undefined;
  private readonly queueLimit: number;
  private readonly batchSize: number;
  private readonly exportDelayMs: number;
  private readonly exportTimeoutMs: number;
  private readonly exemplars: ExemplarSink<ProcessMeta> | null;
  private readonly causeRequests: (pid: number, t: bigint) => CauseRequest[];
  /** spans written so far (emitted), and taken for export: a span's position in the one order spans are exported in */
  private emitted = 0;
  private taken = 0;

  /** queued work from `head` on; spans already built for export wait in `built` */
  private work: Work[] = [];
  private head = 0;
  private built: ReadableSpan[] = [];
  private queued = 0;
  private exported = 0;
  private dropped = 0;
  private failed = 0;
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private closed = false;
  /** one Resource object per process: the OTLP serializers group spans by resource identity */
  private resources = new Map<number, { meta: ProcessMeta; resource: Resource; bytes?: Buffer }>();
  /** windows the policy left out, by windowKey, the oldest first (at most CAUSE_MEMORY) */
  private readonly unexported = new Map<string, { meta: ProcessMeta; window: RequestWindow }>();
  /** the request spans of windows whose work ran under application trace contexts, by windowKey (at most
   *  CAUSE_MEMORY): a hold they caused links to them, in the application's traces */
  private readonly joined = new Map<string, SpanContext[]>();
  /** windows named by an exported hold before they ended (at most CAUSE_MEMORY) */
  private readonly causeWanted = new Map<string, true>();
  /** EncodedSpanExporter: the queued windows' spans, written as ScopeSpans.spans fields; a second writer for requests */
  private readonly pending: ProtoWriter | null;
  /** bytes taken off the front of `pending` so far: a queued item's [start, end) less this is where its bytes are */
  private pendingShift = 0;
  private readonly requestWriter: ProtoWriter | null;
  private readonly scopeBytes = scopeBytes(scope.name, scope.version ?? "");
  private readonly emitReadable: (out: ReadableSpan[]) => Emit;
  private readonly emitEncoded: Emit;

  constructor(opts: SpanOptions) {
    this.exporter = opts.exporter;
    this.slowThresholdNs = opts.slowThresholdNs;
    this.sloNs = opts.sloMs != null ? opts.sloMs * 1e6 : null;
    this.sampleRate = opts.sampleRate ?? 0.01;
    this.policy = { mode: opts.spans ?? "policy", sloNs: this.sloNs, batchSample: opts.batchSample ?? DEFAULT_BATCH_SAMPLE };
    this.maxLaunchSpans = opts.maxLaunchSpans ?? 256;
    this.processByPid = opts.processByPid ?? (() => undefined);
    this.queueLimit = opts.queueLimit ?? 20_000;
    this.batchSize = opts.batchSize ?? 512;
    this.exportDelayMs = opts.exportDelayMs ?? 1000;
    this.exportTimeoutMs = opts.exportTimeoutMs ?? 30_000;
    this.exemplars = opts.exemplars ?? null;
    this.causeRequests = opts.causeRequests ?? (() => []);
    const encoded = isEncoded(this.exporter);
    this.pending = encoded ? new ProtoWriter(256 * 1024) : null;
    this.requestWriter = encoded ? new ProtoWriter(256 * 1024) : null;
    this.emitReadable = (out) => (meta, name, ctx, parent, startNs, durNs, attributes, links, status) => {
      this.emitted++;
      out.push(this.span(meta, name, ctx, parent, startNs, durNs, attributes, links, status));
    };
    this.emitEncoded = (meta, name, ctx, parent, startNs, durNs, attributes, links, status) => {
      this.emitted++;
      writeSpan(this.pending!, 2, name, ctx, parent, startNs, startNs + BigInt(durNs), attributes, links, status);
    };
  }

  /** An ended request window (with its holds); `decided`: what decide() said of it already (the agent asks first,
   *  so that it builds launch objects only for windows that show them). Only decides and queues: the spans are built
   *  at export. The window and meta objects must not change afterwards. */
  window(meta: ProcessMeta, w: RequestWindow, decided?: WindowDecision): void {
    const decision = decided ?? this.decide(meta, w);
    const key = windowKey(meta, w.seq);
    if (w.contexts) {
      const d = digest(`tailguard/window/${key}`);
      remember(this.joined, key, contextOwns(meta, w, d, contextOf(d)));
    }
    this.causeWanted.delete(key);
    if (decision.span === null) {
      // kept without its launches: a hold exported later may name it as its cause, and then it is exported
      remember(this.unexported, key, { meta, window: w.launches.length === 0 ? w : { ...w, launches: [] } });
      return;
    }
    this.queueWindow(meta, w, decision);
    // the windows that caused its holds: their spans too, so that the holds' links resolve (those not yet ended are
    // exported when they end)
    for (const h of w.holds) {
      if (h.causePid == null || h.causeWindow == null) continue;
      const cause = this.processByPid(h.causePid);
      if (!cause) continue;
      const causeKey = windowKey(cause, h.causeWindow);
      const waiting = this.unexported.get(causeKey);
      if (waiting) {
        this.unexported.delete(causeKey);
        this.queueWindow(waiting.meta, waiting.window, { span: "cause", launches: null });
      } else remember(this.causeWanted, causeKey, true);
    }
  }

  private queueWindow(meta: ProcessMeta, w: RequestWindow, decision: WindowDecision): void {
    const launchSpans = decision.launches ? Math.min(w.launches.length, this.maxLaunchSpans) : 0;
    const spans = windowSpanCount(w, launchSpans);
    if (spans === 0) return; // all of its work was thread requests', whose spans are made at their ends
    if (this.pending) {
      if (this.admit(spans)) this.enqueueEncoded(meta, spans, () => this.windowSpans(meta, w, decision, this.emitEncoded));
      return;
    }
    // a window waiting in the queue without launch spans must not keep its launches alive (at 50k windows/s they
    // would outlive the young generation and be promoted: the agent's memory, not its speed, is the limit there)
    const kept = decision.launches || w.launches.length === 0 ? w : { ...w, launches: [] };
    if (this.admit(spans)) this.enqueue({ meta, window: kept, decision, spans });
  }

  /** An ended request with a trace context (ingest/traced.ts): its request span, in the application's trace under the
   *  application's span, with its holds, NVTX ranges and (slow or sampled requests) launches and sync waits.
   *  `decided`: what decideRequest() said of it already. */
  request(meta: ProcessMeta, r: TracedRequest, decided?: WindowDecision): void {
    const decision = decided ?? this.decideRequest(meta, r);
    if (decision.span === null) return;
    const launchSpans = decision.launches ? Math.min(r.launches.length, this.maxLaunchSpans) : 0;
    const spans = requestSpanCount(r, launchSpans, decision.launches !== null);
    if (!this.admit(spans)) return;
    if (this.pending) this.enqueueEncoded(meta, spans, () => this.requestSpans(meta, r, decision, this.emitEncoded));
    else this.enqueue({ meta, request: decision.launches || r.launches.length === 0 ? r : { ...r, launches: [] }, decision, spans });
  }

  /** Whether a request becomes a span (requestSpanDecision), and if so whether it gets launch spans (sampleReason). */
  decideRequest(meta: ProcessMeta, r: TracedRequest): WindowDecision {
    const span = requestSpanDecision(meta, r, this.policy);
    return { span, launches: span === null ? null : this.sampleReason(meta, r) };
  }

  /** Whether a window becomes a span (spanDecision), and if so whether it gets launch spans (sampleReason). */
  decide(meta: ProcessMeta, w: RequestWindow): WindowDecision {
    const span = spanDecision(meta, w, this.policy, this.causeWanted.has(windowKey(meta, w.seq)));
    return { span, launches: span === null ? null : this.sampleReason(meta, w) };
  }

  /** A hold that no window of its process contains. */
  hold(meta: ProcessMeta, h: Hold): void {
    if (!this.admit(1)) return;
    if (this.pending)
      this.enqueueEncoded(meta, 1, () => this.holdSpan(meta, h, holdSpanContext(meta, h.t), undefined, this.emitEncoded));
    else this.enqueue({ meta, hold: h, spans: 1 });
  }

  /** EncodedSpanExporter: queues what `write` writes to the pending buffer now. */
  private enqueueEncoded(meta: ProcessMeta, spans: number, write: () => void): void {
    const start = this.pendingShift + this.pending!.pos;
    write();
    this.enqueue({ meta, start, end: this.pendingShift + this.pending!.pos, spans });
  }

  stats(): SpanStats {
    return { exported: this.exported, dropped: this.dropped, failed: this.failed, queued: this.queued };
  }

  /** Exports everything queued so far, then flushes the exporter. */
  async flush(): Promise<void> {
    while (this.queued > 0 || this.inFlight) await this.exportNext();
    await this.exporter.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.exporter.shutdown();
  }

  /** Whether a window gets launch spans, and why: a request over the SLO, over the process's running P99, or sampled.
   *  Uses only the window's duration and the process's priority. */
  sampleReason(meta: ProcessMeta, w: Pick<RequestWindow, "durNs">): SampleReason | null {
    if (overSlo(meta, w, this.sloNs)) return "slo";
    const threshold = this.slowThresholdNs?.(meta);
    if (threshold != null && w.durNs > threshold) return "slow";
    if (this.sampleRate > 0 && Math.random() < this.sampleRate) return "random";
    return null;
  }

  /** All of a window's spans or none: a trace with holds but no window span would be worse than no trace. */
  private admit(spans: number): boolean {
    if (this.closed || this.queued + spans > this.queueLimit) {
      this.dropped += spans;
      return false;
    }
    return true;
  }

  private enqueue(item: Work): void {
    this.work.push(item);
    this.queued += item.spans;
    this.schedule(this.queued >= this.batchSize ? 0 : this.exportDelayMs);
  }

  /** Arms the export timer unless it is already due sooner, or an export is in flight (its end re-arms it). */
  private schedule(delayMs: number): void {
    if (this.inFlight) return;
    const due = Date.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.exportNext();
    }, delayMs);
    // spans still queued must not keep the agent alive: shutdown() flushes them
    this.timer.unref();
  }

  /** Starts the next export, or joins the one in flight: at most one export runs at a time. */
  private exportNext(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const batch = this.pending ? this.nextRequest() : this.nextBatch();
    // only the count outlives the export call: spans kept until the response comes back would outlive the young
    // generation and be promoted (at 50k spans/s, most of the agent's memory)
    const count = Array.isArray(batch) ? batch.length : batch.spans;
    if (count === 0) return Promise.resolve();
    // batches leave in the order their spans were written: this one holds positions [from, from + count)
    const from = this.taken;
    this.taken += count;
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.inFlight = done;
    let answered = false;
    const finish = (ok: boolean) => {
      if (answered) return;
      answered = true;
      clearTimeout(timeout);
      if (ok) this.exported += count;
      else this.failed += count;
      this.exemplars?.settled(from, from + count, ok);
      this.inFlight = null;
      settle();
      if (this.queued > 0) this.schedule(this.queued >= this.batchSize ? 0 : this.exportDelayMs);
    };
    const timeout = setTimeout(() => finish(false), this.exportTimeoutMs);
    timeout.unref();
    const answer = (r: ExportResult) => finish(r.code === ExportResultCode.SUCCESS);
    try {
      if (isEncoded(this.exporter)) this.exporter.export((batch as { request: Uint8Array }).request, count, answer);
      else this.exporter.export(batch as ReadableSpan[], answer);
    } catch {
      finish(false);
    }
    return done;
  }

  /** EncodedSpanExporter: a request of whole queued windows, up to batchSize spans (at least one window). */
  private nextRequest(): { request: Uint8Array; spans: number } {
    const groups = new Map<ProcessMeta, EncodedSpans>();
    const pending = this.pending!;
    let spans = 0;
    let end = 0;
    while (this.head < this.work.length) {
      const item = this.work[this.head] as { meta: ProcessMeta; start: number; end: number; spans: number };
      if (spans > 0 && spans + item.spans > this.batchSize) break;
      this.head++;
      spans += item.spans;
      end = item.end;
      let g = groups.get(item.meta);
      if (!g) groups.set(item.meta, (g = { resource: this.resourceBytesOf(item.meta), spans: [] }));
      g.spans.push(pending.buf.subarray(item.start - this.pendingShift, item.end - this.pendingShift));
    }
    if (spans === 0) return { request: new Uint8Array(0), spans: 0 };
    const request = exportRequest(groups.values(), this.scopeBytes, this.requestWriter!);
    // what was taken leaves the pending buffer once it is more than half of it (the rest moves to its front): moving
    // the whole queue after every export would copy it again and again
    const used = end - this.pendingShift;
    if (used * 2 > pending.pos) {
      pending.buf.copyWithin(0, used, pending.pos);
      pending.pos -= used;
      this.pendingShift = end;
    }
    this.dropConsumedWork();
    this.queued -= spans;
    return { request, spans };
  }

  /** Drops consumed work now and then rather than shifting the array on every item. */
  private dropConsumedWork(): void {
    if (this.head > 1024 && this.head * 2 > this.work.length) {
      this.work = this.work.slice(this.head);
      this.head = 0;
    }
  }

  /** Up to batchSize spans, building queued work into spans as needed (a window with many holds may span batches). */
  private nextBatch(): ReadableSpan[] {
    const emit = this.emitReadable(this.built);
    while (this.built.length < this.batchSize && this.head < this.work.length) {
      const item = this.work[this.head++];
      if ("window" in item) this.windowSpans(item.meta, item.window, item.decision, emit);
      else if ("request" in item) this.requestSpans(item.meta, item.request, item.decision, emit);
      else if ("hold" in item) this.holdSpan(item.meta, item.hold, holdSpanContext(item.meta, item.hold.t), undefined, emit);
    }
    this.dropConsumedWork();
    const batch = this.built.length <= this.batchSize ? this.built : this.built.slice(0, this.batchSize);
    this.built = this.built.length <= this.batchSize ? [] : this.built.slice(this.batchSize);
    this.queued -= batch.length;
    return batch;
  }

  private resourceOf(meta: ProcessMeta): Resource {
    return this.resourceEntry(meta).resource;
  }

  private resourceBytesOf(meta: ProcessMeta): Buffer {
    const e = this.resourceEntry(meta);
    return (e.bytes ??= resourceBytes(e.resource.attributes));
  }

  private resourceEntry(meta: ProcessMeta): { meta: ProcessMeta; resource: Resource; bytes?: Buffer } {
    const known = this.resources.get(meta.pid);
    if (known?.meta === meta) return known;
    const entry = { meta, resource: processResource(meta) };
    this.resources.set(meta.pid, entry);
    return entry;
  }

  private windowSpans(meta: ProcessMeta, w: RequestWindow, decision: WindowDecision, emit: Emit): void {
    const sampled = decision.launches;
    const d = digest(`tailguard/window/${meta.pid}/${meta.anchorMonotonic}/${w.seq}`);
    const ctx = contextOf(d);
    const attributes: Attributes = {
      "tailguard.window.seq": w.seq,
      "tailguard.window.launches": w.launchCount,
      "tailguard.window.streams": w.streams,
      "tailguard.window.holds": w.holds.length,
      "tailguard.window.held_ns": w.heldNs,
    };
    if (w.gpuNs != null) attributes["tailguard.window.gpu_ns"] = w.gpuNs;
    if (decision.span) attributes["tailguard.span.reason"] = decision.span;
    const launchSpans = sampled ? Math.min(w.launches.length, this.maxLaunchSpans) : 0;
    if (sampled) {
      attributes["tailguard.sampled"] = sampled;
      attributes["tailguard.window.launch_spans"] = launchSpans;
      // launches the window had but no span shows: those windows.ts did not keep, and those past maxLaunchSpans
      attributes["tailguard.window.launches_dropped"] = w.launchCount - launchSpans;
    }
    const start = epochNs(meta, w.t);
    if (w.contexts) {
      // one request span per trace context, in its trace under the application's span, with its own holds and
      // launches; work under none keeps the window's own trace
      // (a part under a thread request is that request's: its spans are made at the request's end, ingest/traced.ts)
      const status = this.windowStatus(meta, w);
      const owns = contextOwns(meta, w, d, ctx);
      const rangeOwner: SpanContext[] = [];
      w.contexts.forEach((c, k) => {
        if (!c.request) c.ranges.forEach((i) => (rangeOwner[i] = owns[k]));
      });
      const launchParent = rangeSpans(meta, w, d, ctx, emit, (i) => rangeOwner[i]);
      // the window's request_latency exemplar: one span it makes, its longest request span that is sampled; its device
      // spans go under its longest sampled request span of any kind
      let longest = -1;
      let longestAny = -1;
      w.contexts.forEach((c, k) => {
        if (!(owns[k].traceFlags & TraceFlags.SAMPLED)) return;
        if (!c.request && (longest < 0 || c.durNs > w.contexts![longest].durNs)) longest = k;
        if (longestAny < 0 || c.durNs > w.contexts![longestAny].durNs) longestAny = k;
      });
      w.contexts.forEach((c, k) => {
        if (c.request) return;
        const own = owns[k];
        const attrs: Attributes = { ...attributes, "tailguard.window.contexts": w.contexts!.length, "tailguard.request.launches": c.launchCount };
        const name = c.context?.name ? `request ${c.context.name}` : "request";
        const exemplar = k === longest && this.wantsExemplar(meta, "request_latency", undefined, w.durNs, own, attrs);
        emit(meta, name, own, c.context ? appParent(c.context, own) : undefined, epochNs(meta, c.t), c.durNs, attrs, [], status);
        if (exemplar) this.offerExemplar(meta, "request_latency", undefined, w.durNs, start, own);
        for (const i of c.holds) this.holdSpan(meta, w.holds[i], { ...own, spanId: childSpanId(d, (HOLD_CHILD | (i + 1)) >>> 0) }, own, emit);
        for (const i of c.launches)
          if (i < launchSpans) this.launchSpan(meta, w.launches[i], { ...own, spanId: childSpanId(d, i + 1) }, launchParent(w.launches[i], own), i, emit);
      });
      // the window's device times are the whole window's: under its longest sampled request span (the first if none is)
      deviceSpans(meta, w, d, owns[Math.max(0, longestAny)], emit, this.processByPid);
      return;
    }
    const exemplar = this.wantsExemplar(meta, "request_latency", undefined, w.durNs, ctx, attributes);
    emit(meta, "request", ctx, undefined, start, w.durNs, attributes, [], this.windowStatus(meta, w));
    if (exemplar) this.offerExemplar(meta, "request_latency", undefined, w.durNs, start, ctx);
    w.holds.forEach((h, i) => {
      this.holdSpan(meta, h, { ...ctx, spanId: childSpanId(d, (HOLD_CHILD | (i + 1)) >>> 0) }, ctx, emit);
    });
    deviceSpans(meta, w, d, ctx, emit, this.processByPid);
    const launchParent = rangeSpans(meta, w, d, ctx, emit);
    for (let i = 0; i < launchSpans; i++) {
      this.launchSpan(meta, w.launches[i], { ...ctx, spanId: childSpanId(d, i + 1) }, launchParent(w.launches[i]), i, emit);
    }
  }

  private requestSpans(meta: ProcessMeta, r: TracedRequest, decision: WindowDecision, emit: Emit): void {
    const d = requestDigest(meta, r.id);
    const own = requestContextOf(d, r.context);
    const sampled = decision.launches;
    const attributes: Attributes = {
      "thread.id": r.id.tid,
      "tailguard.request.launches": r.launchCount,
      "tailguard.request.holds": r.holdCount,
      "tailguard.request.held_ns": r.heldNs,
      "tailguard.request.syncs": r.syncCount,
      "tailguard.request.sync_ns": r.syncNs,
    };
    if (r.threads > 1) attributes["tailguard.request.threads"] = r.threads;
    if (r.open) attributes["tailguard.request.open"] = true;
    if (decision.span) attributes["tailguard.span.reason"] = decision.span;
    const launchSpans = sampled ? Math.min(r.launches.length, this.maxLaunchSpans) : 0;
    if (sampled) {
      attributes["tailguard.sampled"] = sampled;
      attributes["tailguard.request.launch_spans"] = launchSpans;
      attributes["tailguard.request.launches_dropped"] = r.launchCount - launchSpans;
    }
    const start = epochNs(meta, r.t);
    const status: SpanStatus = overSlo(meta, r, this.sloNs)
      ? { code: SpanStatusCode.ERROR, message: `request latency ${msText(r.durNs)} ms > SLO ${msText(this.sloNs!)} ms` }
      : UNSET;
    // its exemplar (request_latency): the request's own duration, begin to end, as the application measured it
    const exemplar = this.wantsExemplar(meta, "request_latency", undefined, r.durNs, own, attributes);
    emit(meta, r.context.name ? `request ${r.context.name}` : "request", own, appParent(r.context, own), start, r.durNs, attributes, [], status);
    if (exemplar) this.offerExemplar(meta, "request_latency", undefined, r.durNs, start, own);
    r.holds.forEach((h, i) => this.holdSpan(meta, h, { ...own, spanId: childSpanId(d, (HOLD_CHILD | (i + 1)) >>> 0) }, own, emit));
    const launchParent = rangeSpans(meta, r, d, own, emit);
    for (let i = 0; i < launchSpans; i++)
      this.launchSpan(meta, r.launches[i], { ...own, spanId: childSpanId(d, i + 1) }, launchParent(r.launches[i]), i, emit);
    if (sampled)
      r.syncs.forEach((x, i) => {
        const attrs: Attributes = { "tailguard.sync.op": x.op, "tailguard.sync.stream": "0x" + x.stream.toString(16), "thread.id": x.tid };
        emit(meta, "sync", { ...own, spanId: childSpanId(d, (SYNC_CHILD | (i + 1)) >>> 0) }, own, epochNs(meta, x.t), x.durNs, attrs, []);
      });
  }

  /** ERROR, with why, for a window over the SLO; UNSET otherwise: the agent sees latency, not whether the request
   *  succeeded, so it claims no OK (the OpenTelemetry specification leaves OK to those who know). */
  private windowStatus(meta: ProcessMeta, w: RequestWindow): SpanStatus {
    if (!overSlo(meta, w, this.sloNs)) return UNSET;
    return { code: SpanStatusCode.ERROR, message: `request latency ${msText(w.durNs)} ms > SLO ${msText(this.sloNs!)} ms` };
  }

  private holdSpan(meta: ProcessMeta, h: Hold, ctx: SpanContext, parent: SpanContext | undefined, emit: Emit): void {
    const attributes: Attributes = {
      "tailguard.hold.reason": h.reason,
      "tailguard.hold.priority": h.priority,
      "tailguard.hold.released_by": h.releasedBy,
    };
    if (h.causePid != null) attributes["tailguard.hold.cause.pid"] = h.causePid;
    if (h.causePriority != null) attributes["tailguard.hold.cause.priority"] = h.causePriority;
    if (h.causeWindow != null) attributes["tailguard.hold.cause.window"] = h.causeWindow;
    const links: Link[] = [];
    if (h.causePid != null && h.causeWindow != null) {
      const cause = this.processByPid(h.causePid);
      // the request span of the causing process's request with a trace context when it had exactly one open at the
      // hold (its id is known from its begin); else the causing window's request spans where its work ran under
      // application trace contexts (known once it has ended: usually before the windows it held have), else its own
      const open = cause ? this.causeRequests(h.causePid, h.t) : [];
      const joined = cause ? this.joined.get(windowKey(cause, h.causeWindow)) : undefined;
      if (cause && open.length === 1) links.push({ context: requestSpanContext(cause, open[0]), attributes: { "tailguard.link": "hold.cause" } });
      else if (joined) for (const context of joined) links.push({ context, attributes: { "tailguard.link": "hold.cause" } });
      else if (cause) links.push({ context: windowSpanContext(cause, h.causeWindow), attributes: { "tailguard.link": "hold.cause" } });
    }
    const start = epochNs(meta, h.t);
    const exemplar = this.wantsExemplar(meta, "hold_time", h.reason, h.durNs, ctx, attributes);
    emit(meta, "hold", ctx, parent, start, h.durNs, attributes, links);
    if (exemplar) this.offerExemplar(meta, "hold_time", h.reason, h.durNs, start, ctx);
  }

  /** Whether a span about to be written will be offered as an exemplar (sampled, and its bucket takes one now); if so
   *  it says so in `tailguard.exemplar`, so that a Collector's tail sampling can keep its trace (collectors/). */
  private wantsExemplar(meta: ProcessMeta, metric: ExemplarMetric, reason: string | undefined, durNs: number, ctx: SpanContext, attributes: Attributes): boolean {
    if (!this.exemplars || (ctx.traceFlags & TraceFlags.SAMPLED) === 0 || !this.exemplars.wants(meta, metric, reason, durNs)) return false;
    attributes["tailguard.exemplar"] = true;
    return true;
  }

  /** The span just emitted, as an exemplar of its histogram: with the ids it was written with. */
  private offerExemplar(meta: ProcessMeta, metric: ExemplarMetric, reason: string | undefined, durNs: number, startNs: bigint, ctx: SpanContext): void {
    this.exemplars!.offer(meta, metric, reason, durNs, startNs + BigInt(durNs), ctx, this.emitted - 1);
  }

  /** A launch call: from the call to its return where the shim timed it, else an instant (the model carries the launch
   *  call, not the kernel's time on the GPU). */
  private launchSpan(meta: ProcessMeta, l: Launch, ctx: SpanContext, parent: SpanContext, index: number, emit: Emit): void {
    const attributes: Attributes = {
      "tailguard.launch.index": index,
      "tailguard.launch.op": l.op,
      "tailguard.kernel.name": l.name,
      "tailguard.launch.stream": "0x" + l.stream.toString(16),
    };
    if (l.grid) attributes["tailguard.launch.grid"] = l.grid;
    if (l.block) attributes["tailguard.launch.block"] = l.block;
    if (l.apiNs != null) attributes["tailguard.launch.api_ns"] = l.apiNs;
    if (l.gpuStart !== undefined && l.gpuEnd !== undefined) {
      // timed on the device (TAILGUARD_KERNEL_TIMING): the span is when its work ran there
      attributes["tailguard.launch.queue_ns"] = deviceNs(l.gpuStart - l.t);
      if (l.gpuKernels) attributes["tailguard.launch.gpu_kernels"] = l.gpuKernels;
      emit(meta, l.name, ctx, parent, epochNs(meta, l.gpuStart), Number(l.gpuEnd - l.gpuStart), attributes, []);
      return;
    }
    emit(meta, l.name, ctx, parent, epochNs(meta, l.t), l.apiNs ?? 0, attributes, []);
  }

  private span(...[meta, name, ctx, parent, startNs, durNs, attributes, links, status]: Parameters<Emit>): ReadableSpan {
    return {
      name,
      kind: SpanKind.INTERNAL,
      spanContext: () => ctx,
      parentSpanContext: parent,
      startTime: hrTimeOf(startNs),
      endTime: hrTimeOf(startNs + BigInt(durNs)),
      duration: hrDuration(durNs),
      status: status ?? UNSET,
      attributes,
      links,
      events: [],
      ended: true,
      resource: this.resourceOf(meta),
      instrumentationScope: scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }
}

/**
 * The OTLP/HTTP span exporter for `config` (otel-env.ts): http/protobuf, written by the pipeline itself when it is the
 * only exporter (`alone`), else the official one; or http/json.
 */
export function otlpSpanExporter(config: OtlpExport, alone = true): SpanExporter | EncodedSpanExporter {
  const options = exporterOptions(config);
  if (config.protocol === "http/json") return new OtlpJsonTraceExporter(options);
  return alone ? new OtlpProtobufSpanExporter(options) : new OtlpProtobufTraceExporter(options);
}

/** An ExportTraceServiceRequest already written, and how many spans it holds. */
type EncodedRequest = { request: Uint8Array; spans: number };

/**
 * OTLP/HTTP protobuf export of requests the pipeline wrote itself: the official exporter's transport (endpoint,
 * headers, timeout, compression and TLS as `options` give them, retries, the bound on concurrent exports), given bytes
 * instead of ReadableSpans.
 */
export class OtlpProtobufSpanExporter implements EncodedSpanExporter {
  readonly encoded = true as const;
  private readonly delegate: ReturnType<typeof createOtlpHttpExportDelegate<EncodedRequest, unknown>>;

  constructor(options: OTLPExporterNodeConfigBase) {
    this.delegate = createOtlpHttpExportDelegate<EncodedRequest, unknown>(
      convertLegacyHttpOptions(options, "TRACES", "v1/traces", { "Content-Type": "application/x-protobuf" }),
      { serializeRequest: (r) => r.request, deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data) },
      "otlp_http_span_exporter",
      { name: "span", countItems: (r) => r.spans },
      undefined,
    );
  }

  export(request: Uint8Array, spans: number, done: (result: ExportResult) => void): void {
    this.delegate.export({ request, spans }, done);
  }

  forceFlush(): Promise<void> {
    return this.delegate.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.delegate.shutdown();
  }
}

/** How large a spans file may grow, and how many full ones are kept beside it. */
export interface SpansFileLimits {
  /** a line that would take the file past this many bytes goes to a new file (default 100 MiB) */
  maxBytes: number;
  /** full files kept as FILE.1 (the newest) … FILE.K; older ones are deleted (default 5; 0 keeps none) */
  keep: number;
}

export const DEFAULT_SPANS_FILE_LIMITS: SpansFileLimits = { maxBytes: 100 * 2 ** 20, keep: 5 };

/**
 * Writes each export as one OTLP/JSON ExportTraceServiceRequest per line (hex ids, times as decimal strings): the form
 * Jaeger's UI upload and the otel-collector's file receiver read. Appends, so several runs can share a file.
 *
 * Rotated by size, as log files are: when a line would take FILE past `maxBytes` it is renamed FILE.1 (FILE.1 to
 * FILE.2 and so on; FILE.K, and any older, deleted) and the line starts a new FILE. A line is never split: a file
 * exceeds `maxBytes` only when one export alone is larger, and then holds that line alone.
 */
export class OtlpJsonLinesExporter implements SpanExporter {
  private file: FileHandle | null = null;
  /** bytes in `file` */
  private size = 0;
  /** writes in order, one after the other, so lines never interleave */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly limits: SpansFileLimits;

  constructor(
    readonly path: string,
    limits: Partial<SpansFileLimits> = {},
  ) {
    this.limits = { ...DEFAULT_SPANS_FILE_LIMITS, ...limits };
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const request = JsonTraceSerializer.serializeRequest(spans);
    if (!request) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error("OTLP/JSON serialization failed") });
      return;
    }
    const line = Buffer.concat([request, Buffer.from("\n")]);
    this.tail = this.tail
      .then(() => this.write(line))
      .then(
        () => resultCallback({ code: ExportResultCode.SUCCESS }),
        (error: Error) => resultCallback({ code: ExportResultCode.FAILED, error }),
      );
  }

  async forceFlush(): Promise<void> {
    await this.tail;
  }

  async shutdown(): Promise<void> {
    await this.tail;
    const f = this.file;
    this.file = null;
    await f?.close();
  }

  private async write(line: Buffer): Promise<void> {
    let f = await this.open();
    if (this.size > 0 && this.size + line.length > this.limits.maxBytes) {
      this.file = null;
      await f.close();
      await this.rotate();
      f = await this.open();
    }
    await f.appendFile(line);
    this.size += line.length;
  }

  /** The file, opened (for appending) at the first write and after a rotation; a failed open fails that export only. */
  private async open(): Promise<FileHandle> {
    if (this.file) return this.file;
    const f = await open(this.path, "a");
    try {
      this.size = (await f.stat()).size; // an existing file counts
    } catch (err) {
      await f.close();
      throw err;
    }
    this.file = f;
    return f;
  }

  /** FILE → FILE.1 → … → FILE.K; FILE.K and any older (a previous run's larger K) are deleted. */
  private async rotate(): Promise<void> {
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    const { keep } = this.limits;
    for (const name of await readdir(dir)) {
      const n = name.startsWith(`${base}.`) ? name.slice(base.length + 1) : "";
      if (/^[1-9]\d*$/.test(n) && Number(n) >= keep) await rm(path.join(dir, name), { force: true });
    }
    for (let i = keep - 1; i >= 1; i--) await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    if (keep > 0) await rename(this.path, `${this.path}.1`).catch(ignoreMissing);
    else await rm(this.path, { force: true });
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== "ENOENT") throw err;
}
