// OTLP metric push with the histograms' exemplars (exemplars.ts). The official serializers of @opentelemetry/otlp-transformer
// write no exemplars (the SDK's data points have none), so the protobuf request is written here (opentelemetry/proto
// metrics/v1, with otlp-proto.ts' writer), and the JSON one is the official serializer's with the exemplars added;
// the official exporters' transport (endpoint, headers, TLS, compression, retries) sends them. test/unit/exemplars.test.ts
// decodes both with the official protobuf definitions and proves them equal to the official serializers' output but for
// the exemplars.
import { ValueType, type HrTime } from "@opentelemetry/api";
import { OTLPMetricExporterBase, type OTLPMetricExporterOptions } from "@opentelemetry/exporter-metrics-otlp-http";
import type { OTLPExporterNodeConfigBase } from "@opentelemetry/otlp-exporter-base";
import { createOtlpHttpExportDelegate, convertLegacyHttpOptions } from "@opentelemetry/otlp-exporter-base/node-http";
import { JsonMetricsSerializer, MetricsExporterMetricsHelper, ProtobufMetricsSerializer, type ISerializer } from "@opentelemetry/otlp-transformer";
import { AggregationTemporality, DataPointType, type DataPoint, type Histogram, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";

import type { BucketExemplar } from "./exemplars.js";
import { attributes, ProtoWriter } from "./otlp-proto.js";

type Serializer = ISerializer<ResourceMetrics, unknown>;
type PointWithExemplars = DataPoint<Histogram> & { exemplars?: BucketExemplar[] };

const VARINT = 0;

function ns(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

/** metrics.v1.Exemplar as field `field`: time, value, span id, trace id. */
function exemplar(w: ProtoWriter, field: number, e: BucketExemplar): void {
  const at = w.begin(field);
  w.fixed64(2, e.timeNs);
  w.double(3, e.value);
  w.hex(4, e.spanId);
  w.hex(5, e.traceId);
  w.end(at);
}

/** A packed repeated fixed64 or double field. */
function packed(w: ProtoWriter, field: number, values: readonly number[], kind: "fixed64" | "double"): void {
  if (values.length === 0) return;
  const b = Buffer.allocUnsafe(values.length * 8);
  values.forEach((v, i) => (kind === "double" ? b.writeDoubleLE(v, i * 8) : b.writeBigUInt64LE(BigInt(v), i * 8)));
  w.bytes(field, b);
}

function temporality(t: AggregationTemporality): number {
  return t === AggregationTemporality.DELTA ? 1 : t === AggregationTemporality.CUMULATIVE ? 2 : 0;
}

function numberPoint(w: ProtoWriter, p: DataPoint<number>, valueType: ValueType | undefined): void {
  const at = w.begin(1);
  w.fixed64(2, ns(p.startTime));
  w.fixed64(3, ns(p.endTime));
  if (valueType === ValueType.INT) w.fixed64(6, BigInt.asUintN(64, BigInt(Math.trunc(p.value)))); // sfixed64
  else w.double(4, p.value);
  attributes(w, 7, p.attributes);
  w.end(at);
}

function histogramPoint(w: ProtoWriter, p: PointWithExemplars): void {
  const h = p.value;
  const at = w.begin(1);
  w.fixed64(2, ns(p.startTime));
  w.fixed64(3, ns(p.endTime));
  w.fixed64(4, BigInt(h.count));
  if (h.sum !== undefined) w.double(5, h.sum);
  packed(w, 6, h.buckets.counts, "fixed64");
  packed(w, 7, h.buckets.boundaries, "double");
  for (const e of p.exemplars ?? []) exemplar(w, 8, e);
  attributes(w, 9, p.attributes);
  if (h.min !== undefined) w.double(11, h.min);
  if (h.max !== undefined) w.double(12, h.max);
  w.end(at);
}

function metric(w: ProtoWriter, m: MetricData): void {
  const at = w.begin(2);
  w.string(1, m.descriptor.name);
  if (m.descriptor.description) w.string(2, m.descriptor.description);
  if (m.descriptor.unit) w.string(3, m.descriptor.unit);
  const t = temporality(m.aggregationTemporality);
  if (m.dataPointType === DataPointType.GAUGE) {
    const g = w.begin(5);
    for (const p of m.dataPoints) numberPoint(w, p, m.descriptor.valueType);
    w.end(g);
  } else if (m.dataPointType === DataPointType.SUM) {
    const s = w.begin(7);
    for (const p of m.dataPoints) numberPoint(w, p, m.descriptor.valueType);
    if (t) (w.tag(2, VARINT), w.varint(t));
    if (m.isMonotonic) (w.tag(3, VARINT), w.varint(1));
    w.end(s);
  } else if (m.dataPointType === DataPointType.HISTOGRAM) {
    const h = w.begin(9);
    for (const p of m.dataPoints) histogramPoint(w, p);
    if (t) (w.tag(2, VARINT), w.varint(t));
    w.end(h);
  }
  // exponential histograms: the agent makes none
  w.end(at);
}

/** collector.metrics.v1.ExportMetricsServiceRequest of one ResourceMetrics, with exemplars. */
export function metricsRequest(rm: ResourceMetrics): Uint8Array {
  const w = new ProtoWriter(64 * 1024);
  const r = w.begin(1);
  const res = w.begin(1);
  attributes(w, 1, rm.resource.attributes);
  w.tag(2, VARINT); // dropped_attributes_count, 0, as the official serializer writes it
  w.varint(0);
  w.end(res);
  for (const sm of rm.scopeMetrics) {
    const s = w.begin(2);
    const scope = w.begin(1);
    w.string(1, sm.scope.name);
    if (sm.scope.version) w.string(2, sm.scope.version);
    w.end(scope);
    for (const m of sm.metrics) metric(w, m);
    if (sm.scope.schemaUrl) w.string(3, sm.scope.schemaUrl);
    w.end(s);
  }
  if (rm.resource.schemaUrl) w.string(3, rm.resource.schemaUrl);
  w.end(r);
  return Buffer.from(w.view());
}

/** The protobuf serializer: metricsRequest, and the official response decoder. */
export const ProtobufExemplarSerializer: Serializer = {
  serializeRequest: metricsRequest,
  deserializeResponse: (data) => ProtobufMetricsSerializer.deserializeResponse(data),
};

/** The JSON serializer: the official request, with each histogram data point's exemplars added (OTLP/JSON: ids in
 *  hex, times as decimal strings). */
export const JsonExemplarSerializer: Serializer = {
  serializeRequest(rm) {
    const official = JsonMetricsSerializer.serializeRequest(rm);
    if (!official) return official;
    const request = JSON.parse(Buffer.from(official).toString("utf8"));
    rm.scopeMetrics.forEach((sm, i) =>
      sm.metrics.forEach((m, j) => {
        if (m.dataPointType !== DataPointType.HISTOGRAM) return;
        const points = request.resourceMetrics[0].scopeMetrics[i].metrics[j].histogram.dataPoints;
        (m.dataPoints as PointWithExemplars[]).forEach((p, k) => {
          if (!p.exemplars?.length) return;
          points[k].exemplars = p.exemplars.map((e) => ({
            timeUnixNano: String(e.timeNs),
            asDouble: e.value,
            spanId: e.spanId,
            traceId: e.traceId,
          }));
        });
      }),
    );
    return new TextEncoder().encode(JSON.stringify(request));
  },
  deserializeResponse: (data) => JsonMetricsSerializer.deserializeResponse(data),
};

/** OTLP/HTTP metric export (http/protobuf or http/json) of the agent's metrics with their exemplars: the official
 *  exporter (its temporality and aggregation selection, its transport), given the serializers above. */
export class OtlpExemplarMetricExporter extends OTLPMetricExporterBase {
  constructor(config: OTLPExporterNodeConfigBase & OTLPMetricExporterOptions, protocol: "http/protobuf" | "http/json") {
    const json = protocol === "http/json";
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, "METRICS", "v1/metrics", { "Content-Type": json ? "application/json" : "application/x-protobuf" }),
        json ? JsonExemplarSerializer : ProtobufExemplarSerializer,
        "otlp_http_metric_exporter",
        MetricsExporterMetricsHelper,
        undefined,
      ),
      config,
    );
  }
}
