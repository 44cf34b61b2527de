// The TypeScript decoder mirrors native/include/tailguard/record.h: every field offset and size, and every constant,
// compared with what the addon compiled from the header; then one real record decoded field by field.
import { describe, expect, it } from "vitest";

import { Mechanism, native } from "../../agent/src/ingest/native.js";
import { decodeRecord, RECORD_SIZE, RecordField, recordConstants } from "../../agent/src/ingest/record.js";

describe("record layout", () => {
  const layout = native().layout();

  it("has the same size, fields, offsets and sizes in C and TypeScript", () => {
    expect(layout.recordSize).toBe(RECORD_SIZE);
    expect(Object.keys(layout.record).sort()).toEqual(Object.keys(RecordField).sort());
    for (const [name, [off, size]] of Object.entries(RecordField)) expect(layout.record[name], name).toEqual([off, size]);
  });

  it("has the same kinds, ops, flags, states and attach paths", () => {
    expect(layout.constants).toEqual(recordConstants);
  });

  it("names the scheduling mechanisms of control.h as the TypeScript side does", () => {
    expect(native().mechanisms).toEqual(Mechanism);
  });

  it("decodes each field from its documented place", () => {
    const buf = Buffer.alloc(RECORD_SIZE);
    // distinct values in every field, written at the C offsets
    const put = (name: keyof typeof RecordField, write: (off: number) => void) => write(layout.record[name][0]);
    put("kind", (o) => buf.writeUInt8(2, o));
    put("op", (o) => buf.writeUInt8(1, o));
    put("api", (o) => buf.writeUInt16LE(0x1234, o));
    put("tid", (o) => buf.writeUInt32LE(0xdeadbeef, o));
    put("t_start", (o) => buf.writeBigUInt64LE(0x1122334455667788n, o));
    put("dur", (o) => buf.writeUInt32LE(4321, o));
    put("flags", (o) => buf.writeUInt16LE(0x0c, o));
    put("result", (o) => buf.writeInt16LE(-7, o));
    put("stream", (o) => buf.writeBigUInt64LE(0xabcdef0123456789n, o));
    put("launch.kernel", (o) => buf.writeUInt32LE(99, o));
    put("launch.grid", (o) => [10, 20, 30].forEach((v, i) => buf.writeUInt32LE(v, o + 4 * i)));
    put("launch.block", (o) => [1, 2, 3].forEach((v, i) => buf.writeUInt16LE(v, o + 2 * i)));
    put("launch.shared_kib", (o) => buf.writeUInt16LE(48, o));
    const r = decodeRecord(buf);
    expect(r).toMatchObject({
      kind: 2,
      op: 1,
      api: 0x1234,
      tid: 0xdeadbeef,
      tStart: 0x1122334455667788n,
      durNs: 4321,
      flags: 0x0c,
      result: -7,
      stream: 0xabcdef0123456789n,
      kernel: 99,
      grid: [10, 20, 30],
      block: [1, 2, 3],
      sharedKiB: 48,
    });
    const p = Buffer.alloc(RECORD_SIZE);
    p.writeUInt32LE(4242, layout.record["process.pid"][0]);
    p.writeUInt32LE(1, layout.record["process.ppid"][0]);
    p.writeInt32LE(-10, layout.record["process.priority"][0]);
    expect(decodeRecord(p)).toMatchObject({ pid: 4242, ppid: 1, priority: -10 });
  });

  it("names every intercepted entry point in the order of apis.def", () => {
    const apis = native().apis();
    expect(apis[0]).toBeNull();
    expect(apis[1]!.name).toBe("cuGetProcAddress");
    expect(apis.filter((a) => a?.family === "HIP").length).toBeGreaterThan(30);
    expect(new Set(apis.slice(1).map((a) => a!.name)).size).toBe(apis.length - 1);
  });
});
