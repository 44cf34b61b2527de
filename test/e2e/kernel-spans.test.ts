// Launch spans with their device times (TAILGUARD_KERNEL_TIMING, docs/gpu-time.md "Per-kernel device time (CUPTI)"):
// the agent, writing every window's launch spans to a file, follows a program of 1 ms and 3 ms kernels on the
// simulated GPU with its simulated CUPTI; each launch span is then when its kernel ran on the device.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { compileProgram, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { cli } from "../support/tailguard.js";
import { spansOf } from "../support/spans-file.js";
import { until } from "../support/wait.js";

const attr = (s: any, key: string) => s.attributes.find((a: any) => a.key === key)?.value;

describe("launch spans with device times", () => {
  for (const via of ["driver", "runtime"]) it(`kernel timing all, launches through the CUDA ${via}: each launch span is its kernel's run on the device (1 ms, 3 ms)`, async () => {
    const dir = testDir(`kt-spans-${via}`);
    const file = path.join(dir, "spans.jsonl");
    const agent = spawn(process.execPath, [cli, "agent", "--dir", path.join(dir, "rings"), "--no-prometheus", "--spans-file", file,
      "--spans", "all", "--sample-rate", "1"], { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" }, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((r) => agent.on("exit", r));
    try {
      await until("the agent registered", () => existsSync(path.join(dir, "rings", "agent.pid")));
      const r = await runProgram(compileProgram("kernel_timing.c", { cuda: true }), ["loop", "10"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_KERNEL_TIMING: "all", ...(via === "runtime" && { TAILGUARD_SIM_CUPTI_FAULT: "runtime" }) }) });
      expect(r.code, r.stderr).toBe(0);
      await until("20 launch spans", () => spansOf(file).filter((s) => s.name === "work").length >= 20);
    } finally {
      agent.kill("SIGTERM");
      await exited;
    }
    const launches = spansOf(file).filter((s) => s.name === "work")
      .sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    expect(launches).toHaveLength(20);
    checkDurations(launches);
  }, 60_000);

  it("requests with a trace context (their own spans at their end): their launch spans are the kernels' runs too", async () => {
    const dir = testDir("kt-spans-traced");
    const file = path.join(dir, "spans.jsonl");
    const agent = spawn(process.execPath, [cli, "agent", "--dir", path.join(dir, "rings"), "--no-prometheus", "--spans-file", file,
      "--spans", "all", "--sample-rate", "1"], { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" }, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((r) => agent.on("exit", r));
    const traceIds = Array.from({ length: 10 }, (_, i) => (i + 1).toString(16).padStart(32, "0"));
    const mine = () => spansOf(file).filter((s) => s.name === "work" && traceIds.includes(s.traceId));
    try {
      await until("the agent registered", () => existsSync(path.join(dir, "rings", "agent.pid")));
      const r = await runProgram(compileProgram("kernel_timing.c", { cuda: true }), ["traced", "10"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_KERNEL_TIMING: "all" }) });
      expect(r.code, r.stderr).toBe(0);
      await until("20 launch spans in the requests' traces", () => mine().length >= 20);
    } finally {
      agent.kill("SIGTERM");
      await exited;
    }
    const launches = mine().sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    expect(launches).toHaveLength(20);
    checkDurations(launches);
  }, 60_000);
});

function checkDurations(launches: any[]) {
  {
    launches.forEach((s, i) => {
      const ms = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6, want = i % 2 === 0 ? 1 : 3;
      expect(Math.abs(ms - want) / want, `launch span ${i}: ${ms} ms`).toBeLessThan(0.05);
      const queue = Number(attr(s, "tailguard.launch.queue_ns")?.intValue);
      expect(queue, "from the launch call to the device starting it").toBeGreaterThanOrEqual(0);
    });
  }
}
