// OTLP trace protobuf written straight from the agent's spans (opentelemetry/proto trace/v1, resource/v1, common/v1),
// without ReadableSpan objects or the SDK's intermediate request objects: at 50,000 spans/s those objects, queued for
// export, are most of what the agent allocates and what its heap grows with. spans.ts decides what the spans are;
// this file only writes them down. test/unit/spans.test.ts decodes the output with the official generated decoders and
// proves it equals what the SDK's own serializer makes of the same spans.
import type { Attributes, AttributeValue, Link, SpanContext, SpanStatus } from "@opentelemetry/api";

/** Wire types */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** OTLP span flags: the W3C trace flags in the low byte, and "whether the parent is remote is known" (0x100), as the
 *  SDK's serializer sets them for spans whose parent is local or absent. */
const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
/** ... and "the parent is remote" (0x200): a request span joined to an application's trace (docs/tracing.md) */
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
const SPAN_KIND_INTERNAL = 1;

/** Protobuf writer over one growing buffer. Nested messages are written in place: one byte is reserved for their
 *  length and the body is moved up if the length needs more. */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written so far (a view: valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** A non-negative integer below 2^53. */
  varint(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** int64 as protobuf writes it: negative numbers as their 64-bit two's complement (ten bytes). */
  int64(v: number): void {
    if (v >= 0) return this.varint(v);
    let u = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  string(field: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.tag(field, LEN);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  /** bytes given as hex (trace and span ids) */
  hex(field: number, hex: string): void {
    const n = hex.length >>> 1;
    this.tag(field, LEN);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(hex, this.pos, "hex");
  }

  /** appends bytes that are already protobuf (whole fields) */
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  fixed64(field: number, v: bigint): void {
    this.tag(field, I64);
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64LE(v, this.pos);
  }

  fixed32(field: number, v: number): void {
    this.tag(field, I32);
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos);
  }

  double(field: number, v: number): void {
    this.tag(field, I64);
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }

  /** Starts a length-delimited sub-message; returns what end() needs. */
  begin(field: number): number {
    this.tag(field, LEN);
    this.ensure(1);
    return this.pos++;
  }

  end(at: number): void {
    const len = this.pos - at - 1;
    let n = 1;
    for (let v = len; v >= 0x80; v = Math.floor(v / 0x80)) n++;
    if (n > 1) {
      this.ensure(n - 1);
      this.buf.copyWithin(at + n, at + 1, this.pos);
      this.pos += n - 1;
    }
    let v = len;
    for (let i = 0; i < n - 1; i++) {
      this.buf[at + i] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[at + n - 1] = v;
  }
}

/** common.v1.AnyValue, as the SDK maps attribute values: integers to int_value, other numbers to double_value. */
function anyValue(w: ProtoWriter, field: number, v: AttributeValue): void {
  const at = w.begin(field);
  if (typeof v === "string") w.string(1, v);
  else if (typeof v === "boolean") {
    w.tag(2, VARINT);
    w.varint(v ? 1 : 0);
  } else if (typeof v === "number") {
    if (Number.isInteger(v)) {
      w.tag(3, VARINT);
      w.int64(v);
    } else w.double(4, v);
  } else if (Array.isArray(v)) {
    const arr = w.begin(5);
    for (const x of v) if (x !== null && x !== undefined) anyValue(w, 1, x as AttributeValue);
    w.end(arr);
  }
  w.end(at);
}

/** repeated common.v1.KeyValue `field` */
export function attributes(w: ProtoWriter, field: number, attrs: Attributes): void {
  for (const key in attrs) {
    const v = attrs[key];
    if (v === undefined || v === null) continue;
    const at = w.begin(field);
    w.string(1, key);
    anyValue(w, 2, v);
    w.end(at);
  }
}

/** One trace.v1.Span as field `field` (2 of ScopeSpans). */
export function span(
  w: ProtoWriter,
  field: number,
  name: string,
  ctx: SpanContext,
  parent: SpanContext | undefined,
  startNs: bigint,
  endNs: bigint,
  attrs: Attributes,
  links: Link[],
  status?: SpanStatus,
): void {
  const at = w.begin(field);
  w.hex(1, ctx.traceId);
  w.hex(2, ctx.spanId);
  const traceState = ctx.traceState?.serialize();
  if (traceState) w.string(3, traceState);
  if (parent) w.hex(4, parent.spanId);
  w.string(5, name);
  w.tag(6, VARINT);
  w.varint(SPAN_KIND_INTERNAL);
  w.fixed64(7, startNs);
  w.fixed64(8, endNs);
  attributes(w, 9, attrs);
  for (const l of links) {
    const link = w.begin(13);
    w.hex(1, l.context.traceId);
    w.hex(2, l.context.spanId);
    if (l.attributes) attributes(w, 4, l.attributes);
    w.fixed32(6, (l.context.traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE);
    w.end(link);
  }
  // trace.v1.Status: message (2), code (3); unset is an empty message, as the SDK writes it
  const st = w.begin(15);
  if (status?.message) w.string(2, status.message);
  if (status?.code) {
    w.tag(3, VARINT);
    w.varint(status.code);
  }
  w.end(st);
  w.fixed32(16, (ctx.traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (parent?.isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0));
  w.end(at);
}

/** resource.v1.Resource as field 1 of ResourceSpans, on its own (written once per process and reused). */
export function resourceBytes(attrs: Attributes): Buffer {
  const w = new ProtoWriter(1024);
  const at = w.begin(1);
  attributes(w, 1, attrs);
  w.end(at);
  return Buffer.from(w.view());
}

/** common.v1.InstrumentationScope as field 1 of ScopeSpans. */
export function scopeBytes(name: string, version: string): Buffer {
  const w = new ProtoWriter(256);
  const at = w.begin(1);
  w.string(1, name);
  w.string(2, version);
  w.end(at);
  return Buffer.from(w.view());
}

/** Spans of one resource, already written as ScopeSpans.spans fields. */
export interface EncodedSpans {
  resource: Buffer;
  spans: Buffer[];
}

/** collector.trace.v1.ExportTraceServiceRequest: one ResourceSpans per resource, one ScopeSpans (`scope`) in each. */
export function exportRequest(groups: Iterable<EncodedSpans>, scope: Buffer, w = new ProtoWriter()): Uint8Array {
  w.reset();
  for (const g of groups) {
    const rs = w.begin(1);
    w.raw(g.resource);
    const ss = w.begin(2);
    w.raw(scope);
    for (const s of g.spans) w.raw(s);
    w.end(ss);
    w.end(rs);
  }
  return Buffer.from(w.view());
}

