// Request windows from the shim's records: what the agent assembles from each ring before the histograms, spans and
// metrics see it (agent/src/model.ts). One WindowAssembler per ring.
//
// A ring has one lane per launching thread and the collector hands over each lane's records in order, but the lanes
// of one ring arrive one after another, so a window's end can be read before another thread's launches that fall
// inside it. Windows are therefore finished one pump late (`settle`): by then every record written before the end
// record was published has been drained. Launches and holds are placed by time, not by arrival.
//
// The hot path (every launch) reads a few fields straight from the batch and allocates nothing unless the launch is
// kept for its window's spans (at most `launchLimit` per window).
import { AT_TID, AT_DUR, AT_BLOCK, AT_FLAGS, AT_GRID, AT_HOLD_CAUSE_PID, AT_HOLD_CAUSE_PRIORITY, AT_HOLD_CAUSE_WINDOW, AT_HOLD_PRIORITY, AT_HOLD_RELEASED_BY, AT_KERNEL, AT_KIND, AT_OP, AT_STREAM, AT_T_START, AT_WINDOW_LAUNCHES, AT_WINDOW_SEQ, AT_WINDOW_STREAMS, durationNs, durationOf, Flag, Kind, RECORD_SIZE, ReleaseName } from "./record.js";
import type { Hold, Launch, NvtxRange, ProcessMeta, RequestWindow, TracedRequest } from "../model.js";
import { RangeTracker } from "./ranges.js";
import { HOLD_JOINS_WINDOW_NS, requestOf } from "./requests.js";
import { GpuTimes } from "./gpu-time.js";
import { KernelTimes, type KernelTime } from "./kernel-time.js";
import { ContextTracker, traceContextOf, windowContexts } from "./contexts.js";
import { TracedRequests, type Assembling } from "./traced.js";

/** Where assembled telemetry goes. */
export interface WindowSink<P> {
  window(proc: P, w: RequestWindow): void;
  hold(proc: P, h: Hold): void;
  /** a launch's time in the call, for the launches the shim timed (1 in 8 per thread) */
  launchApiTime(proc: P, ns: number): void;
  /** a window's device times are missing, and why (docs/gpu-time.md) */
  gpuTimeMissing?(proc: P, reason: string): void;
  /** one kernel's device time, measured by CUPTI (TAILGUARD_KERNEL_TIMING; kernel-time.ts) */
  kernelTime?(proc: P, k: KernelTime): void;
  /** whether a window's launches are wanted (its spans show them); asked before `window`, without them. Default: yes */
  wantsLaunches?(proc: P, w: RequestWindow): boolean;
  /** a request with a trace context has ended (traced.ts): its own request span */
  request?(proc: P, r: TracedRequest): void;
  /** whether a request's launches are wanted; asked before `request`, without them. Default: yes */
  wantsRequestLaunches?(proc: P, r: TracedRequest): boolean;
}

const HOLD_REASON: Record<number, Hold["reason"]> = { 1: "priority", 2: "budget", 3: "share" };
const LAUNCH_OP: Record<number, Launch["op"]> = { 1: "kernel", 2: "graph", 3: "host_func" };
/** How long before its begin record a window's first launch can have been called (the shim's scheduler work). */
const LAUNCH_BEFORE_BEGIN_NS = 1_000_000n;
/** Launch records kept between drain passes for the spans of windows still to finish (64 bytes each). */
const LAUNCHES_BUFFERED = 1 << 17;
/** Holds kept for windows still to finish at most (a window that never ends must not keep every hold) */
const HOLDS_BUFFERED = 1 << 16;
/** an NVTX message that is a traceparent (as contexts.ts reads one) */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** The launch record at byte o of b, as an object (names: the ring's name table). */
function decodeLaunch(b: Buffer, o: number, names: Map<number, string>): Launch {
  const op = LAUNCH_OP[b[o + AT_OP]] ?? "kernel";
  const kernel = b.readUInt32LE(o + AT_KERNEL);
  const l: Launch = {
    name: op === "graph" ? "(graph)" : (names.get(kernel) ?? `#${kernel}`),
    op,
    t: b.readBigUInt64LE(o + AT_T_START),
    apiNs: durationNs(b, o),
    stream: b.readBigUInt64LE(o + AT_STREAM),
    tid: b.readUInt32LE(o + AT_TID),
  };
  if (op === "kernel") {
    l.grid = [b.readUInt32LE(o + AT_GRID), b.readUInt32LE(o + AT_GRID + 4), b.readUInt32LE(o + AT_GRID + 8)];
    l.block = [b.readUInt16LE(o + AT_BLOCK), b.readUInt16LE(o + AT_BLOCK + 2), b.readUInt16LE(o + AT_BLOCK + 4)];
  }
  return l;
}

/** How long after its end (by the shims' clock) a window is finished at the earliest: the records of its other
 *  threads have that long to come through the collector (see settle). */
const SETTLE_NS = 20_000_000n;

interface OpenWindow {
  seq: number;
  t: bigint;
  end: bigint;
  durNs: number;
  launchCount: number;
  streams: number;
  /** the thread that ended it */
  endTid: number;
}

export interface AssemblerCounts {
  records: number;
  launches: number;
  windows: number;
  holds: number;
}

/** Launch records waiting to be placed in a window: where each lies in the batch it came in (batches are kept while
 *  any of their launches wait) and its time; no object per launch (at a million records a second, one each would cost
 *  more than everything else). Decoded into Launch objects only for the windows whose spans show them. */
class LaunchBuffer {
  /** each launch's time, in ns after `base` (exact as a double for 104 days) */
  private times = new Float64Array(1024);
  private offsets = new Uint32Array(1024);
  /** the number of the batch each launch is in */
  private batchOf = new Float64Array(1024);
  n = 0;
  private sorted = true;
  private base = -1n;
  private baseHi = 0;
  private baseLo = 0;
  /** batches from number `firstBatch` on */
  private batches: Buffer[] = [];
  private firstBatch = 0;

  get batchCount(): number {
    return this.batches.length;
  }

  /** ns after base of a time */
  rel(t: bigint): number {
    return this.base < 0n ? 0 : Number(t - this.base);
  }

  /** Keeps the launch record at offset o of a batch; the batch is kept while any launch of it is. */
  push(data: Buffer, o: number): void {
    if (this.batches.length === 0 || this.batches[this.batches.length - 1] !== data) this.batches.push(data);
    const batch = this.firstBatch + this.batches.length - 1;
    const lo = data.readUInt32LE(o + AT_T_START);
    const hi = data.readUInt32LE(o + AT_T_START + 4);
    if (this.base < 0n) {
      this.base = (BigInt(hi) << 32n) | BigInt(lo);
      this.baseHi = hi;
      this.baseLo = lo;
    }
    const rel = (hi - this.baseHi) * 4294967296 + (lo - this.baseLo);
    const n = this.n;
    if (n === this.times.length) this.grow();
    if (n > 0 && rel < this.times[n - 1]) this.sorted = false;
    this.times[n] = rel;
    this.offsets[n] = o;
    this.batchOf[n] = batch;
    this.n = n + 1;
  }

  private grow() {
    const grown = <T extends Float64Array | Uint32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.times = grown(this.times);
    this.offsets = grown(this.offsets);
    this.batchOf = grown(this.batchOf);
  }

  /** Puts the launches in time order (they arrive in order per lane; lanes of several threads interleave). */
  sort(): void {
    if (this.sorted) return;
    const order = Array.from({ length: this.n }, (_, i) => i).sort((a, b) => this.times[a] - this.times[b]);
    const times = new Float64Array(this.times.length);
    const offsets = new Uint32Array(this.offsets.length);
    const batchOf = new Float64Array(this.batchOf.length);
    order.forEach((from, to) => {
      times[to] = this.times[from];
      offsets[to] = this.offsets[from];
      batchOf[to] = this.batchOf[from];
    });
    this.times = times;
    this.offsets = offsets;
    this.batchOf = batchOf;
    this.sorted = true;
  }

  /** The index of the first launch at or after rel (sorted). */
  firstAtOrAfter(rel: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid] < rel) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The time and thread of launch i. */
  timeAt(i: number): bigint {
    return this.base + BigInt(this.times[i]);
  }

  tidAt(i: number): number {
    return this.batches[this.batchOf[i] - this.firstBatch].readUInt32LE(this.offsets[i] + AT_TID);
  }

  /** Forgets the first k launches, and the batches no launch is in any more. */
  drop(k: number): void {
    k = Math.max(0, Math.min(k, this.n));
    if (k > 0) {
      this.times.copyWithin(0, k, this.n);
      this.offsets.copyWithin(0, k, this.n);
      this.batchOf.copyWithin(0, k, this.n);
      this.n -= k;
    }
    let oldest = this.firstBatch + this.batches.length;
    for (let i = 0; i < this.n; i++) if (this.batchOf[i] < oldest) oldest = this.batchOf[i];
    if (oldest > this.firstBatch) {
      this.batches.splice(0, oldest - this.firstBatch);
      this.firstBatch = oldest;
    }
  }

  decode(i: number, names: Map<number, string>): Launch {
    return decodeLaunch(this.batches[this.batchOf[i] - this.firstBatch], this.offsets[i], names);
  }
}

export class WindowAssembler<P> {
  readonly counts: AssemblerCounts = { records: 0, launches: 0, windows: 0, holds: 0 };
  /** launches and holds not yet placed in a window, in arrival order (sorted by time when a window settles) */
  private launches = new LaunchBuffer();
  private holds: Hold[] = [];
  /** windows whose end record has been read, waiting one pump for stragglers of other lanes */
  private ended: OpenWindow[] = [];
  private settling: OpenWindow[] = [];
  /** sequence numbers of the windows in `ended` and `settling` */
  private endedSeqs = new Set<number>();
  /** the longest hold in `holds` (ns): how far before a window a hold that joins it can have begun */
  private longestHold = 0;
  /** windows that have begun and not ended (seq → begin time): launches after them must be kept */
  private open = new Map<number, bigint>();
  /** the end of the latest window finished: launches before it belonged to that one */
  private lastEnd = 0n;
  /** device times of windows still to settle (gpu-time.ts) */
  readonly gpuTimes = new GpuTimes();
  /** device times of launches, where the shim times kernels (kernel-time.ts) */
  readonly kernelTimes = new KernelTimes();
  /** its last ended windows (begin, end), for busyDuring */
  private readonly recent: { seq: number; t: bigint; end: bigint }[] = [];
  /** the application's trace contexts (CONTEXT records), by thread and time */
  private readonly contexts: ContextTracker;
  /** the requests with a trace context, each finished at its end */
  private readonly traced = new TracedRequests();
  /** requests with a trace context that ended, waiting for their kernels' device times (kernel-time.ts) */
  private kernelWait: Assembling[] = [];
  /** the process's NVTX ranges, for the spans of the windows they overlap */
  readonly ranges = new RangeTracker();

  constructor(
    readonly meta: ProcessMeta,
    readonly proc: P,
    private readonly sink: WindowSink<P>,
    private readonly names: Map<number, string>,
    private readonly launchLimit = 256,
  ) {
    this.contexts = new ContextTracker(names);
  }

  /** Launch records kept for windows still to finish, and the batches they are in (memory held for them). */
  get buffered(): { launches: number; batches: number } {
    return { launches: this.launches.n, batches: this.launches.batchCount };
  }

  /** What is kept for trace contexts (bounded whatever the program does): requests with a trace context open, waiting
   *  or remembered for links (traced.ts), thread requests kept for windows (contexts.ts), and holds for windows. */
  get contextsHeld(): { requests: number; intervals: number; holds: number } {
    return { requests: this.traced.held, intervals: this.contexts.held, holds: this.holds.length };
  }

  /** A request window has begun and not ended (the process has GPU work in flight). */
  get inFlight(): boolean {
    return this.open.size > 0;
  }

  /** The window of this process that had work in flight longest during [from, to] (monotonic ns), and for how long
   *  (ns), or null: what another process's request queued behind on the GPU (docs/gpu-time.md). A window still open
   *  counts as in flight until `to`. */
  busyDuring(from: bigint, to: bigint): { seq: number; ns: number } | null {
    let best: { seq: number; ns: number } | null = null;
    const consider = (seq: number, t: bigint, end: bigint) => {
      const a = t > from ? t : from, b = end < to ? end : to;
      if (b > a && (!best || Number(b - a) > best.ns)) best = { seq, ns: Number(b - a) };
    };
    for (const [seq, t] of this.open) consider(seq, t, to);
    for (const w of [...this.ended, ...this.settling]) consider(w.seq, w.t, w.end);
    for (const w of this.recent) consider(w.seq, w.t, w.end);
    return best;
  }

  /** Reads one batch of raw records (a whole number of 64-byte records). */
  ingest(data: Buffer): void {
    const n = data.length;
    let launches = 0;
    for (let o = 0; o < n; o += RECORD_SIZE) {
      const kind = data[o + AT_KIND];
      if (kind === Kind.LAUNCH) {
        launches++;
        const flags = data.readUInt16LE(o + AT_FLAGS);
        if (!(flags & Flag.UNTIMED)) this.sink.launchApiTime(this.proc, durationOf(flags, data.readUInt32LE(o + AT_DUR)));
        // kept only while a window is open (or may be: a begin can arrive after launches of other lanes)
        if (this.launches.n < LAUNCHES_BUFFERED && !(flags & Flag.CAPTURED)) this.launches.push(data, o);
        if (this.traced.active && !(flags & Flag.CAPTURED)) this.traced.launch(data, o);
      } else if (kind === Kind.WINDOW) this.windowRecord(data, o);
      else if (kind === Kind.HOLD) this.holdRecord(data, o);
      else if (kind === Kind.GPU_TIME) {
        const missing = this.gpuTimes.record(data, o);
        if (missing) this.sink.gpuTimeMissing?.(this.proc, missing);
      }
      else if (kind === Kind.KERNEL_TIME) {
        const k = this.kernelTimes.record(data, o, this.names);
        if (k) this.sink.kernelTime?.(this.proc, k);
      }
      else if (kind === Kind.CONTEXT) this.contexts.record(data, o, this.traced.context(data, o));
      else if (kind === Kind.SYNC && this.traced.active) this.traced.sync(data, o);
      else if (kind === Kind.COPY && this.traced.active) this.traced.copy(data, o);
      else if (kind === Kind.RANGE) this.ranges.record(data, o, this.names);
    }
    this.counts.records += n / RECORD_SIZE;
    this.counts.launches += launches;
  }

  private windowRecord(data: Buffer, o: number) {
    const t = data.readBigUInt64LE(o + AT_T_START);
    const seq = data.readUInt32LE(o + AT_WINDOW_SEQ) + data.readUInt32LE(o + AT_WINDOW_SEQ + 4) * 4294967296;
    // a process's windows follow one another: one still open two windows later lost its end record (the ring was
    // full), and must not keep launches (and their batches) forever. (The window just before may still be open here:
    // its end can be in another lane's records, read later.)
    for (const open of this.open.keys()) if (open < seq - 1) this.open.delete(open);
    if (data[o + AT_OP] === 1) {
      this.open.set(seq, t); // begin (its end may have been read first, from another lane)
      if (this.endedSeqs.has(seq)) this.open.delete(seq);
      return;
    }
    const durNs = durationNs(data, o) ?? 0;
    this.endedSeqs.add(seq);
    this.ended.push({
      seq,
      t,
      end: t + BigInt(durNs),
      durNs,
      launchCount: data.readUInt32LE(o + AT_WINDOW_LAUNCHES),
      streams: data.readUInt32LE(o + AT_WINDOW_STREAMS),
      endTid: data.readUInt32LE(o + AT_TID),
    });
    this.open.delete(seq);
  }

  private holdRecord(data: Buffer, o: number) {
    const reason = HOLD_REASON[data[o + AT_OP]] ?? "priority";
    const caused = reason !== "budget";
    const h: Hold = {
      pid: this.meta.pid,
      reason,
      t: data.readBigUInt64LE(o + AT_T_START),
      durNs: durationNs(data, o) ?? 0,
      priority: data.readInt32LE(o + AT_HOLD_PRIORITY),
      causePid: caused ? data.readUInt32LE(o + AT_HOLD_CAUSE_PID) : null,
      causePriority: caused ? data.readInt32LE(o + AT_HOLD_CAUSE_PRIORITY) : null,
      causeWindow: caused ? Number(data.readBigUInt64LE(o + AT_HOLD_CAUSE_WINDOW)) : null,
      releasedBy: ReleaseName[data.readUInt32LE(o + AT_HOLD_RELEASED_BY)] ?? "unknown",
      tid: data.readUInt32LE(o + AT_TID),
    };
    this.counts.holds++;
    this.sink.hold(this.proc, h);
    if (this.traced.active) this.traced.hold(h);
    this.holds.push(h);
    if (this.holds.length > HOLDS_BUFFERED) this.holds.splice(0, this.holds.length - HOLDS_BUFFERED / 2);
    if (h.durNs > this.longestHold) this.longestHold = h.durNs;
  }

  /** Finishes the windows that ended before the previous call (or all of them when the ring is closed). */
  settle(final = false): void {
    let ready = final ? [...this.settling, ...this.ended] : this.settling;
    this.settling = final ? [] : this.ended;
    this.ended = [];
    if (!final && ready.length) {
      // A window that ended less than SETTLE_NS ago by the shims' clock (CLOCK_MONOTONIC, as hrtime's) waits: the
      // collector reads a ring's lanes one after another, so a launch another thread published just before the end
      // can come a poll after it, and later still when the machine is loaded. (Times not near now, as in tests that
      // make their records up, do not wait.)
      const now = process.hrtime.bigint();
      const young = (w: OpenWindow) => w.end <= now && now - w.end < SETTLE_NS;
      if (ready.some(young)) {
        this.settling.push(...ready.filter(young));
        ready = ready.filter((w) => !young(w));
      }
    }
    if (!final && this.kernelTimes.active) {
      // a process that times kernels: its windows wait for their kernels' device times (kernel-time.ts)
      const [now, later] = this.kernelTimes.due(ready);
      ready = now;
      this.settling.push(...later);
    }
    if (ready.length) {
      this.launches.sort();
      this.holds.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      ready.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      for (const w of ready) {
        this.endedSeqs.delete(w.seq);
        this.finish(w);
      }
    }
    // the requests with a trace context that ended before the previous call: each its own span now (in a process
    // that times kernels, once their kernels' device times can have come, as its windows)
    let requests = this.traced.settle(final);
    if (this.kernelTimes.active || this.kernelWait.length) {
      const all = [...this.kernelWait, ...requests];
      [requests, this.kernelWait] = final ? [all, []] : this.kernelTimes.due(all);
    }
    for (const req of requests) this.finishRequest(req);
    let tracedHorizon = this.traced.horizon();
    for (const req of this.kernelWait) if (tracedHorizon === null || req.id.t < tracedHorizon) tracedHorizon = req.id.t;
    // what can no longer belong to a window: before every window still to be finished and any open one
    let horizon: bigint | null = null;
    for (const t of this.open.values()) if (horizon === null || t < horizon) horizon = t;
    for (const w of [...this.settling, ...this.ended]) if (horizon === null || w.t < horizon) horizon = w.t;
    if (final) this.ranges.clear();
    else {
      // ranges a window still to finish, or a request not yet finished, may show
      let before = horizon !== null && horizon - LAUNCH_BEFORE_BEGIN_NS < this.lastEnd ? horizon - LAUNCH_BEFORE_BEGIN_NS : this.lastEnd;
      if (tracedHorizon !== null && tracedHorizon < before) before = tracedHorizon;
      this.ranges.prune(before);
    }
    if (final) {
      this.launches.drop(this.launches.n);
      this.holds = [];
      this.longestHold = 0;
      return;
    }
    if (horizon !== null) {
      const holdHorizon = horizon - HOLD_JOINS_WINDOW_NS;
      this.holds = this.holds.filter((x) => x.t + BigInt(x.durNs) >= holdHorizon);
    } else if (this.holds.length > this.launchLimit) this.holds.splice(0, this.holds.length - this.launchLimit);
    // a window's launches go back to its earliest hold (a held first launch) and a moment before its begin
    let launchHorizon = horizon;
    for (const x of this.holds) if (launchHorizon === null || x.t < launchHorizon) launchHorizon = x.t;
    this.launches.sort();
    if (launchHorizon !== null)
      this.launches.drop(this.launches.firstAtOrAfter(this.launches.rel(launchHorizon - LAUNCH_BEFORE_BEGIN_NS)));
    else if (this.launches.n > this.launchLimit)
      // nothing open: what is here belongs to a window whose begin record is still to come (from another lane),
      // if to any; keep a bounded tail
      this.launches.drop(this.launches.n - this.launchLimit);
    // contexts no launch still to be placed can have run under: before those kept, and before the last window's end
    if (this.contexts.active) {
      let before = launchHorizon !== null ? launchHorizon - LAUNCH_BEFORE_BEGIN_NS : this.lastEnd;
      if (this.launches.n > 0 && this.launches.timeAt(0) < before) before = this.launches.timeAt(0);
      if (tracedHorizon !== null && tracedHorizon < before) before = tracedHorizon;
      this.contexts.forget(before);
    }
  }

  /** The requests of this process open at time t (monotonic ns), of those open now or ended lately: what a hold it
   *  caused at t waited for. */
  requestsAt(t: bigint): { id: TracedRequest["id"]; traceId: string; sampled: boolean }[] {
    return this.traced.requestsAt(t).map((r) => ({ id: r.id, traceId: r.ctx.traceId!, sampled: r.ctx.sampled }));
  }

  /** A request with a trace context, ended (or let go): its span, with its launches, holds, sync waits and ranges.
   *  One that did no GPU work (no launch, hold, copy or sync) has none: there is nothing of the GPU's to show. */
  private finishRequest(req: Assembling) {
    if (req.launchCount === 0 && req.holdCount === 0 && req.syncCount === 0 && req.copyCount === 0) return;
    const r: TracedRequest = {
      pid: this.meta.pid,
      id: req.id,
      context: traceContextOf(req.ctx, this.names),
      t: req.id.t,
      durNs: Number(req.end - req.id.t),
      open: req.finishedOpen,
      threads: req.tids.length,
      launchCount: req.launchCount,
      launches: [],
      holds: req.holds,
      holdCount: req.holdCount,
      heldNs: req.heldNs,
      syncs: req.syncs,
      syncCount: req.syncCount,
      syncNs: req.syncNs,
      ranges: this.rangesOf(req),
    };
    if (req.launchRecords && (this.sink.wantsRequestLaunches?.(this.proc, r) ?? true)) {
      const n = Math.min(req.launchCount, req.launchRecords.length / RECORD_SIZE);
      for (let i = 0; i < n; i++) r.launches.push(decodeLaunch(req.launchRecords, i * RECORD_SIZE, this.names));
      this.kernelTimes.attach(r.launches);
    }
    TracedRequests.forgetWork(req);
    this.sink.request?.(this.proc, r);
  }

  /** The NVTX ranges a request's spans show: those overlapping it whose message is its traceparent, or whose thread
   *  ran under it at their end (as windowContexts gives ranges to a window's contexts), parents before children. */
  private rangesOf(req: Assembling): NvtxRange[] {
    const all = this.ranges.forWindow(req.id.t, req.end);
    if (all.length === 0) return all;
    const index = new Map<number, number>();
    const out: NvtxRange[] = [];
    all.forEach((r, i) => {
      const tp = TRACEPARENT.exec(r.name);
      const mine = tp
        ? tp[1] === req.ctx.traceId && tp[2] === req.ctx.spanId
        : this.contexts.contextAt(r.tid, r.t + BigInt(r.durNs) - (r.durNs > 0 ? 1n : 0n))?.request === req.id;
      if (!mine) return;
      index.set(i, out.length);
      out.push({ ...r, parent: r.parent >= 0 ? (index.get(r.parent) ?? -1) : -1 });
    });
    return out;
  }

  private finish(w: OpenWindow) {
    // its holds, and where the request began: the start of the hold of its first launch, if it was held
    const { start, latencyNs, holds, heldNs } = requestOf(w, this.holds, this.longestHold);
    // its launches: made up to its end and after the previous window's end; the launch that began it was called a
    // moment before the begin record was taken (and before any hold of it)
    const from = start - LAUNCH_BEFORE_BEGIN_NS > this.lastEnd ? start - LAUNCH_BEFORE_BEGIN_NS : this.lastEnd + 1n;
    const buffer = this.launches;
    const first = buffer.firstAtOrAfter(buffer.rel(from));
    const last = buffer.firstAtOrAfter(buffer.rel(w.end) + 0.5); // launches at or before the end
    if (w.end > this.lastEnd) this.lastEnd = w.end;
    this.recent.push({ seq: w.seq, t: w.t, end: w.end });
    if (this.recent.length > 16) this.recent.shift();
    this.counts.windows++;
    const window: RequestWindow = {
      pid: this.meta.pid,
      seq: w.seq,
      t: start,
      durNs: latencyNs,
      launchCount: w.launchCount,
      streams: w.streams,
      launches: [],
      launchesDropped: w.launchCount,
      holds,
      heldNs,
      gpuNs: null,
    };
    const device = this.gpuTimes.take(w.seq, w.t, w.end);
    if (device) {
      window.device = device;
      window.gpuNs = device.gpuNs;
    }
    this.gpuTimes.forgetBefore(w.seq);
    const ranges = this.ranges.forWindow(start, w.end);
    if (ranges.length > 0) window.ranges = ranges;
    if (this.contexts.active) {
      const launches = { count: last - first, tid: (i: number) => buffer.tidAt(first + i), t: (i: number) => buffer.timeAt(first + i) };
      const contexts = windowContexts(this.contexts, { start, end: w.end, endTid: w.endTid }, launches, holds, this.launchLimit, ranges);
      if (contexts) window.contexts = contexts;
    }
    // its launches as objects only when its spans will show them (slow or sampled windows)
    if (this.sink.wantsLaunches?.(this.proc, window) ?? true) {
      for (let i = first; i < last && window.launches.length < this.launchLimit; i++)
        window.launches.push(buffer.decode(i, this.names));
      this.kernelTimes.attach(window.launches);
      window.launchesDropped = Math.max(0, w.launchCount - window.launches.length);
    }
    this.sink.window(this.proc, window);
  }
}
