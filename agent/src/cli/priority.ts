// `tailguard priority <pid|name> <P> [--all]`: changes the priority of running processes. A name that more than one
// process has (every `python3`) is refused unless --all says every one of them is meant. The shims arbitrate through each
// GPU's control block, so the new priority is written there (and in the process's ring header, which is what it
// takes when it first attaches to a GPU); each shim applies it within 20 ms of its next launch, the channel-group
// timeslice included. No agent or daemon is involved.
import { readFileSync } from "node:fs";

import { native, PRIORITY_ACCEPTED, ringDir } from "../ingest/native.js";
import { listProcesses, type PsRow } from "./ps.js";
import { UsageError } from "./usage.js";

export interface PriorityChange {
  pid: number;
  command: string;
  from: number | null;
  to: number;
  slots: number;
  rings: number;
  /** files of the process this user may not write (another user's process: only that user or root may) */
  denied: number;
  /** the highest priority its user may take (the admin's policy), or null when it is on no GPU yet */
  ceiling: number | null;
}

/** target: a pid, or a name matched against each process's program (argv[0], with or without its directory); a name
 *  that matches more than one process changes them only with `all`. */
export function setPriority(target: string, value: string, env: NodeJS.ProcessEnv = process.env, all = false): PriorityChange[] {
  const addon = native();
  const priority = addon.parsePriority(value);
  if (priority === null)
    throw new UsageError(`tailguard priority: "${value}" is not a priority (an ${PRIORITY_ACCEPTED})`);
  const { rows } = listProcesses(env);
  const live = rows.filter((r) => r.alive && !r.error);
  const byPid = /^\d+$/.test(target);
  const matches = live.filter((r) => {
    if (byPid) return r.pid === Number(target);
    const prog = r.command.split(" ")[0] ?? "";
    return prog === target || prog.split("/").pop() === target;
  });
  const foreign = byPid && rows.find((r) => r.pid === Number(target) && r.alive && r.error?.includes("another user's"));
  if (matches.length === 0 && foreign)
    throw new Error(`pid ${target} belongs to another user: only that user or root may change its priority`);
  if (matches.length === 0)
    throw new Error(`no running process with the shim attached matches "${target}": \`tailguard ps\` lists them`);
  if (matches.length > 1 && !all)
    throw new UsageError(
      `tailguard priority: ${matches.length} processes match "${target}"; nothing was changed:\n` +
        describeMatches(matches).join("\n") +
        `\nName one by its pid (tailguard priority PID ${value}), or change them all with --all ` +
        `(tailguard priority ${target} ${value} --all)`,
    );
  return matches.map((r) => {
    const n = addon.setPriority(ringDir(env), r.pid, priority);
    if (n.denied && !n.slots && !n.rings)
      throw new Error(`pid ${r.pid} belongs to uid ${r.uid ?? "?"}: only that user or root may change its priority`);
    return { pid: r.pid, command: r.command, from: r.priority, to: priority, ...n };
  });
}

/** The processes a name matched, one a line: pid, user, priority in force, command line. */
function describeMatches(rows: PsRow[]): string[] {
  const users = userNames();
  const cells = rows.map((r) => [
    String(r.pid),
    r.uid === null ? "?" : users.get(r.uid) ?? `uid ${r.uid}`,
    `priority ${r.priority ?? "?"}`,
    r.command,
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => c[i].length)));
  return cells.map((c) => "  " + c.map((x, i) => (i < 3 ? x.padEnd(widths[i]) : x)).join("  "));
}

/** uid → user name, from /etc/passwd (empty when it cannot be read: uids are shown as numbers). */
function userNames(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , uid] = line.split(":");
      if (name && /^\d+$/.test(uid ?? "") && !names.has(Number(uid))) names.set(Number(uid), name);
    }
  } catch {
    /* no passwd file (a minimal container) */
  }
  return names;
}
