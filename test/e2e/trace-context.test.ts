// GPU work inside the application's traces (docs/tracing.md): programs give the shim W3C trace contexts through
// tailguard.h's ABI (4 threads, a request each at a time) and through TRACEPARENT; the agent's OTLP output, decoded
// with the official protobuf definitions, must put every request span in its request's trace under the application's
// span. A process without a context is unchanged; bad traceparents are refused and record nothing; the header works
// without the shim.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { compileProgram, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { flattenTraces, startOtlpReceiver, type FlatSpan, type OtlpReceiver } from "../support/otlp-receiver.js";
import { recordRun } from "../support/tailguard.js";
import { sleep, until } from "../support/wait.js";

/** An agent of the ring directory `rings` (with `options` after --dir and --port) exporting OTLP to a receiver of
 *  the test's own; `env` are further OTEL_* variables. Both stop after `body`, whatever it did. */
async function withAgent(rings: string, options: string[],
  body: (a: { agent: Agent; receiver: OtlpReceiver }) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const receiver = await startOtlpReceiver();
  vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url);
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  const agent = await Agent.start(agentOptions(["--dir", rings, "--port", "0", ...options], process.env));
  try {
    await body({ agent, receiver });
  } finally {
    await agent.stop();
    await receiver.close();
  }
}

afterEach(() => {
  vi.unstubAllEnvs();
});

const THREADS = 4;
const REQUESTS = 10;
const hex = (n: bigint, digits: number) => n.toString(16).padStart(digits, "0");
/** What test/programs/trace_context.c gives request r of thread t: trace id → parent span id and sampled flag. */
function expected(): Map<string, { parent: string; sampled: boolean }> {
  const out = new Map<string, { parent: string; sampled: boolean }>();
  for (let t = 0n; t < BigInt(THREADS); t++)
    for (let r = 0n; r < BigInt(REQUESTS); r++)
      out.set(hex(0x7467000000000000n + t, 16) + hex(r + 1n, 16), {
        parent: hex(((t + 1n) << 32n) | (r + 1n), 16),
        sampled: !(t === 3n && r % 2n === 1n),
      });
  return out;
}

const ENV_TRACE = "0af7651916cd43dd8448eb211c80319c";
const ENV_PARENT = "b7ad6b7169203331";

/** flags and traceState of each span by span id, from the raw decoded requests (FlatSpan leaves them out). */
function rawSpans(receiver: OtlpReceiver): Map<string, { flags: number; traceState: string }> {
  const out = new Map<string, { flags: number; traceState: string }>();
  for (const req of receiver.requests)
    for (const rs of req.decoded.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? []) out.set(Buffer.from(s.spanId).toString("hex"), { flags: Number(s.flags ?? 0), traceState: s.traceState ?? "" });
  return out;
}

describe("trace context", () => {
  it("joins every request span of an ABI program (4 threads) and of a TRACEPARENT process to its trace; none else", async () => {
    const dir = testDir("tracectx");
    const rings = path.join(dir, "rings");
    const program = compileProgram("trace_context.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "1", "--batch-sample", "0"], async ({ agent, receiver }) => {
      const env = (extra: Record<string, string>) => simEnv(dir, { LD_PRELOAD: shimLib, ...extra });
      const [abi, traced, plain, bad] = await Promise.all([
        runProgram(program, ["threads", String(THREADS), String(REQUESTS)], { env: env({}) }),
        runProgram(program, ["plain", "6"], { env: env({ TRACEPARENT: `00-${ENV_TRACE}-${ENV_PARENT}-01`, TRACESTATE: "vendor=abc,other=x" }) }),
        runProgram(program, ["plain", "6"], { env: env({}) }),
        // a malformed TRACEPARENT: warned, then as if there were none
        runProgram(program, ["plain", "3"], { env: env({ TRACEPARENT: `00-${ENV_TRACE}-${ENV_PARENT}-1` }) }),
      ]);
      for (const r of [abi, traced, plain, bad]) expect(r.code, r.stderr).toBe(0);
      expect(bad.stderr).toContain(`TRACEPARENT="00-${ENV_TRACE}-${ENV_PARENT}-1" is not a W3C traceparent`);
      expect(traced.stderr).toBe("");
      await until("all drained", () => agent.stats().windows >= 15 && readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      await until("the spans", () => receiver.spans().some((s) => s.resource["process.pid"] === abi.pid), 5000);
      const spans = receiver.spans();
      const raw = rawSpans(receiver);
      const of = (pid: number | undefined) => spans.filter((s) => s.resource["process.pid"] === pid);
      const requests = (list: FlatSpan[]) => list.filter((s) => s.name.startsWith("request"));

      // the ABI program: every request span in an expected trace, under the app's span; every request there
      const want = expected();
      const abiRequests = requests(of(abi.pid));
      expect(abiRequests.length).toBeGreaterThanOrEqual(want.size);
      for (const s of abiRequests) {
        const w = want.get(s.traceId);
        expect(w, `request span in trace ${s.traceId}`).toBeDefined();
        expect(s.parentSpanId).toBe(w!.parent);
        expect(s.name).toBe("request infer");
        // W3C flags in the low byte, and "the parent is remote" (0x300)
        expect(raw.get(s.spanId)!.flags).toBe(0x300 | (w!.sampled ? 1 : 0));
      }
      expect(new Set(abiRequests.map((s) => s.traceId))).toEqual(new Set(want.keys()));
      // launch spans (--sample-rate 1) nest under the request span of their own request's trace
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const abiLaunches = of(abi.pid).filter((s) => s.name === "traced_kernel");
      expect(abiLaunches.length).toBe(2 * THREADS * REQUESTS);
      for (const l of abiLaunches) {
        const parent = byId.get(l.parentSpanId!)!;
        expect(parent.name).toBe("request infer");
        expect(l.traceId).toBe(parent.traceId);
      }
      // one span per request, made at its end whatever the windows did (several threads' requests shared windows)
      expect(abiRequests.length).toBe(want.size);
      for (const s of abiRequests) expect([s.attributes["tailguard.request.launches"], s.attributes["tailguard.request.syncs"]]).toEqual([2, 1]);

      // TRACEPARENT: all its request spans are children of that span, with TRACESTATE carried
      const envRequests = requests(of(traced.pid));
      expect(envRequests.length).toBeGreaterThan(0);
      for (const s of envRequests) {
        expect([s.traceId, s.parentSpanId, s.name]).toEqual([ENV_TRACE, ENV_PARENT, "request"]);
        expect(raw.get(s.spanId)).toEqual({ flags: 0x301, traceState: "vendor=abc,other=x" });
      }

      // no context, or a bad one: a trace of its own per window, no parent, as before
      for (const pid of [plain.pid, bad.pid]) {
        const own = requests(of(pid));
        expect(own.length).toBeGreaterThan(0);
        for (const s of own) {
          expect(s.name).toBe("request");
          expect(s.parentSpanId).toBeUndefined();
          expect(want.has(s.traceId) || s.traceId === ENV_TRACE).toBe(false);
          expect(raw.get(s.spanId)).toEqual({ flags: 0x101, traceState: "" });
        }
        expect(new Set(own.map((s) => s.traceId)).size).toBe(own.length);
      }
    }, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" });
  });

  it("keeps the windows an application samples even where the policy would not (a batch job)", async () => {
    const dir = testDir("tracectx-policy");
    const rings = path.join(dir, "rings");
    const program = compileProgram("trace_context.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "0", "--batch-sample", "0"], async ({ agent, receiver }) => {
      const env = simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" });
      const [abi, plain] = await Promise.all([
        runProgram(program, ["threads", String(THREADS), String(REQUESTS)], { env }),
        runProgram(program, ["plain", "4"], { env }),
      ]);
      expect(abi.code, abi.stderr).toBe(0);
      expect(plain.code, plain.stderr).toBe(0);
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      const spans = receiver.spans();
      const traced = spans.filter((s) => s.resource["process.pid"] === abi.pid && s.name === "request infer");
      const sampled = [...expected()].filter(([, w]) => w.sampled).map(([id]) => id);
      for (const id of sampled) expect(traced.some((s) => s.traceId === id), id).toBe(true);
      expect(traced.every((s) => s.attributes["tailguard.span.reason"] === "traced")).toBe(true);
      // the batch job without a context: no span (the policy's own decision)
      expect(spans.filter((s) => s.resource["process.pid"] === plain.pid)).toEqual([]);
    });
  });

  it("puts the holds that delayed a request under its joined span, linked to the request that caused them", async () => {
    const dir = testDir("tracectx-holds");
    const rings = path.join(dir, "rings");
    const program = compileProgram("trace_context.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "0", "--batch-sample", "0"], async ({ agent, receiver }) => {
      // a busy high-priority server (no context) in front of the traced requests of a low-priority process
      const high = runProgram(path.join(root, "native/build/tg-workload"), ["requests", "--rate", "200", "--count", "150", "--kernels", "2",
        "--kernel-us", "1500", "--name", "resnet_block"], { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" }) });
      await sleep(100);
      const low = await runProgram(program, ["threads", String(THREADS), String(REQUESTS)], { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" }) });
      const h = await high;
      expect(low.code, low.stderr).toBe(0);
      expect(h.code, h.stderr).toBe(0);
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      const spans = receiver.spans();
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const holds = spans.filter((s) => s.name === "hold" && s.resource["process.pid"] === low.pid && s.parentSpanId);
      expect(holds.length).toBeGreaterThan(0);
      const want = expected();
      for (const hold of holds) {
        // under the request span of its own request, in that request's trace
        const parent = byId.get(hold.parentSpanId!)!;
        expect(parent.name).toBe("request infer");
        expect(want.has(hold.traceId)).toBe(true);
        expect(hold.traceId).toBe(parent.traceId);
        // linked to the high-priority process's request span, which was exported
        expect(hold.links).toHaveLength(1);
        const cause = byId.get(hold.links[0].spanId);
        expect(cause?.resource["process.pid"]).toBe(h.pid);
        expect(cause?.traceId).toBe(hold.links[0].traceId);
      }
    });
  });

  it("links a hold to the request span of a cause whose window never ends, when it had one request open", async () => {
    const dir = testDir("tracectx-cause");
    const rings = path.join(dir, "rings");
    const program = compileProgram("trace_context.c", { cuda: true });
    const server = compileProgram("traced_streams.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "0", "--batch-sample", "0"], async ({ agent, receiver }) => {
      // a high-priority server, one request at a time, its window open throughout (an unsynced stream), in front of
      // three low-priority processes, each held from its first launch until the server is done
      const high = runProgram(server, ["1", "2", "open"], { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" }) });
      const lows = [];
      for (let i = 0; i < 3; i++) {
        await sleep(150);
        lows.push(runProgram(program, ["plain", "5"], { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" }) }));
      }
      const h = await high;
      expect(h.code, h.stderr).toBe(0);
      for (const low of await Promise.all(lows)) expect(low.code, low.stderr).toBe(0);
      const lowPids = new Set((await Promise.all(lows)).map((x) => x.pid));
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      const spans = receiver.spans();
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const holds = spans.filter((s) => s.name === "hold" && lowPids.has(s.resource["process.pid"] as number) && s.attributes["tailguard.hold.cause.pid"] === h.pid);
      expect(holds.length).toBeGreaterThan(0);
      // the server's request spans, and which of them were open at each hold's start (its clock and the held
      // process's agree to well under the margin left at their edges)
      const served = spans.filter((s) => s.resource["process.pid"] === h.pid && s.name === "request infer");
      expect(served.length).toBeGreaterThan(50);
      const MARGIN = 50_000n;
      let linked = 0;
      for (const hold of holds) {
        const t = BigInt(hold.startTimeUnixNano);
        const near = served.filter((s) => BigInt(s.startTimeUnixNano) - MARGIN <= t && BigInt(s.endTimeUnixNano) + MARGIN >= t);
        const open = near.filter((s) => BigInt(s.startTimeUnixNano) + MARGIN <= t && BigInt(s.endTimeUnixNano) - MARGIN >= t);
        expect(hold.links).toHaveLength(1);
        const cause = byId.get(hold.links[0].spanId);
        if (open.length === 1 && near.length === 1) {
          // the server's one request open then: its span, exported, in its trace
          expect(cause?.spanId, `link of a hold to ${hold.links[0].traceId}/${hold.links[0].spanId}`).toBe(open[0].spanId);
          expect(cause!.traceId).toBe(hold.links[0].traceId);
          linked++;
        } else if (near.length === 0) {
          // between requests (the unsynced stream keeps the server busy): its window, not a request
          expect(cause?.name).not.toBe("request infer");
        }
      }
      expect(linked).toBeGreaterThan(0);
    });
  });

  /** test/programs/nvtx_traced.c (2 threads, 5 requests each; `named`: one range a request) under an agent: its
   *  spans, by id too. */
  async function nvtxTraced(prefix: string, args: string[]) {
    const include = path.join(process.env.NVTX_INCLUDE ?? path.join(process.env.CUDA_HOME ?? "/usr/local/cuda", "include"));
    if (!existsSync(path.join(include, "nvtx3/nvToolsExt.h")))
      throw new Error(`NVTX v3's header is missing (no ${include}/nvtx3/nvToolsExt.h): install the CUDA toolkit's headers or set NVTX_INCLUDE`);
    const dir = testDir(prefix);
    const rings = path.join(dir, "rings");
    const program = compileProgram("nvtx_traced.c", { cuda: true, extra: [`-I${include}`] });
    let spans: FlatSpan[] = [];
    await withAgent(rings, ["--sample-rate", "1"], async ({ agent, receiver }) => {
      const env = simEnv(dir, { LD_PRELOAD: shimLib });
      delete env.NVTX_INJECTION64_PATH;
      const r = await runProgram(program, ["2", "5", ...args], { env });
      expect(r.code, r.stderr).toBe(0);
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      spans = receiver.spans().filter((s) => s.resource["process.pid"] === r.pid);
    });
    return { spans, byId: new Map(spans.map((s) => [s.spanId, s])) };
  }

  it("NVTX ranges named by a traceparent join their requests to the trace, with their ranges and launches inside", async () => {
    const { spans, byId } = await nvtxTraced("tracectx-nvtx", []);
    const want = expected();
    const requests = spans.filter((s) => s.name === "request");
    expect(new Set(requests.map((s) => s.traceId)).size).toBe(10);
    for (const s of requests) expect(s.parentSpanId).toBe(want.get(s.traceId)?.parent);
    // request → its traceparent range → "infer" → the launches, all in the request's trace
    const launches = spans.filter((s) => s.name === "nvtx_kernel");
    expect(launches).toHaveLength(20);
    for (const l of launches) {
      const infer = byId.get(l.parentSpanId!)!;
      const outer = byId.get(infer.parentSpanId!)!;
      const request = byId.get(outer.parentSpanId!)!;
      expect([infer.name, outer.name.slice(0, 3), request.name]).toEqual(["infer", "00-", "request"]);
      expect(outer.name.slice(3, 35)).toBe(l.traceId);
      for (const s of [infer, outer, request]) expect(s.traceId).toBe(l.traceId);
    }
  });

  it("one NVTX range \"NAME traceparent\" is both the range NAME and the request NAME of that trace", async () => {
    const { spans, byId } = await nvtxTraced("tracectx-nvtx-named", ["named"]);
    const want = expected();
    const requests = spans.filter((s) => s.name.startsWith("request"));
    expect(requests.map((s) => s.name)).toEqual(Array(10).fill("request infer"));
    expect(new Set(requests.map((s) => s.traceId)).size).toBe(10);
    for (const s of requests) expect(s.parentSpanId).toBe(want.get(s.traceId)?.parent);
    // request infer → the range "infer" (its traceparent cut off) → the launches, all in the request's trace
    const launches = spans.filter((s) => s.name === "nvtx_kernel");
    expect(launches).toHaveLength(20);
    for (const l of launches) {
      const range = byId.get(l.parentSpanId!)!;
      const request = byId.get(range.parentSpanId!)!;
      expect([range.name, request.name]).toEqual(["infer", "request infer"]);
      for (const s of [range, request]) expect(s.traceId).toBe(l.traceId);
    }
  });

  it("a forked child keeps the request its thread had open; an exec'd image reads its own TRACEPARENT", async () => {
    const dir = testDir("tracectx-fork");
    const rings = path.join(dir, "rings");
    const program = compileProgram("trace_context.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "0"], async ({ agent, receiver }) => {
      const r = await runProgram(program, ["fork"], { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
      expect(r.code, r.stderr).toBe(0);
      const child = Number(/child=(\d+)/.exec(r.stdout)![1]);
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      const requests = receiver.spans().filter((s) => s.name.startsWith("request"));
      const summary = (pid: number | undefined) =>
        [...new Set(requests.filter((s) => s.resource["process.pid"] === pid).map((s) => `${s.name} ${s.traceId.slice(-2)} ${s.parentSpanId}`))].sort();
      expect(summary(r.pid)).toEqual(["request parent aa 00000000000000a1"]);
      // the same pid: the forked image's request, then the exec'd image's, each in its own trace
      expect(summary(child)).toEqual(["request bb 00000000000000b1", "request parent aa 00000000000000a1"]);
    });
  });

  it("exports each request's span at its end while the process window never ends (a stream per thread), all at exit once", async () => {
    const dir = testDir("tracectx-streams");
    const rings = path.join(dir, "rings");
    const program = compileProgram("traced_streams.c", { cuda: true });
    await withAgent(rings, ["--sample-rate", "0"], async ({ agent, receiver }) => {
      // each request span when the test first saw it (ms since the epoch), by span id, read while the program runs
      const seen = new Map<string, { span: FlatSpan; at: number }>();
      let read = 0;
      const look = () => {
        for (; read < receiver.requests.length; read++) {
          const req = receiver.requests[read];
          if (req.signal !== "traces") continue;
          for (const s of flattenTraces(req.decoded, req.encoding))
            if (s.name.startsWith("request") && !seen.has(s.spanId)) seen.set(s.spanId, { span: s, at: Date.now() });
        }
      };
      const SECONDS = 4;
      let exited = 0;
      const run = runProgram(program, ["4", String(SECONDS)], { env: simEnv(dir, { LD_PRELOAD: shimLib }) }).then((r) => {
        exited = Date.now();
        return r;
      });
      while (!exited) {
        look();
        await sleep(50);
      }
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      look();
      const whileRunning = new Map(seen);
      await until("all drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      look();

      // what it served: request k of thread t, k < its count
      const want = new Map<string, string>();
      for (const m of r.stdout.matchAll(/thread (\d+) requests (\d+)/g))
        for (let k = 0n; k < BigInt(m[2]); k++)
          want.set(hex(0x7473000000000000n + BigInt(m[1]), 16) + hex(k + 1n, 16), hex(((BigInt(m[1]) + 1n) << 32n) | (k + 1n), 16));
      expect(want.size).toBeGreaterThan(100);
      const mine = [...seen.values()].filter((x) => x.span.resource["process.pid"] === r.pid);
      // at the end: every request exactly once, in its trace, under the application's span
      expect(mine.length).toBe(want.size);
      for (const { span } of mine) {
        expect(want.get(span.traceId), span.traceId).toBe(span.parentSpanId);
        expect(span.name).toBe("request infer");
        expect([span.attributes["tailguard.request.launches"], span.attributes["tailguard.request.syncs"]]).toEqual([2, 1]);
        expect(span.attributes["tailguard.request.open"]).toBeUndefined();
      }
      // while it ran: each request that ended 2 s or more before the program did was exported by then, and every
      // span seen then within 2 s of its request's end
      const endMs = (s: FlatSpan) => Number(BigInt(s.endTimeUnixNano) / 1_000_000n);
      const early = mine.filter((x) => endMs(x.span) < exited - 2000);
      expect(early.length).toBeGreaterThan(want.size / 4);
      for (const x of early) expect(whileRunning.has(x.span.spanId), `request ${x.span.traceId} ended ${exited - endMs(x.span)} ms before exit`).toBe(true);
      const late = [...whileRunning.values()].filter((x) => x.span.resource["process.pid"] === r.pid).map((x) => x.at - endMs(x.span));
      expect(Math.max(...late), `ms from a request's end to its span, while running: ${late.sort((x, y) => x - y).filter((_, i, a) => i % Math.ceil(a.length / 10) === 0 || i === a.length - 1)}`).toBeLessThan(2000);
    });
  });

  it("refuses bad traceparents with no record and no crash, and the header works as C++ and without the shim", async () => {
    const dir = testDir("tracectx-abi");
    const program = compileProgram("trace_context.c", { cuda: true });
    const rec = await recordRun(dir, [program, "abi"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toContain("abi ok");
    // only the calls that succeeded were recorded: 1 + 8 begins, as many ends, 3 process contexts, and the request a
    // thread left open when it exited, ended by the shim then
    const ops = rec.of("context").map((l) => l.op);
    expect(ops.filter((o) => o === "request_begin")).toHaveLength(10);
    expect(ops.filter((o) => o === "request_end")).toHaveLength(10);
    expect(ops.filter((o) => o === "process")).toHaveLength(3);
    expect(ops).toHaveLength(23);
    expect(rec.of("context").filter((l) => l.name === "left open").map((l) => l.op)).toEqual(["request_begin", "request_end"]);
    expect(rec.of("context")[0]).toMatchObject({ op: "request_begin", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", parent_span_id: "00f067aa0ba902b7", sampled: true });
    expect(rec.of("context").filter((l) => l.name === "nested")).toHaveLength(16);
    expect(rec.of("context").filter((l) => l.op === "process").at(-1)).toMatchObject({ trace_id: "", sampled: false });

    const absent = await runProgram(program, ["absent"], { env: simEnv(dir) });
    expect(absent.code, absent.stderr).toBe(0);
    expect(absent.stdout).toContain("absent ok");

    // C++ (pedantic), with the dlsym wrappers
    const cc = path.join(dir, "abi.cc");
    const src = `#include "tailguard/tailguard.h"\nint main() { return tailguard_begin(nullptr, "x") + tailguard_end() + tailguard_process_context("") + tailguard_present(); }\n`;
    execFileSync("sh", ["-c", `printf '%s' "$SRC" > ${cc} && g++ -std=c++11 -Wall -Wextra -Werror -pedantic -I${path.join(root, "native/include")} -o ${cc}.bin ${cc} -ldl`], { env: { ...process.env, SRC: src } });
    const none = await runProgram(`${cc}.bin`, []);
    expect(none.code).toBe((3 * -10000) & 0xff); // three TAILGUARD_ABSENT, present 0: the exit status's low byte
  });
});
