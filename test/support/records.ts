// Raw ring records built field by field with the layout of agent/src/ingest/record.ts (itself proven against the C
// header by test/unit/record-layout.test.ts), for tests that feed the agent's ingest without a shim.
import { RECORD_SIZE, RecordField } from "../../agent/src/ingest/record.js";

export type Fields = Partial<Record<keyof typeof RecordField, number | bigint>>;

/** One record: kind, op, t_start, the named fields (by their width in the layout), flags and dur. */
export function record(kind: number, op: number, t: bigint, fields: Fields = {}, flags = 0, dur = 0): Buffer {
  const b = Buffer.alloc(RECORD_SIZE);
  b[RecordField.kind[0]] = kind;
  b[RecordField.op[0]] = op;
  b.writeBigUInt64LE(t, RecordField.t_start[0]);
  b.writeUInt32LE(dur, RecordField.dur[0]);
  b.writeUInt16LE(flags, RecordField.flags[0]);
  for (const [name, value] of Object.entries(fields)) {
    const [off, size] = RecordField[name as keyof typeof RecordField];
    if (size === 8) b.writeBigUInt64LE(BigInt(value), off);
    else if (size === 4) b.writeInt32LE(Number(value), off);
    else if (size === 2) b.writeUInt16LE(Number(value), off);
    else b[off] = Number(value);
  }
  return b;
}
