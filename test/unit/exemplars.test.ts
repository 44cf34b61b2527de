// Exemplars (agent/src/telemetry/exemplars.ts) and the OpenMetrics exposition (openmetrics.ts): the reservoir's bounded
// memory and what it keeps; through the span pipeline, exemplars only for spans whose export succeeded, with the ids
// the spans were exported with; /metrics in OpenMetrics for a scraper that asks, with the same series and values as the
// Prometheus text; OTLP metrics with exemplars, decoded with the official definitions.
import { afterEach, describe, expect, it } from "vitest";

import { TraceFlags, type SpanContext } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

import { JsonMetricsSerializer, ProtobufMetricsSerializer } from "@opentelemetry/otlp-transformer";
import type { PushMetricExporter, ResourceMetrics } from "@opentelemetry/sdk-metrics";

import { ExemplarReservoir } from "../../agent/src/telemetry/exemplars.js";
import { AgentMetrics, METRICS } from "../../agent/src/telemetry/metrics.js";
import { JsonExemplarSerializer, ProtobufExemplarSerializer } from "../../agent/src/telemetry/otlp-metrics.js";
import { wantsOpenMetrics } from "../../agent/src/telemetry/openmetrics.js";
import { SpanPipeline, type EncodedSpanExporter } from "../../agent/src/telemetry/spans.js";
import type { NvtxRange } from "../../agent/src/model.js";
import { ServedMetrics } from "../support/served-metrics.js";
import { heldLaunch, processMeta, requestWindow } from "../support/model.js";
import { decodeProtobuf, ExportMetricsServiceRequest, ExportTraceServiceRequest, flattenTraces } from "../support/otlp-receiver.js";

const OPENMETRICS = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const ctx = (i: number): SpanContext => ({
  traceId: i.toString(16).padStart(32, "0"),
  spanId: i.toString(16).padStart(16, "0"),
  traceFlags: TraceFlags.SAMPLED,
});

describe("the exemplar reservoir", () => {
  const boundsNs = Float64Array.from(METRICS.request_latency.buckets, (s) => Math.round(s * 1e9));

  it("keeps at most one exemplar per bucket, whatever the rate: the latest whose export settled ok", () => {
    const r = new ExemplarReservoir(boundsNs);
    let at = 0;
    // a million offers into every bucket, settled export by export (1000 spans each)
    for (let round = 0; round < 1000; round++) {
      const from = at;
      for (let k = 0; k < 1000; k++, at++) r.offer(((at * 7919) % 20_000_000) + 1, BigInt(at), ctx(at + 1), at);
      r.settle(from, at, true);
    }
    const kept = r.exemplars();
    expect(kept.length).toBeLessThanOrEqual(boundsNs.length + 1);
    // each in its own bucket, and in the bucket its value falls in (OpenMetrics requires it)
    expect(new Set(kept.map((e) => e.bucket)).size).toBe(kept.length);
    for (const e of kept) {
      expect(r.bucketOf(Math.round(e.value * 1e9))).toBe(e.bucket);
      if (e.bucket < boundsNs.length) expect(e.value).toBeLessThanOrEqual(METRICS.request_latency.buckets[e.bucket]);
    }
    // the reservoir's state is its two arrays: no growth with the number of offers
    const state = r as unknown as { kept: unknown[]; waiting: unknown[] };
    expect(state.kept.length + state.waiting.length).toBe(2 * (boundsNs.length + 1));
  });

  it("an exemplar waits for its export: lost exports leave nothing, a later one that succeeds is kept", () => {
    const r = new ExemplarReservoir(boundsNs);
    r.offer(3_000_000, 10n, ctx(1), 0);
    expect(r.exemplars()).toEqual([]); // not exported yet
    r.settle(0, 1, false);
    expect(r.exemplars()).toEqual([]); // its export failed
    r.offer(3_000_000, 20n, ctx(2), 1);
    r.offer(3_100_000, 30n, ctx(3), 2); // same bucket, while the first waits: not taken
    r.settle(1, 3, true);
    expect(r.exemplars()).toEqual([{ bucket: r.bucketOf(3_000_000), traceId: ctx(2).traceId, spanId: ctx(2).spanId, value: 0.003, timeNs: 20n }]);
    // an export of earlier positions does not settle a later offer
    r.offer(3_200_000, 40n, ctx(4), 10);
    r.settle(3, 10, true);
    expect(r.exemplars()[0].spanId).toBe(ctx(2).spanId);
    r.settle(10, 11, true);
    expect(r.exemplars()[0].spanId).toBe(ctx(4).spanId);
  });
});

describe("Accept negotiation", () => {
  it("OpenMetrics when the scraper prefers it, the Prometheus text otherwise", () => {
    expect(wantsOpenMetrics(OPENMETRICS)).toBe(true);
    expect(wantsOpenMetrics("application/openmetrics-text; version=1.0.0")).toBe(true);
    expect(wantsOpenMetrics(undefined)).toBe(false);
    expect(wantsOpenMetrics("*/*")).toBe(false);
    expect(wantsOpenMetrics("text/plain;version=0.0.4")).toBe(false);
    expect(wantsOpenMetrics("text/plain;version=0.0.4,application/openmetrics-text;q=0.5")).toBe(false);
    expect(wantsOpenMetrics("application/openmetrics-text;q=0")).toBe(false);
  });
});

/** A span exporter that answers as told, and remembers what it exported. */
class ScriptedExporter implements SpanExporter {
  readonly exported: ReadableSpan[] = [];
  ok = true;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.ok) this.exported.push(...spans);
    done({ code: this.ok ? ExportResultCode.SUCCESS : ExportResultCode.FAILED });
  }
  async shutdown() {}
  async forceFlush() {}
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  exemplar?: { labels: Record<string, string>; value: number; timestamp: number };
}

/** Both text formats, as far as these tests read them: samples, and exemplars after ` # `. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  const labelsOf = (s: string | undefined) => Object.fromEntries([...(s ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})? (\S+)(?: # \{(.*)\} (\S+) (\S+))?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const s: Sample = { name: m[1], labels: labelsOf(m[2]), value: m[3] === "+Inf" ? Infinity : Number(m[3]) };
    if (m[4] !== undefined) s.exemplar = { labels: labelsOf(m[4]), value: Number(m[5]), timestamp: Number(m[6]) };
    out.push(s);
  }
  return out;
}

let open: ServedMetrics[] = [];
afterEach(async () => {
  await Promise.all(open.map((m) => m.shutdown()));
  open = [];
});

async function get(m: ServedMetrics, accept?: string) {
  const res = await fetch(m.url()!, { headers: accept ? { accept } : {} });
  expect(res.status).toBe(200);
  return { type: res.headers.get("content-type"), text: await res.text() };
}

describe("exemplars through the span pipeline", () => {
  it("point at exported request and hold spans only, with the ids they were exported with; the two expositions agree", async () => {
    const m = new ServedMetrics({ pidLabel: true });
    open.push(m);
    await m.ready;
    const exporter = new ScriptedExporter();
    const pipeline = new SpanPipeline({ exporter, exemplars: m.exemplars, batchSize: 1_000_000, exportDelayMs: 60_000 });
    const high = processMeta(11, { priority: 10, anchorRealtime: 1_700_000_000_000_000_000n });
    const low = processMeta(12, { priority: -10, anchorRealtime: 1_700_000_000_000_000_000n });
    m.attach(high);
    m.attach(low);
    const observe = (meta: typeof high, seq: number, durNs: number, holds = 0) => {
      const w = requestWindow(meta.pid, {
        seq,
        t: BigInt(seq) * 100_000_000n,
        durNs,
        holds: Array.from({ length: holds }, (_, i) => heldLaunch(meta.pid, { t: BigInt(seq) * 100_000_000n + BigInt(i), durNs: 400_000 })),
      });
      for (const h of w.holds) m.observeHold(meta, h);
      m.observeWindow(meta, w);
      pipeline.window(meta, w);
    };
    // a first export fails: nothing it held may become an exemplar
    exporter.ok = false;
    observe(high, 1, 7_000_000, 1);
    await pipeline.flush();
    expect(parse((await get(m, OPENMETRICS)).text).filter((s) => s.exemplar)).toEqual([]);

    exporter.ok = true;
    observe(high, 2, 2_000_000, 1); // a request that was held: request and hold spans
    observe(high, 3, 40_000_000);
    observe(low, 4, 9_000_000); // batch work: no span (policy), so no exemplar
    await pipeline.flush();

    const om = await get(m, OPENMETRICS);
    expect(om.type).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect(om.text.endsWith("# EOF\n")).toBe(true);
    expect(om.text).toContain("# TYPE tailguard_launches counter\n");
    expect(om.text).toContain("# UNIT tailguard_request_latency_seconds seconds\n");
    const omSamples = parse(om.text);
    const withExemplars = omSamples.filter((s) => s.exemplar);
    const exported = new Map(exporter.exported.map((s) => [s.spanContext().spanId, s]));
    expect(withExemplars.map((s) => s.name).sort()).toEqual([
      "tailguard_hold_time_seconds_bucket",
      "tailguard_request_latency_seconds_bucket",
      "tailguard_request_latency_seconds_bucket",
    ]);
    for (const s of withExemplars) {
      const span = exported.get(s.exemplar!.labels.span_id);
      expect(span, `exemplar ${JSON.stringify(s.exemplar)} is an exported span`).toBeDefined();
      expect(span!.spanContext().traceId).toBe(s.exemplar!.labels.trace_id);
      expect(span!.name).toBe(s.name.startsWith("tailguard_hold") ? "hold" : "request");
      expect(span!.attributes["tailguard.exemplar"], "marked for the Collector's tail sampling").toBe(true);
      expect(s.labels.pid).toBe("11");
      // the value is the span's duration, in the bucket it labels, at the span's end
      const durS = (span!.duration[0] * 1e9 + span!.duration[1]) / 1e9;
      expect(s.exemplar!.value).toBe(durS);
      expect(durS).toBeLessThanOrEqual(Number(s.labels.le));
      expect(s.exemplar!.timestamp).toBeCloseTo(span!.endTime[0] + span!.endTime[1] / 1e9, 3);
    }

    // the same series and values as the Prometheus text, which has no exemplars
    const text = await get(m);
    expect(text.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(text.text).not.toContain("trace_id");
    const key = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    const values = (samples: Sample[]) => new Map(samples.map((s) => [key(s), s.value]));
    const a = values(parse(text.text));
    const b = values(omSamples);
    // the agent's own process figures move between two scrapes
    for (const k of [...a.keys(), ...b.keys()]) if (k.startsWith("process_")) a.delete(k), b.delete(k);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect(Object.fromEntries(b)).toEqual(Object.fromEntries(a));
    await pipeline.shutdown();
  });

  it("a window dropped from a full span queue is no exemplar, and marks no span", async () => {
    const m = new ServedMetrics({});
    open.push(m);
    await m.ready;
    const exporter = new ScriptedExporter();
    const pipeline = new SpanPipeline({ exporter, exemplars: m.exemplars, queueLimit: 2, exportDelayMs: 60_000 });
    const meta = processMeta(41, { priority: 10 });
    const held = requestWindow(41, { seq: 1, durNs: 5_000_000, holds: [heldLaunch(41), heldLaunch(41, { t: 1n })] }); // 3 spans > 2
    m.observeWindow(meta, held);
    pipeline.window(meta, held);
    await pipeline.flush();
    expect(pipeline.stats()).toMatchObject({ exported: 0, dropped: 3 });
    expect((await get(m, OPENMETRICS)).text).not.toContain(" # {");
    // the next one fits: it is exported, marked, and the exemplar
    const next = requestWindow(41, { seq: 2, durNs: 5_000_000 });
    m.observeWindow(meta, next);
    pipeline.window(meta, next);
    await pipeline.flush();
    expect(exporter.exported.map((s) => s.attributes["tailguard.exemplar"])).toEqual([true]);
    expect(parse((await get(m, OPENMETRICS)).text).filter((s) => s.exemplar).map((s) => s.exemplar!.labels.span_id)).toEqual([
      exporter.exported[0].spanContext().spanId,
    ]);
    await pipeline.shutdown();
  });

  it("protobuf written by the pipeline, NVTX range spans, exports that fail in between: exemplars only of exported spans", async () => {
    const m = new ServedMetrics({ pidLabel: true });
    open.push(m);
    await m.ready;
    const exported = new Map<string, any>();
    let calls = 0;
    const exporter: EncodedSpanExporter = {
      encoded: true,
      export(request, _spans, done) {
        const ok = ++calls % 3 !== 2; // every third export, from the second, fails
        if (ok)
          for (const s of flattenTraces(decodeProtobuf(ExportTraceServiceRequest, request), "protobuf")) exported.set(`${s.traceId}/${s.spanId}`, s);
        done({ code: ok ? ExportResultCode.SUCCESS : ExportResultCode.FAILED });
      },
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const pipeline = new SpanPipeline({ exporter, exemplars: m.exemplars, batchSize: 4, exportDelayMs: 60_000 });
    const meta = processMeta(51, { priority: 10, anchorRealtime: 1_700_000_000_000_000_000n });
    const range = (name: string, t: bigint): NvtxRange => ({ name, domain: null, category: 0, op: "push", tid: 1, t, durNs: 10, open: false, parent: -1 });
    const seen: string[] = [];
    for (let seq = 1; seq <= 40; seq++) {
      const t = BigInt(seq) * 100_000_000n;
      const w = requestWindow(51, {
        seq,
        t,
        durNs: 1_000_000 * (1 + (seq % 7)),
        holds: seq % 2 ? [heldLaunch(51, { t, durNs: 50_000 * seq })] : [],
        ranges: seq % 3 ? [range("forward", t), range("decode", t + 1n)] : [],
      });
      for (const h of w.holds) m.observeHold(meta, h);
      m.observeWindow(meta, w);
      pipeline.window(meta, w);
      if (seq % 3) continue; // several windows queued: exports of one or more whole windows each
      await pipeline.flush();
      // every scrape along the way: each exemplar is a span exported by then
      for (const s of parse((await get(m, OPENMETRICS)).text).filter((x) => x.exemplar)) {
        const span = exported.get(`${s.exemplar!.labels.trace_id}/${s.exemplar!.labels.span_id}`);
        expect(span, JSON.stringify(s)).toBeDefined();
        expect(span.name).toBe(s.name.startsWith("tailguard_hold") ? "hold" : "request");
        seen.push(s.exemplar!.labels.span_id);
      }
    }
    expect(calls).toBeGreaterThan(12);
    expect(new Set(seen).size).toBeGreaterThan(5);
    await pipeline.shutdown();
  });

  it("exemplar lines as OpenMetrics writes them: trace and span id, the value in s, the span's end in s", async () => {
    const m = new ServedMetrics({});
    open.push(m);
    await m.ready;
    const meta = processMeta(21, { priority: 10 });
    const w = requestWindow(21, { durNs: 3_000_000 });
    m.observeWindow(meta, w);
    m.exemplars.offer(meta, "request_latency", undefined, w.durNs, 1_700_000_000_123_456_789n, ctx(5), 0);
    m.exemplars.settled(0, 1, true);
    const { text } = await get(m, OPENMETRICS);
    // promtool 2.42's check metrics reads only the 0.0.4 text ("unknown metric type info"): Prometheus' own
    // OpenMetrics parser checks this text in test/e2e/exemplars.test.ts
    expect(text).toMatch(
      new RegExp(`^tailguard_request_latency_seconds_bucket\\{[^}]*le="0\\.005"\\} 1 # \\{trace_id="${ctx(5).traceId}",span_id="${ctx(5).spanId}"\\} 0\\.003 1700000000\\.123$`, "m"),
    );
    expect(text.match(/ # \{/g)).toHaveLength(1);
  });
});

describe("OTLP metrics", () => {
  /** An AgentMetrics with one request window and one hold whose spans were exported, and what its push exporter got. */
  async function pushed() {
    const got: ResourceMetrics[] = [];
    const exporter: PushMetricExporter = {
      export: (rm, done) => {
        got.push(rm);
        done({ code: ExportResultCode.SUCCESS });
      },
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const m = new AgentMetrics({ otlp: { exporter, intervalMs: 60_000 }, pidLabel: true, resource: { "service.name": "tailguard", "host.name": "h" } });
    const meta = processMeta(31, { priority: 10 });
    const w = requestWindow(31, { durNs: 12_000_000 });
    const h = heldLaunch(31, { reason: "budget", durNs: 700_000 });
    m.observeWindow(meta, w);
    m.observeHold(meta, h);
    m.observeLaunches(meta, 3, [1500, 2500]);
    m.exemplars.offer(meta, "request_latency", undefined, w.durNs, 1_700_000_000_987_654_321n, ctx(7), 0);
    m.exemplars.offer(meta, "hold_time", "budget", h.durNs, 1_700_000_000_500_000_000n, ctx(8), 1);
    m.exemplars.settled(0, 2, true);
    await m.shutdown(); // the last push
    expect(got.length).toBeGreaterThan(0);
    return got.at(-1)!;
  }

  const histograms = (request: any) =>
    request.resourceMetrics.flatMap((r: any) => r.scopeMetrics.flatMap((s: any) => s.metrics.filter((x: any) => x.histogram)));

  it("protobuf: the official serializer's request, decoded with the official definitions, plus the exemplars", async () => {
    const rm = await pushed();
    const ours = decodeProtobuf(ExportMetricsServiceRequest, ProtobufExemplarSerializer.serializeRequest(rm)!);
    const official = decodeProtobuf(ExportMetricsServiceRequest, ProtobufMetricsSerializer.serializeRequest(rm)!);
    const byName = Object.fromEntries(histograms(ours).map((x: any) => [x.name, x.histogram.dataPoints]));
    const latency = byName["tailguard.request.latency"].find((p: any) => p.exemplars);
    const hold = byName["tailguard.hold.time"].find((p: any) => p.exemplars);
    expect(latency.exemplars).toEqual([
      { timeUnixNano: "1700000000987654321", asDouble: 0.012, spanId: Buffer.from(ctx(7).spanId, "hex"), traceId: Buffer.from(ctx(7).traceId, "hex") },
    ]);
    expect(hold.attributes.find((a: any) => a.key === "reason").value.stringValue).toBe("budget");
    expect(hold.exemplars.map((e: any) => Buffer.from(e.spanId).toString("hex"))).toEqual([ctx(8).spanId]);
    // but for the exemplars, what the official serializer writes
    for (const x of histograms(ours)) for (const p of x.histogram.dataPoints) delete p.exemplars;
    expect(ours).toEqual(official);
  });

  it("JSON: the official serializer's request plus the exemplars, ids in hex", async () => {
    const rm = await pushed();
    const ours = JSON.parse(Buffer.from(JsonExemplarSerializer.serializeRequest(rm)!).toString("utf8"));
    const official = JSON.parse(Buffer.from(JsonMetricsSerializer.serializeRequest(rm)!).toString("utf8"));
    const latency = histograms(ours).find((x: any) => x.name === "tailguard.request.latency").histogram.dataPoints[0];
    expect(latency.exemplars).toEqual([{ timeUnixNano: "1700000000987654321", asDouble: 0.012, spanId: ctx(7).spanId, traceId: ctx(7).traceId }]);
    for (const x of histograms(ours)) for (const p of x.histogram.dataPoints) delete p.exemplars;
    expect(ours).toEqual(official);
  });
});
