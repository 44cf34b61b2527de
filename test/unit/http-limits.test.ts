// The agent's HTTP server under idle and slow clients (agent/src/serve/http-limits.ts, through ServedMetrics as the agent
// builds it): a bounded number of connections, idle ones closed after a timeout, a slowloris that cannot stop /metrics,
// and requests in progress never cut for newcomers. Timeouts are shortened here through the endpoint's options.
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";

import type { ServerEndpoint } from "../../agent/src/serve/server.js";
import { ServedMetrics } from "../support/served-metrics.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let open: ServedMetrics[] = [];
let sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(open.map((m) => m.shutdown()));
  open = [];
  sockets = [];
});

async function server(endpoint: Omit<ServerEndpoint, "port">, routes = {}) {
  const m = new ServedMetrics({ endpoint, routes });
  open.push(m);
  await m.ready;
  const port = Number(new URL(m.url()!).port);
  return { m, port };
}

/** A client socket (`closed` once the server closed it) and its connection. */
function client(port: number): Socket & { connected: Promise<void> } {
  const s = connect(port, "127.0.0.1") as Socket & { connected: Promise<void> };
  s.connected = new Promise((resolve) => s.once("connect", () => resolve()));
  s.on("error", () => {}); // reset by the server: seen as `closed`
  s.on("data", () => {});
  sockets.push(s);
  return s;
}

/** Opens `n` idle connections, at most 500 connecting at a time (the test machine has 2 cores). */
async function idleClients(port: number, n: number) {
  const all: ReturnType<typeof client>[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, () => client(port));
    await Promise.all(batch.map((s) => Promise.race([s.connected, new Promise((r) => s.once("close", r))])));
    all.push(...batch);
  }
  return all;
}

describe("the agent's HTTP server limits", () => {
  it("a slowloris of 3,000 idle sockets: /metrics answers at once, the idle sockets are closed after the idle timeout", async () => {
    const { m, port } = await server({ maxConnections: 64, idleTimeoutMs: 400 });
    const idle = await idleClients(port, 3000);
    const t0 = Date.now();
    const res = await fetch(m.url()!, { signal: AbortSignal.timeout(1000) });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("tailguard_processes_attached");
    expect(Date.now() - t0).toBeLessThan(1000);
    // never more open than the limit: the newest connections pushed out the oldest idle ones
    expect(m.connections().open).toBeLessThanOrEqual(64);
    expect(m.connections().evicted).toBeGreaterThan(1000); // the others were idle for the timeout meanwhile
    // and the rest go when they have been idle for the timeout
    await until("every idle socket closed", () => idle.every((s) => s.closed), 5000);
    expect(m.connections().open).toBe(0);
  });

  it("closes a keep-alive connection idle after its response, and a client that drips its headers", async () => {
    const { m, port } = await server({ idleTimeoutMs: 300, headersTimeoutMs: 500 });
    // keep-alive: one request answered, then silence
    const keep = client(port);
    await keep.connected;
    let answer = "";
    keep.on("data", (d) => (answer += d));
    keep.write("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    await until("the response", () => answer.startsWith("HTTP/1.1 200"));
    // slowloris: a header line every 100 ms, never the end of the headers (it is never idle for 300 ms)
    const drip = client(port);
    await drip.connected;
    drip.write("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    let dripped = "";
    drip.on("data", (d) => (dripped += d));
    const timer = setInterval(() => drip.closed || drip.write(`X-${Math.random()}: y\r\n`), 100);
    try {
      await until("the idle keep-alive connection closed", () => keep.closed, 3000);
      await until("the dripping client closed", () => drip.closed, 4000);
    } finally {
      clearInterval(timer);
    }
    expect(dripped).toMatch(/^HTTP\/1\.1 408/);
    expect(m.connections().open).toBe(0);
  });

  it("never cuts a request in progress for a new connection; refuses newcomers only when every connection is busy", async () => {
    const waiting: (() => void)[] = [];
    const { m, port } = await server({ maxConnections: 4, idleTimeoutMs: 10_000 }, {
      // a route that answers when the test says so: a request in progress for as long as the test needs
      "/slow": (_req: unknown, res: { end: (s: string) => void }) => waiting.push(() => res.end("done\n")),
    });
    const base = `http://127.0.0.1:${port}`;
    const slow = [fetch(`${base}/slow`), fetch(`${base}/slow`)];
    await until("two requests in progress", () => waiting.length === 2);
    // a flood of idle connections takes the two free places, over and over
    const idle = await idleClients(port, 50);
    await until("all but two idle sockets pushed out", () => idle.filter((s) => !s.closed).length <= 2);
    // every place busy: a newcomer is refused at once, the requests in progress go on
    const more = [fetch(`${base}/slow`), fetch(`${base}/slow`)];
    await until("four requests in progress", () => waiting.length === 4);
    const refused = client(port);
    await until("the newcomer refused", () => refused.closed, 3000);
    expect(m.connections().refused).toBeGreaterThanOrEqual(1);
    for (const answer of waiting) answer();
    for (const res of await Promise.all([...slow, ...more])) {
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("done\n");
    }
  });
});
