// Per-kernel device times: the shim's KERNEL_TIME records (native/shim/kernel_timing.c, TAILGUARD_KERNEL_TIMING;
// docs/gpu-time.md "Per-kernel device time (CUPTI)"), each one kernel, copy or memset as CUPTI measured it on the
// device, keyed to the launch record that submitted it by (tid, launch t_start).
import { AT_KT_END, AT_KT_LAUNCH, AT_KT_START, AT_OP, AT_STREAM, AT_TID } from "./record.js";

/** KERNEL_TIME ops (record.h, tg_kernel_time_op). */
export const KernelTimeOp = { KERNEL: 1, MEMCPY: 2, MEMSET: 3, DROPPED: 4 } as const;

/** One device record: the kernel's name (its interned name; "unknown" when the name table lacks it), device time. */
export interface KernelTime {
  op: number;
  kernel: string;
  /** the launching thread and its launch record's t_start: the launch it belongs to */
  tid: number;
  launch: bigint;
  gpuStart: bigint;
  gpuEnd: bigint;
  /** gpuEnd - gpuStart, ns */
  ns: number;
}

/** Decodes the KERNEL_TIME record at byte o; null for a DROPPED record (a count of device records lost). */
export function kernelTimeOf(data: Buffer, o: number, names: Map<number, string>): KernelTime | null {
  const op = data[o + AT_OP];
  if (op === KernelTimeOp.DROPPED) return null;
  const gpuStart = data.readBigUInt64LE(o + AT_KT_START), gpuEnd = data.readBigUInt64LE(o + AT_KT_END);
  const id = data.readUInt32LE(o + AT_STREAM);
  return {
    op,
    kernel: op === KernelTimeOp.MEMCPY ? "memcpy" : op === KernelTimeOp.MEMSET ? "memset" : (names.get(id) ?? "unknown"),
    tid: data.readUInt32LE(o + AT_TID),
    launch: data.readBigUInt64LE(o + AT_KT_LAUNCH),
    gpuStart,
    gpuEnd,
    ns: gpuEnd > gpuStart ? Number(gpuEnd - gpuStart) : 0,
  };
}
