// Requests with a trace context, each finished at its own end (docs/tracing.md, "When request spans leave"): a thread's
// CONTEXT records request_begin and request_end (the tailguard.h ABI, the Python helper, an NVTX range named by a
// traceparent) and, between them, that thread's launches, holds, copies and sync waits. A request does not wait for
// its process's request window to end: a server whose threads each launch on and sync their own stream, always with
// some request in flight, never ends one. One TracedRequests per ring, fed by its WindowAssembler (windows.ts).
//
// A thread's records are in order in its lane, so each launch, hold and sync goes to the innermost request open on its
// thread as it is read; only an end may come from another thread (an NVTX start/end range). A request is finished one
// drain pass after the pass that read its end, as windows are: by then every record written before its end was
// published has been read. Memory is bounded whatever the program does (the constants below).
import { AT_OP, AT_STREAM, AT_T_START, AT_TID, durationNs, RECORD_SIZE } from "./record.js";
import type { Hold, RequestId, SyncWait } from "../model.js";
import { decode, OPEN_PER_THREAD, THREADS_KEPT, type Recorded } from "./contexts.js";

const OP_BEGIN = 2;
const OP_END = 3;
const SYNC_OP: Record<number, SyncWait["op"]> = { 1: "stream", 2: "device", 3: "event" };
/** launch records a request keeps for its launch spans (64 bytes each); later ones are counted */
export const REQUEST_LAUNCHES_KEPT = 256;
const HOLDS_KEPT = 256;
const SYNCS_KEPT = 64;
/** requests open at once per process at most: beyond it the oldest is finished as it is, open */
export const REQUESTS_OPEN_KEPT = 4096;
/** requests remembered after their end for the links of holds they caused (requestsAt) */
const ENDED_KEPT = 4096;

/** A request being assembled: the begin..end intervals of one context (trace id, span id and name) that were open at
 *  the same time, on one thread or several. */
export interface Assembling {
  id: RequestId;
  ctx: Recorded;
  key: string;
  /** intervals still open */
  open: number;
  /** its last interval's end (the latest record read, when finished open) */
  end: bigint;
  finishedOpen: boolean;
  tids: number[];
  launchCount: number;
  /** its first REQUEST_LAUNCHES_KEPT launch records, copied */
  launchRecords: Buffer | null;
  holds: Hold[];
  holdCount: number;
  heldNs: number;
  syncs: SyncWait[];
  syncCount: number;
  syncNs: number;
  copyCount: number;
  /** handed on (finished): later records of its threads are no one's */
  done: boolean;
}

/** One open interval of a thread: its request, or null for a begin without a context. */
interface Entry {
  req: Assembling | null;
  traceId: string | null;
  spanId: string;
}

export class TracedRequests {
  /** a begin with a trace context was read: until then nothing here costs anything */
  active = false;
  private readonly threads = new Map<number, Entry[]>();
  /** open requests by key, the oldest first */
  private readonly open = new Map<string, Assembling>();
  /** ended, waiting one drain pass; ended before the previous pass, ready */
  private ended: Assembling[] = [];
  private settling: Assembling[] = [];
  /** the latest ended (for requestsAt), the oldest first */
  private recent: Assembling[] = [];
  /** the latest record time read */
  private latest = 0n;

  /** Requests and thread entries kept now. */
  get held(): number {
    let n = this.open.size + this.ended.length + this.settling.length + this.recent.length;
    for (const list of this.threads.values()) n += list.length;
    return n;
  }

  /** One CONTEXT record (begins and ends; the process's default is not a request). Returns the request a begin is part
   *  of, for ContextTracker.record: the same object for every begin of that request. */
  context(data: Buffer, o: number): RequestId | null {
    const op = data[o + AT_OP];
    if (op !== OP_BEGIN && op !== OP_END) return null;
    const t = data.readBigUInt64LE(o + AT_T_START);
    if (t > this.latest) this.latest = t;
    const tid = data.readUInt32LE(o + AT_TID);
    const ctx = decode(data, o);
    let stack = this.threads.get(tid);
    if (op === OP_END) {
      // its thread's innermost of that context; else another thread's (an NVTX start/end range ended elsewhere)
      const same = (list: Entry[]) => {
        for (let i = list.length - 1; i >= 0; i--) if (list[i].traceId === ctx.traceId && list[i].spanId === ctx.spanId) return i;
        return -1;
      };
      let owner = tid;
      let at = stack ? same(stack) : -1;
      if (at < 0)
        for (const [other, list] of this.threads)
          if ((at = same(list)) >= 0) {
            owner = other;
            break;
          }
      if (at < 0) return null;
      const list = this.threads.get(owner)!;
      this.release(list.splice(at, 1)[0], t, false);
      if (list.length === 0) this.threads.delete(owner); // a thread is kept only while it has a request open
      return null;
    }
    if (!stack) {
      this.threads.set(tid, (stack = []));
      if (this.threads.size > THREADS_KEPT)
        for (const [other, list] of this.threads) {
          if (this.threads.size <= THREADS_KEPT) break;
          if (list !== stack) {
            // more threads with requests open than that: the oldest thread's are let go
            this.threads.delete(other);
            for (const e of list) this.release(e, this.latest, true);
          }
        }
    }
    if (ctx.traceId === null) {
      stack.push({ req: null, traceId: null, spanId: ctx.spanId });
    } else {
      this.active = true;
      const key = `${ctx.traceId}/${ctx.spanId}/${ctx.nameId}`;
      let req = this.open.get(key);
      if (req) {
        req.open++;
        if (!req.tids.includes(tid) && req.tids.length < 64) req.tids.push(tid);
      } else {
        req = {
          id: { tid, t, depth: stack.length + 1 },
          ctx,
          key,
          open: 1,
          end: t,
          finishedOpen: false,
          tids: [tid],
          launchCount: 0,
          launchRecords: null,
          holds: [],
          holdCount: 0,
          heldNs: 0,
          syncs: [],
          syncCount: 0,
          syncNs: 0,
          copyCount: 0,
          done: false,
        };
        this.open.set(key, req);
        if (this.open.size > REQUESTS_OPEN_KEPT) this.finishOpen(this.open.values().next().value!);
      }
      stack.push({ req, traceId: ctx.traceId, spanId: ctx.spanId });
    }
    // the shim nests 8 deep; a ring that begins and never ends lets its oldest go
    if (stack.length > OPEN_PER_THREAD) this.release(stack.shift()!, this.latest, true);
    return stack[stack.length - 1].req?.id ?? null;
  }

  /** The request of thread tid's work now: its innermost open, if that has a context and is not yet finished. */
  private current(tid: number): Assembling | null {
    const stack = this.threads.get(tid);
    const req = stack && stack.length > 0 ? stack[stack.length - 1].req : null;
    return req && !req.done ? req : null;
  }

  /** A launch record (not a captured one). */
  launch(data: Buffer, o: number): void {
    const req = this.current(data.readUInt32LE(o + AT_TID));
    if (!req) return;
    if (req.launchCount < REQUEST_LAUNCHES_KEPT) {
      if (!req.launchRecords || req.launchRecords.length < (req.launchCount + 1) * RECORD_SIZE) {
        const grown = Buffer.allocUnsafe(Math.min(REQUEST_LAUNCHES_KEPT, Math.max(4, req.launchCount * 2)) * RECORD_SIZE);
        req.launchRecords?.copy(grown, 0, 0, req.launchCount * RECORD_SIZE);
        req.launchRecords = grown;
      }
      data.copy(req.launchRecords, req.launchCount * RECORD_SIZE, o, o + RECORD_SIZE);
    }
    req.launchCount++;
  }

  /** A hold of one of the process's threads. */
  hold(h: Hold): void {
    const req = h.tid != null ? this.current(h.tid) : null;
    if (!req) return;
    if (req.holds.length < HOLDS_KEPT) req.holds.push(h);
    req.holdCount++;
    req.heldNs += h.durNs;
  }

  /** A copy record: counted (a request whose only GPU work was copies still has some). */
  copy(data: Buffer, o: number): void {
    const req = this.current(data.readUInt32LE(o + AT_TID));
    if (req) req.copyCount++;
  }

  /** A sync record: how long the request's thread waited for the GPU. */
  sync(data: Buffer, o: number): void {
    const tid = data.readUInt32LE(o + AT_TID);
    const req = this.current(tid);
    if (!req) return;
    const durNs = durationNs(data, o) ?? 0;
    if (req.syncs.length < SYNCS_KEPT)
      req.syncs.push({ op: SYNC_OP[data[o + AT_OP]] ?? "stream", t: data.readBigUInt64LE(o + AT_T_START), durNs, stream: data.readBigUInt64LE(o + AT_STREAM), tid });
    req.syncCount++;
    req.syncNs += durNs;
  }

  /** An interval left the thread's stack: at its end (t), or let go (finished open). */
  private release(e: Entry, t: bigint, letGo: boolean): void {
    const req = e.req;
    if (!req || req.done) return;
    if (letGo) {
      this.finishOpen(req);
      return;
    }
    if (--req.open > 0) return;
    req.end = t > req.end ? t : req.end;
    this.open.delete(req.key);
    this.ended.push(req);
    this.remember(req);
  }

  /** A request finished before its end (the bounds, or its ring closed): up to the latest record read, open. */
  private finishOpen(req: Assembling): void {
    if (req.done || !this.open.has(req.key) || this.open.get(req.key) !== req) return;
    this.open.delete(req.key);
    req.end = this.latest > req.end ? this.latest : req.end;
    req.finishedOpen = true;
    this.ended.push(req);
    this.remember(req);
  }

  private remember(req: Assembling): void {
    this.recent.push(req);
    if (this.recent.length > ENDED_KEPT * 2) this.recent = this.recent.slice(-ENDED_KEPT);
  }

  /** The requests to finish now: those whose end was read before the previous call (all, open ones too, when the
   *  ring is closed). Each is returned once. */
  settle(final = false): Assembling[] {
    if (final) for (const req of [...this.open.values()]) this.finishOpen(req);
    const ready = final ? [...this.settling, ...this.ended] : this.settling;
    this.settling = final ? [] : this.ended;
    this.ended = [];
    for (const req of ready) req.done = true;
    if (final) this.threads.clear();
    return ready;
  }

  /** Frees what a finished request kept for its spans, once they are made (it stays known to requestsAt). */
  static forgetWork(req: Assembling): void {
    req.launchRecords = null;
    req.holds = [];
    req.syncs = [];
  }

  /** The earliest begin of the requests not yet finished (null: none): what they may still need of the process's
   *  NVTX ranges and contexts. */
  horizon(): bigint | null {
    let h: bigint | null = null;
    for (const list of [this.open.values(), this.ended, this.settling])
      for (const req of list) if (h === null || req.id.t < h) h = req.id.t;
    return h;
  }

  /** The requests open at time t (begun at or before it, not ended before it) that did GPU work (those without have no
   *  span), of those open now or ended lately: which request of this process a hold it caused at t waited for
   *  (telemetry/spans.ts). */
  requestsAt(t: bigint): Assembling[] {
    const out: Assembling[] = [];
    const worked = (req: Assembling) => req.launchCount + req.holdCount + req.syncCount + req.copyCount > 0;
    for (const req of this.open.values()) if (req.id.t <= t && worked(req)) out.push(req);
    for (const req of this.recent) if (req.id.t <= t && req.end >= t && !req.finishedOpen && worked(req)) out.push(req);
    return out;
  }
}
