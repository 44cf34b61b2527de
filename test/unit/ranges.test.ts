// NVTX ranges in the agent: RANGE records paired into ranges (agent/src/ingest/ranges.ts) and a window's ranges as its
// child spans with its launches nested in them (rangeSpans in agent/src/telemetry/spans.ts), on hand-built records.
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";

import { RangeTracker, RANGES_PER_WINDOW } from "../../agent/src/ingest/ranges.js";
import { AT_OP, AT_RANGE_CATEGORY, AT_RANGE_DEPTH, AT_RANGE_DOMAIN, AT_RANGE_ID, AT_RANGE_MESSAGE, AT_T_START, AT_TID, Kind, RECORD_SIZE } from "../../agent/src/ingest/record.js";
import type { Launch } from "../../agent/src/model.js";
import { SpanPipeline } from "../../agent/src/telemetry/spans.js";
import { processMeta, requestWindow } from "../support/model.js";

const names = new Map<number, string>([[1, "serve"], [2, "preprocess"], [3, "tailguard-test"], [4, "layer.conv1"], [5, "cross"], [6, "mark"]]);
const OP = { push: 1, pop: 2, start: 3, end: 4, mark: 5 } as const;

function rec(op: keyof typeof OP, tid: number, t: bigint, f: { message?: number; domain?: number; id?: bigint; depth?: number; category?: number } = {}): Buffer {
  const b = Buffer.alloc(RECORD_SIZE);
  b[8] = Kind.RANGE;
  b[AT_OP] = OP[op];
  b.writeUInt32LE(tid, AT_TID);
  b.writeBigUInt64LE(t, AT_T_START);
  b.writeBigUInt64LE(f.id ?? 0n, AT_RANGE_ID);
  b.writeUInt32LE(f.message ?? 0, AT_RANGE_MESSAGE);
  b.writeUInt32LE(f.domain ?? 0, AT_RANGE_DOMAIN);
  b.writeUInt32LE(f.depth ?? 0, AT_RANGE_DEPTH);
  b.writeUInt32LE(f.category ?? 0, AT_RANGE_CATEGORY);
  return b;
}

function feed(tracker: RangeTracker, ...records: Buffer[]) {
  for (const r of records) tracker.record(r, 0, names);
}

describe("RangeTracker", () => {
  it("nests push/pop per thread and domain, pairs start/end across threads (an end read first too), keeps marks", () => {
    const tr = new RangeTracker();
    feed(tr,
      rec("push", 10, 100n, { message: 1, depth: 1 }),
      rec("push", 10, 110n, { message: 2, depth: 2 }),
      rec("push", 10, 120n, { message: 4, domain: 3, depth: 1, category: 3 }), // another domain, nested in time
      rec("pop", 10, 130n, { depth: 2 }), // pops the default domain's innermost: preprocess
      rec("mark", 10, 135n, { message: 6 }),
      rec("pop", 10, 140n, { domain: 3, depth: 1 }),
      rec("end", 11, 170n, { id: 4n }), // read before its start: another lane drained first
      rec("start", 10, 150n, { message: 5, id: 4n }),
      rec("pop", 10, 200n, { depth: 1 }),
    );
    const ranges = tr.forWindow(100n, 300n);
    expect(ranges.map((r) => [r.name, r.op, r.durNs, r.parent, r.domain, r.category, r.open])).toEqual([
      ["serve", "push", 100, -1, null, 0, false],
      ["preprocess", "push", 20, 0, null, 0, false],
      ["layer.conv1", "push", 20, 1, "tailguard-test", 3, false],
      ["mark", "mark", 0, 2, null, 0, false], // inside layer.conv1, still open
      ["cross", "start", 20, 0, null, 0, false],
    ]);
  });

  it("gives a window the ranges that overlap it, open ones up to its end, and counts ranges no window showed", () => {
    const tr = new RangeTracker();
    feed(tr, rec("push", 1, 100n, { message: 1, depth: 1 }), rec("pop", 1, 150n, { depth: 1 }));
    feed(tr, rec("push", 1, 400n, { message: 2, depth: 1 }));
    expect(tr.forWindow(200n, 300n)).toEqual([]);
    const open = tr.forWindow(350n, 500n);
    expect(open.map((r) => [r.name, r.durNs, r.open])).toEqual([["preprocess", 100, true]]);
    tr.prune(1000n);
    expect(tr.counts).toEqual({ records: 3, dropped: 1 }); // serve: no window overlapped it; preprocess is open
    tr.clear();
    expect(tr.counts.dropped).toBe(1); // preprocess was shown
  });

  it("stays bounded, and ignores pops with nothing pushed and ends of unknown ids", () => {
    const tr = new RangeTracker();
    feed(tr, rec("pop", 1, 1n, { depth: 1 }), rec("end", 1, 2n, { id: 99n }));
    for (let i = 0; i < 10_000; i++) feed(tr, rec("mark", 1, 10n + BigInt(i), { message: 6 }));
    expect(tr.counts.dropped).toBe(10_000 - 4096);
    expect(tr.forWindow(0n, 100_000n)).toHaveLength(RANGES_PER_WINDOW);
  });
});

describe("range spans", () => {
  it("are the window's children, nested as pushed, with each launch under the innermost range it was made in", async () => {
    const meta = processMeta(7, { anchorMonotonic: 1_000n, anchorRealtime: 1_700_000_000_000_000_000n });
    const launch = (t: bigint, tid: number): Launch => ({ name: "k", op: "kernel", t, apiNs: 100, stream: 0n, tid });
    const w = requestWindow(7, {
      t: 1000n, durNs: 1000, launchCount: 4,
      launches: [launch(1100n, 1), launch(1300n, 1), launch(1310n, 2), launch(1900n, 1)],
      ranges: [
        { name: "serve", domain: null, category: 0, op: "push", tid: 1, t: 1050n, durNs: 900, open: false, parent: -1 },
        { name: "inner", domain: "d", category: 2, op: "push", tid: 1, t: 1250n, durNs: 100, open: true, parent: 0 },
        { name: "", domain: null, category: 0, op: "start", tid: 2, t: 1305n, durNs: 50, open: false, parent: -1 },
      ],
    });
    const exporter = new InMemorySpanExporter();
    const p = new SpanPipeline({ exporter, sampleRate: 1, exportDelayMs: 1 });
    p.window(meta, w);
    await p.flush();
    const spans = exporter.getFinishedSpans();
    const one = (name: string) => spans.filter((s) => s.name === name)[0];
    const request = one("request");
    const serve = one("serve");
    const inner = one("inner");
    const unnamed = one("(nvtx range)");
    expect(serve.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(inner.parentSpanContext?.spanId).toBe(serve.spanContext().spanId);
    expect(inner.attributes).toMatchObject({ "nvtx.domain": "d", "nvtx.category": 2, "tailguard.nvtx.open": true, "tailguard.nvtx.op": "push" });
    expect(unnamed.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    expect(ids.size).toBe(spans.length);
    const parents = spans.filter((s) => s.name === "k").map((s) => s.parentSpanContext?.spanId);
    expect(parents).toEqual([serve, inner, unnamed, serve].map((s) => s.spanContext().spanId));
    expect(p.stats().exported).toBe(1 + 3 + 4);
  });
});
