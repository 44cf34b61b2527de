// NVTX ranges from the shim's RANGE records (the shim is the program's NVTX tool: native/shim/nvtx.c): push/pop ranges
// nest per thread, start/end ranges pair by id (and may end on another thread), marks are instants. One RangeTracker
// per ring, fed by its WindowAssembler, which asks it for the ranges that overlap each request window it finishes.
// Memory is bounded: ranges that no window can still claim are forgotten (counted as dropped when no window had them).
import { AT_OP, AT_RANGE_CATEGORY, AT_RANGE_DOMAIN, AT_RANGE_ID, AT_RANGE_MESSAGE, AT_T_START, AT_TID } from "./record.js";
import type { NvtxRange } from "../model.js";

const OP = { PUSH: 1, POP: 2, START: 3, END: 4, MARK: 5 } as const;
/** Ranges kept at most (open or ended); beyond it the oldest are dropped. */
const RANGES_KEPT = 4096;
/** Ranges a window's spans show at most. */
export const RANGES_PER_WINDOW = 256;
/** Ends read before their start (another thread's lane drained first), kept at most. */
const EARLY_ENDS_KEPT = 1024;

interface Range {
  name: string;
  domain: string | null;
  category: number;
  op: NvtxRange["op"];
  tid: number;
  t: bigint;
  /** null while open */
  end: bigint | null;
  /** the push range of the same thread it was opened in */
  parent: Range | null;
  /** a window has shown it */
  shown: boolean;
}

export interface RangeCounts {
  /** range and mark records read */
  records: number;
  /** ranges forgotten without any request window to show them in */
  dropped: number;
}

export class RangeTracker {
  readonly counts: RangeCounts = { records: 0, dropped: 0 };
  /** every range kept, in the order their first record was read */
  private ranges: Range[] = [];
  /** open push ranges per thread, innermost last (every domain: the order they nest in) */
  private open = new Map<number, Range[]>();
  private started = new Map<bigint, Range>();
  private earlyEnds = new Map<bigint, bigint>();

  /** Reads the RANGE record at byte o; names: the ring's name table. */
  record(b: Buffer, o: number, names: Map<number, string>): void {
    this.counts.records++;
    const op = b[o + AT_OP];
    const tid = b.readUInt32LE(o + AT_TID);
    const t = b.readBigUInt64LE(o + AT_T_START);
    const domainId = b.readUInt32LE(o + AT_RANGE_DOMAIN);
    const domain = domainId === 0 ? null : (names.get(domainId) ?? `#${domainId}`);
    if (op === OP.POP) {
      const stack = this.open.get(tid);
      // the innermost push of that domain (NVTX nests per domain)
      for (let i = (stack?.length ?? 0) - 1; i >= 0; i--)
        if (stack![i].domain === domain) {
          stack![i].end = t;
          stack!.splice(i, 1);
          break;
        }
      if (stack?.length === 0) this.open.delete(tid);
      return;
    }
    if (op === OP.END) {
      const id = b.readBigUInt64LE(o + AT_RANGE_ID);
      const r = this.started.get(id);
      if (r) {
        r.end = t;
        this.started.delete(id);
      } else if (this.earlyEnds.size < EARLY_ENDS_KEPT) this.earlyEnds.set(id, t);
      return;
    }
    if (op !== OP.PUSH && op !== OP.START && op !== OP.MARK) return;
    const messageId = b.readUInt32LE(o + AT_RANGE_MESSAGE);
    const stack = this.open.get(tid);
    const r: Range = {
      name: messageId === 0 ? "" : (names.get(messageId) ?? `#${messageId}`),
      domain,
      category: b.readUInt32LE(o + AT_RANGE_CATEGORY),
      op: op === OP.PUSH ? "push" : op === OP.START ? "start" : "mark",
      tid,
      t,
      end: op === OP.MARK ? t : null,
      parent: stack?.[stack.length - 1] ?? null,
      shown: false,
    };
    if (op === OP.PUSH) {
      if (stack) stack.push(r);
      else this.open.set(tid, [r]);
    } else if (op === OP.START) {
      const id = b.readBigUInt64LE(o + AT_RANGE_ID);
      const end = this.earlyEnds.get(id);
      if (end !== undefined) {
        r.end = end;
        this.earlyEnds.delete(id);
      } else this.started.set(id, r);
    }
    this.ranges.push(r);
    if (this.ranges.length > RANGES_KEPT) this.forget(this.ranges.splice(0, this.ranges.length - RANGES_KEPT));
  }

  /** The ranges that overlap [start, end] (those still open, up to end), parents before children, at most
   *  RANGES_PER_WINDOW. */
  forWindow(start: bigint, end: bigint): NvtxRange[] {
    const out: NvtxRange[] = [];
    const index = new Map<Range, number>();
    for (const r of this.ranges) {
      if (out.length >= RANGES_PER_WINDOW) break;
      if (r.t > end || (r.end !== null && r.end < start)) continue;
      r.shown = true;
      index.set(r, out.length);
      out.push({
        name: r.name,
        domain: r.domain,
        category: r.category,
        op: r.op,
        tid: r.tid,
        t: r.t,
        durNs: Number((r.end === null ? end : r.end) - r.t),
        open: r.end === null,
        parent: r.parent ? (index.get(r.parent) ?? -1) : -1,
      });
    }
    return out;
  }

  /** Forgets the ranges that ended before `before` (no window still to finish can claim them). */
  prune(before: bigint): void {
    let k = 0;
    const kept: Range[] = [];
    for (const r of this.ranges) {
      if (r.end !== null && r.end < before) {
        if (!r.shown) k++;
      } else kept.push(r);
    }
    if (kept.length !== this.ranges.length) this.ranges = kept;
    this.counts.dropped += k;
  }

  /** Forgets everything (the ring is closed). */
  clear(): void {
    this.forget(this.ranges);
    this.ranges = [];
    this.open.clear();
    this.started.clear();
    this.earlyEnds.clear();
  }

  private forget(gone: Range[]): void {
    for (const r of gone) {
      if (!r.shown) this.counts.dropped++;
      r.parent = null;
    }
    // open ranges forgotten stay in their stack only until popped; keep stacks and starts bounded too
    for (const [tid, stack] of this.open) if (stack.length > RANGES_KEPT / 4) this.open.set(tid, stack.slice(-RANGES_KEPT / 4));
    if (this.started.size > RANGES_KEPT) for (const id of [...this.started.keys()].slice(0, this.started.size - RANGES_KEPT)) this.started.delete(id);
  }
}
