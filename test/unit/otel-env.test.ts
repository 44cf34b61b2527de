// The agent's OTEL_* configuration (otel-env.ts): which signal goes where, which variable wins, the two bugs of issue 14
// (a signal-specific endpoint alone, OTEL_TRACES_EXPORTER), every refusal's message and every warning; and the
// key=value grammar that identity.ts shares for other processes' environments.
import { mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { agentOptions } from "../../agent/src/cli/agent.js";
import { UsageError } from "../../agent/src/cli/usage.js";
import { resourceFromEnvironment } from "../../agent/src/identity.js";
import { agentVersion } from "../../agent/src/telemetry/own-process.js";
import { exporterOptions, otelConfig, OtelEnvError, parseKeyValueList, type Env } from "../../agent/src/telemetry/otel-env.js";

const collector = "http://collector:4318";

/** otelConfig that must not warn. */
function quiet(env: Env, opts: { otlp?: boolean; port?: number } = {}) {
  const c = otelConfig(env, opts);
  expect(c.warnings).toEqual([]);
  return c;
}

/** The message otelConfig refuses `env` with. */
function refusal(env: Env, opts: { otlp?: boolean } = {}): string {
  try {
    otelConfig(env, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(OtelEnvError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(env)}`);
}

describe("which signals are exported", () => {
  it("none unless something asks: an endpoint, an exporter variable naming otlp, or --otlp (spans)", () => {
    expect(quiet({})).toMatchObject({ traces: null, metrics: null });
    // empty is unset, as the specification says (the tests start agents with OTEL_EXPORTER_OTLP_ENDPOINT="")
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: "", OTEL_TRACES_EXPORTER: " " })).toMatchObject({ traces: null, metrics: null });
    const both = quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector });
    expect([both.traces?.url, both.metrics?.url]).toEqual([`${collector}/v1/traces`, `${collector}/v1/metrics`]);
    // the exporter variable alone: to the default endpoint
    expect(quiet({ OTEL_TRACES_EXPORTER: "otlp" })).toMatchObject({ traces: { url: "http://localhost:4318/v1/traces" }, metrics: null });
    expect(quiet({ OTEL_METRICS_EXPORTER: "otlp" })).toMatchObject({ traces: null, metrics: { url: "http://localhost:4318/v1/metrics" } });
    // --otlp: spans, without an endpoint variable; metrics still as the variables say
    expect(quiet({}, { otlp: true })).toMatchObject({ traces: { url: "http://localhost:4318/v1/traces" }, metrics: null });
    expect(quiet({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${collector}/m` }, { otlp: true }).metrics?.url).toBe(`${collector}/m`);
  });

  it("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT alone turns metric push on, and only that (issue 14)", () => {
    const c = quiet({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${collector}/v1/metrics` });
    expect(c.metrics?.url).toBe(`${collector}/v1/metrics`);
    expect(c.traces).toBeNull();
    // what the agent is started with: the CLI's options carry it
    expect(agentOptions([], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${collector}/v1/metrics` }).otel.metrics?.url).toBe(`${collector}/v1/metrics`);
  });

  it("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone turns span export on, and only that", () => {
    const c = quiet({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector}/v1/traces` });
    expect(c.traces?.url).toBe(`${collector}/v1/traces`);
    expect(c.metrics).toBeNull();
  });

  it("OTEL_TRACES_EXPORTER is honoured: none turns span export off even with an endpoint; otlp (the default) on (issue 14)", () => {
    const none = quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_TRACES_EXPORTER: "none" });
    expect(none.traces).toBeNull();
    expect(none.metrics?.url).toBe(`${collector}/v1/metrics`); // the other signal is untouched
    expect(quiet({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector, OTEL_TRACES_EXPORTER: "none" }).traces).toBeNull();
    expect(agentOptions([], { OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_TRACES_EXPORTER: "none" }).otel.traces).toBeNull();
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_TRACES_EXPORTER: "otlp" }).traces?.url).toBe(`${collector}/v1/traces`);
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_TRACES_EXPORTER: " OTLP , otlp" }).traces).not.toBeNull();
  });

  it("OTEL_METRICS_EXPORTER: none or prometheus alone (the endpoint the agent serves anyway) leave push off", () => {
    for (const v of ["none", "prometheus"])
      expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRICS_EXPORTER: v }).metrics, v).toBeNull();
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRICS_EXPORTER: "prometheus,otlp" }).metrics).not.toBeNull();
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRICS_EXPORTER: "none" }).traces).not.toBeNull();
  });

  it("OTEL_SDK_DISABLED=true turns all OTLP export off", () => {
    for (const v of ["true", "TRUE", "True"])
      expect(quiet({ OTEL_SDK_DISABLED: v, OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRICS_EXPORTER: "otlp" }), v)
        .toMatchObject({ traces: null, metrics: null });
    expect(quiet({ OTEL_SDK_DISABLED: "false", OTEL_EXPORTER_OTLP_ENDPOINT: collector }).traces).not.toBeNull();
  });

  it("reads a signal's variables only when that signal is exported: a bad one for an unused signal stops nothing", () => {
    expect(quiet({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "soon" })).toMatchObject({ traces: null, metrics: null });
    const c = quiet({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${collector}/v1/metrics`, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" });
    expect(c.metrics).not.toBeNull();
  });
});

describe("precedence and defaults", () => {
  it("the generic endpoint gets /v1/<signal> appended; a signal's own endpoint is used as is", () => {
    const via = (base: string) => quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: base });
    expect(via(`${collector}/`).traces?.url).toBe(`${collector}/v1/traces`);
    expect(via(`${collector}/mycollector/`).metrics?.url).toBe(`${collector}/mycollector/v1/metrics`);
    expect(via(`${collector}/mycollector`).traces?.url).toBe(`${collector}/mycollector/v1/traces`);
    expect(via("https://otlp.example.com").traces?.url).toBe("https://otlp.example.com/v1/traces");
    const own = quiet({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://generic:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector}/custom/path`,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://metrics.example.com", // no path: the root, nothing appended
    });
    expect([own.traces?.url, own.metrics?.url]).toEqual([`${collector}/custom/path`, "https://metrics.example.com/"]);
  });

  it("a signal's own protocol, timeout, compression and TLS files beat the generic ones; headers merge, its own winning", () => {
    const c = quiet({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TIMEOUT: "5000",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
      OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: "none",
      OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=gpu%20team, x-both=generic",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-both=traces",
      OTEL_EXPORTER_OTLP_CERTIFICATE: "/etc/ca.pem",
      OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: "/etc/traces-ca.pem",
      OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: "/etc/key.pem",
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: "/etc/cert.pem",
    });
    expect(c.traces).toEqual({
      url: `${collector}/v1/traces`,
      protocol: "http/json",
      headers: { "x-tenant": "gpu team", "x-both": "traces" },
      timeoutMs: 2500,
      compression: "gzip",
      certificate: { variable: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", path: "/etc/traces-ca.pem" },
      clientCertificate: { variable: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path: "/etc/cert.pem" },
      clientKey: null,
    });
    expect(c.metrics).toMatchObject({
      protocol: "http/protobuf",
      headers: { "x-tenant": "gpu team", "x-both": "generic" },
      timeoutMs: 5000,
      compression: "none",
      certificate: { variable: "OTEL_EXPORTER_OTLP_CERTIFICATE", path: "/etc/ca.pem" },
      clientKey: { variable: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", path: "/etc/key.pem" },
    });
  });

  it("defaults: http/protobuf, 10 s per request, no compression, an export every 60 s given at most 30 s", () => {
    const c = quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector });
    expect(c.metrics).toMatchObject({ protocol: "http/protobuf", timeoutMs: 10_000, compression: "none", headers: {}, intervalMs: 60_000,
      exportTimeoutMs: 30_000, certificate: null });
    // a timeout of 0 is indefinite; the export timeout never exceeds the interval
    const fast = quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_EXPORTER_OTLP_TIMEOUT: "0", OTEL_METRIC_EXPORT_INTERVAL: "500" });
    expect(fast.metrics).toMatchObject({ timeoutMs: 2 ** 31 - 1, intervalMs: 500, exportTimeoutMs: 500 });
    expect(quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRIC_EXPORT_TIMEOUT: "2000" }).metrics?.exportTimeoutMs).toBe(2000);
  });

  it("the agent's own resource: what it detects, unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise", () => {
    const detected = { "service.name": "tailguard", "service.version": agentVersion, "host.name": hostname() };
    expect(quiet({}, { port: 9464 }).resource).toEqual({ ...detected, "service.instance.id": `${hostname()}:9464` });
    expect(quiet({ OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=gpu%20agent" }, { port: 9464 }).resource)
      .toEqual({ ...detected, "service.name": "gpu agent", "deployment.environment": "prod", "service.instance.id": `${hostname()}:9464` });
    // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES
    expect(quiet({ OTEL_SERVICE_NAME: "node-agent", OTEL_RESOURCE_ATTRIBUTES: "service.name=other" }).resource["service.name"])
      .toBe("node-agent");
  });

  it("host.name, k8s.node.name (the DaemonSet's K8S_NODE_NAME) and service.instance.id: detected, overridable", () => {
    const node = quiet({ K8S_NODE_NAME: "gpu-node-7" }, { port: 9464 }).resource;
    expect(node).toMatchObject({ "k8s.node.name": "gpu-node-7", "host.name": hostname(), "service.instance.id": `${hostname()}:9464` });
    expect(quiet({ NODE_NAME: "gpu-node-8" }).resource["k8s.node.name"]).toBe("gpu-node-8");
    expect(quiet({}).resource).not.toHaveProperty("k8s.node.name");
    // the instance id follows a host.name given: agents of two nodes never share one
    const given = quiet({ K8S_NODE_NAME: "n", OTEL_RESOURCE_ATTRIBUTES: "host.name=box-a,k8s.node.name=node-a" }, { port: 9464 }).resource;
    expect(given).toMatchObject({ "host.name": "box-a", "k8s.node.name": "node-a", "service.instance.id": "box-a:9464" });
    expect(quiet({ OTEL_RESOURCE_ATTRIBUTES: "service.instance.id=agent-1" }, { port: 9464 }).resource["service.instance.id"]).toBe("agent-1");
    // no fixed port (--port 0, --no-prometheus): a random UUID, one per run
    const [a, b] = [quiet({}).resource["service.instance.id"], quiet({}, { port: 0 }).resource["service.instance.id"]];
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(agentOptions(["--port", "9500"], { K8S_NODE_NAME: "gpu-node-7" }).otel.resource["service.instance.id"]).toBe(`${hostname()}:9500`);
  });
});

describe("values the agent cannot honour: refused, naming the variable, the value and what is accepted", () => {
  it("gRPC", () => {
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toBe(
      'OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported: the agent sends OTLP over HTTP only (no gRPC exporter is ' +
        "installed); use http/protobuf (the default) or http/json, to the collector's OTLP/HTTP port (4318)");
    expect(refusal({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "gRPC" }))
      .toMatch(/^OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="gRPC" is not supported/);
  });

  it("an exporter the specification names that the agent does not have", () => {
    expect(refusal({ OTEL_TRACES_EXPORTER: "console" })).toBe('OTEL_TRACES_EXPORTER="console": "console" is not supported: the ' +
      "agent exports spans over OTLP only: use otlp (the default) or none; --spans-file FILE writes them as OTLP/JSON lines");
    expect(refusal({ OTEL_TRACES_EXPORTER: "otlp,zipkin" })).toMatch(/^OTEL_TRACES_EXPORTER="otlp,zipkin": "zipkin" is not supported/);
    expect(refusal({ OTEL_METRICS_EXPORTER: "console" })).toBe('OTEL_METRICS_EXPORTER="console": "console" is not supported: the ' +
      "agent's metrics go out over OTLP or are scraped from its Prometheus endpoint: use otlp, prometheus or none");
    expect(refusal({ OTEL_METRICS_EXPORTER: "none,otlp" })).toBe(
      'OTEL_METRICS_EXPORTER="none,otlp": none means no exporter, and cannot be listed with others');
  });

  it("an endpoint that is no http(s) URL with a host", () => {
    for (const bad of ["collector:4318", "localhost", "ftp://collector/x", "http://", "://x"])
      expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: bad }), bad).toBe(`OTEL_EXPORTER_OTLP_ENDPOINT=${JSON.stringify(bad)} is not a ` +
        "URL to send OTLP to: give its scheme (http:// or https://), host and port, e.g. http://collector:4318");
    expect(refusal({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "collector:4318/v1/metrics" })).toBe(
      'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="collector:4318/v1/metrics" is not a URL to send OTLP to: give its scheme (http:// ' +
        "or https://), host and port, e.g. http://collector:4318/v1/metrics");
  });

  it("headers that are not a list of name=value, naming entries by place and never showing a value (it may be a secret)", () => {
    const headers = (h: string) => refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_EXPORTER_OTLP_HEADERS: h });
    const how = ": write name=value,name2=value2, values percent-encoded (%2C for a comma, %20 for a space)";
    expect(headers("x-ok=1,Bearer s3cret")).toBe(`OTEL_EXPORTER_OTLP_HEADERS is not a list of headers (entry 2: it has no "=")${how}`);
    expect(headers("authorization=Bearer%s3cret")).toBe("OTEL_EXPORTER_OTLP_HEADERS is not a list of headers (entry 1: it has a % " +
      `that does not start a %XX escape of UTF-8)${how}`);
    expect(headers("=v")).toBe(`OTEL_EXPORTER_OTLP_HEADERS is not a list of headers (entry 1: its key is empty)${how}`);
    expect(headers("x tenant=a")).toBe(`OTEL_EXPORTER_OTLP_HEADERS is not a list of headers ("x tenant" is not an HTTP header name)${how}`);
    expect(headers("x-a=line%0Abreak")).toBe("OTEL_EXPORTER_OTLP_HEADERS is not a list of headers (the value of x-a has characters " +
      `HTTP headers cannot carry)${how}`);
    expect(headers("x-ok=1,Bearer s3cret")).not.toContain("s3cret");
    expect(refusal({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector, OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x" }))
      .toMatch(/^OTEL_EXPORTER_OTLP_TRACES_HEADERS is not a list of headers/);
  });

  it("--otlp against OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true", () => {
    expect(refusal({ OTEL_TRACES_EXPORTER: "none" }, { otlp: true })).toBe(
      "--otlp asks for span export over OTLP, and OTEL_TRACES_EXPORTER=none turns it off: drop one of them");
    expect(refusal({ OTEL_SDK_DISABLED: "true" }, { otlp: true })).toBe(
      "--otlp asks for span export over OTLP, and OTEL_SDK_DISABLED=true turns it off: drop one of them");
  });

  it("the CLI turns a refusal into a usage error (exit status 2), prefixed like its other errors", () => {
    expect(() => agentOptions([], { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(UsageError);
    expect(() => agentOptions([], { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }))
      .toThrow(/^tailguard agent: OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" is not a URL/);
  });

  it("a TLS file that cannot be read, when the exporter is made", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tailguard-otel-"));
    const ca = path.join(dir, "ca.pem");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
    const config = (file: string) => quiet({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector:4318", OTEL_EXPORTER_OTLP_CERTIFICATE: file }).traces!;
    expect(exporterOptions(config(ca)).httpAgentOptions).toMatchObject({ keepAlive: true, ca: Buffer.from("-----BEGIN CERTIFICATE-----\n") });
    const missing = path.join(dir, "missing.pem");
    expect(() => exporterOptions(config(missing))).toThrow(OtelEnvError);
    expect(() => exporterOptions(config(missing))).toThrow(
      `OTEL_EXPORTER_OTLP_CERTIFICATE=${JSON.stringify(missing)}: cannot read it (ENOENT): name a PEM file the agent's user may read`);
  });
});

describe("values the specification says to ignore with a warning: ignored, and said", () => {
  const ignored = "; ignored, as the OpenTelemetry specification asks (treated as unset)";

  it("a number it cannot read: the next variable, or the default, applies", () => {
    const c = otelConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector,
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "5s",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2000",
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "-1",
      OTEL_METRIC_EXPORT_INTERVAL: "0",
    });
    expect(c.traces?.timeoutMs).toBe(2000); // the generic one, as if the traces one were unset
    expect(c.metrics).toMatchObject({ timeoutMs: 2000, intervalMs: 60_000 });
    expect(c.warnings).toEqual([
      `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="5s" is not a whole number of milliseconds from 0 to 2147483647${ignored}`,
      `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="-1" is not a whole number of milliseconds from 0 to 2147483647${ignored}`,
      `OTEL_METRIC_EXPORT_INTERVAL="0" is no interval (it must be more than 0 ms)${ignored}`,
    ]);
  });

  it("an enum value it does not know: protocol, compression, exporter, boolean", () => {
    const c = otelConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector,
      OTEL_EXPORTER_OTLP_PROTOCOL: "json",
      OTEL_EXPORTER_OTLP_COMPRESSION: "zstd",
      OTEL_TRACES_EXPORTER: "nnone",
      OTEL_SDK_DISABLED: "yes",
      OTEL_METRICS_EXPORTER: "none",
    });
    expect(c.traces).toMatchObject({ protocol: "http/protobuf", compression: "none" }); // nnone ignored: the endpoint decides
    expect(c.warnings).toEqual([
      `OTEL_SDK_DISABLED="yes" is not true or false${ignored}`,
      'OTEL_TRACES_EXPORTER="nnone": "nnone" is not an exporter it knows (otlp, none); ignored, as the OpenTelemetry specification asks',
      `OTEL_EXPORTER_OTLP_PROTOCOL="json" is not an OTLP protocol (http/protobuf, http/json)${ignored}`,
      `OTEL_EXPORTER_OTLP_COMPRESSION="zstd" is not a compression (gzip, none)${ignored}`,
    ]);
  });

  it("an export timeout longer than the interval is shortened to it", () => {
    const c = otelConfig({ OTEL_METRICS_EXPORTER: "otlp", OTEL_METRIC_EXPORT_INTERVAL: "1000", OTEL_METRIC_EXPORT_TIMEOUT: "5000" });
    expect(c.metrics).toMatchObject({ intervalMs: 1000, exportTimeoutMs: 1000 });
    expect(c.warnings).toEqual(["OTEL_METRIC_EXPORT_TIMEOUT=5000 is longer than the export interval: 1000 ms is used, so that one " +
      "export ends before the next begins"]);
  });

  it("a malformed OTEL_RESOURCE_ATTRIBUTES of the agent's own: the whole value is discarded", () => {
    const c = otelConfig({ OTEL_RESOURCE_ATTRIBUTES: "team=gpu,broken" });
    expect(c.resource).not.toHaveProperty("team");
    expect(c.resource["service.name"]).toBe("tailguard");
    expect(c.warnings).toEqual(['OTEL_RESOURCE_ATTRIBUTES: entry 2 ("broken") is not key=value: it has no "="; the whole value is ' +
      "ignored, as the OpenTelemetry specification asks (write key=value,key2=value2, values percent-encoded)"]);
  });
});

describe("key=value lists (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_*HEADERS)", () => {
  it("splits at commas and the first =, trims, percent-decodes keys and values; skips empty entries", () => {
    expect(parseKeyValueList(" a = 1 ,, b=x%2Cy%3Dz ,c=k=v,d=,%6B%65y=caf%C3%A9,")).toEqual({
      pairs: { a: "1", b: "x,y=z", c: "k=v", d: "", key: "café" },
      malformed: [],
    });
  });

  it("returns malformed entries apart, by place and why; a __proto__ key is a key", () => {
    const { pairs, malformed } = parseKeyValueList("ok=1,novalue,=empty,bad=%E0%A4%A,__proto__=x");
    expect(malformed).toEqual([
      { index: 2, entry: "novalue", reason: 'it has no "="' },
      { index: 3, entry: "=empty", reason: "its key is empty" },
      { index: 4, entry: "bad=%E0%A4%A", reason: "it has a % that does not start a %XX escape of UTF-8" },
    ]);
    expect(Object.keys(pairs)).toEqual(["ok", "__proto__"]);
    expect(Object.getPrototypeOf(pairs)).toBe(Object.prototype);
  });

  it("other processes' OTEL_RESOURCE_ATTRIBUTES (identity.ts): the same grammar, malformed entries skipped, the rest kept", () => {
    expect(resourceFromEnvironment({ OTEL_RESOURCE_ATTRIBUTES: "team=gpu%20infra,broken,model=resnet%2C50", K8S_POD_NAME: "p" }))
      .toEqual({ team: "gpu infra", model: "resnet,50", "k8s.pod.name": "p" });
  });
});
