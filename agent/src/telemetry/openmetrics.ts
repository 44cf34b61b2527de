// The OpenMetrics 1.0 text exposition of the agent's metrics (what /metrics answers a scraper that asks for
// `application/openmetrics-text`): the same collection, names and label values as the Prometheus 0.0.4 text, which
// PrometheusSerializer writes, plus what only OpenMetrics can say: units, counters as families without `_total`, `# EOF`,
// and the exemplars of the histograms' buckets (exemplars.ts). metrics.ts passes each metric's definition from METRICS.
import type { Attributes } from "@opentelemetry/api";
import { DataPointType, type DataPoint, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";

import type { BucketExemplar } from "./exemplars.js";

export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the exposition needs of a metric's definition (metrics.ts, METRICS). */
export interface ExposedMetric {
  /** the sample name Prometheus shows (counters end in `_total`) */
  prometheus: string;
  type: "histogram" | "counter" | "gauge";
  unit: string;
}

/** OpenMetrics units for the UCUM units that Prometheus names carry as suffixes (prometheusName, metrics.ts). */
const UNITS: Record<string, string> = { s: "seconds", By: "bytes" };

/**
 * Whether a scraper's Accept header prefers OpenMetrics to the Prometheus text: `application/openmetrics-text` with a
 * quality above 0 and not below that of `text/plain` (Prometheus asks for OpenMetrics first, at q=1, then 0.0.4 at 0.5;
 * a browser or curl asks for neither, and gets the text as before).
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  let om = 0;
  let text = 0;
  for (const part of accept.split(",")) {
    const [type, ...params] = part.split(";").map((x) => x.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === "application/openmetrics-text") om = Math.max(om, q);
    else if (type === "text/plain") text = Math.max(text, q);
  }
  return om > 0 && om >= text;
}

/** Label names as PrometheusSerializer writes them: characters outside [a-zA-Z0-9_] as `_`, runs of `_` as one. */
function labelName(key: string): string {
  return key.replace(/[^a-z0-9_]/gi, "_").replace(/_{2,}/g, "_");
}

/** Label values and HELP text: backslash, newline and double quote escaped (OpenMetrics' escaped-string). */
function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** A label value as PrometheusSerializer writes it: strings as they are, anything else as JSON. */
function labelValue(v: unknown): string {
  return escape(typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v));
}

function labels(attrs: Attributes, extra?: [string, string]): string {
  const parts = Object.entries(attrs).map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escape(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** Numbers as PrometheusSerializer writes them (JavaScript's shortest form; OpenMetrics reads exponents too). */
function num(v: number): string {
  return v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v);
}

/** Unix epoch ns → OpenMetrics timestamp (seconds, ms resolution as Prometheus stores them). */
function seconds(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = String(ms % 1000n).padStart(3, "0");
  return `${ms / 1000n}.${frac}`;
}

function exemplarText(e: BucketExemplar): string {
  return ` # {trace_id="${e.traceId}",span_id="${e.spanId}"} ${num(e.value)} ${seconds(e.timeNs)}`;
}

/**
 * The collection as OpenMetrics text. `definition` gives each metric's definition by its OTel name (a metric it does
 * not know is left out). Resource attributes become `target_info` (an info metric), as in the Prometheus text.
 */
export function serializeOpenMetrics(rm: ResourceMetrics, definition: (otelName: string) => ExposedMetric | undefined): string {
  let out = "# TYPE target info\n# HELP target Target metadata\n";
  out += `target_info${labels(rm.resource.attributes)} 1\n`;
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      const d = definition(m.descriptor.name);
      if (d) out += family(m, d);
    }
  }
  return out + "# EOF\n";
}

function family(m: MetricData, d: ExposedMetric): string {
  const name = d.type === "counter" ? d.prometheus.replace(/_total$/, "") : d.prometheus;
  let out = `# TYPE ${name} ${d.type}\n`;
  const unit = UNITS[d.unit];
  // OpenMetrics: a family's unit must be the suffix of its name; `{…}` units (counts of things) have none
  if (unit && name.endsWith(`_${unit}`)) out += `# UNIT ${name} ${unit}\n`;
  out += `# HELP ${name} ${escape(m.descriptor.description)}\n`;
  if (m.dataPointType === DataPointType.HISTOGRAM) {
    for (const p of m.dataPoints as (DataPoint<{ buckets: { boundaries: number[]; counts: number[] }; count: number; sum?: number }> & { exemplars?: BucketExemplar[] })[]) {
      const h = p.value;
      const byBucket = new Map((p.exemplars ?? []).map((e) => [e.bucket, e]));
      let cumulative = 0;
      h.buckets.counts.forEach((c, i) => {
        cumulative += c;
        const le = i < h.buckets.boundaries.length ? num(h.buckets.boundaries[i]) : "+Inf";
        const e = byBucket.get(i);
        out += `${name}_bucket${labels(p.attributes, ["le", le])} ${cumulative}${e ? exemplarText(e) : ""}\n`;
      });
      out += `${name}_count${labels(p.attributes)} ${h.count}\n`;
      if (h.sum !== undefined) out += `${name}_sum${labels(p.attributes)} ${num(h.sum)}\n`;
    }
  } else {
    const suffix = d.type === "counter" ? "_total" : "";
    for (const p of m.dataPoints as DataPoint<number>[]) out += `${name}${suffix}${labels(p.attributes)} ${num(p.value)}\n`;
  }
  return out;
}
