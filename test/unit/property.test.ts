// Property tests (fast-check) of the code that reads what others wrote: `tailguard report` on random and garbled
// recordings and interval logs, the record decoder and the request-window assembler on random 64-byte records, and
// the compact histograms against the dense ones. Each property runs TAILGUARD_FUZZ_RUNS times (default 100, a few
// seconds in all); ask for a long run with e.g. TAILGUARD_FUZZ_RUNS=100000 npx vitest run test/unit/property.test.ts. A
// failure prints fast-check's seed and shrunk counterexample: rerun with that seed to reproduce it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { build, initWebAssemblySync, type Histogram } from "hdr-histogram-js";
import { afterAll, describe, expect, it } from "vitest";

import { HIGHEST_NS, Histograms, percentileOfSorted } from "../../agent/src/telemetry/histograms.js";
import { PERCENTILES, type Hold, type ProcessMeta, type RequestWindow } from "../../agent/src/model.js";
import { Kind, RECORD_SIZE, decodeRecord } from "../../agent/src/ingest/record.js";
import { formatReport, formatSkipped, report, REPORT_LIMITS, type Report } from "../../agent/src/cli/report.js";
import { WindowAssembler } from "../../agent/src/ingest/windows.js";

function fuzzRuns(): number {
  const text = process.env.TAILGUARD_FUZZ_RUNS;
  if (text === undefined || text === "") return 100;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`TAILGUARD_FUZZ_RUNS must be a whole number of runs from 1, not "${text}"`);
  return n;
}

const RUNS = fuzzRuns();
/** Time for a property: generous per run, for a long run on a slow machine. */
const TIMEOUT = 30_000 + RUNS * 50;

const dir = mkdtempSync(path.join(tmpdir(), "tailguard-property-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

// ---- tailguard report ----------------------------------------------------------------------------------------------

/** A value of any JSON type, or one of the wrong type for a field the report reads. */
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined), fc.double(), fc.constant(-1), fc.string());

/** A recording line as tailguard writes them, each field sometimes of another type. */
const recordLine = fc.record(
  {
    kind: fc.oneof(fc.constantFrom("process", "window", "hold", "launch", "copy", "sync"), anyValue),
    op: fc.oneof(fc.constantFrom("attach", "detach", "begin", "end", "priority", "kernel", "exit"), anyValue),
    pid: fc.oneof(fc.integer({ min: 1, max: 40 }), anyValue),
    t: fc.oneof(fc.nat(), anyValue),
    dur: fc.oneof(fc.nat({ max: 4_000_000_000_000 }), fc.double({ min: 0, max: 1e13 }), anyValue),
    priority: fc.oneof(fc.integer({ min: -100, max: 100 }), anyValue),
    cmd: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), anyValue),
    gpu: fc.oneof(fc.record({ uuid: fc.oneof(fc.string(), anyValue), name: fc.string() }, { requiredKeys: [] }), anyValue),
  },
  { requiredKeys: [] },
);

/** A line of a garbled recording: a good one, one cut short, one of random text, one of any JSON. */
const garbledLine = fc.oneof(
  { weight: 6, arbitrary: recordLine.map((o) => JSON.stringify(o)) },
  {
    weight: 2,
    arbitrary: fc.tuple(recordLine, fc.nat()).map(([o, cut]) => {
      const s = JSON.stringify(o);
      return s.slice(0, cut % (s.length + 1));
    }),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? "") },
);

const HEADER = JSON.stringify({ kind: "recording", format: 1 });

/** What the CLI needs of a report: integers where it prints them, finite non-negative durations, strings. */
function expectReportSane(r: Report) {
  for (const s of r.series) {
    expect(Number.isSafeInteger(s.key.pid) && s.key.pid >= 0, `pid ${s.key.pid}`).toBe(true);
    expect(Number.isSafeInteger(s.key.priority), `priority ${s.key.priority}`).toBe(true);
    expect(typeof s.key.gpu).toBe("string");
    for (const v of [s.count, s.min, s.max, s.mean, ...Object.values(s.percentiles)])
      expect(Number.isFinite(v) && v >= 0, `${s.metric} ${JSON.stringify(s)}`).toBe(true);
    expect(s.min).toBeLessThanOrEqual(s.max);
    if (s.command !== undefined) expect(typeof s.command).toBe("string");
  }
  expect(r.skipped.first.length).toBeLessThanOrEqual(r.skipped.lines);
  // what the CLI does with it
  expect(Array.isArray(formatReport(r))).toBe(true);
  formatSkipped(r);
  JSON.stringify(r);
}

describe("tailguard report, on random and garbled input", () => {
  it("a garbled recording: a report of what could be read, the rest counted; never an exception", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(garbledLine, { maxLength: 40 }),
        fc.constantFrom("\n", "\r\n"),
        fc.constantFrom(REPORT_LIMITS.maxLine, 64),
        async (lines, eol, maxLine) => {
          const file = path.join(dir, `recording-${files++}.jsonl`);
          const text = [HEADER, ...lines].join(eol);
          writeFileSync(file, text);
          const r = await report(file, { ...REPORT_LIMITS, maxLine: Math.max(maxLine, HEADER.length) });
          expectReportSane(r);
          expect(r.skipped.lines).toBeLessThan(text.split("\n").length); // never the header
        },
      ),
      { numRuns: RUNS },
    );
  }, TIMEOUT);

  it("any file at all: a report, or the documented Error (not a recording or interval log), nothing else", async () => {
    const content = fc.oneof(
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.array(garbledLine, { maxLength: 10 }).map((l) => l.join("\n")),
      // an interval log's header with random lines after it
      fc
        .array(fc.oneof(fc.string({ maxLength: 60 }), fc.constant("Tag=x,0.000,1.000,2.000,HISTFAAAAnotbase64")), { maxLength: 6 })
        .map((l) => ["#[Histogram log format version 1.3]", "#[StartTime: 1.000 (seconds since epoch)]", ...l].join("\n")),
    );
    await fc.assert(
      fc.asyncProperty(content, async (text) => {
        const file = path.join(dir, `any-${files++}.txt`);
        writeFileSync(file, text);
        let r: Report;
        try {
          r = await report(file);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toBe(`${file} is not a tailguard recording (JSON lines from \`tailguard run --record\`, ` +
            'first line {"kind":"recording",...}) or an HdrHistogram interval log');
          return;
        }
        expectReportSane(r);
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT);
});

// ---- records and request windows ---------------------------------------------------------------------------------

/** 64 random bytes. */
const randomRecord = fc.uint8Array({ minLength: RECORD_SIZE, maxLength: RECORD_SIZE }).map((a) => Buffer.from(a));

/** A record of a kind the assembler reads (launch, hold, window), with random fields: random bytes alone would almost
 *  never be one. Times near one another, so that windows, holds and launches meet. */
const assemblerRecord = fc
  .tuple(
    fc.constantFrom(Kind.LAUNCH, Kind.HOLD, Kind.WINDOW, Kind.SYNC),
    fc.integer({ min: 0, max: 4 }),
    fc.bigInt({ min: 0n, max: 2_000_000n }),
    fc.nat({ max: 0xffffffff }),
    fc.nat({ max: 0xffff }),
    fc.uint8Array({ minLength: 24, maxLength: 24 }),
    fc.integer({ min: 0, max: 6 }),
  )
  .map(([kind, op, t, dur, flags, payload, seq]) => {
    const b = Buffer.alloc(RECORD_SIZE);
    b[8] = kind;
    b[9] = op;
    b.writeBigUInt64LE(1_000_000_000_000n + t, 16);
    b.writeUInt32LE(dur, 24);
    b.writeUInt16LE(flags, 28);
    Buffer.from(payload).copy(b, 40);
    if (kind === Kind.WINDOW) b.writeBigUInt64LE(BigInt(seq), 40); // windows of a few sequence numbers, to pair up
    return b;
  });

const meta: ProcessMeta = {
  pid: 42, ppid: 1, cmdline: ["fuzz"], priority: 0, gpu: null, anchorMonotonic: 0n, anchorRealtime: 0n, resource: {},
};

function expectHoldSane(h: Hold) {
  expect(Number.isSafeInteger(h.durNs) && h.durNs >= 0, `hold durNs ${h.durNs}`).toBe(true);
  expect(typeof h.t).toBe("bigint");
}

describe("records and request windows, on random records", () => {
  it("decodeRecord reads any 64 bytes, at any record offset, into finite fields", () => {
    fc.assert(
      fc.property(fc.array(randomRecord, { minLength: 1, maxLength: 4 }), fc.nat(), (records, pick) => {
        const batch = Buffer.concat(records);
        const i = pick % records.length;
        const r = decodeRecord(batch, i * RECORD_SIZE);
        for (const [field, v] of Object.entries(r)) {
          if (typeof v === "number") expect(Number.isFinite(v), field).toBe(true);
          else if (Array.isArray(v)) for (const x of v) expect(Number.isFinite(x), field).toBe(true);
          else if (v !== null) expect(typeof v, field).toBe("bigint");
        }
        expect(r.durNs === null || (Number.isSafeInteger(r.durNs) && r.durNs >= 0)).toBe(true);
        expect(r.kind).toBe(batch[i * RECORD_SIZE + 8]);
      }),
      { numRuns: RUNS },
    );
  });

  it("WindowAssembler takes any records in any batches: windows and holds with finite, non-negative durations", () => {
    const record = fc.oneof({ weight: 1, arbitrary: randomRecord }, { weight: 4, arbitrary: assemblerRecord });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(record, { maxLength: 30 }), fc.boolean()), { maxLength: 8 }),
        fc.integer({ min: 1, max: 300 }),
        (batches, launchLimit) => {
          const windows: RequestWindow[] = [];
          const holds: Hold[] = [];
          const apiTimes: number[] = [];
          const a = new WindowAssembler(meta, null, {
            window: (_, w) => windows.push(w),
            hold: (_, h) => holds.push(h),
            launchApiTime: (_, ns) => apiTimes.push(ns),
          }, new Map([[1, "k"]]), launchLimit);
          for (const [records, settle] of batches) {
            a.ingest(Buffer.concat(records));
            if (settle) a.settle();
          }
          a.settle(true);
          for (const h of holds) expectHoldSane(h);
          for (const ns of apiTimes) expect(Number.isSafeInteger(ns) && ns >= 0).toBe(true);
          for (const w of windows) {
            expect(Number.isSafeInteger(w.durNs) && w.durNs >= 0, `window durNs ${w.durNs}`).toBe(true);
            expect(Number.isSafeInteger(w.heldNs) && w.heldNs >= 0, `window heldNs ${w.heldNs}`).toBe(true);
            expect(Number.isFinite(w.seq) && w.seq >= 0, `window seq ${w.seq}`).toBe(true); // 64 bits: beyond 2^53 not exact
            expect(w.launches.length).toBeLessThanOrEqual(launchLimit);
            expect(w.launchesDropped).toBeGreaterThanOrEqual(0);
            for (const h of w.holds) expectHoldSane(h);
            for (const l of w.launches) {
              expect(typeof l.name).toBe("string");
              expect(l.apiNs === null || (Number.isSafeInteger(l.apiNs) && l.apiNs >= 0)).toBe(true);
            }
          }
          expect(a.buffered.launches).toBe(0); // all let go once the ring is closed
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ---- histograms ------------------------------------------------------------------------------------------------------

describe("compact histograms, against the dense ones", () => {
  initWebAssemblySync();
  const dense: Histogram = build({
    useWebAssembly: true,
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
  /** Durations as they come: mostly in range, spread over every magnitude; some out of it, or not numbers. */
  const duration = fc.oneof(
    { weight: 8, arbitrary: fc.double({ min: 0, max: Math.log(HIGHEST_NS), noNaN: true }).map((x) => Math.floor(Math.exp(x))) },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, HIGHEST_NS, HIGHEST_NS + 1, -5) },
  );

  it("percentileOfSorted is what the histogram says, for any values and percentile", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: HIGHEST_NS }), { minLength: 1, maxLength: 300 }),
        fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(...Object.values(PERCENTILES))),
        (values, p) => {
          dense.reset();
          for (const v of values) dense.recordValue(v);
          expect(percentileOfSorted([...values].sort((a, b) => a - b), p)).toBe(dense.getValueAtPercentile(p));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("a compact series' snapshot is a dense series' snapshot", () => {
    fc.assert(
      fc.property(fc.array(duration, { maxLength: 200 }), (values) => {
        const c = new Histograms({ compact: true });
        const d = new Histograms();
        try {
          for (const v of values) {
            c.record("request_latency", { pid: 1, priority: 0, gpu: "g" }, v);
            d.record("request_latency", { pid: 1, priority: 0, gpu: "g" }, v);
          }
          expect(c.snapshot()).toEqual(d.snapshot());
          expect(c.clamped).toBe(d.clamped);
        } finally {
          c.close();
          d.close();
        }
      }),
      { numRuns: Math.max(1, Math.floor(RUNS / 4)) }, // a dense Histograms costs 136 KiB to make and close
    );
  });
});
