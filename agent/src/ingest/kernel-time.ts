// Per-kernel device times: the shim's KERNEL_TIME records (native/shim/kernel_timing.c, TAILGUARD_KERNEL_TIMING;
// docs/gpu-time.md "Per-kernel device time (CUPTI)"), each one kernel, copy or memset as CUPTI measured it on the
// device, keyed to the launch record that submitted it by (tid, launch t_start).
import type { Launch } from "../model.js";
import { AT_DUR, AT_FLAGS, AT_KT_END, AT_KT_LAUNCH, AT_KT_START, AT_OP, AT_STREAM, AT_TID, Flag, KT_CALL_SLACK_NS } from "./record.js";

/** KERNEL_TIME ops (record.h, tg_kernel_time_op). */
export const KernelTimeOp = { KERNEL: 1, MEMCPY: 2, MEMSET: 3, DROPPED: 4, STARTED: 5 } as const;

/** One device record: the kernel's name (its interned name; "unknown" when the name table lacks it), device time. */
export interface KernelTime {
  op: number;
  kernel: string;
  /** the launching thread and its launch record's t_start: the launch it belongs to (0n when keyed by its call) */
  tid: number;
  launch: bigint;
  /** keyed by the CUDA call that submitted it (Flag.KT_CALL): when that call began and ended; its launch record is
   *  the thread's latest made before the call ended, no earlier than KT_CALL_SLACK_NS before it began */
  call?: { start: bigint; end: bigint };
  gpuStart: bigint;
  gpuEnd: bigint;
  /** gpuEnd - gpuStart, ns */
  ns: number;
}

/** Decodes the KERNEL_TIME record at byte o; null for a DROPPED (a count of device records lost) or STARTED record. */
export function kernelTimeOf(data: Buffer, o: number, names: Map<number, string>): KernelTime | null {
  const op = data[o + AT_OP];
  if (op === KernelTimeOp.DROPPED || op === KernelTimeOp.STARTED) return null;
  const gpuStart = data.readBigUInt64LE(o + AT_KT_START), gpuEnd = data.readBigUInt64LE(o + AT_KT_END);
  const id = data.readUInt32LE(o + AT_STREAM);
  const byCall = (data.readUInt16LE(o + AT_FLAGS) & Flag.KT_CALL) !== 0;
  const at = data.readBigUInt64LE(o + AT_KT_LAUNCH);
  const k: KernelTime = {
    op,
    kernel: op === KernelTimeOp.MEMCPY ? "memcpy" : op === KernelTimeOp.MEMSET ? "memset" : (names.get(id) ?? "unknown"),
    tid: data.readUInt32LE(o + AT_TID),
    launch: byCall ? 0n : at,
    gpuStart,
    gpuEnd,
    ns: gpuEnd > gpuStart ? Number(gpuEnd - gpuStart) : 0,
  };
  if (byCall) k.call = { start: at, end: at + BigInt(data.readUInt32LE(o + AT_DUR)) };
  return k;
}

/** How long after a window's end its kernels' device times may still come: CUPTI hands records over every 100 ms
 *  (the shim's flush period), a correlation can come one flush after its kernel, and the drain reads them a pass
 *  later. A process whose rings have kernel times holds its windows back this long, so their launch spans get them. */
export const KERNEL_TIME_WAIT_NS = 300_000_000n;
/** Launches whose device times are kept for the windows still to finish (each key a launch; FIFO beyond). */
const KEPT = 1 << 16;
/** Device times keyed by their CUDA call kept per thread, and threads kept (the oldest go first). */
const CALLS_PER_THREAD = 1 << 13;
const THREADS = 256;
const SLACK = BigInt(KT_CALL_SLACK_NS);

interface ByCall {
  start: bigint;
  end: bigint;
  gpuStart: bigint;
  gpuEnd: bigint;
}

/** A process's kernel times, by launch (tid and t_start), until the windows of those launches finish. */
export class KernelTimes {
  /** kernel times have been seen: the process times kernels, and its windows wait for them */
  active = false;
  private readonly byLaunch = new Map<string, { start: bigint; end: bigint; kernels: number }>();
  /** device times keyed by their call, per thread, in the order they came */
  private readonly byCall = new Map<number, ByCall[]>();

  /** Reads the KERNEL_TIME record at byte o: the device time it carries, or null (STARTED, DROPPED). */
  record(data: Buffer, o: number, names: Map<number, string>): KernelTime | null {
    if (data[o + AT_OP] === KernelTimeOp.STARTED) this.active = true; // device times will follow: windows wait for them
    const k = kernelTimeOf(data, o, names);
    if (k) this.add(k);
    return k;
  }

  add(k: KernelTime): void {
    this.active = true;
    if (k.call) {
      let list = this.byCall.get(k.tid);
      if (!list) {
        if (this.byCall.size >= THREADS) this.byCall.delete(this.byCall.keys().next().value!);
        this.byCall.set(k.tid, (list = []));
      }
      if (list.length >= CALLS_PER_THREAD) list.splice(0, list.length >> 1);
      list.push({ start: k.call.start, end: k.call.end, gpuStart: k.gpuStart, gpuEnd: k.gpuEnd });
      return;
    }
    const key = `${k.tid}/${k.launch}`;
    const had = this.byLaunch.get(key);
    if (had) {
      // a graph launch: one record per kernel of the graph; the launch spans them all
      if (k.gpuStart < had.start) had.start = k.gpuStart;
      if (k.gpuEnd > had.end) had.end = k.gpuEnd;
      had.kernels++;
      return;
    }
    if (this.byLaunch.size >= KEPT) this.byLaunch.delete(this.byLaunch.keys().next().value!);
    this.byLaunch.set(key, { start: k.gpuStart, end: k.gpuEnd, kernels: 1 });
  }

  /** Gives each launch its device times, where they came. */
  attach(launches: Launch[]): void {
    if (!this.active) return;
    for (const l of launches) {
      const k = this.byLaunch.get(`${l.tid}/${l.t}`);
      if (!k) continue;
      l.gpuStart = k.start;
      l.gpuEnd = k.end;
      if (k.kernels > 1) l.gpuKernels = k.kernels;
      // kept (the oldest go first): a window's launch can also be a traced request's, decoded for its own spans
    }
    if (this.byCall.size) this.attachByCall(launches);
  }

  /** Device times keyed by their call: each goes to its thread's latest launch made before the call ended, if made
   *  no earlier than the slack before the call began (record.h, TG_F_KT_CALL). */
  private attachByCall(launches: Launch[]): void {
    const byTid = new Map<number, Launch[]>();
    for (const l of launches) if (l.tid !== undefined && this.byCall.has(l.tid)) byTid.set(l.tid, [...(byTid.get(l.tid) ?? []), l]);
    for (const [tid, mine] of byTid) {
      mine.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      const first = mine[0].t - SLACK, last = mine[mine.length - 1].t;
      // kept after use (the oldest go first): a window's launch can also be a traced request's
      for (const c of this.byCall.get(tid)!) {
        if (c.end < first || c.start - SLACK > last) continue;
        // the latest launch at or before the call's end
        let lo = 0, hi = mine.length - 1, at = -1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if (mine[mid].t <= c.end) (at = mid), (lo = mid + 1);
          else hi = mid - 1;
        }
        const l = at >= 0 ? mine[at] : undefined;
        if (!l || l.t < c.start - SLACK) continue;
        if (l.gpuStart === undefined) {
          l.gpuStart = c.gpuStart;
          l.gpuEnd = c.gpuEnd;
        } else {
          // a graph launch: its kernels' span
          if (c.gpuStart < l.gpuStart) l.gpuStart = c.gpuStart;
          if (c.gpuEnd > l.gpuEnd!) l.gpuEnd = c.gpuEnd;
          l.gpuKernels = (l.gpuKernels ?? 1) + 1;
        }
      }
    }
  }

  /** Splits ended windows into those that may finish now and those whose kernel times may still come. */
  due<W extends { end: bigint }>(windows: W[], now: bigint = process.hrtime.bigint()): [W[], W[]] {
    if (!this.active) return [windows, []];
    const ready: W[] = [], later: W[] = [];
    for (const w of windows) (w.end + KERNEL_TIME_WAIT_NS <= now ? ready : later).push(w);
    return [ready, later];
  }
}
