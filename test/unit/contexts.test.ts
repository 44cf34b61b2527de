// ingest/contexts.ts alone: which trace context a thread's work ran under at a time, from CONTEXT records.
import { describe, expect, it } from "vitest";

import { ContextTracker, windowContexts } from "../../agent/src/ingest/contexts.js";
import { AT_CONTEXT_SPAN_ID, AT_CONTEXT_TRACE_ID, Flag, Kind, RecordField } from "../../agent/src/ingest/record.js";

const PROCESS = 1;
const BEGIN = 2;
const END = 3;

/** A CONTEXT record: trace id `trace` repeated (0: none), span id `span` repeated, sampled, name id. */
function ctx(op: number, tid: number, t: bigint, trace = 0, span = 0, name = 0, sampled = true): Buffer {
  const b = Buffer.alloc(64);
  b[RecordField.kind[0]] = Kind.CONTEXT;
  b[RecordField.op[0]] = op;
  b.writeUInt32LE(tid, RecordField.tid[0]);
  b.writeBigUInt64LE(t, RecordField.t_start[0]);
  b.writeUInt16LE(sampled ? Flag.SAMPLED : 0, RecordField.flags[0]);
  b.writeBigUInt64LE(BigInt(name), RecordField.stream[0]);
  b.fill(trace, AT_CONTEXT_TRACE_ID, AT_CONTEXT_TRACE_ID + 16);
  b.fill(span, AT_CONTEXT_SPAN_ID, AT_CONTEXT_SPAN_ID + 8);
  return b;
}

function tracker(...records: Buffer[]): ContextTracker {
  const t = new ContextTracker(new Map([[7, "infer"]]));
  for (const r of records) t.record(r, 0);
  return t;
}
const traceOf = (t: ContextTracker, tid: number, at: bigint) => t.contextAt(tid, at)?.ctx.traceId?.slice(0, 2) ?? null;

describe("trace contexts", () => {
  it("the innermost request open on the thread, else the process's default; none before any", () => {
    const t = tracker(
      ctx(PROCESS, 1, 100n, 0xaa, 1),
      ctx(BEGIN, 2, 200n, 0xbb, 2, 7),
      ctx(BEGIN, 2, 300n, 0xcc, 3),
      ctx(END, 2, 400n, 0xcc, 3),
      ctx(END, 2, 500n, 0xbb, 2, 7),
      ctx(PROCESS, 1, 600n), // cleared
    );
    expect(t.active).toBe(true);
    expect(traceOf(t, 2, 50n)).toBe(null);
    expect(traceOf(t, 2, 150n)).toBe("aa");
    expect(traceOf(t, 2, 250n)).toBe("bb");
    expect(traceOf(t, 2, 350n)).toBe("cc");
    expect(traceOf(t, 2, 450n)).toBe("bb");
    expect(traceOf(t, 2, 550n)).toBe("aa");
    expect(traceOf(t, 3, 250n)).toBe("aa"); // another thread: the process's
    expect(traceOf(t, 2, 650n)).toBe(null);
    expect(t.traceContext(t.contextAt(2, 250n)!.ctx)).toEqual({ traceId: "bb".repeat(16), parentSpanId: "02".repeat(8), sampled: true, name: "infer" });
  });

  it("splits a window by context: a span each, with its launches and holds; null when none has one", () => {
    const t = tracker(ctx(BEGIN, 1, 100n, 0x11, 1), ctx(BEGIN, 2, 100n, 0x22, 2, 0, false), ctx(END, 1, 900n, 0x11, 1));
    const launches = [[1, 200n], [2, 210n], [3, 220n], [1, 230n]] as const;
    const of = { count: launches.length, tid: (i: number) => launches[i][0], t: (i: number) => launches[i][1] };
    const hold = { pid: 1, reason: "priority" as const, t: 205n, durNs: 5, priority: 0, causePid: 9, causePriority: 1, causeWindow: 3, releasedBy: "idle", tid: 2 };
    const split = windowContexts(t, { start: 190n, end: 1000n, endTid: 1 }, of, [hold], 256)!;
    expect(split.map((c) => [c.context?.traceId.slice(0, 2) ?? null, c.context?.sampled ?? null, c.launches, c.holds, c.t, c.durNs])).toEqual([
      ["11", true, [0, 3], [], 200n, 700], // ends with its request, at 900
      ["22", false, [1], [0], 205n, 795], // still open: the window's end
      [null, null, [2], [], 190n, 810], // thread 3: no context, the window's own
    ]);
    expect(windowContexts(tracker(), { start: 0n, end: 10n, endTid: 1 }, of, [], 256)).toBe(null);
  });
});
