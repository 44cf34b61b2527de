// The live view over HTTP, served by the agent's server next to /metrics (server.ts): GET / is one
// self-contained page (live-page.ts: inline CSS and script, no other asset, nothing fetched from elsewhere) that polls
// GET /api/state, the LiveState snapshot as JSON (live.ts).
import type { IncomingMessage, ServerResponse } from "node:http";

import { LIVE_PAGE } from "./live-page.js";
import type { LiveState } from "./live.js";

/** The page may run its own inline script and style and talk to this server, nothing else. */
const PAGE_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers GET and HEAD only. */
function readOnly(handler: Handler): Handler {
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
      return;
    }
    handler(req, res);
  };
}

/** GET / and GET /api/state for the agent's server. */
export function liveRoutes(live: LiveState): Record<string, Handler> {
  return {
    "/": readOnly((req, res) => {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": PAGE_POLICY,
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : LIVE_PAGE);
    }),
    "/api/state": readOnly((req, res) => {
      const body = JSON.stringify(live.snapshot());
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    }),
  };
}
