// The agent's metrics: METRICS, the one definition of everything it exports (docs/metrics.md shows the same table and
// test/unit/metrics.test.ts proves they agree; test/docs/metric-names.test.ts that the dashboards, rules and documents
// name only its metrics), the per-process series behind them, and their two ways out: a Prometheus endpoint and,
// optionally, OTLP push.
//
// The per-process series are kept here, not in OpenTelemetry SDK instruments, and reach the SDK's readers through a
// MetricProducer, for two reasons. With cumulative temporality (what Prometheus needs) the SDK keeps every attribute
// set it has ever seen until the process ends, so a process that has gone could never stop being exported; and a
// synchronous instrument hashes its attribute object on every record, too dear at a million launches a second. Here a
// record is a bucket increment on the process's own series, and forget() removes them. The agent's server
// (serve/server.ts) answers /metrics with scrape().
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";

import { ValueType, type Attributes, type HrTime } from "@opentelemetry/api";
import { ExportResultCode, hrTime } from "@opentelemetry/core";
import { AggregationTemporalityPreference } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
  type MetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";

import { ExemplarReservoir, type BucketExemplar, type ExemplarMetric, type ExemplarSink } from "./exemplars.js";
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, serializeOpenMetrics, wantsOpenMetrics } from "./openmetrics.js";
import { exporterOptions, type OtlpMetricsExport } from "./otel-env.js";
import { OtlpExemplarMetricExporter } from "./otlp-metrics.js";
import { agentVersion, ownProcess } from "./own-process.js";
import { FORGET_AFTER_MS, PERCENTILES, type Hold, type ProcessMeta, type RequestWindow, type SeriesSnapshot } from "../model.js";

export type MetricType = "histogram" | "counter" | "gauge";

/** One exported metric, as METRICS defines it. */
interface MetricSpec {
  /** the OTel metric name (OTLP): the one name of the metric. Its key in METRICS is this name after `tailguard.`
   *  with underscores for dots (the name of the agent's HDR histogram where it has one, model.ts) */
  otel: string;
  type: MetricType;
  /** UCUM unit; `{…}` is an annotation (a count of things) */
  unit: string;
  description: string;
  labels: readonly string[];
  /** histograms: bucket upper bounds, in seconds */
  buckets?: readonly number[];
}

/** One exported metric. */
export interface MetricDefinition extends MetricSpec {
  /** the name Prometheus shows (prometheusName) */
  prometheus: string;
}

/** The name Prometheus shows for a metric: its OTel name translated as the OpenTelemetry→Prometheus rules say (dots to
 *  underscores, the unit `s` as the suffix `_seconds`, `By` as `_bytes`, a `{…}` unit nothing, `_total` on counters),
 *  so the same queries work whether Prometheus scrapes the agent or an OpenTelemetry Collector that received its OTLP. */
export function prometheusName(d: Pick<MetricSpec, "otel" | "unit" | "type">): string {
  const unit = d.unit === "s" ? "_seconds" : d.unit === "By" ? "_bytes" : "";
  return d.otel.replace(/\./g, "_") + unit + (d.type === "counter" ? "_total" : "");
}

/** 1-2.5-5 steps from 10^fromExp to 10^toExp seconds: boundaries that bracket the round numbers SLOs are written in. */
function sloBuckets(fromExp: number, toExp: number): number[] {
  const out: number[] = [];
  for (let e = fromExp; e < toExp; e++) for (const m of [1, 2.5, 5]) out.push(Number((m * 10 ** e).toPrecision(3)));
  out.push(Number((10 ** toExp).toPrecision(3)));
  return out;
}

/** The labels of every per-process series; `pid` is added with --pid-label, or to keep apart live processes whose
 *  labels are all the same (docs/metrics.md, "Labels"). namespace, pod and container only where known. */
const PROCESS = ["priority", "gpu", "command", "namespace", "pod", "container"] as const;

/** Kernel names that get a `kernel` label value of their own, per process series (the first seen); the others are
 *  "other": a process that compiles kernels at run time cannot grow the label set without bound. */
export const KERNEL_LABELS = 20;
/** How much of a kernel name a label value keeps (mangled C++ names run to kilobytes). */
const KERNEL_LABEL_CHARS = 160;

/** Everything the agent exports, by name. */
const SPECS = {
  request_latency: {
    otel: "tailguard.request.latency",
    type: "histogram",
    unit: "s",
    description: "Request latency: a request window's first launch after idle (the start of its hold, when the scheduler held it) to the synchronisation that showed its work done.",
    labels: PROCESS,
    buckets: sloBuckets(-4, 1),
  },
  hold_time: {
    otel: "tailguard.hold.time",
    type: "histogram",
    unit: "s",
    description: "Time the scheduler held a process's launches, by reason (priority, budget, share).",
    labels: [...PROCESS, "reason"],
    buckets: sloBuckets(-5, 1),
  },
  request_gpu_time: {
    otel: "tailguard.request.gpu_time",
    type: "histogram",
    unit: "s",
    description: "GPU time of a request window, measured on the device: from the GPU starting the window's first work to it finishing its last (docs/gpu-time.md).",
    labels: PROCESS,
    buckets: sloBuckets(-5, 1),
  },
  request_queue_delay: {
    otel: "tailguard.request.queue_delay",
    type: "histogram",
    unit: "s",
    description: "Queue delay of a request window, measured on the device: from its first work being submitted to the GPU starting it (behind other processes' work, a context switch, its own earlier work).",
    labels: PROCESS,
    buckets: sloBuckets(-6, 0),
  },
  kernel_gpu_time: {
    otel: "tailguard.kernel.gpu_time",
    type: "histogram",
    unit: "s",
    description: `Device time of one kernel, measured by CUPTI when the shim times kernels (TAILGUARD_KERNEL_TIMING=sampled or all: docs/gpu-time.md); kernel: its name, for a process's first ${KERNEL_LABELS} kernel names, then "other".`,
    labels: [...PROCESS, "kernel"],
    buckets: sloBuckets(-6, 0),
  },
  launch_api_time: {
    otel: "tailguard.launch.api_time",
    type: "histogram",
    unit: "s",
    description: "Time spent in a launch call (sampled by the shim: 1 launch in 8 per thread).",
    labels: PROCESS,
    buckets: sloBuckets(-6, -2),
  },
  launches: {
    otel: "tailguard.launches",
    type: "counter",
    unit: "{launch}",
    description: "Kernel, graph and host-function launches.",
    labels: PROCESS,
  },
  request_windows: {
    otel: "tailguard.request.windows",
    type: "counter",
    unit: "{window}",
    description: "Request windows that ended.",
    labels: PROCESS,
  },
  holds: {
    otel: "tailguard.holds",
    type: "counter",
    unit: "{hold}",
    description: "Holds of a process's launches by the scheduler, by reason.",
    labels: [...PROCESS, "reason"],
  },
  gpu_time_missing: {
    otel: "tailguard.gpu_time.missing",
    type: "counter",
    unit: "{window}",
    description: "Request windows without device times, by reason (no_timing, pool_full, stream, fork: docs/gpu-time.md).",
    labels: [...PROCESS, "reason"],
  },
  records_dropped: {
    otel: "tailguard.records.dropped",
    type: "counter",
    unit: "{record}",
    description: "Records the shim lost because the process's ring was full.",
    labels: PROCESS,
  },
  rings_corrupt: {
    otel: "tailguard.rings.corrupt",
    type: "counter",
    unit: "{ring}",
    description: "Rings quarantined because they failed the agent's checks (changed header, counters going back, a truncated file): their process's telemetry stops; the agent's log says why.",
    labels: [],
  },
  spans_exported: {
    otel: "tailguard.spans.exported",
    type: "counter",
    unit: "{span}",
    description: "Spans exported.",
    labels: [],
  },
  spans_dropped: {
    otel: "tailguard.spans.dropped",
    type: "counter",
    unit: "{span}",
    description: "Spans dropped before export (queue full).",
    labels: [],
  },
  spans_failed: {
    otel: "tailguard.spans.failed",
    type: "counter",
    unit: "{span}",
    description: "Spans lost in an export that failed or timed out.",
    labels: [],
  },
  metric_export_failures: {
    otel: "tailguard.metric.export.failures",
    type: "counter",
    unit: "{failure}",
    description: "OTLP metric exports that failed (the Prometheus endpoint is pulled and cannot fail this way).",
    labels: [],
  },
  processes_attached: {
    otel: "tailguard.processes.attached",
    type: "gauge",
    unit: "{process}",
    description: "Processes attached (the shim loaded, a ring to drain).",
    labels: [],
  },
  processes_in_flight: {
    otel: "tailguard.processes.in_flight",
    type: "gauge",
    unit: "{process}",
    description: "Attached processes with a request window open.",
    labels: [],
  },
  request_latency_percentile: {
    otel: "tailguard.request.latency.percentile",
    type: "gauge",
    unit: "s",
    description: "Request latency percentiles, exact: the agent's HDR histogram of the series (3 significant digits) since the agent began following the process; `percentile` in percent.",
    labels: [...PROCESS, "percentile"],
  },
  hold_time_percentile: {
    otel: "tailguard.hold.time.percentile",
    type: "gauge",
    unit: "s",
    description: "Hold time percentiles (all reasons), exact: the agent's HDR histogram of the series (3 significant digits) since the agent began following the process; `percentile` in percent.",
    labels: [...PROCESS, "percentile"],
  },
  records_read: {
    otel: "tailguard.records.read",
    type: "counter",
    unit: "{record}",
    description: "Records the agent read from the rings, every process's.",
    labels: [],
  },
  rings_backlog: {
    otel: "tailguard.rings.backlog",
    type: "gauge",
    unit: "{record}",
    description: "Records written to the rings and not yet drained by the agent, every ring's (counted once a second): it grows when the agent falls behind, and a full ring drops records.",
    labels: [],
  },
  drain_lag: {
    otel: "tailguard.drain.lag",
    type: "gauge",
    unit: "s",
    description: "How far behind the agent reads: the age of the oldest record it read in the last second, from the record's end as the shim timed it to the agent reading it; 0 when it read none.",
    labels: [],
  },
  build_info: {
    otel: "tailguard.build_info",
    type: "gauge",
    unit: "{build}",
    description: "The agent's build: always 1, labelled with its version and the Node.js version it runs on.",
    labels: ["version", "node"],
  },
  process_cpu: {
    otel: "process.cpu",
    type: "counter",
    unit: "s",
    description: "CPU time, user and system, the agent's process has used.",
    labels: [],
  },
  process_resident_memory: {
    otel: "process.resident_memory",
    type: "gauge",
    unit: "By",
    description: "The agent's resident memory.",
    labels: [],
  },
  process_virtual_memory: {
    otel: "process.virtual_memory",
    type: "gauge",
    unit: "By",
    description: "The agent's virtual memory.",
    labels: [],
  },
  process_open_fds: {
    otel: "process.open_fds",
    type: "gauge",
    unit: "{fd}",
    description: "File descriptors the agent has open.",
    labels: [],
  },
  process_max_fds: {
    otel: "process.max_fds",
    type: "gauge",
    unit: "{fd}",
    description: "The agent's limit of open file descriptors (soft).",
    labels: [],
  },
  process_start_time: {
    otel: "process.start_time",
    type: "gauge",
    unit: "s",
    description: "When the agent's process started, in seconds since the Unix epoch: a change is a restart.",
    labels: [],
  },
} as const satisfies Record<string, MetricSpec>;

type Specs = typeof SPECS;
/** Everything the agent exports: SPECS with each metric's Prometheus name. */
export const METRICS = Object.fromEntries(
  Object.entries(SPECS).map(([key, d]) => [key, { ...d, prometheus: prometheusName(d) }]),
) as { readonly [K in keyof Specs]: Specs[K] & { readonly prometheus: string } };

type MetricKey = keyof typeof METRICS;

/** The HDR histograms whose percentiles become gauges. Gauges with a `percentile` label, not a Prometheus summary's
 *  `quantile`: OpenTelemetry's SDK has no summary to push over OTLP, and one form on both ways out keeps the queries the
 *  same whether Prometheus scrapes the agent or a Collector that received its OTLP; `quantile` on a gauge is what
 *  `promtool check metrics` rejects (docs/metrics.md, "Percentile gauges"). */
const PERCENTILE_GAUGES: Partial<Record<SeriesSnapshot["metric"], MetricKey>> = {
  request_latency: "request_latency_percentile",
  hold_time: "hold_time_percentile",
};

/** PERCENTILES' labels → the `percentile` label value, in percent ("p999" → "99.9"). */
const PERCENTILE_LABELS = Object.entries(PERCENTILES).map(([label, pct]) => [label, String(pct)]);

/** A process's `command` label: its OTEL_SERVICE_NAME, else the program it runs. */
export function commandLabel(meta: Pick<ProcessMeta, "cmdline" | "serviceName">): string {
  if (meta.serviceName) return meta.serviceName;
  const argv0 = meta.cmdline[0];
  return argv0 ? path.basename(argv0) : "unknown";
}

/** A histogram data point with the exemplars of its buckets (exemplars.ts): the OpenMetrics exposition and the OTLP
 *  push show them, the Prometheus 0.0.4 text cannot. */
export type ExemplarPoint = DataPoint<Histogram> & { exemplars?: BucketExemplar[] };

/** An explicit-bucket histogram over nanosecond values, exported in seconds. */
class Distribution {
  readonly counts: number[];
  count = 0;
  sumNs = 0;
  minNs = Infinity;
  maxNs = -Infinity;
  /** request latency and hold time only: the spans behind their buckets */
  readonly exemplars: ExemplarReservoir | null;

  constructor(
    private readonly boundaries: number[],
    private readonly boundsNs: Float64Array,
    exemplars: boolean,
  ) {
    this.counts = new Array<number>(boundsNs.length + 1).fill(0);
    this.exemplars = exemplars ? new ExemplarReservoir(boundsNs) : null;
  }

  record(ns: number): void {
    // upper bounds are inclusive, as both OTel and Prometheus (`le`) define them
    let i = 0;
    const bounds = this.boundsNs;
    while (i < bounds.length && ns > bounds[i]) i++;
    this.counts[i]++;
    this.count++;
    this.sumNs += ns;
    if (ns < this.minNs) this.minNs = ns;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  /** A copy: an OTLP export is serialised after later records may have arrived. */
  value(): Histogram {
    const h: Histogram = {
      buckets: { boundaries: this.boundaries, counts: this.counts.slice() },
      count: this.count,
      sum: this.sumNs / 1e9,
    };
    if (this.count > 0) {
      h.min = this.minNs / 1e9;
      h.max = this.maxNs / 1e9;
    }
    return h;
  }
}

const bucketsOf = (key: "request_latency" | "hold_time" | "launch_api_time" | "request_gpu_time" | "request_queue_delay" | "kernel_gpu_time", exemplars: boolean) => {
  const boundaries = [...METRICS[key].buckets];
  const ns = Float64Array.from(boundaries, (s) => Math.round(s * 1e9));
  return () => new Distribution(boundaries, ns, exemplars);
};
const latencyDistribution = bucketsOf("request_latency", true);
const holdDistribution = bucketsOf("hold_time", true);
const apiDistribution = bucketsOf("launch_api_time", false);
const gpuTimeDistribution = bucketsOf("request_gpu_time", false);
const queueDelayDistribution = bucketsOf("request_queue_delay", false);
const kernelTimeDistribution = bucketsOf("kernel_gpu_time", false);
/** Why a window has no device times (the shim's tg_gpu_missing, record.ts' GpuMissingName): each is exported from
 *  the start, at zero. */
const GPU_MISSING_REASONS = ["no_timing", "pool_full", "stream", "fork"] as const;

/** A process's Kubernetes labels, from its resource (identity.ts): absent where unknown, as Prometheus reads an empty
 *  label. */
function kubernetesLabels(meta: ProcessMeta): Attributes {
  const out: Attributes = {};
  const r = meta.resource;
  if (r["k8s.namespace.name"]) out.namespace = r["k8s.namespace.name"];
  if (r["k8s.pod.name"]) out.pod = r["k8s.pod.name"];
  if (r["k8s.container.name"]) out.container = r["k8s.container.name"];
  return out;
}

/** The series of one process under one label set (a process whose priority or GPU changes gets another). */
class ProcessSeries {
  /** its labels without pid, and with it (first) */
  readonly attrs: Attributes;
  readonly attrsWithPid: Attributes;
  /** attrs as one string: series with the same key can only be told apart by their pid */
  readonly key: string;
  readonly start: HrTime = hrTime();
  launches = 0;
  dropped = 0;
  readonly latency = latencyDistribution();
  readonly apiTime = apiDistribution();
  readonly gpuTime = gpuTimeDistribution();
  readonly queueDelay = queueDelayDistribution();
  readonly holds: Record<Hold["reason"], { attrs: Attributes; attrsWithPid: Attributes; time: Distribution }>;
  /** windows without device times, by reason */
  readonly gpuMissing: Record<string, { attrs: Attributes; attrsWithPid: Attributes; count: number }>;
  /** kernels' device times, by kernel label (at most KERNEL_LABELS names and "other") */
  readonly kernels = new Map<string, { attrs: Attributes; attrsWithPid: Attributes; time: Distribution }>();
  /** when a forgotten process's series stop being exported (Date.now() ms) */
  retireAt = Infinity;

  constructor(
    readonly pid: number,
    readonly priority: number,
    readonly gpu: string,
    private readonly argv0: string | undefined,
    private readonly serviceName: string | undefined,
    command: string,
    private readonly kubernetes: Attributes,
  ) {
    this.attrs = { priority, gpu, command, ...kubernetes };
    this.attrsWithPid = { pid, ...this.attrs };
    this.key = JSON.stringify(this.attrs);
    const byReason = (reason: Hold["reason"]) => ({
      attrs: { ...this.attrs, reason },
      attrsWithPid: { ...this.attrsWithPid, reason },
      time: holdDistribution(),
    });
    this.holds = { priority: byReason("priority"), budget: byReason("budget"), share: byReason("share") };
    this.gpuMissing = Object.fromEntries(GPU_MISSING_REASONS.map((reason) =>
      [reason, { attrs: { ...this.attrs, reason }, attrsWithPid: { ...this.attrsWithPid, reason }, count: 0 }]));
  }

  /** The kernel-time distribution of a kernel name: its own while fewer than KERNEL_LABELS names have one. */
  kernel(name: string): Distribution {
    let k = this.kernels.get(name);
    if (!k) {
      const label = this.kernels.size < KERNEL_LABELS ? name.slice(0, KERNEL_LABEL_CHARS) : "other";
      k = this.kernels.get(label);
      if (!k) {
        k = { attrs: { ...this.attrs, kernel: label }, attrsWithPid: { ...this.attrsWithPid, kernel: label }, time: kernelTimeDistribution() };
        this.kernels.set(label, k);
      }
    }
    return k.time;
  }

  /** Whether `meta` still has this series' labels (compares of what the labels come from, no string building:
   *  this runs on every observation). */
  matches(meta: ProcessMeta): boolean {
    return (
      this.priority === meta.priority &&
      this.gpu === (meta.gpu?.uuid ?? "unknown") &&
      this.argv0 === meta.cmdline[0] &&
      this.serviceName === meta.serviceName &&
      this.kubernetes.namespace === meta.resource["k8s.namespace.name"] &&
      this.kubernetes.pod === meta.resource["k8s.pod.name"] &&
      this.kubernetes.container === meta.resource["k8s.container.name"]
    );
  }
}

/** The entries of `o` that are not undefined (so that spreading it over defaults keeps the defaults). */

/** The span counts exported as counters (SpanPipeline's stats have these and more). */
type SpanCounts = { exported: number; dropped: number; failed: number };

/** How the drain of the rings keeps up (the agent counts them: agent.ts). */
export interface DrainHealth {
  recordsRead: number;
  /** records in the rings not drained yet */
  backlog: number;
  /** the age of the oldest record read in the last second, s */
  lagSeconds: number;
}

/** OTLP push: an exporter, how often to export and how long one export may take (default: 30 s, or the interval). */
export interface OtlpMetricsOptions {
  exporter: PushMetricExporter;
  intervalMs: number;
  exportTimeoutMs?: number;
}

export interface AgentMetricsOptions {
  /** keep the cumulative series Prometheus scrapes (scrape()) */
  prometheus?: boolean;
  otlp?: OtlpMetricsOptions | null;
  /** the agent's own resource (otel-env.ts; default: service.name "tailguard"): OTLP's, and Prometheus' target_info */
  resource?: Record<string, string>;
  /** the agent's HDR histograms, for the percentile gauges (values in ns) */
  snapshots?: () => SeriesSnapshot[];
  /** the span pipeline's counts since it started (spans.ts) */
  spanStats?: () => SpanCounts;
  /** how the drain keeps up (zeros without one) */
  drain?: () => DrainHealth;
  /** how long a forgotten process's series are still exported, so that a scrape after its exit sees its final
   *  counts (ms; default FORGET_AFTER_MS) */
  forgetAfterMs?: number;
  /** label every per-process series with its pid (--pid-label); without it, pid is there only to keep apart live
   *  processes whose other labels are all the same */
  pidLabel?: boolean;
}

/** The agent's metrics: feed it observations, scrape or push them. */
export class AgentMetrics {
  private readonly current = new Map<number, ProcessSeries>();
  /** every series of live processes, by pid */
  private readonly byPid = new Map<number, ProcessSeries[]>();
  /** series of forgotten processes, exported until their retireAt */
  private retiring: ProcessSeries[] = [];
  private attached = 0;
  private inFlight = 0;
  private metricExportFailures = 0;
  private ringsCorrupt = 0;
  private readonly start = hrTime();
  private readonly forgetAfterMs: number;
  private readonly pidLabel: boolean;
  private readonly snapshots?: () => SeriesSnapshot[];
  private readonly spanStats?: () => SpanCounts;
  private readonly drain?: () => DrainHealth;
  private readonly resource: Resource;
  private readonly provider: MeterProvider;
  private readonly scrapeReader: MetricReader | null = null;
  private readonly serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  private closing: Promise<void> | null = null;
  /** whether anything shows the metrics: the Prometheus endpoint or OTLP push */
  private readonly exposed: boolean;

  constructor(opts: AgentMetricsOptions) {
    this.forgetAfterMs = opts.forgetAfterMs ?? FORGET_AFTER_MS;
    this.pidLabel = opts.pidLabel ?? false;
    this.resource = resourceFromAttributes(opts.resource ?? { "service.name": "tailguard" });
    this.snapshots = opts.snapshots;
    this.spanStats = opts.spanStats;
    this.drain = opts.drain;
    this.exposed = Boolean(opts.prometheus || opts.otlp);
    const producer: MetricProducer = { collect: () => Promise.resolve(this.produce()) };
    const readers: MetricReader[] = [];
    if (opts.prometheus) {
      // The exporter's own server cannot take port 0 (it reads 0 as "use the default, 9464") and would show the OTel
      // names; it serves here as the cumulative reader, and the endpoint is ours.
      this.scrapeReader = new PrometheusExporter({ preventServerStart: true, metricProducers: [producer] });
      readers.push(this.scrapeReader);
    }
    if (opts.otlp) readers.push(this.pushReader(opts.otlp, producer));
    this.provider = new MeterProvider({ resource: this.resource, readers });

  }

  /** What the span pipeline (spans.ts) tells of the request and hold spans it exports: the histograms' exemplars. */
  readonly exemplars: ExemplarSink<ProcessMeta> = {
    // none where no exposition could show them (--no-prometheus without OTLP metrics): no span is marked in vain
    wants: (meta, metric, reason, valueNs) => this.exposed && (this.distributionOf(meta, metric, reason)?.exemplars?.wants(valueNs) ?? false),
    offer: (meta, metric, reason, valueNs, endNs, ctx, at) => this.distributionOf(meta, metric, reason)?.exemplars?.offer(valueNs, endNs, ctx, at),
    settled: (from, to, ok) => {
      for (const s of [...this.retiring, ...[...this.byPid.values()].flat()]) {
        s.latency.exemplars!.settle(from, to, ok);
        for (const h of Object.values(s.holds)) h.time.exemplars!.settle(from, to, ok);
      }
    },
  };

  /** The histogram a span's value went to, if its series is still here (never opens one: an exemplar alone is no
   *  observation). */
  private distributionOf(meta: ProcessMeta, metric: ExemplarMetric, reason: string | undefined): Distribution | undefined {
    let s = this.current.get(meta.pid);
    if (!s?.matches(meta)) s = this.byPid.get(meta.pid)?.find((x) => x.matches(meta)) ?? this.retiring.find((x) => x.pid === meta.pid && x.matches(meta));
    if (!s) return undefined;
    return metric === "request_latency" ? s.latency : s.holds[reason as Hold["reason"]]?.time;
  }

  /** Opens a process's series before its first observation, so that rate() counts that observation too. */
  attach(meta: ProcessMeta): void {
    this.series(meta);
  }

  observeWindow(meta: ProcessMeta, w: RequestWindow): void {
    const s = this.series(meta);
    s.latency.record(w.durNs);
    if (w.device) {
      s.gpuTime.record(w.device.gpuNs);
      s.queueDelay.record(w.device.queueNs);
    }
  }

  /** A window of the process has no device times, for this reason (docs/gpu-time.md). */
  observeGpuTimeMissing(meta: ProcessMeta, reason: string): void {
    // a reason a newer shim may add is not exported until it is defined here
    const r = this.series(meta).gpuMissing[reason];
    if (r) r.count++;
  }

  /** One kernel's device time (ns), measured by CUPTI (TAILGUARD_KERNEL_TIMING). */
  observeKernelTime(meta: ProcessMeta, kernel: string, ns: number): void {
    this.series(meta).kernel(kernel).record(ns);
  }

  observeHold(meta: ProcessMeta, h: Hold): void {
    // `?.`: a reason a newer shim may add is not exported until it is defined here
    this.series(meta).holds[h.reason]?.time.record(h.durNs);
  }

  /** `count` launches, with the launch-call times (ns) the shim sampled among them. */
  observeLaunches(meta: ProcessMeta, count: number, apiNs: ArrayLike<number> = []): void {
    const s = this.series(meta);
    s.launches += count;
    for (let i = 0; i < apiNs.length; i++) s.apiTime.record(apiNs[i]);
  }

  /** Records the shim lost to a full ring (a delta since the last call). */
  addDropped(meta: ProcessMeta, records: number): void {
    this.series(meta).dropped += records;
  }

  /** A ring was quarantined. */
  addCorruptRing(): void {
    this.ringsCorrupt++;
  }

  setProcesses(attached: number, inFlight: number): void {
    this.attached = attached;
    this.inFlight = inFlight;
  }

  /** The process has gone: its series are exported `forgetAfterMs` longer, then no more. */
  forget(pid: number): void {
    const all = this.byPid.get(pid);
    if (!all) return;
    const at = Date.now() + this.forgetAfterMs;
    for (const s of all) s.retireAt = at;
    this.retiring.push(...all);
    this.byPid.delete(pid);
    this.current.delete(pid);
  }

  /** Pushes a last OTLP export and stops (at most once: later calls wait for the first). */
  shutdown(): Promise<void> {
    this.closing ??= this.provider.shutdown();
    return this.closing;
  }

  private series(meta: ProcessMeta): ProcessSeries {
    const s = this.current.get(meta.pid);
    if (s !== undefined && s.matches(meta)) return s;
    return this.open(meta);
  }

  /** A process's series for its labels now: one it had, one of its forgotten ones (records that came after forget,
   *  or a reused pid: Prometheus must not see two series with one label set), or a new one. The series it had under
   *  other labels (its priority, GPU or command changed) leave the export at the next collection, as a forgotten
   *  process's do after forgetAfterMs: one live label set per process, the old one going stale; a record with the old
   *  labels before that collection takes it back. */
  private open(meta: ProcessMeta): ProcessSeries {
    let all = this.byPid.get(meta.pid);
    let s = all?.find((x) => x.matches(meta));
    if (all && all.length > (s ? 1 : 0)) {
      const now = Date.now();
      for (const old of all) if (old !== s) old.retireAt = now;
      this.retiring.push(...all.filter((x) => x !== s));
      all = s ? [s] : [];
      this.byPid.set(meta.pid, all);
    }
    if (!s) {
      const i = this.retiring.findIndex((x) => x.pid === meta.pid && x.matches(meta));
      if (i >= 0) {
        s = this.retiring[i];
        s.retireAt = Infinity;
        this.retiring.splice(i, 1);
      } else {
        s = new ProcessSeries(
          meta.pid,
          meta.priority,
          meta.gpu?.uuid ?? "unknown",
          meta.cmdline[0],
          meta.serviceName,
          commandLabel(meta),
          kubernetesLabels(meta),
        );
      }
      if (!all) this.byPid.set(meta.pid, (all = []));
      all.push(s);
    }
    this.current.set(meta.pid, s);
    return s;
  }

  private pushReader(otlp: OtlpMetricsOptions, producer: MetricProducer): MetricReader {
    const inner = otlp.exporter;
    const counting: PushMetricExporter = {
      export: (metrics, done) =>
        inner.export(metrics, (result) => {
          if (result.code !== ExportResultCode.SUCCESS) this.metricExportFailures++;
          done(result);
        }),
      forceFlush: () => inner.forceFlush(),
      shutdown: () => inner.shutdown(),
      selectAggregationTemporality: inner.selectAggregationTemporality?.bind(inner),
      selectAggregation: inner.selectAggregation?.bind(inner),
    };
    return new PeriodicExportingMetricReader({
      exporter: counting,
      exportIntervalMillis: otlp.intervalMs,
      exportTimeoutMillis: Math.min(otlp.exportTimeoutMs ?? 30_000, otlp.intervalMs),
      metricProducers: [producer],
    });
  }

  /** Answers a Prometheus scrape of /metrics: every series under the Prometheus names (a 404 without `prometheus`), in
   *  the Prometheus 0.0.4 text, or in OpenMetrics 1.0 with the histograms' exemplars to a scraper that prefers it
   *  (openmetrics.ts). Both are written from the same collection. */
  scrape(req: IncomingMessage, res: ServerResponse): void {
    const reader = this.scrapeReader;
    if (!reader) {
      res.writeHead(404).end();
      return;
    }
    reader.collect().then(
      ({ resourceMetrics }) => {
        if (wantsOpenMetrics(req.headers.accept)) {
          res.writeHead(200, { "content-type": OPENMETRICS_CONTENT_TYPE });
          res.end(serializeOpenMetrics(resourceMetrics, (name) => BY_OTEL_NAME.get(name)));
          return;
        }
        res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE });
        res.end(this.serializer.serialize(prometheusNames(resourceMetrics)));
      },
      (err: unknown) => res.writeHead(500).end(`# collection failed: ${String(err)}\n`),
    );
  }

  /** Every series now, as cumulative OTel metric data under the OTel names. */
  private produce(): CollectionResult {
    const now = Date.now();
    if (this.retiring.length > 0) this.retiring = this.retiring.filter((s) => s.retireAt > now);
    const end = hrTime();
    const labelled = this.labelled();
    const all = [...labelled.keys()];
    const attrsOf = (s: ProcessSeries) => (labelled.get(s) ? s.attrsWithPid : s.attrs);

    const perSeries = (key: MetricKey, value: (s: ProcessSeries) => number) =>
      metricData(key, all.map((s) => ({ attributes: attrsOf(s), startTime: s.start, endTime: end, value: value(s) })));
    const agentWide = (value: number) => [{ attributes: {}, startTime: this.start, endTime: end, value }];
    const point = <T>(s: ProcessSeries, attributes: Attributes, value: T): DataPoint<T> => ({
      attributes,
      startTime: s.start,
      endTime: end,
      value,
    });
    const histogram = (s: ProcessSeries, attributes: Attributes, d: Distribution): ExemplarPoint => {
      const p: ExemplarPoint = point(s, attributes, d.value());
      const exemplars = d.exemplars?.exemplars();
      if (exemplars?.length) p.exemplars = exemplars;
      return p;
    };

    const errors: unknown[] = [];
    let spans: SpanCounts = { exported: 0, dropped: 0, failed: 0 };
    let drain: DrainHealth = { recordsRead: 0, backlog: 0, lagSeconds: 0 };
    try {
      if (this.spanStats) spans = this.spanStats();
      if (this.drain) drain = this.drain();
    } catch (err) {
      errors.push(err);
    }
    const own = ownProcess();

    const metrics: MetricData[] = [
      metricData("request_latency", all.map((s) => histogram(s, attrsOf(s), s.latency))),
      metricData("hold_time", all.flatMap((s) => Object.values(s.holds).map((h) => histogram(s, labelled.get(s) ? h.attrsWithPid : h.attrs, h.time)))),
      metricData("request_gpu_time", all.map((s) => point(s, attrsOf(s), s.gpuTime.value()))),
      metricData("request_queue_delay", all.map((s) => point(s, attrsOf(s), s.queueDelay.value()))),
      metricData("launch_api_time", all.map((s) => point(s, attrsOf(s), s.apiTime.value()))),
      perSeries("launches", (s) => s.launches),
      perSeries("request_windows", (s) => s.latency.count),
      metricData("holds", all.flatMap((s) => Object.values(s.holds).map((h) => point(s, labelled.get(s) ? h.attrsWithPid : h.attrs, h.time.count)))),
      metricData("gpu_time_missing", all.flatMap((s) => Object.values(s.gpuMissing).map((m) => point(s, labelled.get(s) ? m.attrsWithPid : m.attrs, m.count)))),
      perSeries("records_dropped", (s) => s.dropped),
      metricData("spans_exported", agentWide(spans.exported)),
      metricData("spans_dropped", agentWide(spans.dropped)),
      metricData("spans_failed", agentWide(spans.failed)),
      metricData("metric_export_failures", agentWide(this.metricExportFailures)),
      metricData("rings_corrupt", agentWide(this.ringsCorrupt)),
      metricData("processes_attached", agentWide(this.attached)),
      metricData("processes_in_flight", agentWide(this.inFlight)),
      metricData("records_read", agentWide(drain.recordsRead)),
      metricData("rings_backlog", agentWide(drain.backlog)),
      metricData("drain_lag", agentWide(drain.lagSeconds)),
      metricData("build_info", [{ attributes: BUILD, startTime: this.start, endTime: end, value: 1 }]),
      metricData("process_cpu", agentWide(own.cpuSeconds)),
      metricData("process_resident_memory", agentWide(own.residentBytes)),
      metricData("process_start_time", agentWide(own.startTimeSeconds)),
    ];
    // kernel device times only where a process times kernels (TAILGUARD_KERNEL_TIMING): no empty metric otherwise
    const kernels = all.flatMap((s) => [...s.kernels.values()].map((k) => point(s, labelled.get(s) ? k.attrsWithPid : k.attrs, k.time.value())));
    if (kernels.length) metrics.splice(5, 0, metricData("kernel_gpu_time", kernels));
    // what /proc alone says is left out where it cannot be read, rather than exported as a false zero
    if (own.virtualBytes !== null) metrics.push(metricData("process_virtual_memory", agentWide(own.virtualBytes)));
    if (own.openFds !== null) metrics.push(metricData("process_open_fds", agentWide(own.openFds)));
    if (own.maxFds !== null) metrics.push(metricData("process_max_fds", agentWide(own.maxFds)));
    try {
      if (this.snapshots) metrics.push(...this.percentileGauges(this.snapshots(), end, labelled));
    } catch (err) {
      errors.push(err);
    }
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: { name: "tailguard" }, metrics }] },
      errors,
    };
  }

  /**
   * The series to export now, each with whether it carries its pid: all of them with --pid-label; else only those
   * whose other labels another exported series has too (two live processes of one pod, command, priority and GPU).
   * A forgotten process's series whose labels a live process has now (a restart within forgetAfterMs) leaves the
   * export at once: its label set goes on with the new process, its counter reset as any restart resets it.
   */
  private labelled(): Map<ProcessSeries, boolean> {
    const out = new Map<ProcessSeries, boolean>();
    const live: ProcessSeries[] = [];
    for (const list of this.byPid.values()) live.push(...list);
    if (this.pidLabel) {
      for (const s of [...this.retiring, ...live]) out.set(s, true);
      return out;
    }
    const liveKeys = new Set(live.map((s) => s.key));
    const exported = [...this.retiring.filter((s) => !liveKeys.has(s.key)), ...live];
    const count = new Map<string, number>();
    for (const s of exported) count.set(s.key, (count.get(s.key) ?? 0) + 1);
    for (const s of exported) out.set(s, count.get(s.key)! > 1);
    return out;
  }

  private percentileGauges(snapshots: SeriesSnapshot[], end: HrTime, labelled: Map<ProcessSeries, boolean>): MetricData[] {
    const points = new Map<MetricKey, DataPoint<number>[]>();
    for (const snap of snapshots) {
      const key = PERCENTILE_GAUGES[snap.metric];
      if (!key || snap.count === 0) continue;
      const { pid, priority, gpu } = snap.key;
      // the gauges follow the process's series: a process forgotten and retired is gone from them too, whatever
      // the histogram store still holds
      const s = this.byPid.get(pid)?.find((x) => x.priority === priority && x.gpu === gpu) ??
        this.retiring.find((x) => x.pid === pid && x.priority === priority && x.gpu === gpu);
      if (!s || !labelled.has(s)) continue;
      const attrs = labelled.get(s) ? s.attrsWithPid : s.attrs;
      let list = points.get(key);
      if (!list) points.set(key, (list = []));
      for (const [label, percentile] of PERCENTILE_LABELS) {
        const ns = snap.percentiles[label];
        if (ns === undefined) continue;
        list.push({
          attributes: { ...attrs, percentile },
          startTime: s.start,
          endTime: end,
          value: ns / 1e9,
        });
      }
    }
    return [...points].map(([key, list]) => metricData(key, list));
  }
}

function descriptor(key: MetricKey) {
  const d: MetricDefinition = METRICS[key];
  const valueType = d.unit === "s" ? ValueType.DOUBLE : ValueType.INT;
  return { name: d.otel, description: d.description, unit: d.unit, valueType };
}

/** A metric's data as the SDK's readers take it, of the kind METRICS gives it: a histogram, a monotonic sum (a
 *  counter) or a gauge; cumulative, like every series here. */
function metricData(key: MetricKey, dataPoints: DataPoint<Histogram>[] | DataPoint<number>[]): MetricData {
  const d: MetricDefinition = METRICS[key];
  const common = { descriptor: descriptor(key), aggregationTemporality: AggregationTemporality.CUMULATIVE };
  if (d.type === "histogram")
    return { ...common, dataPointType: DataPointType.HISTOGRAM, dataPoints: dataPoints as DataPoint<Histogram>[] };
  const points = dataPoints as DataPoint<number>[];
  return d.type === "counter"
    ? { ...common, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points }
    : { ...common, dataPointType: DataPointType.GAUGE, dataPoints: points };
}

/** build_info's labels. */
const BUILD: Attributes = { version: agentVersion, node: process.versions.node };

const PROMETHEUS_NAME = new Map<string, string>(Object.values(METRICS).map((d) => [d.otel, d.prometheus]));
const BY_OTEL_NAME = new Map<string, MetricDefinition>(Object.values(METRICS).map((d) => [d.otel, d]));

/** The collection with METRICS' Prometheus names (the serializer only turns dots into underscores). */
function prometheusNames(rm: ResourceMetrics): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.map(
        (m) => ({ ...m, descriptor: { ...m.descriptor, name: PROMETHEUS_NAME.get(m.descriptor.name) ?? m.descriptor.name } }) as MetricData,
      ),
    })),
  };
}

/** OTLP metric push for `config` (otel-env.ts): http/protobuf or http/json, always cumulative (the series here are),
 *  histograms with their exemplars (otlp-metrics.ts). */
export function otlpMetricExporter(config: OtlpMetricsExport): OtlpMetricsOptions {
  const options = { ...exporterOptions(config), temporalityPreference: AggregationTemporalityPreference.CUMULATIVE };
  const exporter = new OtlpExemplarMetricExporter(options, config.protocol === "http/json" ? "http/json" : "http/protobuf");
  return { exporter, intervalMs: config.intervalMs, exportTimeoutMs: config.exportTimeoutMs };
}
