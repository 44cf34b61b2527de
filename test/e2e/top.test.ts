// `tailguard top`: the live view in a terminal, against `tailguard agent --demo` (a high- and a low-priority process on
// the simulated GPU), and against no agent at all.
import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";

import { startDemoAgent, type DemoAgent } from "../support/demo-agent.js";
import { runProgram } from "../support/native.js";
import { cli } from "../support/tailguard.js";

let agent: DemoAgent | null = null;

afterAll(async () => {
  await agent?.stop();
});

const top = (args: string[], timeoutMs = 20_000) => runProgram(process.execPath, [cli, "top", ...args], { timeoutMs });

/** A table row's cells, by the process's pid (the first column). */
function row(out: string, pid: number): string[] | undefined {
  return out.split("\n").map((l) => l.trim().split(/\s+/)).find((cells) => cells[0] === String(pid));
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("tailguard top", () => {
  it("--once: both demo processes with their priorities, windows, P50/P99, GPU time and queue delay", async () => {
    agent = await startDemoAgent("top");
    const { high, low } = await agent.demoProcesses();
    // the Prometheus URL the agent prints is accepted as the agent's address
    const r = await top(["--once", "--url", agent.metricsUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/\x1b\[/); // a plain snapshot, no terminal codes
    const lines = r.stdout.split("\n");
    expect(lines[0]).toContain(agent.liveUrl.replace(/\/$/, ""));
    expect(lines[1]).toMatch(/^2 attached, \d+ request windows, \d+ holds, \d+ records dropped/);
    expect(lines.find((l) => l.trim().startsWith("PID"))!.trim().split(/\s{2,}/)).toEqual(
      ["PID", "PRIO", "SERVICE", "STATE", "WINDOWS", "P50 ms", "P99 ms", "GPU P50", "QUEUE P50", "QUEUE P99", "HOLDS", "HELD ms", "DROPS"]);
    const h = row(r.stdout, high.pid)!;
    const l = row(r.stdout, low.pid)!;
    expect(h.slice(0, 4)).toEqual([String(high.pid), "10", "demo-inference", "attached"]);
    expect(l.slice(0, 4)).toEqual([String(low.pid), "-10", "demo-batch", "attached"]);
    expect(Number(h[4])).toBeGreaterThanOrEqual(high.windows);
    for (const cells of [h, l]) {
      expect(cells[5]).toMatch(/^\d+\.\d\d$/); // P50 ms
      expect(cells[6]).toMatch(/^\d+\.\d\d$/); // P99 ms
      expect(Number(cells[6])).toBeGreaterThanOrEqual(Number(cells[5]));
      // measured on the device: GPU time within the latency, queue delays
      expect(cells[7]).toMatch(/^\d+\.\d\d$/);
      expect(Number(cells[7])).toBeLessThanOrEqual(Number(cells[6]));
      expect(cells[8]).toMatch(/^\d+\.\d\d$/);
      expect(cells[9]).toMatch(/^\d+\.\d\d$/);
      expect(cells[12]).toMatch(/^\d+$/); // drops
    }
    // the high-priority process is first
    expect(lines.findIndex((x) => x.trim().startsWith(`${high.pid} `))).toBeLessThan(lines.findIndex((x) => x.trim().startsWith(`${low.pid} `)));
  });

  it("refreshes every --interval until interrupted: plain snapshots into a pipe", async () => {
    expect(agent, "the agent of the first test").not.toBeNull();
    const child = spawn(process.execPath, [cli, "top", "--url", agent!.liveUrl, "--interval", "0.2"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const code = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    const snapshots = () => (stdout.match(/^tailguard top — /gm) ?? []).length;
    const end = Date.now() + 15_000;
    while (snapshots() < 3 && Date.now() < end && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT"); // as a person stops it
    expect(await code, stderr).toBe(0);
    expect(snapshots()).toBeGreaterThanOrEqual(3);
    expect(stdout).not.toMatch(/\x1b\[/);
  });

  it("redraws in place on a terminal, and gives the cursor back when interrupted", async () => {
    expect(agent, "the agent of the first test").not.toBeNull();
    // script(1) gives it a terminal; timeout(1) interrupts it after 4 s
    const command = `timeout -s INT 4 ${process.execPath} ${cli} top --url ${agent!.liveUrl} --interval 0.2`;
    const r = await runProgram("script", ["-qec", command, "/dev/null"], { timeoutMs: 20_000 });
    expect(r.stdout).toMatch(/^\x1b\[\?25l\x1b\[2J/); // cursor hidden, screen cleared once
    expect((r.stdout.match(/\x1b\[Htailguard top — /g) ?? []).length).toBeGreaterThanOrEqual(2); // each refresh from the top
    expect(r.stdout).toMatch(/demo-inference/);
    expect(r.stdout.trimEnd()).toMatch(/\x1b\[\?25h$/); // the cursor back
  });

  it("says clearly, in one line and with exit code 1, when no agent answers", async () => {
    const port = await closedPort();
    const r = await top(["--once", "--url", `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([
      `tailguard top: cannot reach the tailguard agent at http://127.0.0.1:${port} (ECONNREFUSED); is \`tailguard agent\` running there? (--url says where)`,
    ]);
  });

  it("rejects a bad --interval or --url as a usage error", async () => {
    const bad = await top(["--once", "--interval", "0"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^tailguard top: --interval must be a number of seconds from 0.1 to 3600, not "0"/);
    const url = await top(["--once", "--url", "ftp://example.invalid/"]);
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/^tailguard top: --url must be an http:\/\/ address/);
  });
});
