// NVTX ranges end to end: a program built against the CUDA toolkit's header-only NVTX v3, run on the simulated GPU
// with the shim preloaded and nothing else (NVTX finds the shim through the NVTX_INJECTION64_PATH the shim sets), the
// agent draining it, and its OTLP spans decoded with the official protobuf definitions: range spans named by their
// messages, nested as pushed, with the launches made inside them as their children. Also: a user's own NVTX tool is
// left in place, and unbalanced pops and garbage handles crash nothing.
import { existsSync, readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { compileProgram, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { startOtlpReceiver, type FlatSpan } from "../support/otlp-receiver.js";
import { recordRun } from "../support/tailguard.js";
import { until } from "../support/wait.js";

/** The directory holding nvtx3/nvToolsExt.h: NVTX_INCLUDE, else the CUDA toolkit's; a clear error when it is missing. */
function nvtxInclude(): string {
  const dir = process.env.NVTX_INCLUDE ?? path.join(process.env.CUDA_HOME ?? "/usr/local/cuda", "include");
  const header = path.join(dir, "nvtx3/nvToolsExt.h");
  if (!existsSync(header))
    throw new Error(`NVTX v3's header is missing (no ${header}), which this test needs: install the CUDA toolkit (its ` +
      "headers are enough), or set NVTX_INCLUDE to a directory holding nvtx3/ (github.com/NVIDIA/NVTX, c/include)");
  return dir;
}

function program(): string {
  return compileProgram("nvtx_ranges.c", { cuda: true, extra: [`-I${nvtxInclude()}`] });
}

/** The environment of a program with the shim preloaded and no NVTX_INJECTION64_PATH of its own. */
function shimOnly(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = simEnv(dir, { LD_PRELOAD: shimLib, ...extra });
  if (!("NVTX_INJECTION64_PATH" in extra)) delete env.NVTX_INJECTION64_PATH;
  return env;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("NVTX ranges", () => {
  it("become spans named by their messages, nested as pushed, with the launches inside them as children", async () => {
    const exe = program();
    const dir = testDir("nvtx");
    const rings = path.join(dir, "rings");
    const receiver = await startOtlpReceiver();
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url);
    vi.stubEnv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    const agent = await Agent.start(agentOptions(["--dir", rings, "--port", "0", "--spans", "all", "--sample-rate", "1"], process.env));
    try {
      const run = await runProgram(exe, ["spans"], { env: shimOnly(dir) });
      expect(run.code, run.stderr).toBe(0);
      // NVTX found the shim through the variable the shim set for the process
      expect(run.stdout).toContain(`NVTX_INJECTION64_PATH=${realpathSync(shimLib)}\n`);
      await until("the windows", () => agent.stats().windows >= 3 && readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      await until("the spans", () => receiver.spans().some((s) => s.name === "cross-thread"), 5000);
    } finally {
      await agent.stop();
      await receiver.close();
    }
    const spans = receiver.spans().filter((s) => s.resource["process.pid"] !== undefined);
    const byName = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect(found, `spans named ${name}: ${spans.map((s) => s.name).join(", ")}`).toHaveLength(1);
      return found[0];
    };
    const windows = spans.filter((s) => s.name === "request");
    expect(windows).toHaveLength(3);
    const isWindow = (s: FlatSpan) => windows.some((w) => w.spanId === s.parentSpanId && w.traceId === s.traceId);

    const serve = byName("serve");
    const preprocess = byName("preprocess");
    const inference = byName("推理 inference"); // Unicode, as UTF-8
    const conv = byName("layer.conv1"); // a registered string, in a domain
    const checkpoint = byName("checkpoint"); // a mark
    const cross = byName("cross-thread"); // started on one thread, ended on another
    expect(isWindow(serve)).toBe(true);
    expect(preprocess.parentSpanId).toBe(serve.spanId);
    expect(inference.parentSpanId).toBe(serve.spanId);
    expect(isWindow(conv)).toBe(true);
    expect(conv.attributes).toMatchObject({ "nvtx.domain": "tailguard-test", "nvtx.category": 3, "tailguard.nvtx.op": "push" });
    expect(checkpoint.parentSpanId).toBe(conv.spanId);
    expect(BigInt(checkpoint.endTimeUnixNano)).toBe(BigInt(checkpoint.startTimeUnixNano));
    expect(isWindow(cross)).toBe(true);
    expect(cross.attributes["tailguard.nvtx.op"]).toBe("start");
    for (const s of [serve, preprocess, inference, cross]) expect(s.attributes["nvtx.domain"], s.name).toBeUndefined();
    // children inside their parents
    for (const [child, parent] of [[preprocess, serve], [inference, serve]]) {
      expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(parent.startTimeUnixNano));
      expect(BigInt(child.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(parent.endTimeUnixNano));
    }

    // each launch (grid.x is its tag in the program) is a child of the innermost range it was made in
    const launches = spans.filter((s) => s.name === "nvtx_kernel");
    expect(launches).toHaveLength(7);
    const parentOf = (tag: number) => launches.find((l) => (l.attributes["tailguard.launch.grid"] as number[])[0] === tag)!.parentSpanId;
    expect(parentOf(1)).toBe(preprocess.spanId);
    expect(parentOf(2)).toBe(inference.spanId);
    expect(parentOf(3)).toBe(inference.spanId);
    expect(parentOf(4)).toBe(conv.spanId);
    expect(parentOf(5)).toBe(conv.spanId);
    expect(parentOf(6)).toBe(cross.spanId);
    expect(parentOf(7)).toBe(cross.spanId); // launched by the thread that ended it
  });

  it("records range records in `tailguard run --record`, and nothing for a program that opens none", async () => {
    const exe = program();
    const dir = testDir("nvtx-record");
    const rec = await recordRun(dir, [exe, "spans"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    const ranges = rec.of("range");
    expect(ranges.map((r) => `${r.op}:${r.message ?? ""}`)).toEqual([
      "push:serve", "push:preprocess", "pop:", "push:推理 inference", "pop:", "pop:",
      "push:layer.conv1", "mark:checkpoint", "pop:", "start:cross-thread", "end:",
    ]);
    expect(ranges.map((r) => r.depth ?? null)).toEqual([1, 2, 2, 2, 2, 1, 1, null, 1, null, null]);
    const [start, end] = ranges.slice(-2);
    expect(end.id).toBe(start.id);
    expect(end.tid).not.toBe(start.tid);
    // a CUDA program without NVTX: no range records
    const plain = await recordRun(dir, [compileProgram("event_window.c", { cuda: true }), "sync"]);
    expect(plain.run.code, plain.run.stderr).toBe(0);
    expect(plain.of("launch").length).toBeGreaterThan(0);
    expect(plain.of("range")).toEqual([]);
  });

  it("leaves an NVTX_INJECTION64_PATH the user set alone, and says so", async () => {
    const exe = program();
    const dir = testDir("nvtx-other");
    const other = path.join(dir, "libother-tool.so"); // not there: NVTX then runs with no tool at all
    const rec = await recordRun(dir, [exe, "spans"], { env: { NVTX_INJECTION64_PATH: other, TAILGUARD_LOG_LEVEL: "info" } });
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toContain(`NVTX_INJECTION64_PATH=${other}\n`);
    expect(rec.run.stderr.match(/NVTX_INJECTION64_PATH names another tool/g)).toHaveLength(1);
    expect(rec.of("launch")).toHaveLength(7);
    expect(rec.of("range")).toEqual([]);
    // TAILGUARD_DISABLE=1: the shim is no one's NVTX tool
    const off = await runProgram(exe, ["spans"], { env: shimOnly(dir, { TAILGUARD_DISABLE: "1" }) });
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toContain("NVTX_INJECTION64_PATH=(unset)\n");
  });

  it("writes a request's context records around a range whose message is a traceparent", async () => {
    const exe = program();
    const dir = testDir("nvtx-traceparent");
    const rec = await recordRun(dir, [exe, "traceparent"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    const seq = rec.lines.filter((l) => l.kind === "range" || l.kind === "context").map((l) => `${l.kind}:${l.op}`);
    expect(seq).toEqual([
      "range:push", "context:request_begin", "range:start", "context:request_begin", "range:end", "context:request_end",
      "range:pop", "context:request_end", "range:push", "range:pop", "range:push", "range:pop",
    ]);
  });

  it("names a forked child's ranges with the handles its parent registered", async () => {
    const exe = program();
    const dir = testDir("nvtx-fork");
    const rec = await recordRun(dir, [exe, "fork"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toContain("child-pop=0\n");
    expect(rec.run.stdout).toContain("parent-pop=0\n");
    const pids = [...new Set(rec.of("range").map((r) => r.pid))];
    expect(pids).toHaveLength(2);
    const [parent, child] = pids.map((pid) => rec.of("range").filter((r) => r.pid === pid)).sort((a, b) => a.length - b.length);
    expect(parent.map((r) => `${r.op}:${r.message ?? ""}:${r.depth}`)).toEqual(["push:parent-open:1", "pop::1"]);
    expect(child.map((r) => `${r.op}:${r.message ?? ""}:${r.domain ?? ""}:${r.depth}`)).toEqual([
      "push:registered-before-fork:parent-domain:1", "pop::parent-domain:1", "pop:::1",
    ]);
  });

  it("survives unbalanced pops, NULL and garbage handles and attributes, a 1 MiB message, and a counter in messages", async () => {
    const exe = program();
    const dir = testDir("nvtx-garbage");
    const rec = await recordRun(dir, [exe, "garbage"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toContain("pop=-1\ndomain-pop=-1\n");
    expect(rec.run.stdout).toContain("pop-after=-1\n");
    const ranges = rec.of("range");
    // nothing for the pops without a push nor the end of a range never started; every push once, and a pop for each
    // push of the default domain (the garbage domain's push stays open), depth never below 1
    expect(ranges.filter((r) => r.op === "end")).toEqual([]);
    expect(ranges.filter((r) => r.op === "push")).toHaveLength(7);
    expect(ranges.filter((r) => r.op === "pop")).toHaveLength(6);
    for (const r of ranges.filter((r) => r.op === "pop" || r.op === "push")) expect(r.depth).toBeGreaterThanOrEqual(1);
    // no message for NULL, a garbage handle, a structure too short or an unknown type; the huge one cut at 1024 bytes
    const messages = ranges.filter((r) => r.op === "push").map((r) => r.message);
    expect(messages.slice(0, 6)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
    expect(messages[6]).toBe("x".repeat(1024));
    // distinct messages beyond what the shim interns for NVTX go without a name, and the kernel after them keeps its
    const marks = ranges.filter((r) => r.op === "mark" && r.message?.startsWith("step "));
    expect(marks.length).toBeGreaterThan(3000);
    expect(marks.length).toBeLessThan(4096);
    expect(ranges.filter((r) => r.op === "mark")).toHaveLength(20_001); // and nvtxMarkEx(NULL)
    expect(rec.of("launch").map((l) => l.kernel)).toEqual(["nvtx_kernel"]);
  });
});
