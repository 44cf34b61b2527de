// A loopback OTLP/HTTP receiver for tests: POST /v1/traces and /v1/metrics on 127.0.0.1, protobuf decoded with the
// official generated decoders (otlp-decoders = @opentelemetry/otlp-transformer@0.216, the last line that ships them),
// JSON with JSON.parse; both encodings normalised to one flat form so a test can compare them with each other and with
// what the agent meant to send. No collector is installed for the tests; this keeps the OTLP path honest.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

import root from "otlp-decoders/build/src/generated/root.js";

/** The parts of a protobufjs generated message type that the tests use (root.d.ts types it as a bare Root). */
export interface MessageType {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: object): object;
  toObject(message: object, options?: { longs?: unknown; enums?: unknown; bytes?: unknown; defaults?: boolean }): any;
  verify(message: object): string | null;
}

const proto = (root as any).opentelemetry.proto;
export const ExportTraceServiceRequest: MessageType = proto.collector.trace.v1.ExportTraceServiceRequest;
export const ExportMetricsServiceRequest: MessageType = proto.collector.metrics.v1.ExportMetricsServiceRequest;

export type Encoding = "protobuf" | "json";

/** One span as it arrived, whatever the encoding: ids in hex, times as exact decimal ns strings, kind as the OTLP enum
 *  number (1 = INTERNAL), attributes as a plain object. Optional fields are absent when not sent. */
export interface FlatSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code: number; message?: string };
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
}

/** One metric data point, flattened: `value` for gauges and sums, the rest for histograms. */
export interface FlatPoint {
  attributes: Record<string, unknown>;
  startTimeUnixNano?: string;
  timeUnixNano: string;
  value?: number | string;
  count?: string;
  sum?: number;
  min?: number;
  max?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
}

export interface FlatMetric {
  name: string;
  description?: string;
  unit?: string;
  /** which oneof of Metric was set: gauge, sum, histogram, exponentialHistogram, summary */
  type: string;
  /** sums: monotonic and aggregation temporality (1 delta, 2 cumulative); histograms: temporality */
  monotonic?: boolean;
  temporality?: number;
  points: FlatPoint[];
  resource: Record<string, unknown>;
  scope: { name: string; version?: string };
}

export interface ReceivedRequest {
  signal: "traces" | "metrics";
  encoding: Encoding;
  headers: IncomingHttpHeaders;
  /** the body as sent (after gzip, if any, is undone) */
  body: Buffer;
  /** the request as a plain object: JSON as parsed, protobuf via toObject (longs as strings, bytes as Buffers) */
  decoded: any;
}

export interface OtlpReceiver {
  /** base URL, for OTEL_EXPORTER_OTLP_ENDPOINT */
  url: string;
  requests: ReceivedRequest[];
  spans(): FlatSpan[];
  metrics(): FlatMetric[];
  close(): Promise<void>;
}

const hex = (id: unknown, encoding: Encoding): string =>
  encoding === "json" ? String(id ?? "") : Buffer.from((id as Uint8Array | undefined) ?? []).toString("hex");

/** Protobuf int64 after toObject({longs: String}) is a string; OTLP/JSON allows a string or a number. */
const int64 = (v: unknown): string | undefined => (v == null ? undefined : String(v));

function anyValue(v: any, encoding: Encoding): unknown {
  if (v == null) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : String(v.intValue);
  }
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("arrayValue" in v) return (v.arrayValue.values ?? []).map((x: any) => anyValue(x, encoding));
  if ("kvlistValue" in v) return attributes(v.kvlistValue.values, encoding);
  if ("bytesValue" in v) return encoding === "json" ? Buffer.from(v.bytesValue, "base64") : Buffer.from(v.bytesValue);
  return undefined;
}

export function attributes(kvs: any[] | undefined, encoding: Encoding): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value, encoding);
  return out;
}

const scopeOf = (s: any): { name: string; version?: string } =>
  s?.version ? { name: s?.name ?? "", version: s.version } : { name: s?.name ?? "" };

/** An ExportTraceServiceRequest as a plain object (OTLP/JSON as parsed, or protobuf via toObject with longs as
 *  strings) → its spans, flat. */
export function flattenTraces(request: any, encoding: Encoding): FlatSpan[] {
  const out: FlatSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes, encoding);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const span: FlatSpan = {
          traceId: hex(s.traceId, encoding),
          spanId: hex(s.spanId, encoding),
          name: s.name,
          kind: s.kind ?? 0,
          startTimeUnixNano: int64(s.startTimeUnixNano) ?? "0",
          endTimeUnixNano: int64(s.endTimeUnixNano) ?? "0",
          attributes: attributes(s.attributes, encoding),
          links: (s.links ?? []).map((l: any) => ({
            traceId: hex(l.traceId, encoding),
            spanId: hex(l.spanId, encoding),
            attributes: attributes(l.attributes, encoding),
          })),
          status: s.status?.message ? { code: s.status.code ?? 0, message: s.status.message } : { code: s.status?.code ?? 0 },
          resource,
          scope: scopeOf(ss.scope),
        };
        const parent = hex(s.parentSpanId, encoding);
        if (parent) span.parentSpanId = parent;
        out.push(span);
      }
    }
  }
  return out;
}

function point(p: any, encoding: Encoding): FlatPoint {
  const out: FlatPoint = { attributes: attributes(p.attributes, encoding), timeUnixNano: int64(p.timeUnixNano) ?? "0" };
  if (p.startTimeUnixNano != null) out.startTimeUnixNano = int64(p.startTimeUnixNano);
  if (p.asDouble != null) out.value = Number(p.asDouble);
  if (p.asInt != null) out.value = int64(p.asInt);
  if (p.count != null) out.count = int64(p.count);
  if (p.sum != null) out.sum = Number(p.sum);
  if (p.min != null) out.min = Number(p.min);
  if (p.max != null) out.max = Number(p.max);
  if (p.bucketCounts) out.bucketCounts = p.bucketCounts.map((c: unknown) => String(c));
  if (p.explicitBounds) out.explicitBounds = p.explicitBounds.map(Number);
  return out;
}

/** An ExportMetricsServiceRequest as a plain object → its metrics, flat (minimal: names, types, data points). */
export function flattenMetrics(request: any, encoding: Encoding): FlatMetric[] {
  const out: FlatMetric[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = attributes(rm.resource?.attributes, encoding);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const type = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"].find((t) => m[t] != null) ?? "unknown";
        const data = m[type] ?? {};
        const metric: FlatMetric = {
          name: m.name,
          type,
          points: (data.dataPoints ?? []).map((p: any) => point(p, encoding)),
          resource,
          scope: scopeOf(sm.scope),
        };
        if (m.description) metric.description = m.description;
        if (m.unit) metric.unit = m.unit;
        if (data.isMonotonic != null) metric.monotonic = data.isMonotonic;
        if (data.aggregationTemporality != null) metric.temporality = data.aggregationTemporality;
        out.push(metric);
      }
    }
  }
  return out;
}

/** A protobuf-encoded request → the plain object form flattenTraces/flattenMetrics take. */
export function decodeProtobuf(type: MessageType, body: Uint8Array): any {
  return type.toObject(type.decode(body), { longs: String });
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const signal = req.url === "/v1/traces" ? "traces" : req.url === "/v1/metrics" ? "metrics" : null;
      if (req.method !== "POST" || !signal) {
        res.writeHead(404).end();
        return;
      }
      const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
      const encoding: Encoding | null =
        type === "application/x-protobuf" ? "protobuf" : type === "application/json" ? "json" : null;
      if (!encoding) {
        res.writeHead(415).end();
        return;
      }
      let body = Buffer.concat(chunks);
      try {
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        const decoded =
          encoding === "json"
            ? JSON.parse(body.toString("utf8"))
            : decodeProtobuf(signal === "traces" ? ExportTraceServiceRequest : ExportMetricsServiceRequest, body);
        requests.push({ signal, encoding, headers: req.headers, body, decoded });
      } catch (e) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(e));
        return;
      }
      // an empty Export*ServiceResponse: no bytes in protobuf, {} in JSON
      if (encoding === "json") res.writeHead(200, { "content-type": "application/json" }).end("{}");
      else res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans: () => requests.filter((r) => r.signal === "traces").flatMap((r) => flattenTraces(r.decoded, r.encoding)),
    metrics: () => requests.filter((r) => r.signal === "metrics").flatMap((r) => flattenMetrics(r.decoded, r.encoding)),
    close: () =>
      new Promise<void>((resolve) => {
        // keep-alive sockets from the exporters' agents would hold close() open
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
