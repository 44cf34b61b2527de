// The agent end to end: real processes with the shim on the simulated GPU, the agent draining their rings, and a
// loopback OTLP receiver in this test decoding what arrives (protobuf with the official generated decoders, and
// JSON). Also its Prometheus endpoint, and its restart: killing it loses no record still in a ring.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect as connectSocket, createServer, type AddressInfo, type Socket } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { processEnvironment } from "../../agent/src/identity.js";
import { hostPidOf, readStatFields, startTicks } from "../../agent/src/ingest/proc.js";
import { AGENT_NODE_OPTIONS, agentOptions } from "../../agent/src/cli/agent.js";
import { readIntervalLog } from "../../agent/src/telemetry/histograms.js";
import { epochNs } from "../../agent/src/model.js";
import { canUnshare, nativeBuild, ownPidNamespace, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { startOtlpReceiver, type FlatSpan } from "../support/otlp-receiver.js";
import { cli } from "../support/tailguard.js";
import { spansOf } from "../support/spans-file.js";
import { sleep, until } from "../support/wait.js";

const workload = path.join(nativeBuild, "tg-workload");

/** Per request of a tg-workload --samples file: scheduled, first launch called, sync returned (CLOCK_MONOTONIC). */
function samples(file: string): { due: bigint; launched: bigint; done: bigint }[] {
  return readFileSync(file, "utf8").trim().split("\n").map((l) => {
    const [due, launched, done] = l.split(" ").map(BigInt);
    return { due, launched, done };
  });
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("process identity", () => {
  it("takes a process's environment only if /proc/PID is the process its ring names (start time)", async () => {
    const child = spawn("sleep", ["10"], { env: { PATH: process.env.PATH, K8S_POD_NAME: "pod-a", OTEL_SERVICE_NAME: "svc" } });
    try {
      await new Promise((r) => child.once("spawn", r));
      const ticks = startTicks(readStatFields(child.pid!))!;
      expect(ticks).toMatch(/^\d+$/);
      expect(processEnvironment(child.pid!, ticks)).toMatchObject({ K8S_POD_NAME: "pod-a", OTEL_SERVICE_NAME: "svc" });
      // a ring of another PID namespace: its pid is another process here, whose identity it must not take
      expect(processEnvironment(child.pid!, String(BigInt(ticks) + 1n))).toEqual({});
      expect(processEnvironment(child.pid!)).toMatchObject({ K8S_POD_NAME: "pod-a" }); // no start time to check
      expect(processEnvironment(2 ** 30, ticks)).toEqual({});
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe.skipIf(!canUnshare())("process identity across PID namespaces", () => {
  it("finds a ring's process by its pid in its own namespace and its start time, and reads its environment", async () => {
    const child = spawn(ownPidNamespace[0], [...ownPidNamespace.slice(1), "sleep", "10"],
      { env: { PATH: process.env.PATH, K8S_POD_NAME: "pod-b", K8S_NAMESPACE_NAME: "batch" } });
    try {
      // the sleep is unshare's child; in its namespace it is pid 1 (NSpid: its pid here, then there)
      let inner = NaN;
      for (let i = 0; i < 100 && !(inner > 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
        try {
          inner = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/)[0]);
        } catch { /* not yet */ }
      }
      const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${inner}/status`, "utf8"))![1].trim().split(/\s+/).map(Number);
      expect(nspid).toEqual([inner, 1]);
      const ticks = startTicks(readStatFields(inner))!;
      // what its ring says: pid 1, its start time. Pid 1 here is init: not it, and not taken for it
      expect(hostPidOf(1, ticks)).toBe(inner);
      expect(processEnvironment(1, ticks)).toMatchObject({ K8S_POD_NAME: "pod-b", K8S_NAMESPACE_NAME: "batch" });
      expect(hostPidOf(2, ticks)).toBeNull(); // no process is 2 there with that start time
      expect(processEnvironment(2, ticks)).toEqual({});
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("tailguard agent", () => {
  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it(`two priorities on the simulated GPU: request, launch and hold spans with links arrive over OTLP (${protocol})`, async () => {
      const dir = testDir("agent");
      const rings = path.join(dir, "rings");
      const receiver = await startOtlpReceiver();
      // the official exporters read their endpoint from the agent's own environment
      vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url);
      vi.stubEnv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol);
      vi.stubEnv("OTEL_METRIC_EXPORT_INTERVAL", "500");
      const opts = agentOptions(["--dir", rings, "--port", "0", "--slo-ms", "3", "--sample-rate", "0"], process.env);
      const agent = await Agent.start(opts);
      try {
        const high = runProgram(workload, ["requests", "--rate", "50", "--count", "30", "--kernels", "4", "--kernel-us", "800",
          "--name", "resnet_block", "--samples", path.join(dir, "high.samples")],
          { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high", OTEL_SERVICE_NAME: "inference", K8S_POD_NAME: "pod-a",
            K8S_NAMESPACE_NAME: "serving" }) });
        const low = runProgram(workload, ["continuous", "--seconds", "0.9", "--kernels", "1", "--kernel-us", "100", "--name", "train_step"],
          { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" }) });
        const [h, l] = await Promise.all([high, low]);
        expect(h.code, h.stderr).toBe(0);
        expect(l.code, l.stderr).toBe(0);
        await until("both processes drained", () => agent.stats().windows > 30 && readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
        const highMeta = agent.processMeta(h.pid!)!;
        expect(highMeta).toBeDefined();
        await agent.stop();
        await until("the spans", () => receiver.spans().some((s) => s.name === "hold"), 5000);
        const spans = receiver.spans();
        expect(new Set(receiver.requests.map((r) => r.encoding))).toEqual(new Set([protocol === "http/json" ? "json" : "protobuf"]));

        // every request of the high-priority process is one request span, with its process's resource
        const mine = (s: FlatSpan) => s.resource["process.pid"] === h.pid;
        const requests = spans.filter((s) => s.name === "request" && mine(s));
        expect(requests).toHaveLength(30);
        for (const s of requests)
          expect(s.resource).toMatchObject({ "service.name": "inference", "k8s.pod.name": "pod-a", "k8s.namespace.name": "serving",
            "tailguard.priority": 10 });
        // exact times: the shim's monotonic clock through the process's anchor, to the nanosecond; each request span
        // starts when its first launch was called and ends before its sync returned, as the program saw them
        const sorted = [...requests].sort((a, b) => Number(a.attributes["tailguard.window.seq"]) - Number(b.attributes["tailguard.window.seq"]));
        const seen = samples(path.join(dir, "high.samples"));
        sorted.forEach((s, i) => {
          const start = BigInt(s.startTimeUnixNano);
          const end = BigInt(s.endTimeUnixNano);
          expect(start).toBeGreaterThanOrEqual(epochNs(highMeta, seen[i].launched));
          // the first launch, not anything later (the request's kernels take 3.2 ms); the slack is for a thread
          // preempted between the program's clock read and the launch on a busy 2-core machine
          expect(start - epochNs(highMeta, seen[i].launched)).toBeLessThan(2_000_000n);
          expect(end).toBeLessThanOrEqual(epochNs(highMeta, seen[i].done));
          expect(end).toBeGreaterThan(start + 3_200_000n - 1n); // 4 kernels of 0.8 ms
        });

        // tail sampling: requests over the 3 ms SLO carry their launches as children, the others none
        for (const s of requests) {
          const children = spans.filter((c) => c.parentSpanId === s.spanId && c.name !== "hold" && !c.name.startsWith("gpu."));
          const slow = BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano) > 3_000_000n;
          expect(children.length, `${s.spanId} slow=${slow}`).toBe(slow ? 4 : 0);
          for (const c of children) {
            expect(c.name).toBe("resnet_block");
            expect(c.traceId).toBe(s.traceId);
          }
        }
        expect(requests.some((s) => s.attributes["tailguard.sampled"] === "slo")).toBe(true);
        // every request's device times: gpu.queue then gpu.exec (its 3.2 ms of kernels), inside the request
        for (const s of requests) {
          const [queue] = spans.filter((c) => c.parentSpanId === s.spanId && c.name === "gpu.queue");
          const [exec] = spans.filter((c) => c.parentSpanId === s.spanId && c.name === "gpu.exec");
          expect(queue.endTimeUnixNano).toBe(exec.startTimeUnixNano);
          // (event times are float milliseconds: a few tens of ns off)
          expect(BigInt(exec.endTimeUnixNano) - BigInt(exec.startTimeUnixNano)).toBeGreaterThan(3_199_000n);
          expect(BigInt(queue.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(s.startTimeUnixNano));
          expect(BigInt(exec.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(s.endTimeUnixNano));
        }
        // the span policy: a high-priority request over the SLO has status ERROR, saying by how much; the others UNSET
        for (const s of requests) {
          const durMs = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
          if (durMs > 3) expect(s.status).toEqual({ code: 2, message: expect.stringMatching(/^request latency [\d.]+ ms > SLO 3 ms$/) });
          else expect(s.status.code).toBe(0);
          expect(s.attributes["tailguard.span.reason"]).toBe(durMs > 3 ? "slo" : "priority");
        }
        // and the low-priority process's windows are spans only where held, over the SLO or sampled (1 %)
        const lowRequests = spans.filter((s) => s.name === "request" && s.resource["process.pid"] === l.pid);
        expect(lowRequests.length).toBeLessThan(agent.stats().windows - 30);
        for (const s of lowRequests) expect(["held", "slo", "sampled"]).toContain(s.attributes["tailguard.span.reason"]);

        // the low-priority process's holds: children of its request spans, linked to the high request that caused them
        const holds = spans.filter((s) => s.name === "hold" && s.resource["process.pid"] === l.pid);
        expect(holds.length).toBeGreaterThan(3);
        const byId = new Map(spans.map((s) => [s.spanId, s]));
        for (const hold of holds) {
          expect(hold.attributes).toMatchObject({ "tailguard.hold.reason": "priority", "tailguard.hold.cause.pid": h.pid });
          expect(byId.get(hold.parentSpanId!)?.name).toBe("request");
          expect(hold.links).toHaveLength(1);
          const cause = byId.get(hold.links[0].spanId)!;
          expect(cause, "the linked request span arrived").toBeDefined();
          expect(cause.traceId).toBe(hold.links[0].traceId);
          expect(mine(cause)).toBe(true);
          expect(cause.attributes["tailguard.window.seq"]).toBe(hold.attributes["tailguard.hold.cause.window"]);
        }

        // and the metrics went out over OTLP too
        const names = new Set(receiver.metrics().map((m) => m.name));
        expect(names.has("tailguard.request.latency")).toBe(true);
      } finally {
        await agent.stop();
        await receiver.close();
      }
    });
  }

  it("a request that queued on the GPU behind another process's work names it on its gpu.queue span", async () => {
    const dir = testDir("agent-behind");
    const rings = path.join(dir, "rings");
    const receiver = await startOtlpReceiver();
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url);
    vi.stubEnv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    const agent = await Agent.start(agentOptions(["--dir", rings, "--no-prometheus", "--sample-rate", "0"], process.env));
    try {
      // equal priorities (no scheduling between them): the requests wait for the batch's 3 ms kernels on the device
      const batch = runProgram(workload, ["continuous", "--seconds", "1.2", "--kernels", "2", "--kernel-us", "3000", "--name", "train_step"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
      const requests = await runProgram(workload, ["requests", "--rate", "50", "--count", "30", "--kernels", "1", "--kernel-us", "1000"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
      const b = await batch;
      expect(requests.code, requests.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      await until("both processes drained", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
      await agent.stop();
      const queues = receiver.spans().filter((s) => s.name === "gpu.queue" && s.resource["process.pid"] === requests.pid);
      expect(queues.length).toBe(30);
      const behind = queues.filter((s) => s.attributes["tailguard.gpu.queue.behind.pid"] === b.pid);
      expect(behind.length, "requests that queued behind the batch").toBeGreaterThan(10);
      for (const s of behind) {
        expect(s.attributes["tailguard.gpu.queue.behind.priority"]).toBe(0);
        expect(Number(s.attributes["tailguard.gpu.queue.behind_ns"])).toBeLessThanOrEqual(Number(s.attributes["tailguard.gpu.queue_ns"]));
        expect(s.links[0].attributes).toEqual({ "tailguard.link": "gpu.queue.behind" });
      }
    } finally {
      await agent.stop();
      await receiver.close();
    }
  });

  it("serves Prometheus metrics, and writes HDR interval logs, whose counts match what the processes did", async () => {
    const dir = testDir("agent-prom");
    const rings = path.join(dir, "rings");
    const log = path.join(dir, "latency.hlog");
    const agent = await Agent.start(agentOptions(["--dir", rings, "--port", "0", "--interval-log", log, "--interval", "0.2", "--pid-label"], {}));
    try {
      const r = await runProgram(workload, ["requests", "--rate", "100", "--count", "25", "--kernels", "3", "--kernel-us", "200"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" }) });
      expect(r.code, r.stderr).toBe(0);
      await until("drained", () => agent.stats().windows === 25);
      const text = await (await fetch(agent.server!.url()!)).text();
      const value = (name: string) => {
        const all = text.split("\n").filter((l) => l.startsWith(name) && l.includes(`pid="${r.pid}"`));
        expect(all, name).toHaveLength(1); // one series per process: every window under the same labels
        return Number(all[0].split(" ").pop());
      };
      expect(value("tailguard_request_latency_seconds_count")).toBe(25);
      expect(value("tailguard_launches_total")).toBe(75);
      expect(value("tailguard_request_windows_total")).toBe(25);
      // every window's device times, from the shim's own events: three 200 µs kernels each on the GPU
      expect(value("tailguard_request_gpu_time_seconds_count")).toBe(25);
      expect(value("tailguard_request_gpu_time_seconds_sum") / 25).toBeGreaterThan(0.95 * 600e-6);
      expect(value("tailguard_request_queue_delay_seconds_count")).toBe(25);
      const missing = text.split("\n").filter((l) => l.startsWith("tailguard_gpu_time_missing_total") && l.includes(`pid="${r.pid}"`));
      expect(missing.map((l) => [/reason="(\w+)"/.exec(l)![1], Number(l.split(" ").pop())]).sort())
        .toEqual([["fork", 0], ["no_timing", 0], ["pool_full", 0], ["stream", 0]]);
      expect(text).toMatch(/tailguard_request_latency_percentile_seconds\{[^}]*percentile="99"[^}]*\} [0-9.e-]+/);
      await agent.stop();
      // the interval log, read back: every window of the process, in the intervals the agent wrote
      const tags = readIntervalLog(log).filter((x) => x.tag.startsWith(`request_latency;pid=${r.pid};`));
      const logged = tags[0];
      expect(logged?.count).toBe(25);
      expect(logged!.intervals).toBeGreaterThanOrEqual(1);
    } finally {
      await agent.stop();
    }
  });

  it("refuses to start a second agent on the same directory, and says which one serves it", async () => {
    const dir = testDir("agent-twice");
    const rings = path.join(dir, "rings");
    const first = await Agent.start(agentOptions(["--dir", rings, "--no-prometheus"], {}));
    try {
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--no-prometheus"], { timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`another tailguard agent (pid ${process.pid}) already serves ${rings}`);
    } finally {
      await first.stop();
    }
    expect(existsSync(path.join(rings, "agent.pid"))).toBe(false); // unregistered on stop
  });

  it("registers as \"PID STARTTICKS\"; a registration whose pid is now another process is stale and replaced", async () => {
    const dir = testDir("agent-stale");
    const rings = path.join(dir, "rings");
    const file = path.join(rings, "agent.pid");
    const own = await Agent.start(agentOptions(["--dir", rings, "--no-prometheus"], {}));
    try {
      expect(readFileSync(file, "utf8")).toBe(`${process.pid} ${startTicks(readStatFields(process.pid))}\n`);
    } finally {
      await own.stop();
    }
    // a crashed agent's pid, since given to another process (here a sleep): alive, but not with the registered start
    const other = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await new Promise((r) => other.once("spawn", r));
      const ticks = startTicks(readStatFields(other.pid!))!;
      writeFileSync(file, `${other.pid} ${BigInt(ticks) + 1n}\n`);
      const agent = spawn(process.execPath, [cli, "agent", "--dir", rings, "--no-prometheus"], { stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      agent.stderr!.on("data", (d) => (err += d));
      const exited = new Promise<number | null>((r) => agent.on("exit", r));
      await until("the new agent registered", () => readFileSync(file, "utf8").startsWith(`${agent.pid} `));
      agent.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(err.trim().split("\n")).toEqual([
        `tailguard agent: ${file} names pid ${other.pid} started at tick ${BigInt(ticks) + 1n}, but that pid is now another ` +
          `process (started at tick ${ticks}): a stale registration of an agent that crashed; replacing it`,
      ]);
      // the same pid with its own start time, or an older agent's file (the pid alone): a live agent, refused
      for (const text of [`${other.pid} ${ticks}\n`, `${other.pid}\n`]) {
        writeFileSync(file, text);
        const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--no-prometheus"], { timeoutMs: 20_000 });
        expect(r.code, text).toBe(1);
        expect(r.stderr).toContain(`another tailguard agent (pid ${other.pid}) already serves ${rings}`);
      }
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("bad options and a taken Prometheus port are clear errors, and leave no registration behind", async () => {
    const dir = testDir("agent-bad");
    const rings = path.join(dir, "rings");
    const bad = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--port", "http"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port must be a number from 0 to 65535, not "http"');
    // --host: an address, never "" or a name that Node would take for every interface
    for (const [host, why] of [["", "(empty)"], ["metrics.example", "(host names are not resolved)"]]) {
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--host", host]);
      expect(r.code, host).toBe(2);
      expect(r.stderr.trim()).toBe(`tailguard agent: --host must be an IP address or localhost, not "${host}" ${why}: pass the ` +
        "address of the interface to listen on, e.g. 127.0.0.1 (the default) or ::1; to listen on every interface say so: " +
        "--host 0.0.0.0 (IPv4) or --host :: (IPv4 and IPv6); see 'tailguard agent --help'");
    }
    for (const host of ["127.0.0.1", "::1", "0.0.0.0", "::", "localhost"])
      expect(agentOptions(["--host", host], {}).prometheus?.host).toBe(host);
    for (const [value, message] of [["0", "a number from 1 to 65536"], ["2.5", "a whole number from 1 to 65536"], ["", "a number from 1 to 65536"]]) {
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--max-connections", value]);
      expect(r.code, value).toBe(2);
      expect(r.stderr).toContain(`--max-connections must be ${message}, not "${value}"`);
    }
    // the spans file's rotation: a size from 1 MiB, a count of files kept from 0, and only with a spans file
    const spans = ["--spans-file", path.join(dir, "spans.jsonl")];
    for (const [args, message] of [
      [[...spans, "--spans-file-max-mb", "0.5"], '--spans-file-max-mb must be a number from 1 to 1048576, not "0.5"'],
      [[...spans, "--spans-file-max-mb", "lots"], '--spans-file-max-mb must be a number from 1 to 1048576, not "lots"'],
      [[...spans, "--spans-file-keep=-1"], '--spans-file-keep must be a number from 0 to 1000, not "-1"'],
      [[...spans, "--spans-file-keep", "2.5"], '--spans-file-keep must be a whole number from 0 to 1000, not "2.5"'],
      [["--spans-file-keep", "3"], "--spans-file-keep limits the spans file, and no --spans-file FILE is given"],
    ] as const) {
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, ...args]);
      expect(r.code, message).toBe(2);
      expect(r.stderr.trim()).toBe(`tailguard agent: ${message}; see 'tailguard agent --help'`);
    }
    // the span policy: a mode it knows, a share from 0 to 1, and a share only where windows are sampled
    for (const [args, message] of [
      [["--spans", "some"], '--spans must be policy or all, not "some": policy keeps request, over-SLO, held and sampled ' +
        "batch windows; all keeps every window"],
      [["--batch-sample", "1.5"], '--batch-sample must be a number from 0 to 1, not "1.5"'],
      [["--batch-sample", "1%"], '--batch-sample must be a number from 0 to 1, not "1%"'],
      [["--spans", "all", "--batch-sample", "0.1"], "--batch-sample samples batch windows under --spans policy, and " +
        "--spans all keeps every window: give one or the other"],
    ] as const) {
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, ...args]);
      expect(r.code, message).toBe(2);
      expect(r.stderr.trim()).toBe(`tailguard agent: ${message}; see 'tailguard agent --help'`);
    }
    expect(agentOptions([], {})).toMatchObject({ spanPolicy: "policy", batchSample: 0.01 });
    expect(agentOptions(["--spans", "all"], {})).toMatchObject({ spanPolicy: "all" });
    expect(agentOptions(["--batch-sample", "0"], {})).toMatchObject({ spanPolicy: "policy", batchSample: 0 });
    expect(agentOptions([...spans], {}).spansFileLimits).toEqual({ maxBytes: 100 * 2 ** 20, keep: 5 });
    expect(agentOptions([...spans, "--spans-file-max-mb", "2.5", "--spans-file-keep", "0"], {}).spansFileLimits)
      .toEqual({ maxBytes: 2.5 * 2 ** 20, keep: 0 });
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    try {
      const port = (taken.address() as AddressInfo).port;
      const r = await runProgram(process.execPath, [cli, "agent", "--dir", rings, "--port", String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot serve Prometheus metrics on 127.0.0.1:${port}`);
      expect(r.stderr).toContain("EADDRINUSE");
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(path.join(rings, "agent.pid"))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it("--max-connections bounds the connections to its HTTP server: idle ones make room, /metrics still answers", async () => {
    const dir = testDir("agent-connections");
    const agent = spawn(process.execPath, [cli, "agent", "--dir", path.join(dir, "rings"), "--port", "0", "--max-connections", "8"],
      { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    agent.stdout!.on("data", (d) => (out += d));
    agent.stderr!.on("data", (d) => (out += d));
    const exited = new Promise((r) => agent.on("exit", r));
    const sockets: Socket[] = [];
    try {
      await until("the agent's address", () => /Prometheus at (http:\/\/\S+\/metrics)/.test(out));
      const url = /Prometheus at (http:\/\/\S+\/metrics)/.exec(out)![1];
      for (let i = 0; i < 30; i++) {
        const s = connectSocket(Number(new URL(url).port), "127.0.0.1");
        s.on("error", () => {});
        sockets.push(s);
      }
      // long before the idle timeout (10 s), all but the 8 newest are closed to keep to the limit
      await until("22 idle connections closed", () => sockets.filter((s) => s.closed).length >= 22, 5000);
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      expect(res.status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
      agent.kill("SIGTERM");
      await exited;
    }
  });

  it("rotates the spans file at --spans-file-max-mb, keeping --spans-file-keep full ones", async () => {
    const dir = testDir("agent-rotate");
    const file = path.join(dir, "spans.jsonl");
    const child = spawn(process.execPath, [cli, "agent", "--dir", path.join(dir, "rings"), "--no-prometheus", "--spans-file", file,
      "--spans-file-max-mb", "1", "--spans-file-keep", "2", "--sample-rate", "1"],
      { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" }, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise((r) => child.on("exit", r));
    try {
      await until("the agent registered", () => existsSync(path.join(dir, "rings", "agent.pid")));
      // every window sampled, each with 40 launch spans: megabytes of spans in a few seconds
      const r = await runProgram(workload, ["continuous", "--seconds", "3", "--kernels", "40", "--kernel-us", "20"],
        { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
      expect(r.code, r.stderr).toBe(0);
      await until("three files", () => existsSync(`${file}.2`), 20_000);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    expect(existsSync(`${file}.3`)).toBe(false);
    for (const f of [file, `${file}.1`, `${file}.2`]) {
      const text = readFileSync(f, "utf8");
      // each file whole lines of OTLP/JSON, none past the limit unless a single export was bigger than it
      const lines = text.trim().split("\n");
      for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
      if (lines.length > 1) expect(statSync(f).size).toBeLessThanOrEqual(1 << 20);
    }
  }, 60_000);

  it("killed and restarted: every request window whose records were still in the ring reaches the new agent", async () => {
    const dir = testDir("agent-restart");
    const rings = path.join(dir, "rings");
    const agentProcess = (spansFile: string) => {
      const child = spawn(process.execPath, [cli, "agent", "--dir", rings, "--no-prometheus", "--spans-file", spansFile, "--sample-rate", "0"],
        { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "" }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (out += d));
      return { child, out: () => out, exited: new Promise((r) => child.on("exit", r)) };
    };
    const requestSeqs = (file: string) =>
      spansOf(file).filter((s: any) => s.name === "request")
        .map((s: any) => Number(s.attributes.find((a: any) => a.key === "tailguard.window.seq").value.intValue));

    const first = agentProcess(path.join(dir, "first.jsonl"));
    await until("the first agent registered", () => existsSync(path.join(rings, "agent.pid")));
    const work = runProgram(workload, ["requests", "--rate", "40", "--count", "60", "--kernels", "2", "--kernel-us", "300",
      "--samples", path.join(dir, "requests.samples")], { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
    await sleep(600);
    const killedAt = process.hrtime.bigint(); // CLOCK_MONOTONIC, like the samples
    first.child.kill("SIGKILL");
    await first.exited;
    const r = await work; // it ends, and exits, while no agent runs
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(rings).filter((f) => f.endsWith(".ring")), "its ring was kept for the agent").toHaveLength(1);

    const second = agentProcess(path.join(dir, "second.jsonl"));
    await until("the ring drained by the second agent", () => readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 0);
    // stopped as soon as the collector has taken the ring (perhaps before the agent printed anything): it still
    // exports everything it took
    second.child.kill("SIGTERM");
    await second.exited;
    expect(second.out()).toMatch(/stopped after \d+ records/);

    // requests that completed after the kill were still in the ring: all of them reach the second agent
    const done = samples(path.join(dir, "requests.samples"));
    const after = done.map((s, i) => ({ seq: i + 1, done: s.done })).filter((s) => s.done > killedAt + 20_000_000n);
    expect(after.length).toBeGreaterThan(20);
    const got = new Set(requestSeqs(path.join(dir, "second.jsonl")));
    expect(after.filter((s) => !got.has(s.seq)).map((s) => s.seq)).toEqual([]);
    // and nothing is counted twice: the first agent's windows and the second's do not overlap
    const before = new Set(requestSeqs(path.join(dir, "first.jsonl")));
    expect([...got].filter((s) => before.has(s))).toEqual([]);
  });

  it("`tailguard agent --demo` (npm start): the demo's two processes show up with their windows and holds; SIGINT " +
    "stops it and removes its simulated GPU's folder", async () => {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
    // what this test runs, on a test port and dir, with the agent's heap settings
    expect(pkg.scripts.start).toBe(`node ${AGENT_NODE_OPTIONS} agent/dist/cli.js agent --demo`);
    const dir = testDir("agent-demo");
    const tmp = path.join(dir, "tmp"); // the demo's temporary directory, to see what it leaves there
    mkdirSync(tmp);
    const child = spawn(process.execPath, [cli, "agent", "--demo", "--port", "0", "--dir", path.join(dir, "rings")],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TMPDIR: tmp } });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise((r) => child.on("exit", r));
    try {
      await until("two reports", () => (out.match(/request windows, \d+ holds/g) ?? []).length >= 2, 30_000);
      expect(readdirSync(tmp)).toEqual([expect.stringMatching(/^tailguard-demo-/)]);
    } finally {
      child.kill("SIGINT");
      await exited;
    }
    expect(readdirSync(tmp)).toEqual([]);
    expect(out).toMatch(/Prometheus at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const row = (service: string) => out.split("\n").reverse().find((l) => l.includes(service))?.trim().split(/\s+/);
    const high = row("demo-inference")!;
    const low = row("demo-batch")!;
    expect(high[1]).toBe("10");
    expect(low[1]).toBe("-10");
    expect(Number(high[3])).toBeGreaterThan(10); // request windows
    expect(Number(low[6])).toBeGreaterThan(0); // the batch job was held
    expect(out).toMatch(/tailguard agent: stopped after \d+ records/);
  });

  it("without a registered agent, or after its grace, an exited process's ring is not kept", async () => {
    const dir = testDir("agent-grace");
    const rings = path.join(dir, "rings");
    const args = ["requests", "--rate", "100", "--count", "3", "--kernels", "1", "--kernel-us", "100"];
    // a dead agent's registration, but a grace of 0 seconds: nobody will come for the ring
    const r = await runProgram(process.execPath, ["-e", `require("fs").mkdirSync(${JSON.stringify(rings)}, {recursive: true});
      require("fs").writeFileSync(${JSON.stringify(path.join(rings, "agent.pid"))}, "999999\\n")`]);
    expect(r.code).toBe(0);
    const w = await runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_AGENT_GRACE_S: "0" }) });
    expect(w.code, w.stderr).toBe(0);
    expect(readdirSync(rings).filter((f) => f.endsWith(".ring"))).toEqual([]);
    // the default grace keeps it for the agent that registered there
    const kept = await runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib }) });
    expect(kept.code).toBe(0);
    expect(readdirSync(rings).filter((f) => f.endsWith(".ring"))).toHaveLength(1);
  });

  it("the shims take a registration for a running agent only if its pid has the registered start time", async () => {
    const dir = testDir("agent-shim-stale");
    const rings = path.join(dir, "rings");
    const args = ["requests", "--rate", "100", "--count", "3", "--kernels", "1", "--kernel-us", "100"];
    const other = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await new Promise((r) => other.once("spawn", r));
      const ticks = startTicks(readStatFields(other.pid!))!;
      // no grace: only a running agent keeps the ring of a process that exits
      const keptFor = async (registration: string) => {
        rmSync(rings, { recursive: true, force: true });
        mkdirSync(rings, { recursive: true });
        writeFileSync(path.join(rings, "agent.pid"), registration);
        const w = await runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_AGENT_GRACE_S: "0" }) });
        expect(w.code, w.stderr).toBe(0);
        return readdirSync(rings).filter((f) => f.endsWith(".ring")).length === 1;
      };
      expect(await keptFor(`${other.pid} ${ticks}\n`), "the registered process runs").toBe(true);
      expect(await keptFor(`${other.pid}\n`), "an older agent's registration: the pid alone").toBe(true);
      expect(await keptFor(`${other.pid} ${BigInt(ticks) + 1n}\n`), "the pid is another process now").toBe(false);
    } finally {
      other.kill("SIGKILL");
    }
  });
});
