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
import { Flag, Kind, RECORD_SIZE, ReleaseName } from "./record.js";
import type { Hold, Launch, ProcessMeta, RequestWindow } from "./model.js";

/** Where assembled telemetry goes. */
export interface WindowSink<P> {
  window(proc: P, w: RequestWindow): void;
  hold(proc: P, h: Hold): void;
  /** a launch's time in the call, for the launches the shim timed (1 in 8 per thread) */
  launchApiTime(proc: P, ns: number): void;
}

const HOLD_REASON: Record<number, Hold["reason"]> = { 1: "priority", 2: "window", 3: "share" };
const LAUNCH_OP: Record<number, Launch["op"]> = { 1: "kernel", 2: "graph", 3: "host_func" };
/** A hold that ended this close before a window began is the wait of that window's first launch. */
const HOLD_JOINS_WINDOW_NS = 200_000n;
/** How long before its begin record a window's first launch can have been called (the shim's scheduler work). */
const LAUNCH_BEFORE_BEGIN_NS = 1_000_000n;

interface OpenWindow {
  seq: number;
  t: bigint;
  end: bigint;
  durNs: number;
  launchCount: number;
  streams: number;
}

export interface AssemblerCounts {
  records: number;
  launches: number;
  windows: number;
  holds: number;
}

/** The index of the first item at or after time t in items sorted by time. */
function firstAtOrAfter(items: { t: bigint }[], t: bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class WindowAssembler<P> {
  readonly counts: AssemblerCounts = { records: 0, launches: 0, windows: 0, holds: 0 };
  /** launches and holds not yet placed in a window, in arrival order (sorted by time when a window settles) */
  private launches: Launch[] = [];
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

  constructor(
    readonly meta: ProcessMeta,
    readonly proc: P,
    private readonly sink: WindowSink<P>,
    private readonly names: Map<number, string>,
    private readonly launchLimit = 256,
  ) {}

  /** A request window has begun and not ended (the process has GPU work in flight). */
  get inFlight(): boolean {
    return this.open.size > 0;
  }

  /** Reads one batch of raw records (a whole number of 64-byte records). */
  ingest(data: Buffer): void {
    const n = data.length;
    let launches = 0;
    for (let o = 0; o < n; o += RECORD_SIZE) {
      const kind = data[o + 8];
      if (kind === Kind.LAUNCH) {
        launches++;
        const flags = data.readUInt16LE(o + 28);
        if (!(flags & Flag.UNTIMED)) {
          const dur = data.readUInt32LE(o + 24);
          this.sink.launchApiTime(this.proc, flags & Flag.DUR_US ? dur * 1000 : dur);
        }
        // kept only while a window is open (or may be: a begin can arrive after launches of other lanes)
        if (this.launches.length < this.launchLimit * 4 && !(flags & Flag.CAPTURED)) this.keepLaunch(data, o, flags);
      } else if (kind === Kind.WINDOW) this.windowRecord(data, o);
      else if (kind === Kind.HOLD) this.holdRecord(data, o);
    }
    this.counts.records += n / RECORD_SIZE;
    this.counts.launches += launches;
  }

  private keepLaunch(data: Buffer, o: number, flags: number) {
    const op = LAUNCH_OP[data[o + 9]] ?? "kernel";
    const dur = data.readUInt32LE(o + 24);
    const l: Launch = {
      name: op === "graph" ? "(graph)" : (this.names.get(data.readUInt32LE(o + 40)) ?? `#${data.readUInt32LE(o + 40)}`),
      op,
      t: data.readBigUInt64LE(o + 16),
      apiNs: flags & Flag.UNTIMED ? null : flags & Flag.DUR_US ? dur * 1000 : dur,
      stream: data.readBigUInt64LE(o + 32),
    };
    if (op === "kernel") {
      l.grid = [data.readUInt32LE(o + 44), data.readUInt32LE(o + 48), data.readUInt32LE(o + 52)];
      l.block = [data.readUInt16LE(o + 56), data.readUInt16LE(o + 58), data.readUInt16LE(o + 60)];
    }
    this.launches.push(l);
  }

  private windowRecord(data: Buffer, o: number) {
    const t = data.readBigUInt64LE(o + 16);
    const seq = Number(data.readBigUInt64LE(o + 40));
    if (data[o + 9] === 1) {
      this.open.set(seq, t); // begin (its end may have been read first, from another lane)
      if (this.endedSeqs.has(seq)) this.open.delete(seq);
      return;
    }
    const flags = data.readUInt16LE(o + 28);
    const dur = data.readUInt32LE(o + 24);
    const durNs = flags & Flag.DUR_US ? dur * 1000 : dur;
    this.endedSeqs.add(seq);
    this.ended.push({
      seq,
      t,
      end: t + BigInt(durNs),
      durNs,
      launchCount: data.readUInt32LE(o + 48),
      streams: data.readUInt32LE(o + 52),
    });
    this.open.delete(seq);
  }

  private holdRecord(data: Buffer, o: number) {
    const flags = data.readUInt16LE(o + 28);
    const dur = data.readUInt32LE(o + 24);
    const reason = HOLD_REASON[data[o + 9]] ?? "priority";
    const caused = reason !== "window";
    const h: Hold = {
      pid: this.meta.pid,
      reason,
      t: data.readBigUInt64LE(o + 16),
      durNs: flags & Flag.DUR_US ? dur * 1000 : dur,
      priority: data.readInt32LE(o + 60),
      causePid: caused ? data.readUInt32LE(o + 48) : null,
      causePriority: caused ? data.readInt32LE(o + 52) : null,
      causeWindow: caused ? Number(data.readBigUInt64LE(o + 40)) : null,
      releasedBy: ReleaseName[data.readUInt32LE(o + 56)] ?? "unknown",
    };
    this.counts.holds++;
    this.sink.hold(this.proc, h);
    this.holds.push(h);
    if (h.durNs > this.longestHold) this.longestHold = h.durNs;
  }

  /** Finishes the windows that ended before the previous call (or all of them when the ring is closed). */
  settle(final = false): void {
    const ready = final ? [...this.settling, ...this.ended] : this.settling;
    this.settling = final ? [] : this.ended;
    this.ended = [];
    if (ready.length) {
      this.launches.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      this.holds.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      ready.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      for (const w of ready) {
        this.endedSeqs.delete(w.seq);
        this.finish(w);
      }
    }
    // what can no longer belong to a window: before every window still to be finished and any open one
    let horizon: bigint | null = null;
    for (const t of this.open.values()) if (horizon === null || t < horizon) horizon = t;
    for (const w of [...this.settling, ...this.ended]) if (horizon === null || w.t < horizon) horizon = w.t;
    if (final) {
      this.launches = [];
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
    if (launchHorizon !== null) {
      const h = launchHorizon - LAUNCH_BEFORE_BEGIN_NS;
      this.launches = this.launches.filter((l) => l.t >= h);
    } else if (this.launches.length > this.launchLimit) {
      // nothing open: what is here belongs to a window whose begin record is still to come (from another lane),
      // if to any; keep a bounded tail
      this.launches.splice(0, this.launches.length - this.launchLimit);
    }
  }

  private finish(w: OpenWindow) {
    // its holds: those that ended inside it, or just before it began (the wait of its first launch)
    const holds: Hold[] = [];
    let heldNs = 0;
    let start = w.t;
    const earliest = w.t - HOLD_JOINS_WINDOW_NS - BigInt(this.longestHold);
    for (let i = firstAtOrAfter(this.holds, earliest); i < this.holds.length; i++) {
      const h = this.holds[i];
      if (h.t > w.end) break;
      const end = h.t + BigInt(h.durNs);
      if (end < w.t - HOLD_JOINS_WINDOW_NS || end > w.end) continue;
      holds.push(h);
      heldNs += h.durNs;
      if (h.t < start) start = h.t;
    }
    // its launches: made up to its end and after the previous window's end; the launch that began it was called a
    // moment before the begin record was taken (and before any hold of it)
    const from = start - LAUNCH_BEFORE_BEGIN_NS > this.lastEnd ? start - LAUNCH_BEFORE_BEGIN_NS : this.lastEnd + 1n;
    const launches: Launch[] = [];
    let dropped = 0;
    for (let i = firstAtOrAfter(this.launches, from); i < this.launches.length; i++) {
      const l = this.launches[i];
      if (l.t > w.end) break;
      if (launches.length < this.launchLimit) launches.push(l);
      else dropped++;
    }
    if (w.end > this.lastEnd) this.lastEnd = w.end;
    this.counts.windows++;
    // a request whose first launch was held started when that launch was called, not when it was released
    const window: RequestWindow = {
      pid: this.meta.pid,
      seq: w.seq,
      t: start,
      durNs: w.durNs + Number(w.t - start),
      launchCount: w.launchCount,
      streams: w.streams,
      launches,
      launchesDropped: Math.max(dropped, w.launchCount - launches.length),
      holds,
      heldNs,
      gpuNs: null,
    };
    this.sink.window(this.proc, window);
  }
}
