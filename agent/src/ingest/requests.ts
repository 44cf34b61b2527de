// Request latency, the one meaning (docs/records.md): from when a request's first launch was called -- the start of the
// hold that delayed it, when the scheduler held it -- to the synchronisation that showed its work done. requestOf is
// the rule; the agent applies it as it assembles windows from the rings (windows.ts), and `tailguard report` to a
// recording's lines (RecordedRequests).

/** A hold that ended this close before a window began is the wait of that window's first launch. */
export const HOLD_JOINS_WINDOW_NS = 200_000n;

/** Something that began at t (CLOCK_MONOTONIC ns) and lasted durNs: a window or a hold. */
export interface Span {
  t: bigint;
  durNs: number;
}

export interface Request<H extends Span> {
  /** when the request began: the window's begin, or the start of the hold of its first launch */
  start: bigint;
  /** request latency: from start to the window's end */
  latencyNs: number;
  /** the process's holds that belong to the window: those that ended inside it or just before it began */
  holds: H[];
  heldNs: number;
}

/** The index of the first item at or after time t in items sorted by time. */
function firstAtOrAfter(items: readonly { t: bigint }[], t: bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The request of window w, given its process's holds sorted by time, the longest of which took longestHoldNs. */
export function requestOf<H extends Span>(w: Span, holds: readonly H[], longestHoldNs: number): Request<H> {
  const end = w.t + BigInt(w.durNs);
  const joined: H[] = [];
  let heldNs = 0;
  let start = w.t;
  for (let i = firstAtOrAfter(holds, w.t - HOLD_JOINS_WINDOW_NS - BigInt(longestHoldNs)); i < holds.length; i++) {
    const h = holds[i];
    if (h.t > end) break;
    const hEnd = h.t + BigInt(h.durNs);
    if (hEnd < w.t - HOLD_JOINS_WINDOW_NS || hEnd > end) continue;
    joined.push(h);
    heldNs += h.durNs;
    if (h.t < start) start = h.t;
  }
  return { start, latencyNs: w.durNs + Number(w.t - start), holds: joined, heldNs };
}

/** How far a process's recorded lines must have gone past a window's end before the window is finished: a recording
 *  has each ring's lanes one after another, so a hold can be written after the end of the window it belongs to, but
 *  within a drain pass (half a millisecond) of it. */
const SETTLE_NS = 1e9;
/** Holds a process keeps before those no window can need are let go (each time twice as many as were kept). */
const PRUNE_AT = 1024;

interface Recorded {
  /** holds, in the order read (sorted when windows are finished) */
  holds: Span[];
  longestHoldNs: number;
  /** windows whose end was read, not yet finished */
  ended: Span[];
  /** begun and not ended: seq → begin time */
  open: Map<number, bigint>;
  /** the latest time of the process's lines so far (ns from the recording's origin: a number is exact for 104 days) */
  latest: number;
  /** when its lines are that far, the oldest window ended is looked at (a second's windows at a time: each pass sorts
   *  what the process keeps) */
  dueAt: number;
  /** the number of holds at which to let go of those no window can need any more */
  pruneAt: number;
}

/**
 * Request latencies from a recording's `window` and `hold` lines (times in ns from the recording's origin), per
 * process, by requestOf. A window is finished, and `done` called with its latency, once the process's lines have gone
 * SETTLE_NS past its end (checked once its lines are twice that past the oldest), or at finish(pid) (the process
 * attached again or detached) or finishAll() (the file's end). What is kept per process is what the last 2 SETTLE_NS
 * can still need.
 */
export class RecordedRequests {
  private readonly processes = new Map<number, Recorded>();

  constructor(private readonly done: (pid: number, latencyNs: number) => void) {}

  private of(pid: number): Recorded {
    let p = this.processes.get(pid);
    if (!p) this.processes.set(pid, (p = { holds: [], longestHoldNs: 0, ended: [], open: new Map(), latest: -Infinity, dueAt: Infinity, pruneAt: PRUNE_AT }));
    return p;
  }

  /** A line of the process at time t: its lines have gone that far. */
  advance(pid: number, t: number): void {
    const p = this.processes.get(pid);
    if (!p || t <= p.latest) return;
    p.latest = t;
    if (t > p.dueAt || p.holds.length >= p.pruneAt) this.settle(pid, p, false);
  }

  hold(pid: number, t: number, durNs: number): void {
    const p = this.of(pid);
    durNs = Math.round(durNs); // whole ns, as the histograms take them
    p.holds.push({ t: BigInt(t), durNs });
    if (durNs > p.longestHoldNs) p.longestHoldNs = durNs;
    this.advance(pid, t);
  }

  begin(pid: number, seq: number, t: number): void {
    const p = this.of(pid);
    this.forgetLost(p, seq);
    p.open.set(seq, BigInt(t));
    this.advance(pid, t);
  }

  end(pid: number, seq: number, t: number, durNs: number): void {
    const p = this.of(pid);
    this.forgetLost(p, seq);
    p.open.delete(seq);
    p.ended.push({ t: BigInt(t), durNs: Math.round(durNs) });
    p.dueAt = Math.min(p.dueAt, t + durNs + 2 * SETTLE_NS);
    this.advance(pid, t);
  }

  /** Finishes every window of the process read so far and forgets it. */
  finish(pid: number): void {
    const p = this.processes.get(pid);
    if (!p) return;
    this.settle(pid, p, true);
    this.processes.delete(pid);
  }

  finishAll(): void {
    for (const pid of [...this.processes.keys()]) this.finish(pid);
  }

  /** A window still open two windows later lost its end record (the ring was full): it keeps no holds. */
  private forgetLost(p: Recorded, seq: number) {
    for (const open of p.open.keys()) if (open < seq - 1) p.open.delete(open);
  }

  private settle(pid: number, p: Recorded, all: boolean) {
    const byTime = (a: Span, b: Span) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0);
    p.holds.sort(byTime);
    p.ended.sort(byTime);
    const settled = BigInt(Math.max(Number.MIN_SAFE_INTEGER, p.latest - SETTLE_NS));
    const ready = all ? p.ended.length : p.ended.findIndex((w) => w.t + BigInt(w.durNs) >= settled);
    const n = ready < 0 ? p.ended.length : ready;
    for (const w of p.ended.splice(0, n)) this.done(pid, requestOf(w, p.holds, p.longestHoldNs).latencyNs);
    p.dueAt = p.ended.length ? Number(p.ended[0].t) + p.ended[0].durNs + 2 * SETTLE_NS : Infinity;
    // holds no window still to be finished can need: before every window pending, open or yet to be read
    let horizon = settled;
    for (const t of p.open.values()) if (t < horizon) horizon = t;
    if (p.ended.length && p.ended[0].t < horizon) horizon = p.ended[0].t;
    const keep = firstAtOrAfter(p.holds, horizon - HOLD_JOINS_WINDOW_NS - BigInt(p.longestHoldNs));
    if (keep > 0) p.holds.splice(0, keep);
    p.pruneAt = Math.max(PRUNE_AT, 2 * p.holds.length);
  }
}
