// From a P99 bucket to the trace, with the real things: `tailguard agent --demo` (its high- and low-priority
// workloads on the simulated GPU) exports its spans and metrics over OTLP to a loopback receiver, and a real Prometheus
// (the Debian package, --enable-feature=exemplar-storage) scrapes its /metrics, in OpenMetrics as Prometheus asks.
// Every exemplar Prometheus stores names a span the agent exported in the same run: its trace id and span id, with
// the span's duration as the value; the OTLP histograms carry exemplars that resolve the same way.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";

import { requireComponent } from "../support/components.js";
import { startDemoAgent, type DemoAgent } from "../support/demo-agent.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";
import { query, type RunningPrometheus, startPrometheus, until } from "../support/prometheus.js";

interface StoredExemplar {
  labels: Record<string, string>;
  value: string;
  timestamp: number;
}

/** /api/v1/query_exemplars over the last minute: each series with its exemplars. */
async function exemplars(base: string, promql: string): Promise<{ seriesLabels: Record<string, string>; exemplars: StoredExemplar[] }[]> {
  const now = Date.now() / 1000;
  const res = await fetch(`${base}/api/v1/query_exemplars?query=${encodeURIComponent(promql)}&start=${now - 60}&end=${now + 1}`);
  const body = (await res.json()) as { status: string; error?: string; data: { seriesLabels: Record<string, string>; exemplars: StoredExemplar[] }[] };
  if (body.status !== "success") throw new Error(`query_exemplars ${promql}: ${body.error}`);
  return body.data;
}

it("Prometheus with exemplar storage scrapes the demo agent: every exemplar, and every OTLP one, is a span the agent exported", async () => {
  const PROMETHEUS = requireComponent("prometheus");
  const dir = mkdtempSync(path.join(tmpdir(), "tailguard-exemplars-"));
  let receiver: OtlpReceiver | null = null;
  let demo: DemoAgent | null = null;
  let prometheus: RunningPrometheus | null = null;
  try {
    receiver = await startOtlpReceiver();
    demo = await startDemoAgent("exemplars", {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_METRIC_EXPORT_INTERVAL: "1000",
    });
    await demo.demoProcesses();
    const target = new URL(demo.metricsUrl).host;
    prometheus = await startPrometheus(PROMETHEUS, dir, { targets: [target], args: ["--enable-feature=exemplar-storage"] });
    const base = prometheus.base;
    const logOf = () => `${prometheus!.log()}\n--- agent:\n${demo!.output()}`;
    // Prometheus 2.42 hands static targets to its scrape manager only after its discovery throttle (5 s)
    await until("a scrape", async () => ((await query(base, 'up{job="tailguard"}'))[0]?.[1] === 1 ? true : undefined), 20_000, logOf);

    // request exemplars from the high-priority process, and hold exemplars from the held batch job
    const enough = async () => {
      const requests = await exemplars(base, "tailguard_request_latency_seconds_bucket");
      const holds = await exemplars(base, "tailguard_hold_time_seconds_bucket");
      const n = (d: typeof requests) => d.reduce((sum, s) => sum + s.exemplars.length, 0);
      return n(requests) >= 5 && n(holds) >= 1 ? { requests, holds } : undefined;
    };
    const stored = await until("exemplars in Prometheus", enough, 20_000, logOf);
    // the scrapes were OpenMetrics (0.0.4 text has no exemplars) and Prometheus' OpenMetrics parser took every one
    const targets = (await (await fetch(`${base}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    expect(targets.data.activeTargets.map((t) => [t.health, t.lastError])).toEqual([["up", ""]]);

    await demo.stop(); // flushes the span queue
    await until("the last spans", async () => (receiver!.spans().length > 0 ? true : undefined), 5_000, logOf);
    const spans = new Map(receiver.spans().map((s) => [`${s.traceId}/${s.spanId}`, s]));
    for (const [name, series] of [["request", stored.requests], ["hold", stored.holds]] as const) {
      for (const s of series) {
        expect(s.seriesLabels.le, "exemplars are on bucket series").toBeDefined();
        for (const e of s.exemplars) {
          const span = spans.get(`${e.labels.trace_id}/${e.labels.span_id}`);
          expect(span, `exemplar ${JSON.stringify(e)} of ${JSON.stringify(s.seriesLabels)} is an exported span`).toBeDefined();
          expect(span!.name).toBe(name);
          expect(span!.attributes["tailguard.exemplar"]).toBe(true);
          const durS = Number(BigInt(span!.endTimeUnixNano) - BigInt(span!.startTimeUnixNano)) / 1e9;
          expect(Number(e.value)).toBeCloseTo(durS, 9);
          if (s.seriesLabels.le !== "+Inf") expect(durS).toBeLessThanOrEqual(Number(s.seriesLabels.le));
          // the span's end, to Prometheus' millisecond
          expect(Math.abs(e.timestamp * 1000 - Number(BigInt(span!.endTimeUnixNano) / 1_000_000n))).toBeLessThanOrEqual(1);
          expect(s.seriesLabels.command).toBe(span!.resource["service.name"]);
        }
      }
    }

    // the OTLP histograms (protobuf, decoded with the official definitions) carry exemplars that resolve the same way
    const otlp = receiver.requests
      .filter((r) => r.signal === "metrics")
      .flatMap((r) => r.decoded.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics)))
      .filter((m: any) => m.name === "tailguard.request.latency" || m.name === "tailguard.hold.time")
      .flatMap((m: any) => m.histogram.dataPoints.flatMap((p: any) => (p.exemplars ?? []).map((e: any) => ({ metric: m.name, e }))));
    expect(otlp.filter((x: any) => x.metric === "tailguard.request.latency").length).toBeGreaterThan(0);
    for (const { metric, e } of otlp) {
      const span = spans.get(`${Buffer.from(e.traceId).toString("hex")}/${Buffer.from(e.spanId).toString("hex")}`);
      expect(span, `OTLP exemplar of ${metric} is an exported span`).toBeDefined();
      expect(span!.name).toBe(metric === "tailguard.hold.time" ? "hold" : "request");
      expect(e.timeUnixNano).toBe(span!.endTimeUnixNano);
      expect(e.asDouble).toBeCloseTo(Number(BigInt(span!.endTimeUnixNano) - BigInt(span!.startTimeUnixNano)) / 1e9, 9);
    }
  } finally {
    await prometheus?.stop();
    await demo?.stop();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
