// Trace contexts from the shim's CONTEXT records (TRACEPARENT, the tailguard.h ABI): which application request each
// thread's GPU work belonged to, and so which trace a request window's spans join (docs/tracing.md). One tracker per
// ring, fed by its WindowAssembler (windows.ts). A launch belongs to the context current on its thread at its time:
// the innermost request open there, else the process's default.
import type { Hold, NvtxRange, RequestId, TraceContext, WindowContext } from "../model.js";
import { AT_CONTEXT_SPAN_ID, AT_CONTEXT_TRACE_ID, AT_FLAGS, AT_OP, AT_STREAM, AT_T_START, AT_TID, Flag } from "./record.js";

/** an NVTX message that is a traceparent (the shim's own rule, native/shim/nvtx.c): its trace id and span id */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

const OP_PROCESS = 1;
const OP_BEGIN = 2;
const OP_END = 3;
/** closed requests remembered per thread at most, whatever the windows still need (a bound on memory) */
const KEPT_PER_THREAD = 4096;
/** requests open per thread at most (the shim nests 8 deep): a ring that begins and never ends lets the oldest go */
export const OPEN_PER_THREAD = 16;
/** threads remembered at most: beyond it those with no request open are forgotten, the oldest first */
export const THREADS_KEPT = 16384;

/** A context as recorded: ids as hex (null: no context), its name and tracestate by name-table id. */
export interface Recorded {
  traceId: string | null;
  spanId: string;
  sampled: boolean;
  nameId: number;
  stateId: number;
}

/** A request of one thread, from its begin to its end (null: still open). */
interface Interval {
  t0: bigint;
  t1: bigint | null;
  depth: number;
  ctx: Recorded;
  /** the thread request it is part of (traced.ts), null for one without a context */
  request: RequestId | null;
}

/** What contextAt found: the context, when its request ended (null: open, or the process's default), and the thread
 *  request (null: the process's default). */
export interface Current {
  ctx: Recorded;
  end: bigint | null;
  request: RequestId | null;
}

/** The CONTEXT record at byte o as recorded. */
export function decode(data: Buffer, o: number): Recorded {
  const trace = data.subarray(o + AT_CONTEXT_TRACE_ID, o + AT_CONTEXT_TRACE_ID + 16);
  const stream = data.readBigUInt64LE(o + AT_STREAM);
  return {
    traceId: trace.some((b) => b !== 0) ? trace.toString("hex") : null,
    spanId: data.subarray(o + AT_CONTEXT_SPAN_ID, o + AT_CONTEXT_SPAN_ID + 8).toString("hex"),
    sampled: (data.readUInt16LE(o + AT_FLAGS) & Flag.SAMPLED) !== 0,
    nameId: Number(stream & 0xffffffffn),
    stateId: Number(stream >> 32n),
  };
}

/** A CONTEXT record's own fields for its recording line (docs/records.md): in place of api, result and stream. */
export function contextLine(line: Record<string, unknown>, data: Buffer, o: number, names: Map<number, string>): Record<string, unknown> {
  const c = decode(data, o);
  delete line.api;
  delete line.result;
  delete line.stream;
  line.trace_id = c.traceId ?? "";
  line.parent_span_id = c.traceId ? c.spanId : "";
  line.sampled = c.sampled;
  if (c.nameId) line.name = names.get(c.nameId) ?? `#${c.nameId}`;
  if (c.stateId) line.tracestate = names.get(c.stateId) ?? `#${c.stateId}`;
  return line;
}

export class ContextTracker {
  /** whether the process ever gave a context: until then, nothing here costs anything */
  active = false;
  private readonly threads = new Map<number, { open: Interval[]; closed: Interval[] }>();
  /** the process's default context from time t on (traceId null: none) */
  private process: { t: bigint; ctx: Recorded }[] = [];

  constructor(private readonly names: Map<number, string>) {}

  /** Thread requests and process contexts kept now. */
  get held(): number {
    let n = this.process.length;
    for (const t of this.threads.values()) n += t.open.length + t.closed.length;
    return n;
  }

  /** One CONTEXT record; `request`: the thread request a begin is part of (TracedRequests.context). */
  record(data: Buffer, o: number, request: RequestId | null = null): void {
    const op = data[o + AT_OP];
    const t = data.readBigUInt64LE(o + AT_T_START);
    const ctx = decode(data, o);
    if (op === OP_PROCESS) {
      this.active ||= ctx.traceId !== null;
      this.process.push({ t, ctx });
      if (this.process.length > KEPT_PER_THREAD) this.process.splice(0, this.process.length - KEPT_PER_THREAD);
      return;
    }
    const tid = data.readUInt32LE(o + AT_TID);
    let thread = this.threads.get(tid);
    if (!thread) {
      this.threads.set(tid, (thread = { open: [], closed: [] }));
      if (this.threads.size > THREADS_KEPT)
        for (const [other, x] of this.threads) {
          if (this.threads.size <= THREADS_KEPT) break;
          if (x.open.length === 0) this.threads.delete(other);
        }
    }
    if (op === OP_BEGIN) {
      this.active ||= ctx.traceId !== null;
      thread.open.push({ t0: t, t1: null, depth: thread.open.length + 1, ctx, request });
      if (thread.open.length > OPEN_PER_THREAD) thread.open.shift();
    } else if (op === OP_END) {
      // its thread's innermost request of that context; else another thread's (an NVTX start/end range may end on
      // another thread); none: its begin was lost (a full ring)
      const same = (list: Interval[]) => {
        for (let i = list.length - 1; i >= 0; i--) if (list[i].ctx.traceId === ctx.traceId && list[i].ctx.spanId === ctx.spanId) return i;
        return -1;
      };
      let owner = thread;
      let at = same(owner.open);
      if (at < 0)
        for (const other of this.threads.values())
          if ((at = same(other.open)) >= 0) {
            owner = other;
            break;
          }
      if (at < 0) return;
      const iv = owner.open.splice(at, 1)[0];
      iv.t1 = t;
      owner.closed.push(iv);
      if (owner.closed.length > KEPT_PER_THREAD) owner.closed.splice(0, owner.closed.length - KEPT_PER_THREAD);
    }
  }

  /** The context thread `tid` ran under at time t: its innermost request then, else the process's default. */
  contextAt(tid: number, t: bigint): Current | null {
    const thread = this.threads.get(tid);
    let best: Interval | null = null;
    if (thread) {
      for (const iv of thread.open) if (iv.t0 <= t && (!best || iv.depth > best.depth)) best = iv;
      // closed in the order they ended: the newest first, until one ended at or before t (so did all before it)
      for (let i = thread.closed.length - 1; i >= 0 && thread.closed[i].t1! > t; i--) {
        const iv = thread.closed[i];
        if (iv.t0 <= t && (!best || iv.depth > best.depth)) best = iv;
      }
    }
    if (best) return best.ctx.traceId ? { ctx: best.ctx, end: best.t1, request: best.request } : null;
    let p: Recorded | null = null;
    for (const x of this.process) if (x.t <= t) p = x.ctx;
    return p?.traceId ? { ctx: p, end: null, request: null } : null;
  }

  /** Forgets requests that ended before t, and process defaults replaced before it: no window will ask about them. */
  forget(before: bigint): void {
    for (const [tid, thread] of this.threads) {
      thread.closed = thread.closed.filter((iv) => iv.t1! >= before);
      if (thread.open.length === 0 && thread.closed.length === 0) this.threads.delete(tid);
    }
    let last = -1;
    for (let i = 0; i < this.process.length && this.process[i].t <= before; i++) last = i;
    if (last > 0) this.process = this.process.slice(last);
  }

  /** The TraceContext of a recorded one (names resolved now: a name is published before its first record). */
  traceContext(ctx: Recorded): TraceContext {
    return traceContextOf(ctx, this.names);
  }
}

/** The TraceContext of a recorded context with a trace id, its name and tracestate looked up in the name table. */
export function traceContextOf(ctx: Recorded, names: Map<number, string>): TraceContext {
  const out: TraceContext = { traceId: ctx.traceId!, parentSpanId: ctx.spanId, sampled: ctx.sampled };
  const name = ctx.nameId ? names.get(ctx.nameId) : undefined;
  if (name) out.name = name;
  const state = ctx.stateId ? names.get(ctx.stateId) : undefined;
  if (state) out.traceState = state;
  return out;
}

/** A window's launches as windowContexts reads them: the thread and time of each, by index. */
export interface LaunchesOf {
  count: number;
  tid(i: number): number;
  t(i: number): bigint;
}

/**
 * Splits a request window by trace context: one WindowContext per context its launches and holds ran under (launches
 * by their index in the window, holds by theirs), plus one with context null for work under none. null when none of
 * its work ran under a context: the window is a trace of its own, as without contexts. A window without launches
 * (copies only) takes the context of the thread that ended it. `limit`: launches kept in the window's `launches`.
 * NVTX ranges go to a context that has launches or holds in the window (else they are left out of its spans): a range
 * whose message is a traceparent to that context (the shim opens it after the range, microseconds to milliseconds
 * later), any other to the context of its thread at its end (or the window's, while it is open). A part that ran
 * under a thread request (`request` set) is one per request: the request's own span shows it (traced.ts).
 */
export function windowContexts(
  tracker: ContextTracker,
  w: { start: bigint; end: bigint; endTid: number },
  launches: LaunchesOf,
  holds: Hold[],
  limit: number,
  ranges: readonly NvtxRange[] = [],
): WindowContext[] | null {
  type Group = { cur: Current | null; wc: WindowContext; first: bigint | null; last: bigint | null; open: boolean };
  const groups = new Map<string, Group>();
  let anyContext = false;
  const keyOf = (cur: Current | null) =>
    cur ? (cur.request ? `r/${cur.request.tid}/${cur.request.t}/${cur.request.depth}` : `${cur.ctx.traceId}/${cur.ctx.spanId}/${cur.ctx.nameId}`) : "";
  const groupOf = (cur: Current | null) => {
    const key = keyOf(cur);
    let g = groups.get(key);
    if (!g) {
      const context = cur ? tracker.traceContext(cur.ctx) : null;
      g = { cur, wc: { context, t: w.start, durNs: 0, launchCount: 0, launches: [], holds: [], ranges: [] }, first: null, last: null, open: false };
      if (cur?.request) g.wc.request = cur.request;
      groups.set(key, g);
      anyContext ||= cur !== null;
    }
    if (cur) {
      if (cur.end === null) g.open = true;
      else if (g.last === null || cur.end > g.last) g.last = cur.end;
    }
    return g;
  };
  const seen = (g: { first: bigint | null }, t: bigint) => {
    if (g.first === null || t < g.first) g.first = t;
  };
  for (let i = 0; i < launches.count; i++) {
    const t = launches.t(i);
    const g = groupOf(tracker.contextAt(launches.tid(i), t));
    g.wc.launchCount++;
    if (i < limit) g.wc.launches.push(i);
    seen(g, t);
  }
  holds.forEach((h, i) => {
    const g = groupOf(h.tid != null ? tracker.contextAt(h.tid, h.t) : null);
    g.wc.holds.push(i);
    seen(g, h.t);
  });
  if (launches.count === 0) groupOf(tracker.contextAt(w.endTid, w.start));
  ranges.forEach((r, i) => {
    const tp = TRACEPARENT.exec(r.name);
    let g: Group | undefined;
    if (tp) {
      for (const x of groups.values()) if (x.cur?.ctx.traceId === tp[1] && x.cur.ctx.spanId === tp[2]) g = x;
    } else g = groups.get(keyOf(tracker.contextAt(r.tid, r.t + BigInt(r.durNs) - (r.durNs > 0 ? 1n : 0n))));
    g?.wc.ranges.push(i);
  });
  if (!anyContext) return null;
  const out: WindowContext[] = [];
  for (const g of groups.values()) {
    const start = g.first !== null && g.first > w.start ? g.first : w.start;
    // a request that ended before the window did (another thread's work kept the window open) ends there
    let end = !g.open && g.last !== null && g.last < w.end ? g.last : w.end;
    if (end < start) end = start;
    g.wc.t = g.cur ? start : w.start;
    g.wc.durNs = Number((g.cur ? end : w.end) - g.wc.t);
    out.push(g.wc);
  }
  return out;
}
