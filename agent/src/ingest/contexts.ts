// Trace contexts from the shim's CONTEXT records (TRACEPARENT, the tailguard.h ABI): which application request each
// thread's GPU work belonged to, and so which trace a request window's spans join (docs/tracing.md). One tracker per
// ring, fed by its WindowAssembler (windows.ts). A launch belongs to the context current on its thread at its time:
// the innermost request open there, else the process's default.
import type { Hold, TraceContext, WindowContext } from "../model.js";
import { AT_CONTEXT_SPAN_ID, AT_CONTEXT_TRACE_ID, AT_FLAGS, AT_OP, AT_STREAM, AT_T_START, Flag, RecordField } from "./record.js";

export const AT_TID = RecordField.tid[0];

const OP_PROCESS = 1;
const OP_BEGIN = 2;
const OP_END = 3;
/** closed requests remembered per thread at most, whatever the windows still need (a bound on memory) */
const KEPT_PER_THREAD = 4096;

/** A context as recorded: ids as hex (null: no context), its name and tracestate by name-table id. */
interface Recorded {
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
}

/** What contextAt found: the context, and when its request ended (null: open, or the process's default). */
export interface Current {
  ctx: Recorded;
  end: bigint | null;
}

function decode(data: Buffer, o: number): Recorded {
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

  /** One CONTEXT record. */
  record(data: Buffer, o: number): void {
    const op = data[o + AT_OP];
    const t = data.readBigUInt64LE(o + AT_T_START);
    const ctx = decode(data, o);
    if (op === OP_PROCESS) {
      this.active ||= ctx.traceId !== null;
      this.process.push({ t, ctx });
      return;
    }
    const tid = data.readUInt32LE(o + AT_TID);
    let thread = this.threads.get(tid);
    if (!thread) this.threads.set(tid, (thread = { open: [], closed: [] }));
    if (op === OP_BEGIN) {
      this.active ||= ctx.traceId !== null;
      thread.open.push({ t0: t, t1: null, depth: thread.open.length + 1, ctx });
    } else if (op === OP_END) {
      const iv = thread.open.pop(); // none: its begin was lost (a full ring)
      if (!iv) return;
      iv.t1 = t;
      thread.closed.push(iv);
      if (thread.closed.length > KEPT_PER_THREAD) thread.closed.splice(0, thread.closed.length - KEPT_PER_THREAD);
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
    if (best) return best.ctx.traceId ? { ctx: best.ctx, end: best.t1 } : null;
    let p: Recorded | null = null;
    for (const x of this.process) if (x.t <= t) p = x.ctx;
    return p?.traceId ? { ctx: p, end: null } : null;
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
    const out: TraceContext = { traceId: ctx.traceId!, parentSpanId: ctx.spanId, sampled: ctx.sampled };
    const name = ctx.nameId ? this.names.get(ctx.nameId) : undefined;
    if (name) out.name = name;
    const state = ctx.stateId ? this.names.get(ctx.stateId) : undefined;
    if (state) out.traceState = state;
    return out;
  }
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
 */
export function windowContexts(
  tracker: ContextTracker,
  w: { start: bigint; end: bigint; endTid: number },
  launches: LaunchesOf,
  holds: Hold[],
  limit: number,
): WindowContext[] | null {
  const groups = new Map<string, { cur: Current | null; wc: WindowContext; first: bigint | null; last: bigint | null; open: boolean }>();
  let anyContext = false;
  const groupOf = (cur: Current | null) => {
    const key = cur ? `${cur.ctx.traceId}/${cur.ctx.spanId}/${cur.ctx.nameId}` : "";
    let g = groups.get(key);
    if (!g) {
      const context = cur ? tracker.traceContext(cur.ctx) : null;
      g = { cur, wc: { context, t: w.start, durNs: 0, launchCount: 0, launches: [], holds: [] }, first: null, last: null, open: false };
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
