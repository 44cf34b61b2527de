// `tailguard top`: the live view at a glance in a terminal. It reads the agent's /api/state (live.ts, web.ts) every
// --interval seconds and redraws one table in place; --once prints one snapshot and exits.
import type { LiveSnapshot } from "../serve/live.js";
import { parseCommand, UsageError } from "./usage.js";
import { formatColumns, msText, type Column } from "./table.js";

export const TOP_USAGE = `  top [--url URL] [--once] [--interval S]
                 the agent's live view in the terminal: attached processes, priorities, P50/P99 of their recent
                 request windows, their GPU time and queue delay, holds, drops; from URL/api/state (default
                 http://127.0.0.1:9464)`;

const DEFAULT_URL = "http://127.0.0.1:9464";

export interface TopOptions {
  /** the agent's base URL */
  url: string;
  once: boolean;
  intervalMs: number;
}

export function topOptions(args: string[]): TopOptions {
  const { values } = parseCommand("top", {
    args,
    options: { url: { type: "string" }, once: { type: "boolean" }, interval: { type: "string" } },
  });
  const interval = Number(values.interval ?? "1");
  if (!Number.isFinite(interval) || interval < 0.1 || interval > 3600)
    throw new UsageError(`tailguard top: --interval must be a number of seconds from 0.1 to 3600, not "${values.interval}"`);
  return { url: baseUrl(values.url ?? DEFAULT_URL), once: Boolean(values.once), intervalMs: interval * 1000 };
}

/** The agent's base URL from what people paste: with or without a trailing slash, /metrics (the Prometheus URL the
 *  agent prints) or /api/state. */
function baseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new UsageError(`tailguard top: --url must be the agent's address, such as ${DEFAULT_URL}, not "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`tailguard top: --url must be an http:// address, not "${text}"`);
  url.pathname = url.pathname.replace(/\/(metrics|api\/state)\/?$/, "").replace(/\/+$/, "");
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/+$/, "");
}

/** Reads the agent's live state; an agent that cannot be reached or answers something else is one clear error. */
export async function fetchState(url: string, timeoutMs = 5000): Promise<LiveSnapshot> {
  const where = `${url}/api/state`;
  let res: Response;
  try {
    res = await fetch(where, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === "TimeoutError" ? `no answer in ${timeoutMs / 1000} s` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new Error(`cannot reach the tailguard agent at ${url} (${why}); is \`tailguard agent\` running there? (--url says where)`);
  }
  if (!res.ok)
    throw new Error(`the tailguard agent at ${url} answered ${res.status} ${res.statusText} for /api/state (an agent older than the live view?)`);
  try {
    const state = (await res.json()) as LiveSnapshot;
    if (!Array.isArray(state.processes) || typeof state.totals !== "object") throw new Error("not a live-state object");
    return state;
  } catch (e) {
    throw new Error(`${where} did not answer the agent's live state: ${(e as Error).message}`);
  }
}

const TOP_COLUMNS: Column[] = [
  { title: "PID", width: 8, align: "left" },
  { title: "PRIO", width: 6, align: "left" },
  { title: "SERVICE", width: 18, align: "left" },
  { title: "STATE", width: 9, align: "left" },
  { title: "WINDOWS", width: 9, align: "right" },
  { title: "P50 ms", width: 9, align: "right" },
  { title: "P99 ms", width: 9, align: "right" },
  { title: "GPU P50", width: 10, align: "right" },
  { title: "QUEUE P50", width: 11, align: "right" },
  { title: "QUEUE P99", width: 11, align: "right" },
  { title: "HOLDS", width: 8, align: "right" },
  { title: "HELD ms", width: 11, align: "right" },
  { title: "DROPS", width: 8, align: "right" },
];

/** The snapshot as lines: a summary, then one row per process. */
export function formatTop(s: LiveSnapshot, url: string): string[] {
  const t = s.totals;
  const head = [
    `tailguard top — ${url} — ${new Date(s.now).toISOString().replace("T", " ").slice(0, 19)} UTC`,
    `${t.processes} attached, ${t.windows} request windows, ${t.holds} holds, ${t.dropped} records dropped; ` +
      `P50/P99 of the windows of the last ${s.recentSeconds} s; GPU time and queue delay (ms) measured on the device`,
    "",
  ];
  if (s.processes.length === 0) return [...head, "  no process has the shim attached yet"];
  const rows = s.processes.map((p) => [String(p.pid), String(p.priority), p.service, p.state, String(p.windows), msText(p.recent.p50),
    msText(p.recent.p99), msText(p.recent.gpuP50 ?? null), msText(p.recent.queueP50 ?? null), msText(p.recent.queueP99 ?? null),
    String(p.holds), p.heldMs.toFixed(1), String(p.dropped)]);
  return [...head, ...formatColumns(TOP_COLUMNS, rows)];
}

/** ANSI: cursor home, then each line cleared to its end, then the rest of the screen cleared. */
const redraw = (lines: string[]) => `\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`;

export async function topCommand(args: string[]): Promise<number> {
  const opts = topOptions(args);
  const first = await fetchState(opts.url); // an agent that is not there is an error at once, not an empty screen
  if (opts.once) {
    for (const line of formatTop(first, opts.url)) console.log(line);
    return 0;
  }
  const tty = process.stdout.isTTY;
  const show = (lines: string[]) => process.stdout.write(tty ? redraw(lines) : `${lines.join("\n")}\n\n`);
  if (tty) process.stdout.write("\x1b[?25l\x1b[2J"); // hide the cursor, clear once
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  let lines = formatTop(first, opts.url);
  show(lines);
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    try {
      lines = formatTop(await fetchState(opts.url), opts.url);
      show(lines);
    } catch (e) {
      // the agent restarting: keep the last table, say so, and keep asking
      show([...lines, "", `! ${(e as Error).message} — retrying every ${opts.intervalMs / 1000} s`]);
    }
    timer = setTimeout(tick, opts.intervalMs);
  };
  timer = setTimeout(tick, opts.intervalMs);
  await stopped;
  clearTimeout(timer);
  if (tty) process.stdout.write("\x1b[?25h\n"); // the cursor back
  return 0;
}
