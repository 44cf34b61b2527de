// The agent's HTTP server's limits (server.ts: /metrics and the live view), so that idle or slow clients cannot take
// its descriptors or its attention: a bounded number of connections, and timeouts that close a connection nobody uses.
//
// At the limit a new connection takes the place of the connection idle the longest (one with no request in progress:
// connected and silent, between keep-alive requests, or still sending its headers) rather than being refused: a
// slowloris of thousands of idle sockets then only pushes out idle sockets, and a scraper's new connection is the last
// to go. A connection with a request in progress is never cut for another; only when every connection has one is a
// new connection refused (closed at once).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface HttpLimits {
  /** connections open at once */
  maxConnections: number;
  /** a connection with no request in progress is closed after this long (ms): silent since it connected, or since
   *  its last response (keep-alive) */
  idleTimeoutMs: number;
  /** a request whose headers have not all arrived this long after it began is answered 408 and closed (ms) */
  headersTimeoutMs: number;
  /** a request not received whole this long after it began is answered 408 and closed (ms) */
  requestTimeoutMs: number;
}

/** Prometheus scrapes every 15 s to 1 min, the live view polls every second: idle connections do not need to live long. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 256,
  idleTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
};

/** The kernel's queue of connections not yet accepted (listen's backlog, capped by net.core.somaxconn). At Node's
 *  default, 511, a burst of connections past it waits a second each for a SYN retransmission: 3,000 connections took
 *  5.2 s at 511, 0.15 s at 4,096 (loopback, 100 connecting at a time). */
export const LISTEN_BACKLOG = 4096;

/** What the limits did so far. */
export interface HttpLimitStats {
  open: number;
  /** idle connections closed to make room for a new one */
  evicted: number;
  /** new connections closed because every connection had a request in progress */
  refused: number;
}

/** An HTTP server that keeps to `limits`; `stats` says what they did. */
export function limitedServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  limits: HttpLimits,
): { server: Server; stats: () => HttpLimitStats } {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      // how often Node checks the two timeouts above (its default, 30 s, would let them run 30 s late)
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    handler,
  );
  server.keepAliveTimeout = limits.idleTimeoutMs;
  // inactivity of a socket before its first request (Node has none by default); no 'timeout' listener: it is closed
  server.timeout = limits.idleTimeoutMs;

  // open connections → requests in progress on each; in the order they last became idle (oldest first)
  const open = new Map<Socket, number>();
  let evicted = 0;
  let refused = 0;
  server.on("connection", (socket: Socket) => {
    if (open.size >= limits.maxConnections) {
      let idle: Socket | null = null;
      for (const [s, busy] of open)
        if (busy === 0) {
          idle = s;
          break;
        }
      if (idle === null) {
        refused++;
        socket.destroy();
        return;
      }
      evicted++;
      open.delete(idle);
      idle.destroy();
    }
    open.set(socket, 0);
    socket.once("close", () => open.delete(socket));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const busy = open.get(socket);
    if (busy === undefined) return; // closed meanwhile
    open.set(socket, busy + 1);
    res.once("close", () => {
      const left = open.get(socket);
      if (left === undefined) return;
      // idle again: to the back of the line
      open.delete(socket);
      open.set(socket, left - 1);
    });
  });
  return { server, stats: () => ({ open: open.size, evicted, refused }) };
}
