// KERNEL_TIME records in the agent (agent/src/ingest/kernel-time.ts): decoded, tied to their launches by (tid,
// t_start), a graph launch's kernels merged, and the windows of a process that times kernels held back until their
// device times can have come.
import { describe, expect, it } from "vitest";

import { KERNEL_TIME_WAIT_NS, KernelTimeOp, KernelTimes, kernelTimeOf } from "../../agent/src/ingest/kernel-time.js";
import { Flag, Kind, KT_CALL_SLACK_NS, RECORD_SIZE, RecordField } from "../../agent/src/ingest/record.js";
import type { Launch } from "../../agent/src/model.js";

function rec(op: number, fields: { tid?: number; launch?: bigint; start?: bigint; end?: bigint; name?: number; result?: number; callNs?: number } = {}) {
  const b = Buffer.alloc(RECORD_SIZE);
  b[RecordField.kind[0]] = Kind.KERNEL_TIME;
  b[RecordField.op[0]] = op;
  b.writeUInt32LE(fields.tid ?? 0, RecordField.tid[0]);
  b.writeInt16LE(fields.result ?? 0, RecordField.result[0]);
  b.writeBigUInt64LE(BigInt(fields.name ?? 0), RecordField.stream[0]);
  b.writeBigUInt64LE(fields.launch ?? 0n, RecordField["kernel_time.launch"][0]);
  b.writeBigUInt64LE(fields.start ?? 0n, RecordField["kernel_time.gpu_start"][0]);
  b.writeBigUInt64LE(fields.end ?? 0n, RecordField["kernel_time.gpu_end"][0]);
  if (fields.callNs !== undefined) {
    b.writeUInt16LE(Flag.KT_CALL, RecordField.flags[0]);
    b.writeUInt32LE(fields.callNs, RecordField.dur[0]);
  }
  return b;
}
const launch = (tid: number, t: bigint, op: Launch["op"] = "kernel"): Launch => ({ name: "k", op, t, apiNs: null, stream: 0n, tid });

describe("kernel times in the agent", () => {
  it("decodes a kernel's device time and name; copies are named by kind; STARTED and DROPPED carry none", () => {
    const names = new Map([[7, "gemm"]]);
    expect(kernelTimeOf(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 100n, start: 150n, end: 1150n, name: 7 }), 0, names))
      .toEqual({ op: 1, kernel: "gemm", tid: 5, launch: 100n, gpuStart: 150n, gpuEnd: 1150n, ns: 1000 });
    expect(kernelTimeOf(rec(KernelTimeOp.MEMSET, { start: 1n, end: 2n }), 0, names)?.kernel).toBe("memset");
    expect(kernelTimeOf(rec(KernelTimeOp.KERNEL, { name: 9 }), 0, names)?.kernel).toBe("unknown");
    expect(kernelTimeOf(rec(KernelTimeOp.DROPPED, { launch: 3n }), 0, names)).toBeNull();
    expect(kernelTimeOf(rec(KernelTimeOp.STARTED, { result: 2 }), 0, names)).toBeNull();
  });

  it("ties device times to launches by thread and t_start; a graph launch spans its kernels", () => {
    const k = new KernelTimes();
    const names = new Map<number, string>();
    k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 100n, start: 200n, end: 300n }), 0, names);
    k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 400n, start: 500n, end: 600n }), 0, names);
    k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 400n, start: 650n, end: 900n }), 0, names);
    const ls = [launch(5, 100n), launch(6, 100n), launch(5, 400n, "graph"), launch(5, 999n)];
    k.attach(ls);
    expect(ls.map((l) => [l.gpuStart, l.gpuEnd, l.gpuKernels])).toEqual([
      [200n, 300n, undefined], [undefined, undefined, undefined], [500n, 900n, 2], [undefined, undefined, undefined]]);
  });

  it("keyed by the CUDA call (the CUDA runtime's): the thread's latest launch before the call ended, within the slack", () => {
    const k = new KernelTimes();
    const names = new Map<number, string>();
    const slack = BigInt(KT_CALL_SLACK_NS);
    const t = k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 1_000_000n, callNs: 30_000, start: 2_000_000n, end: 3_000_000n }), 0, names)!;
    expect(t.call).toEqual({ start: 1_000_000n, end: 1_030_000n });
    expect(t.launch).toBe(0n);
    // a driver-API call: it began inside the shim's wrapper, a moment after the launch record's t
    k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 2_000_000n, callNs: 1_000, start: 4_000_000n, end: 5_000_000n }), 0, names);
    // too far before: no launch of this thread in [call start - slack, call end]
    k.record(rec(KernelTimeOp.KERNEL, { tid: 5, launch: 9_000_000n, callNs: 1_000, start: 9_500_000n, end: 9_600_000n }), 0, names);
    const ls = [launch(5, 1_010_000n), launch(5, 2_000_000n - slack + 1n), launch(5, 8_000_000n), launch(6, 1_010_000n)];
    k.attach(ls);
    expect(ls.map((l) => [l.gpuStart, l.gpuEnd])).toEqual([[2_000_000n, 3_000_000n], [4_000_000n, 5_000_000n], [undefined, undefined], [undefined, undefined]]);
  });

  it("holds windows back only once the process says it times kernels, until their device times can have come", () => {
    const k = new KernelTimes();
    const w = [{ end: 1_000_000_000n }, { end: 2_000_000_000n }];
    expect(k.due(w, 1_000_000_001n)).toEqual([w, []]); // no kernel timing: at once
    k.record(rec(KernelTimeOp.STARTED, { result: 1 }), 0, new Map());
    expect(k.active).toBe(true);
    expect(k.due(w, 1_000_000_000n + KERNEL_TIME_WAIT_NS)).toEqual([[w[0]], [w[1]]]);
  });
});
