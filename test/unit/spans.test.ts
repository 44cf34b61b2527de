// Request windows and holds as OpenTelemetry spans (agent/src/telemetry/spans.ts): structure, derived ids and links, exact
// times, tail sampling and overload on hand-built records; then the same spans over real OTLP/HTTP (protobuf and JSON,
// into a loopback receiver that decodes with the official generated decoders) and as OTLP/JSON lines.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SpanKind, SpanStatusCode, type HrTime } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPMetricExporter as OtlpJsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as OtlpProtobufMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import type { Hold, Launch, ProcessMeta, RequestWindow } from "../../agent/src/model.js";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { otelConfig, type Env } from "../../agent/src/telemetry/otel-env.js";
import {
  holdSpanContext,
  OtlpJsonLinesExporter,
  OtlpProtobufSpanExporter,
  otlpSpanExporter,
  SpanPipeline,
  spanDecision,
  windowSampled,
  windowSpanContext,
  type SpanPolicy,
  type SpanOptions,
} from "../../agent/src/telemetry/spans.js";
import {
  decodeProtobuf,
  ExportTraceServiceRequest,
  flattenTraces,
  startOtlpReceiver,
  type FlatSpan,
  type OtlpReceiver,
} from "../support/otlp-receiver.js";
import { heldLaunch, requestWindow } from "../support/model.js";
import { root } from "../support/native.js";

const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;

// Wall-clock ns around 2026, well past 2^53: a Number could not hold them to the nanosecond.
const ANCHOR_MONO = 7_000_123_456_789n;
const ANCHOR_REAL = 1_767_225_600_987_654_321n;

function meta(pid: number, over: Partial<ProcessMeta> = {}): ProcessMeta {
  return {
    pid,
    ppid: 1,
    cmdline: [`/opt/serve/bin/server-${pid}`, "--port", String(8000 + pid)],
    priority: 0,
    gpu: { ordinal: 0, uuid: "GPU-5e1f0a2b-0000-1111-2222-333344445555", name: "NVIDIA H100 80GB HBM3", pci: "0000:1b:00.0" },
    anchorMonotonic: ANCHOR_MONO + BigInt(pid),
    anchorRealtime: ANCHOR_REAL,
    resource: {},
    ...over,
  };
}

function launches(n: number, t0: bigint): Launch[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `void gemm_kernel<${i % 3}>(float*, int)`,
    op: i % 10 === 9 ? ("graph" as const) : ("kernel" as const),
    t: t0 + BigInt(i * 1000 + 7),
    apiNs: i % 8 === 0 ? 2300 + i : null,
    stream: 0x7f00_dead_be00n + BigInt(i % 2),
    grid: [128, 2, 1],
    block: [256, 1, 1],
  }));
}

function win(m: ProcessMeta, seq: number, over: Partial<RequestWindow> = {}): RequestWindow {
  const t = m.anchorMonotonic + 1_000_000_001n + BigInt(seq) * 10_000_000n;
  return requestWindow(m.pid, { seq, t, launchCount: 0, ...over });
}

function hold(held: ProcessMeta, t: bigint, over: Partial<Hold> = {}): Hold {
  return heldLaunch(held.pid, { t, priority: held.priority, ...over });
}

const ns = (t: HrTime) => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
const epoch = (m: ProcessMeta, t: bigint) => m.anchorRealtime + (t - m.anchorMonotonic);

/** A ReadableSpan as the receiver flattens what arrives: what should arrive, to compare with what did. */
function flat(s: ReadableSpan): FlatSpan {
  const ctx = s.spanContext();
  const out: FlatSpan = {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    name: s.name,
    kind: s.kind + 1,
    startTimeUnixNano: ns(s.startTime),
    endTimeUnixNano: ns(s.endTime),
    attributes: { ...s.attributes },
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: { ...l.attributes } })),
    status: s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
    resource: { ...s.resource.attributes },
    scope: { name: s.instrumentationScope.name, version: s.instrumentationScope.version },
  };
  if (s.parentSpanContext) out.parentSpanId = s.parentSpanContext.spanId;
  return out;
}

const bySpanId = (a: { spanId: string }, b: { spanId: string }) => a.spanId.localeCompare(b.spanId);

/** A pipeline into an in-memory exporter: feed it, flush, read the spans. */
async function collect(feed: (p: SpanPipeline) => void, opts: Partial<SpanOptions> = {}) {
  const exporter = new InMemorySpanExporter();
  const p = new SpanPipeline({ exporter, sampleRate: 0, exportDelayMs: 1, ...opts });
  feed(p);
  await p.flush();
  return { spans: exporter.getFinishedSpans(), stats: p.stats() };
}

const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const isWindow = (seq: number, pid?: number) => (s: ReadableSpan) =>
  s.name === "request" && s.attributes["tailguard.window.seq"] === seq && (pid == null || s.resource.attributes["process.pid"] === pid);

// Two processes on one GPU: `serving` (high priority) held `batch`; batch's window 7 holds three times: once for
// serving's window 3, once behind its own spent in-flight budget, once for a process the agent no longer knows.
const serving = meta(100, { priority: 2, serviceName: "llm-serving", resource: { "k8s.pod.name": "serve-0", "k8s.namespace.name": "inference", "k8s.node.name": "gpu-node-7", "deployment.environment": "prod" } });
const batch = meta(200, { priority: -1, gpu: { ordinal: 0, uuid: "GPU-5e1f0a2b-0000-1111-2222-333344445555", name: "NVIDIA H100 80GB HBM3", pci: "" } });
const batchWindow = win(batch, 7, {
  durNs: 2_345_678_901,
  launchCount: 40,
  streams: 2,
  holds: [
    hold(batch, batch.anchorMonotonic + 1_070_000_123n, { causePid: 100, causePriority: 2, causeWindow: 3, durNs: 5_000_000_000, releasedBy: "drained" }),
    hold(batch, batch.anchorMonotonic + 1_080_000_456n, { reason: "budget", releasedBy: "lapsed" }),
    hold(batch, batch.anchorMonotonic + 1_090_000_789n, { causePid: 999, causePriority: 1, causeWindow: 12, reason: "share", releasedBy: "min_share" }),
  ],
  heldNs: 5_250_500_000,
  gpuNs: 1_900_000_000,
});
const servingWindow = win(serving, 3, { durNs: 12_000_000, launchCount: 20, launches: launches(20, serving.anchorMonotonic + 1_030_000_000n), gpuNs: null });
const processByPid = (pid: number) => [serving, batch].find((m) => m.pid === pid);

/** The held window first and the window that caused its hold later, as the agent meets them when the cause is still
 *  running; plus a slow window with launch spans and a hold outside any window. */
function scenario(p: SpanPipeline) {
  p.window(batch, batchWindow);
  p.window(serving, servingWindow);
  p.hold(serving, hold(serving, serving.anchorMonotonic + 2_000_000_000n, { reason: "budget", releasedBy: "idle" }));
}
const scenarioOpts: Partial<SpanOptions> = { processByPid, sloMs: 10, maxLaunchSpans: 16 };

describe("span ids", () => {
  it("derives a window's span context from SHA-256 of (pid, clock anchor, seq)", () => {
    const d = createHash("sha256").update(`tailguard/window/100/${serving.anchorMonotonic}/3`).digest("hex");
    expect(windowSpanContext(serving, 3)).toMatchObject({ traceId: d.slice(0, 32), spanId: d.slice(32, 48), traceFlags: 1 });
    expect(windowSpanContext(serving, 3)).toEqual(windowSpanContext({ ...serving }, 3));
    // the same pid after a restart (another clock anchor) names other windows
    expect(windowSpanContext({ pid: 100, anchorMonotonic: serving.anchorMonotonic + 1n }, 3).traceId).not.toBe(d.slice(0, 32));
    expect(windowSpanContext(serving, 4).traceId).not.toBe(d.slice(0, 32));
  });
});

describe("request window spans", () => {
  it("has exact start and end times, past 2^53 ns, with no float rounding", async () => {
    const { spans } = await collect((p) => p.window(batch, batchWindow));
    const w = spans.find(isWindow(7))!;
    const start = epoch(batch, batchWindow.t);
    expect(start).toBe(1_767_225_601_987_654_322n + 70_000_000n);
    expect(BigInt(Number(start))).not.toBe(start); // a double would have rounded it
    expect(w.startTime).toEqual([1767225602, 57654322]);
    expect(ns(w.startTime)).toBe(start.toString());
    expect(ns(w.endTime)).toBe((start + 2_345_678_901n).toString());
    expect(w.endTime).toEqual([1767225604, 403333223]);
    expect(w.duration).toEqual([2, 345678901]);
  });

  it("is a root INTERNAL span with the derived context and the window's attributes", async () => {
    const { spans } = await collect((p) => p.window(batch, batchWindow), { processByPid });
    const w = spans.find(isWindow(7))!;
    expect(w.kind).toBe(SpanKind.INTERNAL);
    expect(w.parentSpanContext).toBeUndefined();
    expect(w.spanContext()).toEqual(windowSpanContext(batch, 7));
    expect(w.ended).toBe(true);
    expect(w.attributes).toEqual({
      "tailguard.window.seq": 7,
      "tailguard.window.launches": 40,
      "tailguard.window.streams": 2,
      "tailguard.window.holds": 3,
      "tailguard.window.held_ns": 5_250_500_000,
      "tailguard.window.gpu_ns": 1_900_000_000,
      "tailguard.span.reason": "held",
    });
    expect(w.instrumentationScope).toEqual({ name: "tailguard", version });
  });

  it("carries the process's resource: service, process, host, priority, GPU, Kubernetes and OTEL_RESOURCE_ATTRIBUTES", async () => {
    const otelNamed = meta(300, { resource: { "service.name": "from-resource-attributes", "team": "ml" } });
    const { spans } = await collect((p) => {
      p.window(serving, servingWindow);
      p.window(serving, win(serving, 4));
      p.window(batch, win(batch, 1));
      p.window(otelNamed, win(otelNamed, 1));
    }, { spans: "all" });
    const [s3, s4] = [spans.find(isWindow(3, 100))!, spans.find(isWindow(4, 100))!];
    expect(s3.resource.attributes).toEqual({
      "service.name": "llm-serving",
      "process.pid": 100,
      "process.parent_pid": 1,
      "process.command_args": ["/opt/serve/bin/server-100", "--port", "8100"],
      "host.name": expect.any(String),
      "tailguard.priority": 2,
      "tailguard.gpu.uuid": "GPU-5e1f0a2b-0000-1111-2222-333344445555",
      "tailguard.gpu.name": "NVIDIA H100 80GB HBM3",
      "tailguard.gpu.pci": "0000:1b:00.0",
      "k8s.pod.name": "serve-0",
      "k8s.namespace.name": "inference",
      "k8s.node.name": "gpu-node-7",
      "deployment.environment": "prod",
    });
    // one Resource object per process: the OTLP serializers group spans by resource identity
    expect(s4.resource).toBe(s3.resource);
    const b = spans.find(isWindow(1, 200))!.resource.attributes;
    expect(b["service.name"]).toBe("server-200"); // basename of argv[0]
    expect(b).not.toHaveProperty("tailguard.gpu.pci"); // unknown
    const o = spans.find(isWindow(1, 300))!.resource.attributes;
    expect(o).toMatchObject({ "service.name": "from-resource-attributes", team: "ml" });
    const noGpu = await collect((p) => p.window(meta(400, { gpu: null, serviceName: "x" }), win(meta(400), 1)));
    expect(Object.keys(noGpu.spans[0].resource.attributes).filter((k) => k.startsWith("tailguard.gpu"))).toEqual([]);
  });
});

describe("hold spans", () => {
  it("are children of the held window and link to the causing window's span, emitted later", async () => {
    const { spans } = await collect(scenario, scenarioOpts);
    const held = spans.find(isWindow(7, 200))!;
    const cause = spans.find(isWindow(3, 100))!;
    // the held window was exported before the cause's span existed
    expect(spans.indexOf(held)).toBeLessThan(spans.indexOf(cause));
    const holds = named(spans, "hold").filter((s) => s.parentSpanContext);
    expect(holds).toHaveLength(3);
    for (const h of holds) {
      expect(h.parentSpanContext!.spanId).toBe(held.spanContext().spanId);
      expect(h.spanContext().traceId).toBe(held.spanContext().traceId);
      expect(h.kind).toBe(SpanKind.INTERNAL);
      expect(h.resource.attributes["process.pid"]).toBe(200);
    }
    const ids = new Set([held, ...holds].map((s) => s.spanContext().spanId));
    expect(ids.size).toBe(4);

    const [priority, full, share] = holds;
    expect(priority.links).toHaveLength(1);
    expect(priority.links[0].context).toEqual(cause.spanContext());
    expect(priority.attributes).toEqual({
      "tailguard.hold.reason": "priority",
      "tailguard.hold.priority": -1,
      "tailguard.hold.released_by": "drained",
      "tailguard.hold.cause.pid": 100,
      "tailguard.hold.cause.priority": 2,
      "tailguard.hold.cause.window": 3,
    });
    const start = epoch(batch, batchWindow.holds[0].t);
    expect(ns(priority.startTime)).toBe(start.toString());
    expect(ns(priority.endTime)).toBe((start + 5_000_000_000n).toString());
    // a hold behind its own in-flight budget has no cause to link to
    expect(full.links).toEqual([]);
    expect(full.attributes).toEqual({ "tailguard.hold.reason": "budget", "tailguard.hold.priority": -1, "tailguard.hold.released_by": "lapsed" });
    // a cause the agent does not know: no link, the cause still named
    expect(share.links).toEqual([]);
    expect(share.attributes).toMatchObject({ "tailguard.hold.cause.pid": 999, "tailguard.hold.cause.window": 12, "tailguard.hold.reason": "share" });
  });

  it("link to the causing window's joined request spans when its work ran under application trace contexts", async () => {
    const app = { traceId: "0af7651916cd43dd8448eb211c80319c", parentSpanId: "b7ad6b7169203331", sampled: true, name: "infer" };
    const joinedCause: RequestWindow = {
      ...servingWindow,
      contexts: [{ context: app, t: servingWindow.t, durNs: servingWindow.durNs, launchCount: 20, launches: [], holds: [] }],
    };
    const { spans } = await collect((p) => {
      p.window(serving, joinedCause); // the cause ended first (the usual order)
      p.window(batch, batchWindow);
    }, scenarioOpts);
    const cause = spans.find((s) => s.name === "request infer")!;
    expect(cause.spanContext().traceId).toBe(app.traceId);
    expect(cause.parentSpanContext).toMatchObject({ traceId: app.traceId, spanId: app.parentSpanId, isRemote: true });
    const priority = named(spans, "hold").find((s) => s.attributes["tailguard.hold.cause.window"] === 3)!;
    expect(priority.links.map((l) => l.context)).toEqual([cause.spanContext()]);
  });

  it("puts a hold outside any window in a trace of its own", async () => {
    const h = hold(serving, serving.anchorMonotonic + 2_000_000_000n, { reason: "budget" });
    const { spans } = await collect((p) => p.hold(serving, h));
    expect(spans).toHaveLength(1);
    expect(spans[0].name).toBe("hold");
    expect(spans[0].parentSpanContext).toBeUndefined();
    expect(spans[0].spanContext()).toEqual(holdSpanContext(serving, h.t));
    expect(ns(spans[0].startTime)).toBe(epoch(serving, h.t).toString());
  });
});

describe("tail sampling of launch spans", () => {
  const slowAfter = (ns: number | null) => () => ns;

  it("attaches no launch spans to windows under the running P99", async () => {
    const w = win(serving, 1, { durNs: 4_000_000, launchCount: 50, launches: launches(50, serving.anchorMonotonic + 1_010_000_000n) });
    const { spans } = await collect((p) => p.window(serving, w), { slowThresholdNs: slowAfter(5_000_000) });
    expect(spans).toHaveLength(1);
    expect(spans[0].attributes).not.toHaveProperty("tailguard.sampled");
  });

  it("attaches at most maxLaunchSpans launch spans to windows over the running P99", async () => {
    const t0 = serving.anchorMonotonic + 1_010_000_000n;
    const w = win(serving, 1, { durNs: 9_000_000, launchCount: 1000, launches: launches(300, t0), launchesDropped: 700 });
    const { spans } = await collect((p) => p.window(serving, w), { slowThresholdNs: slowAfter(5_000_000) });
    const parent = spans.find(isWindow(1))!;
    expect(parent.attributes).toMatchObject({
      "tailguard.sampled": "slow",
      "tailguard.window.launch_spans": 256,
      "tailguard.window.launches_dropped": 744,
    });
    const children = spans.filter((s) => s !== parent);
    expect(children).toHaveLength(256);
    expect(new Set(children.map((s) => s.spanContext().spanId)).size).toBe(256);
    expect(children.map((s) => s.spanContext().spanId)).not.toContain(parent.spanContext().spanId);
    for (const c of children) {
      expect(c.parentSpanContext).toEqual(parent.spanContext());
      expect(c.spanContext().traceId).toBe(parent.spanContext().traceId);
    }
    // in launch order, each with its kernel and the launch call's time where the shim timed it
    const l0 = w.launches[0];
    expect(children[0].name).toBe(l0.name);
    expect(children[0].attributes).toEqual({
      "tailguard.launch.index": 0,
      "tailguard.launch.op": "kernel",
      "tailguard.kernel.name": "void gemm_kernel<0>(float*, int)",
      "tailguard.launch.stream": "0x7f00deadbe00",
      "tailguard.launch.grid": [128, 2, 1],
      "tailguard.launch.block": [256, 1, 1],
      "tailguard.launch.api_ns": 2300,
    });
    expect(ns(children[0].startTime)).toBe(epoch(serving, l0.t).toString());
    expect(ns(children[0].endTime)).toBe((epoch(serving, l0.t) + 2300n).toString());
    expect(children[9].attributes).toMatchObject({ "tailguard.launch.op": "graph", "tailguard.launch.stream": "0x7f00deadbe01" });
    expect(children[1].attributes).not.toHaveProperty("tailguard.launch.api_ns");
    expect(children[1].endTime).toEqual(children[1].startTime);
    // derived too: the same window gives the same ids
    const again = await collect((p) => p.window(serving, w), { slowThresholdNs: slowAfter(5_000_000) });
    expect(again.spans.map((s) => s.spanContext().spanId)).toEqual(spans.map((s) => s.spanContext().spanId));
  });

  it("marks windows over the SLO as such, before the P99", async () => {
    const w = win(serving, 1, { durNs: 3_000_000, launchCount: 2, launches: launches(2, serving.anchorMonotonic + 1_010_000_000n) });
    const { spans } = await collect((p) => p.window(serving, w), { sloMs: 2, slowThresholdNs: slowAfter(1) });
    expect(spans.find(isWindow(1))!.attributes["tailguard.sampled"]).toBe("slo");
    expect(spans).toHaveLength(3);
    const under = await collect((p) => p.window(serving, w), { sloMs: 5, slowThresholdNs: slowAfter(null) });
    expect(under.spans).toHaveLength(1);
  });

  it("samples the rest at sampleRate", async () => {
    const feed = (p: SpanPipeline) => {
      for (let seq = 1; seq <= 200; seq++) {
        p.window(serving, win(serving, seq, { launchCount: 3, launches: launches(3, serving.anchorMonotonic + BigInt(seq) * 10_000_000n) }));
      }
    };
    const none = await collect(feed, { sampleRate: 0 });
    expect(none.spans).toHaveLength(200);
    const all = await collect(feed, { sampleRate: 1 });
    expect(all.spans).toHaveLength(800);
    expect(named(all.spans, "request").every((s) => s.attributes["tailguard.sampled"] === "random")).toBe(true);
  });
});

describe("span policy", () => {
  const policy: SpanPolicy = { mode: "policy", sloNs: 10_000_000, batchSample: 0.01 };
  const low = meta(500, { priority: -10 });
  const quiet = (seq: number) => ({ seq, durNs: 1_000_000, holds: [] });

  it("keeps request windows, over-SLO, held and causing windows, in that order of reasons; samples the rest", () => {
    expect(spanDecision(meta(1, { priority: 0 }), quiet(1), policy)).toBe("priority");
    expect(spanDecision(meta(1, { priority: 10 }), quiet(1), policy)).toBe("priority");
    expect(spanDecision(meta(1, { priority: 10 }), { ...quiet(1), durNs: 10_000_001 }, policy)).toBe("slo");
    expect(spanDecision(meta(1, { priority: 0 }), { ...quiet(1), durNs: 10_000_000 }, policy)).toBe("priority"); // not over
    // the SLO is the requests': a batch window is never over it
    expect(spanDecision(low, { ...quiet(1), durNs: 10_000_001 }, { ...policy, batchSample: 0 })).toBeNull();
    expect(spanDecision(low, { ...quiet(1), holds: [hold(low, 5n)] }, policy)).toBe("held");
    expect(spanDecision(low, quiet(1), { ...policy, batchSample: 0 }, true)).toBe("cause");
    expect(spanDecision(low, quiet(1), { ...policy, batchSample: 0 })).toBeNull();
    expect(spanDecision(low, quiet(1), { ...policy, batchSample: 1 })).toBe("sampled");
    expect(spanDecision(low, quiet(1), { mode: "all", sloNs: null, batchSample: 0 })).toBe("all");
  });

  it("samples batch windows at the ratio, the same windows on every run", () => {
    const n = 40_000;
    for (const ratio of [0.01, 0.1, 0.5]) {
      const kept = Array.from({ length: n }, (_, i) => i + 1).filter((seq) => spanDecision(low, quiet(seq), { ...policy, batchSample: ratio }) === "sampled");
      // within 5 standard deviations of the binomial mean
      const sd = Math.sqrt(n * ratio * (1 - ratio));
      expect(Math.abs(kept.length - n * ratio), `ratio ${ratio}: ${kept.length}`).toBeLessThan(5 * sd);
      expect(kept.every((seq) => windowSampled(low, seq, ratio))).toBe(true);
    }
    // another process (pid, clock anchor) gets other windows
    const a = Array.from({ length: 1000 }, (_, i) => windowSampled(low, i, 0.5));
    const b = Array.from({ length: 1000 }, (_, i) => windowSampled(meta(501, { priority: -10 }), i, 0.5));
    expect(a.filter((x, i) => x !== b[i]).length).toBeGreaterThan(400);
  });

  it("exports every request window (over the SLO with status ERROR), held batch windows, and a sample of the rest", async () => {
    const feed = (p: SpanPipeline) => {
      for (let seq = 1; seq <= 2000; seq++) p.window(low, win(low, seq, { durNs: 2_000_000 }));
      p.window(low, win(low, 2001, { durNs: 12_345_678 }));
      p.window(low, win(low, 2002, { holds: [hold(low, low.anchorMonotonic + 1_000_000_001n + 2002n * 10_000_000n, { reason: "budget" })] }));
      for (let seq = 1; seq <= 50; seq++) p.window(serving, win(serving, seq, { durNs: 2_000_000 }));
      p.window(serving, win(serving, 51, { durNs: 12_345_678 }));
    };
    const { spans } = await collect(feed, { sloMs: 10, batchSample: 0.01 });
    const requests = named(spans, "request");
    const reasons = (pid: number) => requests.filter((s) => s.resource.attributes["process.pid"] === pid).map((s) => s.attributes["tailguard.span.reason"]);
    expect(reasons(serving.pid).filter((r) => r === "priority")).toHaveLength(50);
    expect(reasons(serving.pid).filter((r) => r === "slo")).toHaveLength(1);
    const lowReasons = reasons(low.pid);
    expect(lowReasons.filter((r) => r === "slo")).toHaveLength(0); // 2001 is long, but batch work
    expect(lowReasons.filter((r) => r === "held")).toHaveLength(1);
    const sampled = lowReasons.filter((r) => r === "sampled").length;
    expect(sampled).toBeGreaterThan(0);
    expect(sampled).toBeLessThan(20 + 5 * Math.sqrt(20));
    // status: ERROR with why over the SLO, UNSET otherwise
    const breached = requests.filter((s) => s.attributes["tailguard.span.reason"] === "slo");
    expect(breached.map((s) => s.status)).toEqual([{ code: SpanStatusCode.ERROR, message: "request latency 12.346 ms > SLO 10 ms" }]);
    expect(requests.filter((s) => s.attributes["tailguard.span.reason"] !== "slo").every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);

    // --spans all: every window, with the same reasons where one applies and the same statuses
    const all = await collect(feed, { sloMs: 10, batchSample: 0.01, spans: "all" });
    const allRequests = named(all.spans, "request");
    expect(allRequests).toHaveLength(2002 + 51);
    expect(allRequests.filter((s) => s.attributes["tailguard.span.reason"] === "all")).toHaveLength(2002 + 51 - requests.length);
    expect(allRequests.filter((s) => s.status.code === SpanStatusCode.ERROR)).toHaveLength(1);
  });

  it("exports the window that caused an exported hold, whether it ended before or after the held window", async () => {
    const cause = meta(600, { priority: -5 });
    const held = meta(700, { priority: -10 });
    const heldBy = (seq: number, causeWindow: number) =>
      win(held, seq, { holds: [hold(held, held.anchorMonotonic + 1_000_000_001n + BigInt(seq) * 10_000_000n, { reason: "priority", causePid: 600, causePriority: -5, causeWindow })] });
    const byPid = (pid: number) => [cause, held].find((m) => m.pid === pid);
    const { spans } = await collect((p) => {
      p.window(cause, win(cause, 1)); // before: remembered, exported when the hold names it
      p.window(held, heldBy(1, 1));
      p.window(held, heldBy(2, 2)); // after: exported when it ends
      p.window(cause, win(cause, 2));
      p.window(cause, win(cause, 3)); // named by no hold
    }, { processByPid: byPid, batchSample: 0 });
    const requests = named(spans, "request");
    const causes = requests.filter((s) => s.resource.attributes["process.pid"] === 600);
    expect(causes.map((s) => [s.attributes["tailguard.window.seq"], s.attributes["tailguard.span.reason"]]).sort()).toEqual([[1, "cause"], [2, "cause"]]);
    const ids = new Set(requests.map((s) => s.spanContext().spanId));
    const holds = named(spans, "hold");
    expect(holds).toHaveLength(2);
    for (const h of holds) expect(ids.has(h.links[0].context.spanId), "the hold's link resolves").toBe(true);
  });
});

describe("overload", () => {
  /** An exporter that takes batches and never answers. */
  function stalled() {
    const batches: number[] = [];
    const exporter: SpanExporter = { export: (spans) => void batches.push(spans.length), shutdown: async () => {} };
    return { exporter, batches };
  }

  it("drops and counts what does not fit, without blocking or exporting inline", async () => {
    const { exporter, batches } = stalled();
    const p = new SpanPipeline({ exporter, queueLimit: 100, batchSize: 50, exportDelayMs: 1, exportTimeoutMs: 100, sampleRate: 0 });
    const windows = Array.from({ length: 100_000 }, (_, i) => win(serving, i + 1, { launchCount: 4, launches: launches(4, 0n) }));
    const started = performance.now();
    for (const w of windows) p.window(serving, w);
    const perCallUs = ((performance.now() - started) * 1000) / windows.length;
    expect(batches).toEqual([]); // export happens later, off the caller's path
    expect(perCallUs).toBeLessThan(20);
    expect(p.stats()).toEqual({ exported: 0, dropped: 99_900, failed: 0, queued: 100 });

    // one batch in flight (never answered), the rest waits; new windows fill the freed room and then drop again
    await vi.waitFor(() => expect(batches).toEqual([50]));
    expect(p.stats().queued).toBe(50);
    for (let i = 0; i < 100; i++) p.window(serving, win(serving, 1));
    expect(p.stats()).toEqual({ exported: 0, dropped: 99_950, failed: 0, queued: 100 });

    // each unanswered export times out as failed, and the next goes out; every span is counted once
    await p.shutdown();
    expect(batches).toEqual([50, 50, 50]);
    expect(p.stats()).toEqual({ exported: 0, dropped: 99_950, failed: 150, queued: 0 });
  });

  it("counts failed and throwing exports and goes on", async () => {
    let calls = 0;
    const exporter: SpanExporter = {
      export(spans, done) {
        calls++;
        if (calls === 1) throw new Error("exporter bug");
        done(calls === 2 ? { code: ExportResultCode.FAILED, error: new Error("503") } : { code: ExportResultCode.SUCCESS });
      },
      shutdown: async () => {},
    };
    const p = new SpanPipeline({ exporter, batchSize: 10, exportDelayMs: 1, sampleRate: 0 });
    for (let seq = 1; seq <= 30; seq++) p.window(serving, win(serving, seq));
    await p.flush();
    expect(p.stats()).toEqual({ exported: 10, dropped: 0, failed: 20, queued: 0 });
  });

  it("exports in batches of at most batchSize, one at a time", async () => {
    const memory = new InMemorySpanExporter();
    const sizes: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const exporter: SpanExporter = {
      export(spans, done) {
        sizes.push(spans.length);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        setTimeout(() => {
          inFlight--;
          memory.export(spans, done);
        }, 2);
      },
      shutdown: async () => {},
    };
    const p = new SpanPipeline({ exporter, exportDelayMs: 5, sampleRate: 0 });
    // windows with many holds straddle batch boundaries
    for (let seq = 1; seq <= 1500; seq++) {
      const holds = seq % 100 === 0 ? Array.from({ length: 300 }, (_, i) => hold(serving, BigInt(i))) : [];
      p.window(serving, win(serving, seq, { holds }));
    }
    await p.flush();
    const total = 1500 + 15 * 300;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(512);
    expect(maxInFlight).toBe(1);
    expect(memory.getFinishedSpans()).toHaveLength(total);
    expect(p.stats()).toEqual({ exported: total, dropped: 0, failed: 0, queued: 0 });
  });

  it("drops what arrives after shutdown", async () => {
    const exporter = new InMemorySpanExporter();
    const p = new SpanPipeline({ exporter, sampleRate: 0 });
    p.window(serving, win(serving, 1));
    await p.shutdown();
    p.window(serving, win(serving, 2));
    expect(p.stats()).toEqual({ exported: 1, dropped: 1, failed: 0, queued: 0 });
  });
});

describe("over OTLP/HTTP", () => {
  let receiver: OtlpReceiver;
  let expected: FlatSpan[];
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    expected = (await collect(scenario, scenarioOpts)).spans.map(flat).sort(bySpanId);
  });
  afterAll(() => receiver.close());
  afterEach(() => {
    receiver.requests.length = 0;
  });

  it("writes protobuf that decodes to exactly what the SDK's serializer makes of the same spans, flags included", async () => {
    // the same scenario through the lean path, captured before it reaches the network, and through ReadableSpans
    const requests: Uint8Array[] = [];
    const capture = { encoded: true as const, export: (r: Uint8Array, _n: number, done: (x: { code: number }) => void) => (requests.push(r), done({ code: ExportResultCode.SUCCESS })), forceFlush: async () => {}, shutdown: async () => {} };
    const p = new SpanPipeline({ exporter: capture, sampleRate: 0, exportDelayMs: 1, ...scenarioOpts });
    scenario(p);
    await p.shutdown();
    const readable = (await collect(scenario, scenarioOpts)).spans;
    const spansOf = (req: any) =>
      req.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((sp: any) => ({ ...sp, resource: rs.resource, scope: ss.scope }))));
    const key = (s: any) => Buffer.from(s.spanId).toString("hex"); // (decoded from Uint8Arrays: bytes are Uint8Arrays)
    // proto3: a zero is the same as an absent field (the SDK writes its zero counts, otlp-proto.ts leaves them out)
    const plain = (k: string, v: any) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v === 0 && /^dropped|^code$/.test(k) ? undefined : v);
    const norm = (list: any[]) => list.sort((a, b) => key(a).localeCompare(key(b))).map((s) => JSON.parse(JSON.stringify(s, plain)));
    const ours = norm(requests.flatMap((r) => spansOf(decodeProtobuf(ExportTraceServiceRequest, Uint8Array.from(r)))));
    const sdk = norm(spansOf(decodeProtobuf(ExportTraceServiceRequest, ProtobufTraceSerializer.serializeRequest(readable)!)));
    expect(ours.length).toBe(readable.length);
    expect(ours).toEqual(sdk);
    expect(ours.every((s: any) => s.flags === 0x101)).toBe(true);
  });

  it("writes joined request spans (application trace contexts, remote parents, traceState) as the SDK's serializer does", async () => {
    // batch's window 7 with two application contexts (one sampled, with a tracestate, one not) and work under none
    const app = (traceId: string, parentSpanId: string, sampled: boolean, more: object = {}) => ({ traceId, parentSpanId, sampled, ...more });
    const joinedWindow: RequestWindow = {
      ...batchWindow,
      launches: launches(6, batch.anchorMonotonic + 1_050_000_000n),
      contexts: [
        { context: app("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", true, { name: "infer", traceState: "vendor=abc" }), t: batchWindow.t, durNs: 1_000_000, launchCount: 3, launches: [0, 2, 4], holds: [0] },
        { context: app("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false), t: batchWindow.t + 10n, durNs: 2_000_000, launchCount: 2, launches: [1, 3], holds: [1] },
        { context: null, t: batchWindow.t, durNs: batchWindow.durNs, launchCount: 1, launches: [5], holds: [2] },
      ],
    };
    const feed = (p: SpanPipeline) => p.window(batch, joinedWindow, { span: "traced", launches: "random" });
    const requests: Uint8Array[] = [];
    const capture = { encoded: true as const, export: (r: Uint8Array, _n: number, done: (x: { code: number }) => void) => (requests.push(r), done({ code: ExportResultCode.SUCCESS })), forceFlush: async () => {}, shutdown: async () => {} };
    const p = new SpanPipeline({ exporter: capture, sampleRate: 0, exportDelayMs: 1, ...scenarioOpts });
    feed(p);
    await p.shutdown();
    const readable = (await collect(feed, scenarioOpts)).spans;
    const spansOf = (req: any) => req.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans));
    const key = (s: any) => Buffer.from(s.spanId).toString("hex");
    const plain = (k: string, v: any) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v === 0 && /^dropped|^code$/.test(k) ? undefined : v);
    const norm = (list: any[]) => list.sort((a, b) => key(a).localeCompare(key(b))).map((s) => JSON.parse(JSON.stringify(s, plain)));
    const ours = norm(requests.flatMap((r) => spansOf(decodeProtobuf(ExportTraceServiceRequest, Uint8Array.from(r)))));
    expect(ours).toEqual(norm(spansOf(decodeProtobuf(ExportTraceServiceRequest, ProtobufTraceSerializer.serializeRequest(readable)!))));
    // 3 request spans, 3 holds, 6 launches; each in its context's trace, under the application's span
    expect(ours).toHaveLength(12);
    const req = ours.filter((s: any) => s.name.startsWith("request"));
    expect(req.map((s: any) => [s.name, s.traceId, s.parentSpanId, s.flags, s.traceState]).sort()).toEqual([
      ["request", req.find((s: any) => !s.parentSpanId).traceId, undefined, 0x101, undefined],
      ["request", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0x300, undefined],
      ["request infer", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 0x301, "vendor=abc"],
    ].sort());
    for (const s of ours.filter((x: any) => !x.name.startsWith("request"))) {
      const parent = ours.find((x: any) => x.spanId === s.parentSpanId);
      expect(parent.name.startsWith("request")).toBe(true);
      expect(s.traceId).toBe(parent.traceId);
    }
  });

  /** The span exporter the agent makes for `env` (span export asked for by OTEL_TRACES_EXPORTER unless `env` says). */
  const exporterFor = (env: Env, alone = true) => otlpSpanExporter(otelConfig({ OTEL_TRACES_EXPORTER: "otlp", ...env }).traces!, alone);

  it("chooses the exporter by OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL and refuses gRPC", () => {
    expect(exporterFor({})).toBeInstanceOf(OtlpProtobufSpanExporter);
    expect(exporterFor({}, false)).toBeInstanceOf(OtlpProtobufTraceExporter); // next to another exporter
    expect(exporterFor({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" })).toBeInstanceOf(OtlpJsonTraceExporter);
    expect(exporterFor({ OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" })).toBeInstanceOf(
      OtlpProtobufSpanExporter,
    );
    expect(() => exporterFor({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(/grpc.*not supported/);
  });

  for (const [protocol, encoding, contentType, alone] of [
    ["http/protobuf", "protobuf", "application/x-protobuf", true], // written by otlp-proto.ts
    ["http/protobuf", "protobuf", "application/x-protobuf", false], // the SDK's serializer (next to a spans file)
    ["http/json", "json", "application/json", true],
  ] as const) {
    it(`delivers ids, exact times, links, attributes and resources intact over ${protocol}${alone ? "" : " (SDK serializer)"}`, async () => {
      // the configuration alone, not process.env, says where and how
      const exporter = exporterFor({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: "x-tailguard-tenant=gpu%20team",
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      }, alone);
      // small batches: a window's spans never split, requests group several processes
      const p = new SpanPipeline({ exporter, sampleRate: 0, exportDelayMs: 1, batchSize: 7, ...scenarioOpts });
      scenario(p);
      await p.shutdown();
      expect(p.stats()).toEqual({ exported: expected.length, dropped: 0, failed: 0, queued: 0 });

      expect(receiver.requests.length).toBeGreaterThan(0);
      for (const r of receiver.requests) {
        expect(r.encoding).toBe(encoding);
        expect(r.headers["content-type"]).toBe(contentType);
        expect(r.headers["x-tailguard-tenant"]).toBe("gpu team");
      }
      const got = receiver.spans().sort(bySpanId);
      expect(got).toEqual(expected);

      // spot checks against the records themselves, not only against the in-memory spans
      const held = got.find((s) => s.name === "request" && s.attributes["tailguard.window.seq"] === 7)!;
      expect(held.startTimeUnixNano).toBe(epoch(batch, batchWindow.t).toString());
      expect(held.endTimeUnixNano).toBe("1767225604403333223");
      expect(held.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(held.resource).toMatchObject({ "process.pid": 200, "tailguard.priority": -1 });
      const link = got.find((s) => s.name === "hold" && s.attributes["tailguard.hold.reason"] === "priority")!.links[0];
      const cause = windowSpanContext(serving, 3);
      expect(link).toMatchObject({ traceId: cause.traceId, spanId: cause.spanId });
      expect(got.find((s) => s.spanId === cause.spanId)!.resource).toMatchObject({
        "service.name": "llm-serving",
        "k8s.pod.name": "serve-0",
      });
      expect(got.filter((s) => s.parentSpanId === cause.spanId)).toHaveLength(16); // over the SLO: launch spans
    });
  }
});

// The receiver's /v1/metrics side, for the metrics pipeline (metrics.ts) to build on: both encodings, flattened alike.
describe("loopback receiver: metrics", () => {
  for (const [name, Exporter, encoding] of [
    ["protobuf", OtlpProtobufMetricExporter, "protobuf"],
    ["JSON", OtlpJsonMetricExporter, "json"],
  ] as const) {
    it(`decodes and flattens OTLP/HTTP ${name} metrics`, async () => {
      const receiver = await startOtlpReceiver();
      try {
        const reader = new PeriodicExportingMetricReader({ exporter: new Exporter({ url: `${receiver.url}/v1/metrics` }), exportIntervalMillis: 60_000 });
        const provider = new MeterProvider({ readers: [reader] });
        const meter = provider.getMeter("tailguard-test");
        meter.createCounter("tailguard.test.windows", { unit: "{window}" }).add(3, { pid: 100 });
        meter.createHistogram("tailguard.test.latency", { unit: "ns" }).record(5_000_000_123, { pid: 100 });
        await provider.forceFlush();
        await provider.shutdown();
        expect(receiver.requests.map((r) => [r.signal, r.encoding])).toContainEqual(["metrics", encoding]);
        const metrics = receiver.metrics();
        expect(metrics.find((m) => m.name === "tailguard.test.windows")).toMatchObject({
          type: "sum",
          unit: "{window}",
          monotonic: true,
          points: [{ attributes: { pid: 100 }, value: 3 }],
          scope: { name: "tailguard-test" },
        });
        const h = metrics.find((m) => m.name === "tailguard.test.latency")!;
        expect(h).toMatchObject({ type: "histogram", unit: "ns", points: [{ attributes: { pid: 100 }, count: "1", sum: 5_000_000_123, max: 5_000_000_123 }] });
        expect(h.points[0].timeUnixNano).toMatch(/^[0-9]{19}$/);
      } finally {
        await receiver.close();
      }
    });
  }
});

describe("OtlpJsonLinesExporter", () => {
  /** OTLP/JSON writes ids in hex where protobuf's JSON mapping (which fromObject follows) wants base64. */
  function idsToBase64(request: any) {
    const b64 = (id?: string) => (id ? Buffer.from(id, "hex").toString("base64") : id);
    for (const rs of request.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? []) {
          Object.assign(s, { traceId: b64(s.traceId), spanId: b64(s.spanId), parentSpanId: b64(s.parentSpanId) });
          for (const l of s.links ?? []) Object.assign(l, { traceId: b64(l.traceId), spanId: b64(l.spanId) });
        }
    return request;
  }

  it("writes one ExportTraceServiceRequest per line that the official decoders accept, with the same spans", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tailguard-spans-"));
    try {
      const file = path.join(dir, "spans.jsonl");
      const p = new SpanPipeline({ exporter: new OtlpJsonLinesExporter(file), batchSize: 8, exportDelayMs: 1, sampleRate: 0, ...scenarioOpts });
      scenario(p);
      await p.shutdown();
      const expected = (await collect(scenario, scenarioOpts)).spans.map(flat).sort(bySpanId);

      const text = readFileSync(file, "utf8");
      expect(text.endsWith("\n")).toBe(true);
      const lines = text.slice(0, -1).split("\n");
      expect(lines.length).toBe(Math.ceil(expected.length / 8));
      const asJson: FlatSpan[] = [];
      const viaProtobuf: FlatSpan[] = [];
      for (const line of lines) {
        const request = JSON.parse(line);
        const s0 = request.resourceSpans[0].scopeSpans[0].spans[0];
        expect(s0.traceId).toMatch(/^[0-9a-f]{32}$/);
        expect(typeof s0.startTimeUnixNano).toBe("string");
        asJson.push(...flattenTraces(request, "json"));
        const message = ExportTraceServiceRequest.fromObject(idsToBase64(structuredClone(request)));
        expect(ExportTraceServiceRequest.verify(message)).toBeNull();
        // through the binary form and back: a field the schema does not know would be lost here
        const bytes = ExportTraceServiceRequest.encode(message).finish();
        viaProtobuf.push(...flattenTraces(decodeProtobuf(ExportTraceServiceRequest, bytes), "protobuf"));
      }
      expect(asJson.sort(bySpanId)).toEqual(expected);
      expect(viaProtobuf.sort(bySpanId)).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Exports `spans` in batches of 1, 2, 3, 1, 2, 3… spans (lines of different lengths); resolves once all are written. */
  async function exportAll(exporter: OtlpJsonLinesExporter, spans: ReadableSpan[]) {
    for (let i = 0, n = 1; i < spans.length; i += n, n = (n % 3) + 1) {
      const batch = spans.slice(i, i + n);
      await new Promise<void>((resolve, reject) =>
        exporter.export(batch, (r) => (r.code === ExportResultCode.SUCCESS ? resolve() : reject(r.error))));
    }
    await exporter.shutdown();
  }
  const linesOf = (file: string) => readFileSync(file, "utf8").split("\n").slice(0, -1);

  it("rotates by size: FILE.1 (newest) … FILE.K, whole lines only, the oldest beyond K deleted", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tailguard-spans-rotate-"));
    try {
      const { spans } = await collect(scenario, scenarioOpts);
      // every line, unrotated
      const all = path.join(dir, "all.jsonl");
      await exportAll(new OtlpJsonLinesExporter(all, { maxBytes: Infinity }), spans);
      const lines = linesOf(all);
      const total = readFileSync(all).length;
      expect(lines.length).toBeGreaterThan(10);

      const file = path.join(dir, "spans.jsonl");
      writeFileSync(`${file}.7`, "a full file of a run that kept more\n");
      const maxBytes = Math.floor(total / 6);
      await exportAll(new OtlpJsonLinesExporter(file, { maxBytes, keep: 2 }), spans);
      expect(readdirSync(dir).filter((f) => f.startsWith("spans")).sort()).toEqual(["spans.jsonl", "spans.jsonl.1", "spans.jsonl.2"]);
      const kept = [`${file}.2`, `${file}.1`, file].map(linesOf);
      for (const [i, f] of [`${file}.2`, `${file}.1`, file].entries()) {
        const text = readFileSync(f, "utf8");
        expect(Buffer.byteLength(text), f).toBeLessThanOrEqual(maxBytes);
        expect(text.endsWith("\n"), f).toBe(true);
        for (const line of kept[i]) expect(() => JSON.parse(line), f).not.toThrow();
        // a rotated file is full: its next line did not fit
        if (i < 2) expect(Buffer.byteLength(text) + Buffer.byteLength(kept[i + 1][0]) + 1, f).toBeGreaterThan(maxBytes);
      }
      // what is kept is the newest lines, in order; the oldest went with the file beyond K
      const newest = kept.flat();
      expect(newest.length).toBeLessThan(lines.length);
      expect(newest).toEqual(lines.slice(lines.length - newest.length));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("appends to an existing file up to the limit; a line longer than the limit is written whole, alone; keep 0 keeps none", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tailguard-spans-rotate-"));
    try {
      const { spans } = await collect(scenario, scenarioOpts);
      const file = path.join(dir, "spans.jsonl");
      // an earlier run's file, nearly full: the first line goes to a new file
      writeFileSync(file, "x".repeat(990) + "\n");
      await exportAll(new OtlpJsonLinesExporter(file, { maxBytes: 1000, keep: 3 }), spans.slice(0, 1));
      expect(readFileSync(`${file}.1`, "utf8")).toBe("x".repeat(990) + "\n");
      expect(linesOf(file)).toHaveLength(1);
      // every line is longer than 10 bytes: each is a file of its own, whole, and none is kept beside the last
      rmSync(`${file}.1`);
      await exportAll(new OtlpJsonLinesExporter(file, { maxBytes: 10, keep: 0 }), spans.slice(0, 12));
      expect(readdirSync(dir)).toEqual(["spans.jsonl"]);
      const last = linesOf(file);
      expect(last).toHaveLength(1);
      expect(JSON.parse(last[0]).resourceSpans[0].scopeSpans[0].spans).toHaveLength(3); // the last batch: 3 spans
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
