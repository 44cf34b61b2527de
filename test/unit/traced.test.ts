// Requests with a trace context finished at their own end (agent/src/ingest/traced.ts, through the WindowAssembler),
// and their spans (agent/src/telemetry/spans.ts): inside a request window that has not ended, exactly once whatever
// the window does later, with holds linked to a cause request before it has ended; and in bounded memory against a
// thread that never ends its requests and many short ones. End to end with the shim: e2e/trace-context.test.ts.
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";

import type { Hold, ProcessMeta, RequestWindow, TracedRequest } from "../../agent/src/model.js";
import { AT_CONTEXT_SPAN_ID, AT_CONTEXT_TRACE_ID, Flag, Kind, RECORD_SIZE, RecordField } from "../../agent/src/ingest/record.js";
import { WindowAssembler } from "../../agent/src/ingest/windows.js";
import { record } from "../support/records.js";
import { requestSpanContext, SpanPipeline, type CauseRequest } from "../../agent/src/telemetry/spans.js";


const T0 = 5_000_000_000_000n;
const us = (n: number) => T0 + BigInt(Math.round(n * 1000));
const BEGIN = 2;
const END = 3;
/** A CONTEXT record of thread tid: trace id 16 × `trace`, span id 8 × `span` (a number above 255: written whole). */
function ctx(op: number, tid: number, atUs: number, trace: number, span: number, name = 7): Buffer {
  const b = record(Kind.CONTEXT, op, us(atUs), { tid, stream: name }, Flag.SAMPLED);
  b.fill(trace & 0xff, AT_CONTEXT_TRACE_ID, AT_CONTEXT_TRACE_ID + 16);
  b.writeUInt32BE(trace >>> 0, AT_CONTEXT_TRACE_ID + 12);
  b.fill(span & 0xff, AT_CONTEXT_SPAN_ID, AT_CONTEXT_SPAN_ID + 8);
  return b;
}
const launch = (tid: number, atUs: number) => record(Kind.LAUNCH, 1, us(atUs), { "launch.kernel": 1, stream: 7n, tid }, Flag.UNTIMED);
const sync = (tid: number, atUs: number, durUs: number) => record(Kind.SYNC, 1, us(atUs), { stream: 7n, tid }, 0, durUs * 1000);
const hold = (tid: number, atUs: number, durUs: number) =>
  record(Kind.HOLD, 1, us(atUs), { "hold.cause_pid": 9, "hold.cause_priority": 10, "hold.cause_window": 3, "hold.released_by": 1, "hold.priority": -10, tid }, 0, durUs * 1000);
const windowBegin = (atUs: number, seq: number) => record(Kind.WINDOW, 1, us(atUs), { "window.seq": seq });
const windowEnd = (atUs: number, durUs: number, seq: number, launches: number) =>
  record(Kind.WINDOW, 2, us(atUs), { "window.seq": seq, "window.launches": launches, "window.streams": 2 }, 0, durUs * 1000);

const meta: ProcessMeta = {
  pid: 42, ppid: 1, cmdline: ["server"], priority: 0, gpu: null, anchorMonotonic: T0, anchorRealtime: T0 * 400n, resource: {},
};

function assembler() {
  const windows: RequestWindow[] = [];
  const requests: TracedRequest[] = [];
  const a = new WindowAssembler(meta, null, {
    window: (_, w) => windows.push(w),
    hold: () => {},
    launchApiTime: () => {},
    request: (_, r) => requests.push(r),
  }, new Map([[1, "gemm"], [7, "infer"]]));
  return { a, windows, requests };
}

describe("requests with a trace context, at their end", () => {
  it("are finished one pump after their end inside a window that has not ended, once, with their own work", async () => {
    const { a, windows, requests } = assembler();
    a.ingest(Buffer.concat([
      windowBegin(0, 1),
      ctx(BEGIN, 11, 1, 0xa1, 1), launch(11, 2), launch(11, 3), hold(11, 4, 2), sync(11, 10, 5),
      ctx(BEGIN, 12, 5, 0xb2, 2), launch(12, 6), launch(13, 7), // thread 13: no request
      ctx(END, 11, 20, 0xa1, 1),
    ]));
    a.settle();
    expect(requests).toHaveLength(0); // another lane may still hold records of it
    a.settle();
    expect(requests).toHaveLength(1);
    const r = requests[0];
    expect(r).toMatchObject({ pid: 42, id: { tid: 11, t: us(1), depth: 1 }, t: us(1), durNs: 19_000, open: false, threads: 1, launchCount: 2,
      holdCount: 1, heldNs: 2000, syncCount: 1, syncNs: 5000 });
    expect(r.context).toEqual({ traceId: "a1".repeat(12) + "000000a1", parentSpanId: "01".repeat(8), sampled: true, name: "infer" });
    expect(r.launches.map((l) => [l.name, l.t, l.tid])).toEqual([["gemm", us(2), 11], ["gemm", us(3), 11]]);
    expect(r.holds.map((h) => h.t)).toEqual([us(4)]);
    expect(windows).toHaveLength(0);

    // the window ends later, and the other request after it
    a.ingest(Buffer.concat([windowEnd(0, 40, 1, 4), ctx(END, 12, 50, 0xb2, 2)]));
    a.settle();
    a.settle();
    expect(requests.map((x) => x.context.traceId.slice(0, 2))).toEqual(["a1", "b2"]);
    expect(windows).toHaveLength(1);
    const w = windows[0];
    // its parts under thread requests are marked as theirs; thread 13's work is the window's own
    expect(w.contexts!.map((c) => [c.context?.traceId.slice(0, 2) ?? null, c.request?.tid ?? null, c.launches.length])).toEqual([
      ["a1", 11, 2], ["b2", 12, 1], [null, null, 1]]);

    // as spans: one request span per request (none from the window for them), the window's own for thread 13
    const exporter = new InMemorySpanExporter();
    const p = new SpanPipeline({ exporter, sampleRate: 0, exportDelayMs: 1 });
    for (const x of requests) p.request(meta, x);
    p.window(meta, w);
    await p.flush();
    const spans = exporter.getFinishedSpans();
    const joined = spans.filter((s) => s.name === "request infer");
    expect(joined.map((s) => s.spanContext().traceId.slice(0, 2))).toEqual(["a1", "b2"]);
    expect(joined[0].spanContext()).toEqual(requestSpanContext(meta, { id: r.id, ...r.context }));
    expect(joined[0].parentSpanContext).toMatchObject({ traceId: r.context.traceId, spanId: "01".repeat(8), isRemote: true });
    expect(joined[0].attributes).toMatchObject({ "tailguard.request.launches": 2, "tailguard.request.holds": 1, "tailguard.request.sync_ns": 5000, "thread.id": 11 });
    expect(spans.filter((s) => s.name === "request").map((s) => s.attributes["tailguard.window.seq"])).toEqual([1]);
    expect(spans.filter((s) => s.name === "hold").map((s) => s.parentSpanContext?.spanId)).toEqual([joined[0].spanContext().spanId]);
  });

  it("links a hold to the cause's request span, named before that request has ended, when it had exactly one open", async () => {
    const cause = { ...meta, pid: 9, anchorMonotonic: T0 + 9n };
    const held = { ...meta, pid: 77, priority: -10 };
    const open: CauseRequest = { id: { tid: 3, t: us(1), depth: 1 }, traceId: "ab".repeat(16), sampled: true };
    // at 5 µs the cause had one request open, at 6 µs two (which one caused the hold is not known)
    const two = [open, { ...open, id: { tid: 4, t: us(5.5), depth: 1 } }];
    const exporter = new InMemorySpanExporter();
    const p = new SpanPipeline({ exporter, sampleRate: 0, exportDelayMs: 1, processByPid: (pid) => (pid === 9 ? cause : undefined), causeRequests: (pid, t) => (pid !== 9 ? [] : t < us(5.5) ? [open] : two) });
    const h: Hold = { pid: 77, reason: "priority", t: us(5), durNs: 1000, priority: -10, causePid: 9, causePriority: 10, causeWindow: 3, releasedBy: "idle", tid: 1 };
    p.hold(held, h);
    p.hold(held, { ...h, t: us(6) });
    // the cause's request ends afterwards: its span has the id the link named
    p.request(cause, { pid: 9, id: open.id, context: { traceId: open.traceId, parentSpanId: "cd".repeat(8), sampled: true }, t: us(1), durNs: 9000,
      open: false, threads: 1, launchCount: 1, launches: [], holds: [], holdCount: 0, heldNs: 0, syncs: [], syncCount: 0, syncNs: 0, ranges: [] });
    await p.flush();
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === "request")!;
    const holds = spans.filter((s) => s.name === "hold");
    expect(holds[0].links.map((l) => l.context)).toEqual([request.spanContext()]);
    expect(holds[1].links.map((l) => l.context.spanId)).not.toContain(request.spanContext().spanId);
  });

  it("keeps bounded memory: a thread that never ends its requests, and 300,000 short ones in a window that never ends", () => {
    const { a, requests } = assembler();
    a.ingest(windowBegin(0, 1));
    // 100,000 begins on one thread, never ended: the oldest are let go, finished open, each once
    const N = 100_000;
    for (let k = 0; k < N; k += 10_000) {
      const batch: Buffer[] = [];
      for (let i = k; i < k + 10_000; i++) batch.push(ctx(BEGIN, 5, 1 + i, 0x10000 + i, 1), launch(5, 1.5 + i));
      a.ingest(Buffer.concat(batch));
      a.settle();
    }
    a.settle();
    expect(requests.length).toBeGreaterThanOrEqual(N - 16);
    expect(requests.every((r) => r.open)).toBe(true);
    expect(new Set(requests.map((r) => r.context.traceId)).size).toBe(requests.length);
    const afterLeak = a.contextsHeld;
    expect(afterLeak.requests).toBeLessThan(10_000);
    expect(afterLeak.intervals).toBeLessThan(10_000);

    // 300,000 short requests on 4 threads, a launch and a sync each: each finished once, nothing grows
    requests.length = 0;
    const M = 300_000;
    const B = 25_000;
    const template = Buffer.concat([ctx(BEGIN, 0, 0, 0, 2), launch(0, 0), sync(0, 0, 1), ctx(END, 0, 0, 0, 2)]);
    const batch = Buffer.alloc(B * template.length);
    let t = us(200_000);
    let peak = { requests: 0, intervals: 0, holds: 0 };
    for (let k = 0; k < M; k += B) {
      for (let i = 0; i < B; i++) {
        const o = i * template.length;
        template.copy(batch, o);
        const tid = 100 + ((k + i) % 4);
        for (let j = 0; j < 4; j++) {
          batch.writeUInt32LE(tid, o + j * RECORD_SIZE + RecordField.tid[0]);
          batch.writeBigUInt64LE((t += 1000n), o + j * RECORD_SIZE + RecordField.t_start[0]);
        }
        for (const j of [0, 3]) batch.writeUInt32BE(k + i + 1, o + j * RECORD_SIZE + AT_CONTEXT_TRACE_ID + 12);
      }
      a.ingest(batch);
      a.settle();
      const held = a.contextsHeld;
      peak = { requests: Math.max(peak.requests, held.requests), intervals: Math.max(peak.intervals, held.intervals), holds: held.holds };
    }
    a.settle();
    a.settle();
    expect(requests.length).toBe(M);
    expect(requests.every((r) => !r.open && r.launchCount === 1 && r.syncCount === 1)).toBe(true);
    expect(peak.requests).toBeLessThan(3 * B);
    expect(peak.intervals).toBeLessThan(4 * 4096 + 100);
    expect(a.buffered.launches).toBeLessThanOrEqual(1 << 17);
  }, 60_000);
});
