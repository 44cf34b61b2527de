// The Python helper (python/, module `tailguard`): its unit tests (test_helper.py, plain unittest, against the fake
// shim of test/programs/fake_abi.c), and an HTTP server loop in Python instrumented with the real opentelemetry-sdk and
// the helper's RequestSpanProcessor, launching kernels on the simulated GPU with the shim preloaded and the agent
// exporting OTLP: every request span of that process is in the trace of one of the SDK's SERVER spans, its child,
// whether the handler thread launches or hands the work to a pool thread (tailguard.otel.request, as in FastAPI).
// Python and the SDK come from the venv test/python/venv.sh makes (components.ts: python-otel).
import { readdirSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

import { startAgent } from "../support/agent-process.js";
import { requireComponent } from "../support/components.js";
import { compileProgram, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { startOtlpReceiver, type FlatSpan, type OtlpReceiver } from "../support/otlp-receiver.js";
import { until } from "../support/wait.js";

const here = path.join(root, "test/python");
/** the checkout's helper first: the venv's installed copy may be older */
const pythonPath = path.join(root, "python");

let receiver: OtlpReceiver | null = null;
afterEach(async () => {
  vi.unstubAllEnvs();
  await receiver?.close();
  receiver = null;
});

describe("the Python helper", () => {
  it("passes its unit tests: no-op without the shim, ValueError, nesting, decorator, the span processor", async () => {
    const python = requireComponent("python-otel");
    const fake = compileProgram("fake_abi.c", { extra: ["-shared", "-fPIC"] });
    const r = await runProgram(python, ["-m", "unittest", "-v", "test_helper"], {
      cwd: here,
      env: { ...process.env, PYTHONPATH: pythonPath, TG_FAKE_ABI: fake },
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^Ran \d+ tests in .*\n\nOK\s*$/m);
    expect(r.stderr).not.toMatch(/skipped/);
  });

  it.each(["handler", "executor"])("joins every request span of a server loop to the SDK's SERVER span (GPU work on the %s thread)", async (mode) => {
    const python = requireComponent("python-otel");
    receiver = await startOtlpReceiver();
    const dir = testDir("python-server");
    const requests = 24;
    const clients = 2; // at once: requests overlap on the server's threads
    // the agent inherits the test's environment: spans over OTLP/protobuf to the receiver, nothing else
    for (const name of Object.keys(process.env)) if (name.startsWith("OTEL_")) vi.stubEnv(name, "");
    vi.stubEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", `${receiver.url}/v1/traces`);
    vi.stubEnv("OTEL_METRICS_EXPORTER", "none");
    const agent = await startAgent(path.join(dir, "rings"), ["--pid-label", "--spans", "all"]);
    const r = await runProgram(python, [path.join(here, "server_loop.py"), String(requests), String(clients), "300", mode], {
      env: simEnv(dir, { LD_PRELOAD: shimLib, PYTHONPATH: pythonPath }),
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const [head, ...lines] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(head.attached, "the helper found the shim's ABI").toBe(true);
    const servers = lines.filter((s) => s.kind === "SERVER");
    expect(servers).toHaveLength(requests);
    // the SDK continued the callers' traces (the test's own premise)
    expect(servers.map((s) => `00-${s.traceId}-${s.parentSpanId}-01`).sort()).toEqual([...head.sent].sort());

    // drained: the process's ring is gone once the agent has read all of it; stopping the agent flushes its spans
    const rings = path.join(dir, "rings");
    await until(() => `the agent to drain ${rings}: ${readdirSync(rings).join(" ")}; it said: ${agent.stdout()}${agent.stderr()}`,
      () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
    const stopped = await agent.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    const ofProcess = (s: FlatSpan) => s.resource["process.pid"] === r.pid && s.name.startsWith("request");
    const spans = receiver.spans().filter(ofProcess);
    expect(spans.length, `request spans of pid ${r.pid} among ${receiver.spans().length} spans of pids ` +
      `${[...new Set(receiver.spans().map((s) => s.resource["process.pid"]))]}; the agent said: ${stopped.stdout}`).toBeGreaterThanOrEqual(requests);
    const byTrace = new Map(servers.map((s) => [s.traceId, s]));
    const joined = spans.filter((s) => s.parentSpanId != null && byTrace.get(s.traceId)?.spanId === s.parentSpanId);
    expect(joined.length, `request spans joined: ${JSON.stringify(spans.map((s) => [s.traceId, s.parentSpanId]))}`).toBe(spans.length);
    // every SERVER span has its request span, exactly one (made at the request's end, whatever the windows did)
    expect(new Set(joined.map((s) => s.traceId)).size).toBe(requests);
    expect(joined.length).toBe(requests);
  });
});
