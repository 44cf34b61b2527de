// What the benchmark scripts share: the repository root, the statistics they report, and the do-nothing driver
// (bench/shim/null_driver.c) that the shim and agent benchmarks build.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const include = `-I${path.join(root, "native/include")}`;

// The one median (agent/src/stats.ts, built by `npm install`), so a bench figure and the agent's agree.
export { median } from "../agent/dist/stats.js";

/** First and third quartile (nearest rank). */
export function quartiles(values) {
  const s = [...values].sort((a, b) => a - b);
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]];
}

/** Builds the do-nothing libcuda.so.1 (and its link-time name libcuda.so) in DIR; returns DIR. */
export function buildNullDriver(dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync("gcc", ["-std=gnu11", "-O2", "-fPIC", "-shared", include, "-Wl,-soname,libcuda.so.1", "-o",
    path.join(dir, "libcuda.so.1"), path.join(root, "bench/shim/null_driver.c")]);
  symlinkSync("libcuda.so.1", path.join(dir, "libcuda.so"));
  return dir;
}

/** Spans in an OTLP ExportTraceServiceRequest, counted by walking the protobuf wire format (resource_spans = 1 →
 *  scope_spans = 2 → spans = 2) without decoding them: a full decode in the benchmark's process would compete with the
 *  agent for the machine's cores (test/unit/spans.test.ts proves the payloads decode with the official decoders). With
 *  `errors`, also how many have status ERROR (span.status = 15 → code = 3, value 2), which walks each span's fields. */
export function countSpans(buf, { errors: countErrors = false } = {}) {
  const varint = (b, at) => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const byte = b[at.pos++];
      v += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return v;
      shift += 7;
    }
  };
  // calls f(fieldNumber, start, end) for each length-delimited field, g(fieldNumber, value) for each varint
  const fields = (b, start, end, f, g = () => {}) => {
    const at = { pos: start };
    while (at.pos < end) {
      const key = varint(b, at);
      const wire = key & 7;
      if (wire === 2) {
        const len = varint(b, at);
        f(key >>> 3, at.pos, at.pos + len);
        at.pos += len;
      } else if (wire === 0) g(key >>> 3, varint(b, at));
      else if (wire === 1) at.pos += 8;
      else if (wire === 5) at.pos += 4;
      else throw new Error(`unexpected wire type ${wire}`);
    }
  };
  let spans = 0;
  let errors = 0;
  fields(buf, 0, buf.length, (f, s, e) => {
    if (f === 1) fields(buf, s, e, (f2, s2, e2) => {
      if (f2 === 2) fields(buf, s2, e2, (f3, s3, e3) => {
        if (f3 !== 2) return;
        spans++;
        if (countErrors) fields(buf, s3, e3, (f4, s4, e4) => {
          if (f4 === 15) fields(buf, s4, e4, () => {}, (f5, v) => { if (f5 === 3 && v === 2) errors++; });
        });
      });
    });
  });
  return { spans, errors };
}

/**
 * Runs a timed C loop of the bench/shim/ kind (it prints JSON with `median_ns`) under `env`, and, with `session`, a
 * collector of that recording session (`env.TAILGUARD_SESSION` = session) draining `env.TAILGUARD_DIR` on its native
 * thread meanwhile (spawnSync blocks this one; records pile up in the collector's spool), then until 20 takes 10 ms
 * apart find nothing. Returns the loop's JSON and the records drained. `addon` is build/Release/tailguard.node.
 */
export function runTimedLoop(addon, loop, args, env, session, what) {
  let collector;
  if (session) {
    env = { ...env, TAILGUARD_SESSION: session };
    collector = new addon.Collector(env.TAILGUARD_DIR, { session });
  }
  const r = spawnSync(loop, args.map(String), { env, encoding: "utf8" });
  if (r.status !== 0) {
    collector?.close();
    throw new Error(`${what} failed: ${r.stderr}`);
  }
  let drained = 0;
  if (collector) {
    for (let idle = 0; idle < 20; ) {
      const n = collector.take(1 << 24).records;
      drained += n;
      if (n === 0) {
        idle++;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      } else idle = 0;
    }
    collector.close();
  }
  return { out: JSON.parse(r.stdout), drained };
}
