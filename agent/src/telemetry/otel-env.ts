// The agent's own OpenTelemetry configuration: every OTEL_* variable it honours is read here and nowhere else, as the
// OpenTelemetry "SDK environment variables" and "OTLP exporter" specifications define them (docs/agent.md has the
// table, test/docs/otel-env.test.ts holds it to this file). Also the grammar of their key=value lists, which
// identity.ts applies to the environments of the processes the agent follows.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

import type { CompressionAlgorithm, OTLPExporterNodeConfigBase } from "@opentelemetry/otlp-exporter-base";

import { agentVersion } from "./own-process.js";

/** An environment: process.env, or another process's (identity.ts), or a test's. */
export type Env = Readonly<Record<string, string | undefined>>;

/** An OTEL_* value the agent cannot honour: its message names the variable, the value and what is accepted. */
export class OtelEnvError extends Error {}

export type OtlpProtocol = "http/protobuf" | "http/json";
export type OtlpCompression = "gzip" | "none";

/** A file a variable names; read when the exporter is made (exporterOptions), so that otelConfig does no I/O. */
export interface NamedFile {
  variable: string;
  path: string;
}

/** Where and how one signal goes over OTLP/HTTP. */
export interface OtlpExport {
  /** the full URL requests are posted to */
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  /** how long one export request may take (ms) */
  timeoutMs: number;
  compression: OtlpCompression;
  /** PEM files: the CA to trust, and a client certificate and key for mutual TLS */
  certificate: NamedFile | null;
  clientCertificate: NamedFile | null;
  clientKey: NamedFile | null;
}

export interface OtlpMetricsExport extends OtlpExport {
  /** time between the starts of two exports (ms) */
  intervalMs: number;
  /** how long one periodic export may take in all (ms; at most intervalMs) */
  exportTimeoutMs: number;
}

/** What the OTEL_* variables ask of the agent. */
export interface OtelConfig {
  /** the agent's own resource (its metrics'): service.name "tailguard", service.version, host.name,
   *  service.instance.id and k8s.node.name (agentResource), unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
   *  otherwise */
  resource: Record<string, string>;
  /** span export over OTLP; null: none */
  traces: OtlpExport | null;
  /** metric push over OTLP; null: none (the Prometheus endpoint is the agent's --port, whatever this says) */
  metrics: OtlpMetricsExport | null;
  /** values the specification says to ignore with a warning: each was ignored, and is said here once */
  warnings: string[];
}

/** The specification's "indefinite" timeout (0), as the largest delay a Node timer takes. */
const INDEFINITE_MS = 2 ** 31 - 1;
const DEFAULT_ENDPOINT = "http://localhost:4318";

/** Exporter names the specification defines that the agent cannot be: why, and what to use instead. */
const REFUSED_TRACES =
  "the agent exports spans over OTLP only: use otlp (the default) or none; --spans-file FILE writes them as OTLP/JSON lines";
const REFUSED_METRICS =
  "the agent's metrics go out over OTLP or are scraped from its Prometheus endpoint: use otlp, prometheus or none";

const SIGNALS = {
  traces: {
    prefix: "OTEL_EXPORTER_OTLP_TRACES_",
    path: "v1/traces",
    selector: "OTEL_TRACES_EXPORTER",
    known: ["otlp", "none"],
    refused: { console: REFUSED_TRACES, zipkin: REFUSED_TRACES, logging: REFUSED_TRACES, "otlp/stdout": REFUSED_TRACES },
  },
  metrics: {
    prefix: "OTEL_EXPORTER_OTLP_METRICS_",
    path: "v1/metrics",
    selector: "OTEL_METRICS_EXPORTER",
    // prometheus: the pull endpoint the agent serves anyway (--port, --no-prometheus), so it asks for nothing more
    known: ["otlp", "prometheus", "none"],
    refused: { console: REFUSED_METRICS, logging: REFUSED_METRICS, "otlp/stdout": REFUSED_METRICS },
  },
} as const;

type Signal = keyof typeof SIGNALS;

/** One malformed entry of a key=value list, by its place (1-based). */
export interface MalformedEntry {
  index: number;
  entry: string;
  reason: string;
}

/**
 * `key1=value1,key2=value2`: the form of OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_*HEADERS (W3C Baggage without
 * its `;` properties). Entries are split at commas; the first `=` splits key from value; keys and values are trimmed
 * and percent-decoded (`%2C` is a comma in a value). An entry without `=`, with an empty key or a bad %-escape is
 * returned apart for the caller to refuse or skip; empty entries (`a=1,,b=2`) are nothing.
 */
export function parseKeyValueList(text: string): { pairs: Record<string, string>; malformed: MalformedEntry[] } {
  const pairs = new Map<string, string>();
  const malformed: MalformedEntry[] = [];
  text.split(",").forEach((raw, i) => {
    const entry = raw.trim();
    if (entry === "") return;
    const eq = entry.indexOf("=");
    let key = "", value = "", reason = "";
    if (eq < 0) reason = 'it has no "="';
    else
      try {
        key = decodeURIComponent(entry.slice(0, eq).trim());
        value = decodeURIComponent(entry.slice(eq + 1).trim());
        if (key === "") reason = "its key is empty";
      } catch {
        reason = "it has a % that does not start a %XX escape of UTF-8";
      }
    if (reason) malformed.push({ index: i + 1, entry, reason });
    else pairs.set(key, value);
  });
  // fromEntries defines own properties: a key "__proto__" is a key, not the object's prototype
  return { pairs: Object.fromEntries(pairs), malformed };
}

/** What an environment says a process is, for telemetry: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. */
export interface OtelIdentity {
  serviceName: string | undefined;
  /** OTEL_RESOURCE_ATTRIBUTES' well-formed entries */
  attributes: Record<string, string>;
  /** its malformed entries */
  malformed: MalformedEntry[];
}

export function otelIdentity(env: Env): OtelIdentity {
  const { pairs, malformed } = parseKeyValueList(nonEmpty(env, "OTEL_RESOURCE_ATTRIBUTES") ?? "");
  return { serviceName: nonEmpty(env, "OTEL_SERVICE_NAME"), attributes: pairs, malformed };
}

/** A variable's value, or undefined when it is unset or empty: the specification makes the two the same. */
function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v;
}

/**
 * The agent's OTEL_* configuration from `env`, validated. `otlp`: the command line's --otlp, which turns span export
 * on without an endpoint variable. Throws OtelEnvError for a value the agent cannot honour (gRPC, an exporter it does
 * not have, an endpoint that is no http(s) URL, malformed headers, --otlp against OTEL_TRACES_EXPORTER=none); a value
 * the specification says to ignore with a warning (an unknown enum value, a number it cannot read) is ignored and
 * listed in `warnings`. A signal's own variables are read only when that signal is exported.
 *
 * Each signal is exported when its exporter variable does not say otherwise and something asks for it: its own or the
 * generic endpoint variable, its exporter variable naming otlp, or (spans) --otlp. Signal-specific variables beat the
 * generic ones; the generic endpoint gets /v1/traces or /v1/metrics appended, a signal's own is used as is.
 */
export function otelConfig(env: Env, opts: { otlp?: boolean; port?: number | null } = {}): OtelConfig {
  const warnings: string[] = [];
  const read = new Reader(env, warnings);
  const disabled = read.boolean("OTEL_SDK_DISABLED");
  const traces = read.exporters("traces");
  const metrics = read.exporters("metrics");
  if (opts.otlp && (disabled || traces === "none"))
    throw new OtelEnvError(
      `--otlp asks for span export over OTLP, and ${disabled ? "OTEL_SDK_DISABLED=true" : "OTEL_TRACES_EXPORTER=none"} ` +
        "turns it off: drop one of them",
    );
  const endpointSet = (s: Signal) => read.has(`${SIGNALS[s].prefix}ENDPOINT`) || read.has("OTEL_EXPORTER_OTLP_ENDPOINT");
  const wanted = (s: Signal, selected: Set<string> | "none" | null) =>
    !disabled && selected !== "none" && (selected === null ? endpointSet(s) : selected.has("otlp"));
  return {
    resource: read.resource(opts.port ?? null),
    // --otlp against none or disabled was refused above
    traces: opts.otlp || wanted("traces", traces) ? read.otlp("traces") : null,
    metrics: wanted("metrics", metrics) ? read.metrics() : null,
    warnings,
  };
}

/** Reads variables of one environment, collecting warnings. */
class Reader {
  constructor(
    private readonly env: Env,
    private readonly warnings: string[],
  ) {}

  has(name: string): boolean {
    return nonEmpty(this.env, name) !== undefined;
  }

  private value(name: string): string | undefined {
    return nonEmpty(this.env, name)?.trim();
  }

  private ignore(name: string, raw: string, why: string): void {
    this.warnings.push(`${name}=${JSON.stringify(raw)} ${why}; ignored, as the OpenTelemetry specification asks (treated as unset)`);
  }

  /** Boolean: only "true" (any case) is true; a value other than true or false warns. */
  boolean(name: string): boolean {
    const v = this.value(name);
    if (v === undefined || v.toLowerCase() === "false") return false;
    if (v.toLowerCase() === "true") return true;
    this.ignore(name, v, "is not true or false");
    return false;
  }

  /** OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER: a comma-separated list; null when unset (or nothing known in it). */
  exporters(signal: Signal): Set<string> | "none" | null {
    const { selector, known, refused } = SIGNALS[signal];
    const v = this.value(selector);
    if (v === undefined) return null;
    const names = new Set<string>();
    for (const item of v.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
      const why = (refused as Record<string, string>)[item];
      if (why) throw new OtelEnvError(`${selector}=${JSON.stringify(v)}: ${JSON.stringify(item)} is not supported: ${why}`);
      if ((known as readonly string[]).includes(item)) names.add(item);
      else this.warnings.push(`${selector}=${JSON.stringify(v)}: ${JSON.stringify(item)} is not an exporter it knows ` +
        `(${known.join(", ")}); ignored, as the OpenTelemetry specification asks`);
    }
    if (names.has("none") && names.size > 1)
      throw new OtelEnvError(`${selector}=${JSON.stringify(v)}: none means no exporter, and cannot be listed with others`);
    if (names.size === 0) return null;
    return names.has("none") ? "none" : names;
  }

  /** The agent's own resource: what it detects (agentResource), under OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME
   *  beats a service.name in OTEL_RESOURCE_ATTRIBUTES, as in the SDKs. */
  resource(port: number | null): Record<string, string> {
    const id = otelIdentity(this.env);
    let attributes = id.attributes;
    if (id.malformed.length > 0) {
      // the specification: on any error, the whole value is discarded (an attribute half-read could mislabel)
      const m = id.malformed[0];
      this.warnings.push(`OTEL_RESOURCE_ATTRIBUTES: entry ${m.index} (${JSON.stringify(m.entry)}) is not key=value: ${m.reason}; ` +
        "the whole value is ignored, as the OpenTelemetry specification asks (write key=value,key2=value2, values percent-encoded)");
      attributes = {};
    }
    const own = { ...attributes, ...(id.serviceName ? { "service.name": id.serviceName } : {}) };
    return { ...agentResource(this.env, own, port), ...own };
  }

  otlp(signal: Signal): OtlpExport {
    const { prefix } = SIGNALS[signal];
    const file = (option: string): NamedFile | null => {
      for (const variable of [`${prefix}${option}`, `OTEL_EXPORTER_OTLP_${option}`]) {
        const path = this.value(variable);
        if (path !== undefined) return { variable, path };
      }
      return null;
    };
    return {
      url: this.endpoint(signal),
      protocol: this.protocol(signal),
      headers: { ...this.headers("OTEL_EXPORTER_OTLP_HEADERS"), ...this.headers(`${prefix}HEADERS`) },
      timeoutMs: this.timeout([`${prefix}TIMEOUT`, "OTEL_EXPORTER_OTLP_TIMEOUT"], 10_000),
      compression: this.compression(signal),
      certificate: file("CERTIFICATE"),
      clientCertificate: file("CLIENT_CERTIFICATE"),
      clientKey: file("CLIENT_KEY"),
    };
  }

  metrics(): OtlpMetricsExport {
    const otlp = this.otlp("metrics");
    let intervalMs = this.milliseconds("OTEL_METRIC_EXPORT_INTERVAL") ?? 60_000;
    if (intervalMs === 0) {
      this.ignore("OTEL_METRIC_EXPORT_INTERVAL", this.value("OTEL_METRIC_EXPORT_INTERVAL")!, "is no interval (it must be more than 0 ms)");
      intervalMs = 60_000;
    }
    const asked = this.timeout(["OTEL_METRIC_EXPORT_TIMEOUT"], null);
    if (asked !== null && asked !== INDEFINITE_MS && asked > intervalMs)
      this.warnings.push(`OTEL_METRIC_EXPORT_TIMEOUT=${asked} is longer than the export interval: ${intervalMs} ms is used, ` +
        "so that one export ends before the next begins");
    return { ...otlp, intervalMs, exportTimeoutMs: Math.min(asked ?? 30_000, intervalMs) };
  }

  /** A signal's own endpoint, used as is; else the generic one (or the default) with the signal's path appended. */
  private endpoint(signal: Signal): string {
    const own = `${SIGNALS[signal].prefix}ENDPOINT`;
    const v = this.value(own);
    if (v !== undefined) return this.url(own, v, signal).href;
    const generic = this.value("OTEL_EXPORTER_OTLP_ENDPOINT");
    const base = generic === undefined ? new URL(DEFAULT_ENDPOINT) : this.url("OTEL_EXPORTER_OTLP_ENDPOINT", generic, signal);
    base.pathname = `${base.pathname.replace(/\/+$/, "")}/${SIGNALS[signal].path}`;
    return base.href;
  }

  private url(name: string, text: string, signal: Signal): URL {
    let u: URL | null = null;
    try {
      u = new URL(text);
    } catch {
      /* refused below */
    }
    if (u && (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "") return u;
    const example = name === "OTEL_EXPORTER_OTLP_ENDPOINT" ? "http://collector:4318" : `http://collector:4318/${SIGNALS[signal].path}`;
    throw new OtelEnvError(`${name}=${JSON.stringify(text)} is not a URL to send OTLP to: give its scheme (http:// or ` +
      `https://), host and port, e.g. ${example}`);
  }

  private protocol(signal: Signal): OtlpProtocol {
    for (const name of [`${SIGNALS[signal].prefix}PROTOCOL`, "OTEL_EXPORTER_OTLP_PROTOCOL"]) {
      const v = this.value(name);
      if (v === undefined) continue;
      const p = v.toLowerCase();
      if (p === "http/protobuf" || p === "http/json") return p;
      if (p === "grpc")
        throw new OtelEnvError(`${name}=${JSON.stringify(v)} is not supported: the agent sends OTLP over HTTP only (no gRPC ` +
          "exporter is installed); use http/protobuf (the default) or http/json, to the collector's OTLP/HTTP port (4318)");
      this.ignore(name, v, "is not an OTLP protocol (http/protobuf, http/json)");
    }
    return "http/protobuf";
  }

  private compression(signal: Signal): OtlpCompression {
    for (const name of [`${SIGNALS[signal].prefix}COMPRESSION`, "OTEL_EXPORTER_OTLP_COMPRESSION"]) {
      const v = this.value(name);
      if (v === undefined) continue;
      const c = v.toLowerCase();
      if (c === "gzip" || c === "none") return c;
      this.ignore(name, v, "is not a compression (gzip, none)");
    }
    return "none";
  }

  /** The first of `names` that is a valid timeout (0: indefinite), else `fallback`. */
  private timeout<T extends number | null>(names: string[], fallback: T): number | T {
    for (const name of names) {
      const ms = this.milliseconds(name);
      if (ms !== undefined) return ms === 0 ? INDEFINITE_MS : ms;
    }
    return fallback;
  }

  /** A duration or timeout: a whole number of milliseconds; anything else warns and counts as unset. */
  private milliseconds(name: string): number | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (/^\d+$/.test(v) && Number(v) <= INDEFINITE_MS) return Number(v);
    this.ignore(name, v, `is not a whole number of milliseconds from 0 to ${INDEFINITE_MS}`);
    return undefined;
  }

  /** Headers to send. A malformed list is refused, not skipped: a missing credential would fail every export. The
   *  message names entries by position, never by content, which may be a secret. */
  private headers(name: string): Record<string, string> {
    const v = this.value(name);
    if (v === undefined) return {};
    const { pairs, malformed } = parseKeyValueList(v);
    const wrong = malformed.map((m) => `entry ${m.index}: ${m.reason}`);
    for (const [key, value] of Object.entries(pairs)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) wrong.push(`${JSON.stringify(key)} is not an HTTP header name`);
      else if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) wrong.push(`the value of ${key} has characters HTTP headers cannot carry`);
    }
    if (wrong.length > 0)
      throw new OtelEnvError(`${name} is not a list of headers (${wrong.join("; ")}): write name=value,name2=value2, ` +
        "values percent-encoded (%2C for a comma, %20 for a space)");
    return pairs;
  }
}

/**
 * What the agent detects of itself, for its resource (the attributes OTEL_RESOURCE_ATTRIBUTES names win over these):
 * - host.name: os.hostname();
 * - k8s.node.name: K8S_NODE_NAME (or NODE_NAME), which the DaemonSet sets from the downward API (spec.nodeName);
 * - service.instance.id: `HOST:PORT` (the final host.name, the --port it serves Prometheus on), the form of the
 *   `instance` label a Prometheus scrape gives, to which the Collector's Prometheus exporters map service.instance.id:
 *   unique per host and port, as the semantic conventions require, and stable across restarts, so that a restart
 *   does not start new series. Without a fixed port (--port 0, --no-prometheus), a random UUID (v4), the
 *   conventions' fallback: unique, stable for this run only.
 * - service.version: the agent's version.
 */
export function agentResource(env: Env, given: Record<string, string>, port: number | null): Record<string, string> {
  const host = given["host.name"] ?? hostname();
  const node = nonEmpty(env, "K8S_NODE_NAME") ?? nonEmpty(env, "NODE_NAME");
  return {
    "service.name": "tailguard",
    "service.version": agentVersion,
    "service.instance.id": port ? `${host}:${port}` : randomUUID(),
    "host.name": host,
    ...(node ? { "k8s.node.name": node.trim() } : {}),
  };
}

/**
 * An OtlpExport as the official OTLP/HTTP exporters take it, every field given so that they take nothing from
 * process.env themselves (their own environment fallback would otherwise fill what is left out). Reads the TLS files.
 */
export function exporterOptions(e: OtlpExport): OTLPExporterNodeConfigBase {
  const pem = (f: NamedFile | null): Buffer | undefined => {
    if (!f) return undefined;
    try {
      return readFileSync(f.path);
    } catch (err) {
      throw new OtelEnvError(`${f.variable}=${JSON.stringify(f.path)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err}): ` +
        "name a PEM file the agent's user may read");
    }
  };
  return {
    url: e.url,
    headers: e.headers,
    timeoutMillis: e.timeoutMs,
    compression: e.compression as CompressionAlgorithm,
    httpAgentOptions: { keepAlive: true, ca: pem(e.certificate), cert: pem(e.clientCertificate), key: pem(e.clientKey) },
  };
}
