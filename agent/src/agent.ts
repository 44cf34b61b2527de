// `tailguard agent`: the long-running daemon next to the inference servers. It drains the ring of every process that
// has the shim attached (found and followed by the native collector), assembles request windows and holds
// (windows.ts), and feeds them to the HDR histograms (histograms.ts), the OpenTelemetry spans (spans.ts) and the
// metrics (metrics.ts: Prometheus endpoint, OTLP).
//
// What can change while a process runs is read again every 500 ms (followChanges): its priority in force, its GPU, and
// after an exec its command line and environment. Every signal carries the new values from then on.
//
// It registers in DIR/agent.pid and beats that file every second: while registered (and for
// TAILGUARD_AGENT_GRACE_S after a crash) the shims keep the rings of processes that exit, so a restarted agent picks
// up every record still in them. Stopping on purpose (SIGINT, SIGTERM) drains what is left and unregisters.
import { chmodSync, chownSync, closeSync, existsSync, openSync, readFileSync, unlinkSync, utimesSync, writeSync } from "node:fs";
import path from "node:path";

import { Histograms, IntervalLog, type Series } from "./telemetry/histograms.js";
import { LiveState } from "./serve/live.js";
import { AgentMetrics, otlpMetricExporter } from "./telemetry/metrics.js";
import type { OtelConfig } from "./telemetry/otel-env.js";
import type { AgentStats, DeviceTimes, Hold, ProcessMeta, RequestWindow, SeriesKey } from "./model.js";
export type { AgentStats };
import { controlSlots, native, type ControlSlot, type RingInfo } from "./ingest/native.js";
import { Drain } from "./ingest/drain.js";
import { KernelTimeOp } from "./ingest/kernel-time.js";
import { readStatFields, startTicks } from "./ingest/proc.js";
import { commandName, currentIdentity, processMeta } from "./identity.js";
import { AT_KIND, earliestEndNs, Kind, RECORD_SIZE } from "./ingest/record.js";
import { otlpSpanExporter, OtlpJsonLinesExporter, SpanPipeline, type EncodedSpanExporter, type SpanPolicy, type SpansFileLimits, type WindowDecision } from "./telemetry/spans.js";
import type { ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { AgentServer, type ServerEndpoint } from "./serve/server.js";
import { liveRoutes } from "./serve/web.js";
import { WindowAssembler, type WindowSink } from "./ingest/windows.js";

/** How often the agent reads again what can change while a process runs (followChanges): a few small reads per
 *  process, so that a change reaches the spans, after their own export delay (1 s), within 2 s. */
const FOLLOW_MS = 500;

/** Records one pump handles before it lets the event loop turn (about 50 ms of work at 5 M records/s). */
const PUMP_SLICE_RECORDS = 1 << 18;

export interface AgentOptions {
  /** the ring directory (TAILGUARD_DIR) */
  dir: string;
  /** set the directory up at start for every user (gid null: mode 1777) or a group's members (mode 3770); null: leave
   *  it as it is (a missing one is made: 1777 when the agent runs as root) */
  dirAccess?: { gid: number | null } | null;
  /** Prometheus endpoint; null: none */
  prometheus: (ServerEndpoint & { host: string }) | null;
  /** what the OTEL_* variables (and --otlp) ask for: span and metric export over OTLP/HTTP, the agent's resource */
  otel: OtelConfig;
  /** also write spans as OTLP/JSON lines to this file */
  spansFile: string | null;
  /** how large the spans file grows before it is rotated, and how many full ones are kept */
  spansFileLimits?: SpansFileLimits;
  /** HdrHistogram interval log */
  intervalLog: { path: string; seconds: number } | null;
  /** request windows (at or above normal priority) longer than this breached the SLO: status ERROR, and launch spans
   *  whatever the running P99 says */
  sloMs: number | null;
  /** share of windows that get launch spans at random */
  sampleRate: number;
  /** which windows become spans (`--spans`; default "policy") and the share of batch windows sampled (`--batch-sample`;
   *  default 0.01) */
  spanPolicy?: SpanPolicy["mode"];
  batchSample?: number;
  /** how long a gone process stays exported and shown (ms; FORGET_AFTER_MS for `tailguard agent`) */
  forgetAfterMs: number;
  /** label every per-process metric with its pid (--pid-label; telemetry/metrics.ts) */
  pidLabel?: boolean;
}

/** One attached process as the agent follows it. */
/** A process's histogram series, labelled as it is now: a series' labels never change, so a change is new series. */
interface ProcessSeries {
  request: Series;
  hold: Series;
  launchApi: Series;
  /** device times of its windows (docs/gpu-time.md) */
  gpu: Series;
  queue: Series;
  /** device times of its kernels (TAILGUARD_KERNEL_TIMING) */
  kernel: Series;
}

/** A process the agent follows: one per ring. */
class Followed {
  /** the metas it had before, each with the time (monotonic ns, the shims' clock) it gave way: a window's span describes
   *  the process as it was when the window began */
  earlier: { meta: ProcessMeta; until: bigint }[] = [];
  readonly assembler: WindowAssembler<Followed>;
  /** its histogram series: made at its first launch, hold or window, when its GPU is known (identify); null before,
   *  when no record that reaches them has been read */
  series: ProcessSeries | null = null;
  /** launch API times of the batch being read, for the metrics */
  apiNs: number[] = [];
  /** whether the window being finished becomes a span and gets launch spans (asked before its launches are decoded) */
  decision: WindowDecision | undefined = undefined;
  /** the same for the request with a trace context being finished */
  requestDecision: WindowDecision | undefined = undefined;
  goneAt: number | null = null;
  p99: number | null = null;
  p99At = 0;

  constructor(
    readonly ring: number,
    /** what it is now; replaced, never changed in place, when its priority, GPU or identity changes (followChanges) */
    public meta: ProcessMeta,
    /** its command name (/proc/PID/comm) when last looked at: a change means it exec'd; null where it cannot be read */
    public comm: string | null,
    public key: SeriesKey,
    readonly names: Map<number, string>,
    public dropped: number,
    sink: WindowSink<Followed>,
  ) {
    this.assembler = new WindowAssembler(meta, this, sink, names);
  }

  get identified(): boolean {
    return this.series !== null;
  }
}

export class Agent {
  readonly histograms: Histograms;
  readonly metrics: AgentMetrics;
  /** the Prometheus endpoint and the live view; null with --no-prometheus */
  readonly server: AgentServer | null;
  readonly spans: SpanPipeline | null;
  /** the live view (web page, /api/state, `tailguard top`) */
  readonly live: LiveState;
  private readonly drain: Drain<Followed>;
  private readonly followed = new Map<number, Followed>();
  private readonly byPid = new Map<number, Followed>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly intervalLog: IntervalLog | null;
  private intervalStart = Date.now();
  private readonly registration: string;
  private totals = { records: 0, launches: 0, windows: 0, holds: 0, dropped: 0 };
  /** how the drain keeps up: the oldest record's age since the last housekeeping (ns), and what it last published */
  private lagNs = 0;
  private drainHealth = { backlog: 0, lagSeconds: 0 };
  private stopped = false;
  /** the machine's attributes in every followed process's resource, under the process's own: the agent's host.name
   *  and k8s.node.name (otel-env.ts detects them) */
  private readonly machine: Record<string, string>;
  /** a pump continued at the next turn of the event loop (pumpSlice) */
  private pumping: NodeJS.Immediate | null = null;
  /** where every process's assembler sends its windows, holds and launch times */
  private readonly sink: WindowSink<Followed> = {
    window: (p, w) => this.onWindow(p, w),
    hold: (p, h) => this.onHold(p, h),
    gpuTimeMissing: (p, reason) => this.metrics.observeGpuTimeMissing(p.meta, reason),
    kernelTime: (p, k) => {
      if (k.op !== KernelTimeOp.KERNEL) return;
      p.series?.kernel.record(k.ns);
      this.metrics.observeKernelTime(p.meta, k.kernel, k.ns);
    },
    wantsLaunches: (p, w) => (p.decision = this.spans?.decide(this.metaAt(p, w.t), w))?.launches != null,
    wantsRequestLaunches: (p, r) => (p.requestDecision = this.spans?.decideRequest(this.metaAt(p, r.t), r))?.launches != null,
    request: (p, r) => {
      this.spans?.request(this.metaAt(p, r.t), r, p.requestDecision);
      p.requestDecision = undefined;
    },
    launchApiTime: (p, ns) => {
      p.series?.launchApi.record(ns);
      p.apiNs.push(ns);
    },
  };

  private constructor(readonly opts: AgentOptions) {
    const own = opts.otel.resource;
    this.machine = Object.fromEntries((["host.name", "k8s.node.name"] as const).flatMap((k) => (own[k] ? [[k, own[k]]] : [])));
    // the exporters first: one that cannot be made (a TLS file it cannot read) must stop the agent before it registers
    // OTLP alone (the usual case) gets the lean protobuf path (spans written as bytes as windows end); with a spans
    // file too, both take ReadableSpans
    const exporters: (SpanExporter | EncodedSpanExporter)[] = [];
    if (opts.otel.traces) exporters.push(otlpSpanExporter(opts.otel.traces, !opts.spansFile));
    const metricPush = opts.otel.metrics ? otlpMetricExporter(opts.otel.metrics) : null;
    prepareDirectory(opts.dir, opts.dirAccess ?? null);
    this.registration = path.join(opts.dir, "agent.pid");
    register(this.registration);
    this.histograms = new Histograms({ intervals: Boolean(opts.intervalLog) });
    if (opts.spansFile) exporters.push(new OtlpJsonLinesExporter(opts.spansFile, opts.spansFileLimits));
    this.spans = exporters.length
      ? new SpanPipeline({
          exporter: exporters.length === 1 ? exporters[0] : new FanOutExporter(exporters as SpanExporter[]),
          sloMs: opts.sloMs ?? undefined,
          sampleRate: opts.sampleRate,
          spans: opts.spanPolicy,
          batchSample: opts.batchSample,
          slowThresholdNs: (meta) => this.slowThreshold(meta),
          processByPid: (pid) => this.byPid.get(pid)?.meta,
          causeRequests: (pid, t) => this.byPid.get(pid)?.assembler.requestsAt(t) ?? [],
          // the request and hold histograms' exemplars: spans the pipeline exported
          exemplars: {
            wants: (meta, metric, reason, ns) => this.metrics.exemplars.wants(meta, metric, reason, ns),
            offer: (meta, metric, reason, ns, end, ctx, at) => this.metrics.exemplars.offer(meta, metric, reason, ns, end, ctx, at),
            settled: (from, to, ok) => this.metrics.exemplars.settled(from, to, ok),
          },
          // one export in flight at a time: at 50k windows/s, batches of 512 leave the pipe idle between round trips
          batchSize: 2048,
        })
      : null;
    this.live = new LiveState({ stats: () => this.stats() });
    this.metrics = new AgentMetrics({
      prometheus: opts.prometheus !== null,
      otlp: metricPush,
      resource: opts.otel.resource,
      pidLabel: opts.pidLabel,
      snapshots: () => this.histograms.snapshot(),
      spanStats: () => this.spans?.stats() ?? { exported: 0, dropped: 0, failed: 0, queued: 0 },
      drain: () => ({ recordsRead: this.totals.records, ...this.drainHealth }),
    });
    // one server: Prometheus scrapes /metrics, people and `tailguard top` the live view next to it
    this.server = opts.prometheus
      ? new AgentServer(opts.prometheus, { "/metrics": (req, res) => this.metrics.scrape(req, res), ...liveRoutes(this.live) })
      : null;
    this.intervalLog = opts.intervalLog ? new IntervalLog(opts.intervalLog.path, this.histograms, this.intervalStart) : null;
    // the spool (records drained from the rings, waiting for JavaScript) is kept small: when the agent falls behind,
    // records wait in the rings, which are shared memory the processes already have, not in the agent's heap
    this.drain = new Drain(opts.dir, { pollUs: 1000, spoolLimit: 1 << 19 }, {
      opened: (info) => this.follow(info),
      name: (f, id, demangled) => f.names.set(id, demangled),
      records: (f, data) => this.ingest(f, data),
      taken: () => {
        for (const f of this.followed.values()) if (f.goneAt === null) f.assembler.settle();
      },
      corrupted: (f, info) => {
        this.metrics.addCorruptRing();
        if (f) this.live.corrupt(f.meta, info.corrupt ?? "corrupt");
      },
      closed: (f, info) => {
        f.assembler.settle(true);
        this.noteDropped(f, info);
        f.goneAt = Date.now();
        this.live.gone(f.meta);
      },
    });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const agent = new Agent(opts);
    try {
      await agent.server?.ready;
    } catch (e) {
      await agent.stop();
      const where = opts.prometheus ? `${opts.prometheus.host}:${opts.prometheus.port}` : "";
      throw new Error(`cannot serve Prometheus metrics on ${where}: ${(e as Error).message}`);
    }
    agent.timers.push(setInterval(() => agent.pumpSlice(), 10));
    agent.timers.push(setInterval(() => agent.housekeeping(), 1000));
    agent.timers.push(setInterval(() => agent.followAll(), FOLLOW_MS));
    if (opts.intervalLog) agent.timers.push(setInterval(() => agent.writeInterval(), opts.intervalLog.seconds * 1000));
    return agent;
  }

  /** The running P99 of a process's request windows: what makes a window slow enough for launch spans. */
  private slowThreshold(meta: ProcessMeta): number | null {
    const f = this.byPid.get(meta.pid);
    const windows = f?.series?.request.count ?? 0;
    if (!f || windows < 20) return null; // too few windows for a P99 to mean anything
    // a percentile read costs a pass over the histogram: refresh it every 64 windows, not at each
    if (f.p99 === null || windows - f.p99At >= 64) {
      f.p99 = this.histograms.percentile("request_latency", f.key, 99);
      f.p99At = windows;
    }
    return f.p99;
  }

  private onWindow(p: Followed, w: RequestWindow) {
    if (w.device && w.device.queueNs > 0) this.queuedBehind(p, w.device);
    p.series?.request.record(w.durNs);
    if (w.device) {
      p.series?.gpu.record(w.device.gpuNs);
      p.series?.queue.record(w.device.queueNs);
    }
    this.totals.windows++;
    this.metrics.observeWindow(p.meta, w);
    this.spans?.window(this.metaAt(p, w.t), w, p.decision);
    p.decision = undefined;
    this.live.observeWindow(p.meta, w);
  }

  /** What a window queued behind on the GPU: the other process on its GPU whose work was in flight longest while it
   *  queued (its windows, from the records read so far: one that has not ended yet counts as in flight). */
  private queuedBehind(p: Followed, d: DeviceTimes) {
    const gpu = p.meta.gpu?.uuid;
    if (!gpu) return;
    for (const f of this.followed.values()) {
      if (f === p || f.meta.gpu?.uuid !== gpu) continue;
      const busy = f.assembler.busyDuring(d.submitted, d.gpuStart);
      if (busy && (!d.behind || busy.ns > d.behind.ns))
        d.behind = { pid: f.meta.pid, priority: f.meta.priority, window: busy.seq, ns: busy.ns };
    }
  }

  private onHold(p: Followed, h: Hold) {
    p.series?.hold.record(h.durNs);
    this.totals.holds++;
    this.metrics.observeHold(p.meta, h);
    this.live.observeHold(p.meta, h);
  }

  /** The process as it was at `t` (monotonic ns): the meta in force then. */
  private metaAt(p: Followed, t: bigint): ProcessMeta {
    for (const e of p.earlier) if (t < e.until) return e.meta;
    return p.meta;
  }

  private follow(info: RingInfo): Followed {
    const meta = processMeta(info, this.machine);
    const key: SeriesKey = { pid: info.pid, priority: info.priority, gpu: "unknown" };
    const f = new Followed(info.id!, meta, commandName(info), key, new Map(), info.counters.dropped, this.sink);
    this.followed.set(f.ring, f);
    this.byPid.set(info.pid, f);
    this.live.attach(meta);
    return f;
  }

  /** At a process's first launch, hold or window: its GPU (known to its shim from its first launch on) and the series
   *  and metrics labelled with it. */
  private identify(f: Followed, data: Buffer) {
    let work = false;
    for (let o = 0; o < data.length && !work; o += RECORD_SIZE) {
      const kind = data[o + AT_KIND];
      work = kind === Kind.LAUNCH || kind === Kind.HOLD || kind === Kind.WINDOW;
    }
    if (!work) return;
    if (f.meta.gpu === null) f.meta.gpu = this.drain.status().find((r) => r.id === f.ring)?.gpu ?? null;
    f.key = { pid: f.meta.pid, priority: f.meta.priority, gpu: f.meta.gpu?.uuid ?? "unknown" }; // as it is now
    f.series = this.seriesOf(f.key);
    this.metrics.attach(f.meta);
  }

  /** A bounded pump, continued at the next turn of the event loop while there is more: exports, the metrics endpoint
   *  and the release of memory wait for the loop to turn, so catching up must not hold it for long. */
  private pumpSlice(): void {
    if (this.pumping) return;
    if (this.pump(PUMP_SLICE_RECORDS) < PUMP_SLICE_RECORDS || this.stopped) return;
    this.pumping = setImmediate(() => {
      this.pumping = null;
      this.pumpSlice();
    });
  }

  /** Moves what the collector has drained through the assemblers (at least `limit` records if there are that many);
   *  returns the number of records. */
  pump(limit = Infinity): number {
    const n = this.drain.pump(1 << 16, limit);
    this.totals.records += n;
    return n;
  }

  /** One batch of a process's records: its windows, holds and launches. */
  private ingest(f: Followed, data: Buffer) {
    if (!f.identified) this.identify(f, data);
    // the shims' clock is CLOCK_MONOTONIC, as hrtime's
    const age = Number(process.hrtime.bigint()) - earliestEndNs(data);
    if (age > this.lagNs) this.lagNs = age;
    const before = f.assembler.counts.launches;
    f.assembler.ingest(data);
    const launches = f.assembler.counts.launches - before;
    this.totals.launches += launches;
    // a batch before the first launch (the process's start alone) makes no series: it would carry no GPU
    if (f.identified) this.metrics.observeLaunches(f.meta, launches, f.apiNs);
    f.apiNs.length = 0;
  }

  private noteDropped(f: Followed, info: RingInfo) {
    const dropped = info.counters.dropped;
    if (dropped > f.dropped) {
      this.metrics.addDropped(f.meta, dropped - f.dropped);
      this.live.addDropped(f.meta, dropped - f.dropped);
      this.totals.dropped += dropped - f.dropped;
    }
    f.dropped = Math.max(f.dropped, dropped);
  }

  private housekeeping() {
    if (this.stopped) return;
    try {
      const now = new Date();
      utimesSync(this.registration, now, now); // the heartbeat the shims look at
    } catch {
      register(this.registration); // removed under us: register again
    }
    let busy = 0;
    let backlog = 0;
    for (const info of this.drain.status()) {
      const f = this.followed.get(info.id!);
      if (f) this.noteDropped(f, info);
      backlog += Math.max(0, info.counters.tail - info.counters.head);
    }
    this.drainHealth = { backlog, lagSeconds: this.lagNs / 1e9 };
    this.lagNs = 0;
    for (const [ring, f] of this.followed) {
      if (f.goneAt !== null && Date.now() - f.goneAt > this.opts.forgetAfterMs) {
        this.followed.delete(ring);
        const now = this.byPid.get(f.meta.pid);
        if (now === f) this.byPid.delete(f.meta.pid);
        // the pid's series are another ring's now (the image this process exec'd, or a new process with its pid):
        // theirs to keep
        if (now === f || now === undefined) {
          this.histograms.forget(f.meta.pid);
          this.metrics.forget(f.meta.pid);
        }
        this.live.forget(f.meta);
      } else if (f.goneAt === null && f.assembler.inFlight) busy++;
    }
    this.metrics.setProcesses([...this.followed.values()].filter((f) => f.goneAt === null).length, busy);
    for (const p of this.drain.problems()) process.stderr.write(`tailguard agent: ${p}\n`);
  }

  /** Every followed process as it is now (followChanges). */
  private followAll() {
    if (this.stopped) return;
    let slots = new Map<number, ControlSlot>();
    try {
      slots = controlSlots(this.opts.dir);
    } catch {
      /* none readable: the ring headers' priorities */
    }
    for (const info of this.drain.status()) {
      const f = this.followed.get(info.id!);
      if (f && f.goneAt === null && !info.corrupt && !info.error) this.followChanges(f, info, slots);
    }
  }

  /** A followed process as it is now, read the way `tailguard ps` reads it: its priority in force (its slot in its
   *  user's control file, else its ring header: `tailguard priority` writes both), its GPU (ring header), and, when
   *  its command name changed (an exec keeps the pid and start time), its command line and environment. */
  private followChanges(f: Followed, info: RingInfo, slots: Map<number, ControlSlot>) {
    const changes: Partial<ProcessMeta> = {};
    const priority = slots.get(info.pid)?.priority ?? info.priority;
    if (priority !== f.meta.priority) changes.priority = priority;
    if (info.gpu && info.gpu.uuid !== f.meta.gpu?.uuid) changes.gpu = info.gpu;
    const comm = f.comm === null ? null : commandName(info);
    if (comm !== null && comm !== f.comm) {
      f.comm = comm;
      const now = currentIdentity(info, this.machine);
      if (now.cmdline.join("\0") !== f.meta.cmdline.join("\0")) changes.cmdline = now.cmdline;
      if (now.serviceName !== f.meta.serviceName) changes.serviceName = now.serviceName;
      if (JSON.stringify(now.resource) !== JSON.stringify(f.meta.resource)) changes.resource = now.resource;
    }
    if (Object.keys(changes).length > 0) this.changed(f, changes);
  }

  /** A followed process's new description, for every signal from now on: its metrics move to series with the new
   *  labels (the old ones leave the export), later windows' spans and the live view carry it. A window already open
   *  keeps the description it began with for its span (metaAt). */
  private changed(f: Followed, changes: Partial<ProcessMeta>) {
    const before = f.meta;
    const meta: ProcessMeta = { ...before, ...changes };
    f.earlier.push({ meta: before, until: process.hrtime.bigint() }); // CLOCK_MONOTONIC, as the shims' timestamps
    if (f.earlier.length > 8) f.earlier.shift();
    f.meta = meta;
    this.live.update(before, meta);
    if (!f.identified) return; // its series are made at its first launch, with what it is then
    f.key = { pid: meta.pid, priority: meta.priority, gpu: meta.gpu?.uuid ?? "unknown" };
    f.series = this.seriesOf(f.key);
    f.p99 = null;
    f.p99At = 0;
    this.metrics.attach(meta); // the new series now, and the old ones out of the next collection, traffic or not
  }

  private seriesOf(key: SeriesKey): ProcessSeries {
    return {
      request: this.histograms.series("request_latency", key),
      hold: this.histograms.series("hold_time", key),
      launchApi: this.histograms.series("launch_api_time", key),
      gpu: this.histograms.series("request_gpu_time", key),
      queue: this.histograms.series("request_queue_delay", key),
      kernel: this.histograms.series("kernel_gpu_time", key),
    };
  }

  private writeInterval() {
    const end = Date.now();
    this.intervalLog?.writeInterval(this.intervalStart, end);
    this.intervalStart = end;
  }

  /** The process with this pid, as the agent knows it (also for a while after it is gone). */
  processMeta(pid: number): ProcessMeta | undefined {
    return this.byPid.get(pid)?.meta;
  }

  stats(): AgentStats {
    return {
      processes: [...this.followed.values()].filter((f) => f.goneAt === null).length,
      ...this.totals,
      spans: this.spans?.stats() ?? { exported: 0, dropped: 0, failed: 0, queued: 0 },
    };
  }

  /** Drains what is left, exports it, unregisters. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.pumping) clearImmediate(this.pumping);
    this.pump();
    for (const f of this.followed.values()) f.assembler.settle(true);
    this.drain.close();
    if (this.intervalLog) {
      this.writeInterval();
      this.intervalLog.close();
    }
    await this.spans?.shutdown();
    await this.server?.close();
    await this.metrics.shutdown();
    this.histograms.close();
    try {
      if (parseRegistration(readFileSync(this.registration, "utf8"))?.pid === process.pid) unlinkSync(this.registration);
    } catch {
      /* already gone */
    }
  }
}

/** A registration, DIR/agent.pid: "PID STARTTICKS\n", the agent's pid and its start time (field 22 of /proc/PID/stat),
 *  so that a pid left behind by an agent that crashed, and since given to another process, is not taken for an agent.
 *  The shims read the same file (tg_agent_alive, native/common/ring_files.c). An older agent's file has the pid alone. */
export function parseRegistration(text: string): { pid: number; ticks: string | null } | null {
  const m = /^\s*(\d+)(?:[ \t]+(\d+))?\s*$/.exec(text);
  return m && Number(m[1]) > 0 ? { pid: Number(m[1]), ticks: m[2] ?? null } : null;
}

/** The ring directory, made if missing (shared, mode 1777, when root makes it), and used only if it may be trusted
 *  (tailguard/directory.h: the shims apply the same rule). A directory the processes of other users cannot write to is
 *  worth a warning: they are neither recorded nor scheduled, and would not know why. */
function prepareDirectory(dir: string, access: { gid: number | null } | null) {
  let d = native().checkDir(dir, true);
  if (access && d.exists) {
    try {
      chownSync(dir, 0, access.gid ?? 0);
      chmodSync(dir, access.gid === null ? 0o1777 : 0o3770);
    } catch (e) {
      throw new Error(`--dir-access: cannot set up ${dir} (${(e as Error).message}): the agent must run as root for it`);
    }
    d = native().checkDir(dir);
  }
  if (!d.trusted || !d.writable) throw new Error(d.problem);
  if ((d.mode & 0o022) === 0)
    process.stderr.write(
      `tailguard agent: ${dir} (owner uid ${d.uid}, group ${d.gid}, mode ${d.mode.toString(8).padStart(4, "0")}) can be ` +
        `written only by uid ${d.uid}: processes of other users are neither recorded nor scheduled. For every user: ` +
        `--dir-access all (or chmod 1777 ${dir}); for a group: --dir-access group:GROUP (docs/security.md)\n`,
    );
}

/** Registers this process as the directory's agent; refuses if another live agent has it. A registration whose
 *  process is gone, or whose pid is another process now (another start time), is stale: replaced, with a notice. */
function register(file: string) {
  const other = existsSync(file) ? parseRegistration(readFileSync(file, "utf8")) : null;
  if (other && other.pid !== process.pid) {
    const state = alive(other);
    if (state === "running") throw new Error(`another tailguard agent (pid ${other.pid}) already serves ${path.dirname(file)}`);
    process.stderr.write(
      state === "reused"
        ? `tailguard agent: ${file} names pid ${other.pid} started at tick ${other.ticks}, but that pid is now another process ` +
            `(started at tick ${startTicks(readStatFields(other.pid))}): a stale registration of an agent that crashed; replacing it\n`
        : `tailguard agent: ${file} names pid ${other.pid}, which no longer runs: a stale registration of an agent that ` +
            `crashed; replacing it\n`,
    );
  }
  // a shim that reads the file while it is rewritten finds it empty, and keeps rings on its fresh time (the grace)
  const ticks = startTicks(readStatFields(process.pid));
  const fd = openSync(file, "w", 0o644);
  writeSync(fd, ticks === null ? `${process.pid}\n` : `${process.pid} ${ticks}\n`);
  closeSync(fd);
}

/** Whether a registered agent runs: its pid is alive with the registered start time ("running"), alive as another
 *  process ("reused"), or gone. Without a start time to compare (an older agent's file, an unreadable /proc), the pid
 *  alone says it. */
function alive(r: { pid: number; ticks: string | null }): "running" | "reused" | "gone" {
  try {
    process.kill(r.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return "gone";
  }
  const ticks = startTicks(readStatFields(r.pid));
  return r.ticks === null || ticks === null || ticks === r.ticks ? "running" : "reused";
}

/** Sends every batch to several exporters (OTLP and a file); the batch failed if any of them failed. */
class FanOutExporter implements SpanExporter {
  constructor(private readonly exporters: SpanExporter[]) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let left = this.exporters.length;
    let failed: ExportResult | null = null;
    for (const e of this.exporters)
      e.export(spans, (r) => {
        if (r.code !== 0 && !failed) failed = r;
        if (--left === 0) done(failed ?? r);
      });
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.shutdown()));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.forceFlush?.()));
  }
}
