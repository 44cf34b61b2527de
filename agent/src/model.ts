// The agent's model, the vocabulary every room shares: what it assembles from the shim's records (ingest/windows.ts)
// and hands to the histograms, spans and metrics (telemetry/). Times are the shim's CLOCK_MONOTONIC
// nanoseconds (bigint); `epochNs` turns them into wall-clock time with the process's clock anchor.

/** A GPU as the shim identified it (ring header). */
export interface GpuIdentity {
  ordinal: number;
  uuid: string;
  name: string;
  pci: string;
}

/** What the agent knows of an attached process: its ring header, and its environment where readable. */
export interface ProcessMeta {
  pid: number;
  ppid: number;
  cmdline: string[];
  priority: number;
  gpu: GpuIdentity | null;
  /** the ring header's clock anchor: the same instant read on CLOCK_MONOTONIC and CLOCK_REALTIME */
  anchorMonotonic: bigint;
  anchorRealtime: bigint;
  /** the process's OTEL_SERVICE_NAME, when set */
  serviceName?: string;
  /** further resource attributes: the process's OTEL_RESOURCE_ATTRIBUTES, Kubernetes pod/namespace/node */
  resource: Record<string, string>;
}

/** A kernel, graph or host-function launch inside a request window. */
export interface Launch {
  /** kernel name (demangled), "(graph)" or the host function's name */
  name: string;
  op: "kernel" | "graph" | "host_func";
  /** when the launch call was made (monotonic ns) */
  t: bigint;
  /** time spent in the launch call (ns), when the shim timed it (1 launch in 8 per thread), else null */
  apiNs: number | null;
  stream: bigint;
  /** the calling thread (kernel thread id) */
  tid?: number;
  grid?: [number, number, number];
  block?: [number, number, number];
  /** when the device ran its work (monotonic ns), where the shim timed it through CUPTI (TAILGUARD_KERNEL_TIMING);
   *  a graph launch's from its first kernel's start to its last kernel's end */
  gpuStart?: bigint;
  gpuEnd?: bigint;
  /** a graph launch: its kernels timed */
  gpuKernels?: number;
}

/** The scheduler held this process's launches (a hold record). */
export interface Hold {
  pid: number;
  /** "priority": a higher-priority process was busy; "budget": this process's in-flight budget was spent;
   *  "share": a lower-priority process's minimum share was due */
  reason: "priority" | "budget" | "share";
  t: bigint;
  durNs: number;
  /** the held process's priority */
  priority: number;
  /** what caused it (priority and share holds): the process, its priority and its request window's sequence number */
  causePid: number | null;
  causePriority: number | null;
  causeWindow: number | null;
  /** idle | lapsed | min_share | drained */
  releasedBy: string;
  /** the held thread (kernel thread id), where known: whose trace context the hold delayed (ingest/contexts.ts) */
  tid?: number;
}

/** An application's W3C trace context that GPU work ran under (TRACEPARENT, or the shim's tailguard.h ABI). */
export interface TraceContext {
  /** 32 and 16 lowercase hex digits: the application's trace, and its span the request span is a child of */
  traceId: string;
  parentSpanId: string;
  /** the traceparent's sampled flag: the application traces this request */
  sampled: boolean;
  /** TRACESTATE, for the process's context from the environment */
  traceState?: string;
  /** the request's name given to tailguard_request_begin */
  name?: string;
}

/** The part of a request window that ran under one trace context (or none: null), a request span of its own in that
 *  trace (docs/tracing.md). Launches, holds and NVTX ranges by index into the window's lists. */
export interface WindowContext {
  context: TraceContext | null;
  /** from its first launch or hold to the end of its request, or of the window (ns) */
  t: bigint;
  durNs: number;
  launchCount: number;
  launches: number[];
  holds: number[];
  /** its NVTX ranges, by index into the window's `ranges` */
  ranges: number[];
  /** the thread request this part of the window ran under: its span is the request's own, made at the request's end
   *  (TracedRequest), so the window makes none for it (absent: the process's default context, or none) */
  request?: RequestId;
}

/** Who began a thread request with a trace context: its first begin's thread, time and nesting depth (what its span id
 *  is derived from, so that it can be named before the request has ended: telemetry/spans.ts). */
export interface RequestId {
  tid: number;
  t: bigint;
  depth: number;
}

/** A synchronisation a request's thread waited in (a sync record): which kind, when, how long, on which stream. */
export interface SyncWait {
  op: "stream" | "device" | "event";
  t: bigint;
  durNs: number;
  stream: bigint;
  tid: number;
}

/** An application request with a trace context (CONTEXT request_begin to request_end of a thread: the tailguard.h ABI,
 *  the Python helper, an NVTX range named by a traceparent), finished at its end whatever the process's request windows
 *  do (ingest/traced.ts, docs/tracing.md): its own request span in the application's trace. Launches, holds and sync
 *  waits are those of its threads between its begin and its end; the lists keep the first ones, the counts all. */
export interface TracedRequest {
  pid: number;
  id: RequestId;
  context: TraceContext;
  /** its begin, and the time to its end (or, when `open`, to the last record read of its process) */
  t: bigint;
  durNs: number;
  /** not ended: its process exited first, or the agent's bound on requests open let it go */
  open: boolean;
  /** threads that had it open (requests of one context open at the same time are one request) */
  threads: number;
  launchCount: number;
  /** its launches, decoded only when its spans show them (else empty) */
  launches: Launch[];
  holds: Hold[];
  holdCount: number;
  heldNs: number;
  syncs: SyncWait[];
  syncCount: number;
  syncNs: number;
  /** the NVTX ranges of its context that overlap it, parents before children */
  ranges: NvtxRange[];
}

/** A request window: from a process's first launch after idle to the synchronisation that showed its work done. */
export interface RequestWindow {
  pid: number;
  /** the process's window sequence number (1, 2, ...), as hold records name it */
  seq: number;
  t: bigint;
  durNs: number;
  /** launches made in the window (all of them, including those not kept in `launches`) */
  launchCount: number;
  streams: number;
  /** the window's launches, in order, at most `launchLimit` of them (see windows.ts); `launchesDropped` the rest */
  launches: Launch[];
  launchesDropped: number;
  /** holds of this process that began inside the window, and their total time */
  holds: Hold[];
  heldNs: number;
  /** GPU-side time of the window's work, GPU start to GPU end (device.gpuNs), where known (null: not measured) */
  gpuNs: number | null;
  /** the window's device times, when the shim measured them (docs/gpu-time.md) */
  device?: DeviceTimes;
  /** the trace contexts its work ran under, when any of it ran under one (absent: none, a trace of its own) */
  contexts?: WindowContext[];
  /** the program's NVTX ranges that overlap the window (ingest/ranges.ts), parents before children; absent: none */
  ranges?: NvtxRange[];
}

/** When a request window's work was submitted, ran on the GPU and was seen done (monotonic ns), and the durations
 *  between (ns): queue delay (submitted → GPU start), GPU time (start → end), completion latency (end → returned). */
export interface DeviceTimes {
  submitted: bigint;
  gpuStart: bigint;
  gpuEnd: bigint;
  returned: bigint;
  queueNs: number;
  gpuNs: number;
  completionNs: number;
  /** the other process on its GPU that had work in flight longest while this window queued (the agent's reading of
   *  what it waited behind), and for how long (ns) */
  behind?: { pid: number; priority: number; window: number; ns: number };
}

/** A duration between a host time and a device time (ns): the clock mapping's error (and the shim's clock, which
 *  follows CLOCK_MONOTONIC within a microsecond) can put the device a little before the host; such a duration is 0,
 *  never negative. */
export const deviceNs = (x: bigint): number => (x > 0n ? Number(x) : 0);

/** An NVTX range or mark of the program (its push/pop, start/end or mark records). */
export interface NvtxRange {
  /** its message ("" when it had none, or one that was not text) */
  name: string;
  /** its NVTX domain's name, null for the default domain */
  domain: string | null;
  category: number;
  op: "push" | "start" | "mark";
  /** the thread that pushed or started it */
  tid: number;
  t: bigint;
  /** ns until its pop or end; an open range's runs to the end of the window that shows it */
  durNs: number;
  /** not ended by the end of that window */
  open: boolean;
  /** the index (in the same list) of the push range of its thread it was opened in, -1: none shown */
  parent: number;
}

/** Monotonic ns of a process → wall-clock epoch ns. */
export function epochNs(meta: Pick<ProcessMeta, "anchorMonotonic" | "anchorRealtime">, t: bigint): bigint {
  return meta.anchorRealtime + (t - meta.anchorMonotonic);
}

/** The HDR histograms the agent keeps, per series (pid, priority, GPU), values in nanoseconds: the exported metrics
 *  of the same names (telemetry/metrics.ts, METRICS, which says what each measures), and kernel_gpu_time, kernel time
 *  on the GPU, for when the shim times kernels. */
export const HISTOGRAM_METRICS = ["request_latency", "hold_time", "launch_api_time", "kernel_gpu_time", "request_gpu_time",
  "request_queue_delay"] as const;
export type HistogramMetricName = (typeof HISTOGRAM_METRICS)[number];

/** A histogram series: one process on one GPU at one priority. */
export interface SeriesKey {
  pid: number;
  priority: number;
  /** GPU UUID ("GPU-…") or "unknown" */
  gpu: string;
}

/** A series' distribution at one moment (values in ns). */
export interface SeriesSnapshot {
  metric: HistogramMetricName;
  key: SeriesKey;
  count: number;
  min: number;
  max: number;
  mean: number;
  /** value at each percentile of PERCENTILES */
  percentiles: Record<string, number>;
}

/** The percentiles reported everywhere (tables, gauges): label → percentile. */
export const PERCENTILES: Record<string, number> = { p50: 50, p90: 90, p99: 99, p999: 99.9, p9999: 99.99 };

/** What the agent has handled since it started (the live view's totals, `tailguard top`, the --demo lines). */
export interface AgentStats {
  processes: number;
  records: number;
  launches: number;
  windows: number;
  holds: number;
  /** records the shims dropped because a ring was full */
  dropped: number;
  spans: { exported: number; dropped: number; failed: number; queued: number };
}

/** How long a process that has gone stays in everything the agent exports and shows (its metric series, histograms,
 *  the live view) after it exits: long enough for a few scrapes and a look at the live view to see its end. */
export const FORGET_AFTER_MS = 5 * 60_000;
