// The real `tailguard agent` under the OTEL_* variables (otel-env.ts), against a loopback OTLP receiver: the two bugs
// of issue 14 as a user meets them (a metrics endpoint alone pushed nothing; OTEL_TRACES_EXPORTER=none exported spans
// anyway), a warning said once, and a refused value that stops the agent with status 2.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

import { startAgent } from "../support/agent-process.js";
import { nativeBuild, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";
import { cli } from "../support/tailguard.js";
import { until } from "../support/wait.js";

const workload = path.join(nativeBuild, "tg-workload");

/** The agent's OTEL_* environment: these and nothing else from the test's own (the agent inherits process.env). */
function agentEnv(vars: Record<string, string>) {
  for (const name of Object.keys(process.env)) if (name.startsWith("OTEL_")) vi.stubEnv(name, "");
  for (const [name, value] of Object.entries(vars)) vi.stubEnv(name, value);
}

/** 20 request windows of a process with the shim attached. */
async function requests(dir: string) {
  const r = await runProgram(workload, ["requests", "--rate", "100", "--count", "20", "--kernels", "2", "--kernel-us", "200"],
    { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const windowsPushed = (receiver: OtlpReceiver, pid: number) =>
  receiver.metrics().some((m) => m.name === "tailguard.request.windows" && m.points.some((p) => p.attributes.pid === pid && Number(p.value) === 20));

let receiver: OtlpReceiver | null = null;
afterEach(async () => {
  vi.unstubAllEnvs();
  await receiver?.close();
  receiver = null;
});

describe("tailguard agent and the OTEL_* variables", () => {
  it("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT alone makes it push metrics there, and export no spans", async () => {
    receiver = await startOtlpReceiver();
    const dir = testDir("otel-metrics");
    const url = `${receiver.url}/v1/metrics`;
    agentEnv({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: url, OTEL_METRIC_EXPORT_INTERVAL: "200" });
    const agent = await startAgent(path.join(dir, "rings"), ["--pid-label"]);
    const r = await requests(dir);
    await until("the process's windows pushed", () => windowsPushed(receiver!, r.pid!));
    const stopped = await agent.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(receiver.requests.filter((q) => q.signal === "traces")).toEqual([]);
    // and it says so when it starts
    expect(stopped.stdout).toContain(`no span export over OTLP; metrics over OTLP to ${url} every 0.2 s`);
    expect(stopped.stderr).toBe("");
  });

  it("OTEL_TRACES_EXPORTER=none stops span export over OTLP, even with an endpoint; metrics still go", async () => {
    receiver = await startOtlpReceiver();
    const dir = testDir("otel-traces-none");
    const spansFile = path.join(dir, "spans.jsonl");
    agentEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_EXPORTER: "none", OTEL_METRIC_EXPORT_INTERVAL: "200" });
    // the spans file shows the windows did become spans: only their OTLP export is off
    const agent = await startAgent(path.join(dir, "rings"), ["--spans-file", spansFile, "--sample-rate", "0", "--pid-label"]);
    const r = await requests(dir);
    await until("the process's windows pushed", () => windowsPushed(receiver!, r.pid!));
    const stopped = await agent.stop(); // flushes what it would export
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(receiver.requests.filter((q) => q.signal === "traces")).toEqual([]);
    const requestSpans = readFileSync(spansFile, "utf8").split("\n").filter((l) => l.includes('"request"'));
    expect(requestSpans.length).toBeGreaterThan(0);
    expect(stopped.stdout).toContain(`no span export over OTLP; metrics over OTLP to ${receiver.url}/v1/metrics every 0.2 s`);
    expect(stopped.stderr).toBe("");
  });

  it("a value the specification says to ignore is ignored, and said once on stderr", async () => {
    const dir = testDir("otel-warning");
    agentEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT: "soon", OTEL_METRICS_EXPORTER: "none" });
    const agent = await startAgent(path.join(dir, "rings"), ["--pid-label"]);
    const stopped = await agent.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain("spans over OTLP to http://127.0.0.1:9/v1/traces; no metric push over OTLP");
    expect(stopped.stderr).toBe('tailguard agent: OTEL_EXPORTER_OTLP_TIMEOUT="soon" is not a whole number of milliseconds from 0 ' +
      "to 2147483647; ignored, as the OpenTelemetry specification asks (treated as unset)\n");
  });

  it("a value it cannot honour stops it with status 2 and says why, before it registers", async () => {
    const dir = testDir("otel-refused");
    const rings = path.join(dir, "rings");
    const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--no-prometheus"],
      { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('tailguard agent: OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported: the agent sends OTLP over ' +
      "HTTP only (no gRPC exporter is installed); use http/protobuf (the default) or http/json, to the collector's OTLP/HTTP port (4318); " +
      "see 'tailguard agent --help'");
    expect(existsSync(path.join(rings, "agent.pid"))).toBe(false);
  });
});
