// The agent's live web view in headless Chromium (Debian's chromium, driven by playwright-core): `tailguard agent
// --demo` runs a high- and a low-priority process on the simulated GPU; the page must show both with their priorities,
// the high-priority process's P99 must update, the holds timeline must show the low-priority process held by the
// high one; a screenshot is saved to test/output/web-view.png. A process that has gone is folded away until asked for.
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";

import { requireComponent } from "../support/components.js";
import { startDemoAgent, type DemoAgent } from "../support/demo-agent.js";
import { nativeBuild, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";

const screenshot = path.join(root, "test/output/web-view.png");

let agent: DemoAgent | null = null;
let browser: Browser | null = null;

async function launchBrowser(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: requireComponent("chromium"),
    headless: true,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [], // Chromium's sandbox refuses to run as root
  });
  return browser;
}

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
});

describe("the live web view", () => {
  it("serves /api/state and / next to an unchanged /metrics, bound to 127.0.0.1", async () => {
    agent = await startDemoAgent("web");
    expect(agent.liveUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/); // --host's default
    const { high, low, state } = await agent.demoProcesses();
    expect(high.priority).toBe(10);
    expect(low.priority).toBe(-10);
    expect(state.totals.processes).toBe(2);
    expect(high.gpu?.name).toBeTruthy();
    expect(low.cmdline[0]).toMatch(/tg-workload$/);

    const page = await fetch(agent.liveUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'none';/);
    const html = await page.text();
    expect(html).toContain('data-testid="processes"');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i); // self-contained: nothing loaded from anywhere
    expect((await fetch(new URL("api/state", agent.liveUrl), { method: "POST" })).status).toBe(405);
    expect((await fetch(new URL("nothing-here", agent.liveUrl))).status).toBe(404);
    const metrics = await fetch(agent.metricsUrl);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    expect(text).toMatch(new RegExp(`tailguard_request_windows_total\\{[^}]*priority="${high.priority}"`));
    expect(text, "no pid label unless --pid-label").not.toMatch(/\bpid="/);
  });

  it("shows both processes with their priorities, the high one's P99 updating, and holds; saves a screenshot", async () => {
    const browser = await launchBrowser();
    expect(agent, "the agent of the first test").not.toBeNull();
    const { high, low } = await agent!.demoProcesses();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    page.on("request", (r) => !r.url().startsWith(agent!.liveUrl) && elsewhere.push(r.url()));
    await page.goto(agent!.liveUrl);

    const row = (pid: number) => page.locator(`[data-testid="process"][data-pid="${pid}"]`);
    await row(high.pid).waitFor({ timeout: 10_000 });
    await row(low.pid).waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByTestId("status").textContent()).toMatch(/^live/);
    expect(await row(high.pid).getAttribute("data-priority")).toBe("10");
    expect(await row(low.pid).getAttribute("data-priority")).toBe("-10");
    expect(await row(high.pid).getByTestId("priority").textContent()).toBe("10");
    expect(await row(low.pid).getByTestId("priority").textContent()).toBe("-10");
    expect(await row(high.pid).getByTestId("service").textContent()).toBe("demo-inference");
    expect(await row(low.pid).getByTestId("service").textContent()).toBe("demo-batch");
    // the high-priority process first
    expect(await page.getByTestId("process").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-priority")))).toEqual(["10", "-10"]);

    // its P99 (of the last 10 s of windows) is a number of ms, and a few seconds later another one
    const p99 = row(high.pid).getByTestId("p99");
    let first = "";
    await expect.poll(async () => (first = (await p99.textContent()) ?? ""), { timeout: 10_000 }).toMatch(/^\d+\.\d\d$/);
    const windowsBefore = Number((await row(high.pid).getByTestId("windows").textContent())!.replace(/,/g, ""));
    await expect
      .poll(async () => {
        const now = (await p99.textContent()) ?? "";
        return /^\d+\.\d\d$/.test(now) && now !== first;
      }, { timeout: 15_000, intervals: [500] })
      .toBe(true);
    expect(Number((await row(high.pid).getByTestId("windows").textContent())!.replace(/,/g, ""))).toBeGreaterThan(windowsBefore);

    // a P50/P99 chart per process, with its P99 line drawn
    const chart = page.locator(`[data-testid="latency-chart"][data-pid="${high.pid}"]`);
    await expect.poll(async () => (await chart.getByTestId("p99-line").getAttribute("d")) ?? "").toMatch(/^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+/);
    expect(await page.getByTestId("latency-chart").count()).toBe(2);

    // the holds timeline: the low-priority process held, because of the high-priority one
    const timeline = page.getByTestId("holds-timeline");
    await expect.poll(() => timeline.locator('[data-testid="hold"]').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    const bars = await timeline.locator('[data-testid="hold"]').evaluateAll((els) =>
      els.map((e) => ({ pid: e.getAttribute("data-pid"), cause: e.getAttribute("data-cause-pid"), width: Number(e.getAttribute("width")) })));
    expect(bars.filter((b) => b.pid === String(low.pid) && b.cause === String(high.pid)).length).toBeGreaterThan(0);
    for (const b of bars) expect(b.width).toBeGreaterThanOrEqual(1);
    expect(await page.getByTestId("drops-total").textContent()).toMatch(/^records dropped [\d,]+$/);
    expect(await row(low.pid).getByTestId("drops").textContent()).toMatch(/^[\d,]+$/);

    mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);

    // the agent gone: the page says so rather than showing stale numbers as live
    await agent!.stop();
    await expect.poll(() => page.getByTestId("status").textContent(), { timeout: 10_000 }).toMatch(/^agent unreachable/);
  });

  it("folds a gone process into one row, its chart left out, until asked for", async () => {
    const browser = await launchBrowser();
    const demo = await startDemoAgent("web-gone");
    try {
      const { high, low } = await demo.demoProcesses();
      // a third process with the shim (on a simulated GPU of its own) makes a few requests and exits
      const r = await runProgram(path.join(nativeBuild, "tg-workload"), ["requests", "--rate", "100", "--count", "20", "--kernels", "1",
        "--kernel-us", "100"], { env: simEnv(testDir("web-gone-workload"), { LD_PRELOAD: shimLib, TAILGUARD_DIR: demo.ringDir }) });
      expect(r.code, r.stderr).toBe(0);
      await expect.poll(async () => (await demo.state()).processes.find((p) => p.pid === r.pid)?.state, { timeout: 15_000 }).toBe("gone");

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(demo.liveUrl);
      const row = (pid: number) => page.locator(`[data-testid="process"][data-pid="${pid}"]`);
      const charts = page.getByTestId("latency-chart");
      const toggle = page.getByTestId("gone-toggle");
      await row(high.pid).waitFor({ timeout: 10_000 });
      await toggle.waitFor({ timeout: 10_000 });
      expect(await toggle.textContent()).toBe("\u25B8 1 process gone (listed until the agent forgets them): show");
      expect(await toggle.getAttribute("aria-expanded")).toBe("false");
      expect(await row(r.pid!).count()).toBe(0);
      expect(await charts.evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-pid"))))).toEqual([high.pid, low.pid]);

      await toggle.click();
      await row(r.pid!).waitFor({ timeout: 5_000 });
      expect(await row(r.pid!).getAttribute("data-state")).toBe("gone");
      expect(await charts.count()).toBe(3);
      // unfolded it stays, through the next refreshes
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(await toggle.getAttribute("aria-expanded")).toBe("true");
      expect(await row(r.pid!).count()).toBe(1);
      expect(await charts.count()).toBe(3);

      await toggle.click();
      await expect.poll(() => row(r.pid!).count()).toBe(0);
      expect(await charts.count()).toBe(2);
    } finally {
      await demo.stop();
    }
  });
});
