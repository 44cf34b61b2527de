// `tailguard priority <pid|name> <P>`: changes the priority of running processes. The shims arbitrate through each
// GPU's control block, so the new priority is written there (and in the process's ring header, which is what it
// takes when it first attaches to a GPU); each shim applies it within 20 ms of its next launch, the channel-group
// timeslice included. No agent or daemon is involved.
import { native, PRIORITY_ACCEPTED, ringDir } from "../ingest/native.js";
import { listProcesses } from "./ps.js";
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

/** target: a pid, or a name matched against each process's program (argv[0], with or without its directory). */
export function setPriority(target: string, value: string, env: NodeJS.ProcessEnv = process.env): PriorityChange[] {
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
  return matches.map((r) => {
    const n = addon.setPriority(ringDir(env), r.pid, priority);
    if (n.denied && !n.slots && !n.rings)
      throw new Error(`pid ${r.pid} belongs to uid ${r.uid ?? "?"}: only that user or root may change its priority`);
    return { pid: r.pid, command: r.command, from: r.priority, to: priority, ...n };
  });
}
