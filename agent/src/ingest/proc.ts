// /proc/PID/stat, read the one way: the command name (field 2) is in parentheses and may hold spaces or parentheses,
// so the fields resume after the last ")".
import { readdirSync, readFileSync } from "node:fs";

/** Fields 3 onwards of a /proc/PID/stat line (index 0 is field 3, the state), or null if it is not one. */
export function statFields(stat: string): string[] | null {
  const close = stat.lastIndexOf(")");
  return close < 0 ? null : stat.slice(close + 2).trim().split(" ");
}

/** Field 2 of a /proc/PID/stat line, the command name (its program's, until it execs another), or null. */
export function statComm(stat: string): string | null {
  const open = stat.indexOf("("), close = stat.lastIndexOf(")");
  return open < 0 || close < open ? null : stat.slice(open + 1, close);
}

/** /proc/PID/stat as it is now, or null if the process is gone or unreadable. */
export function readStat(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
}

/** Fields 3 onwards of /proc/PID/stat, or null if the process is gone or unreadable. */
export function readStatFields(pid: number): string[] | null {
  try {
    return statFields(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** Field 22, the process's start time in clock ticks since boot: with the pid, it names one process. */
export function startTicks(fields: string[] | null): string | null {
  return fields && fields.length > 19 ? fields[19] : null;
}

/** Linux reports process times in USER_HZ ticks, 100 per second on every architecture's ABI. */
const USER_HZ = 100;

/** Fields 14 and 15, the CPU time every thread of the process has used, user + system, in ns; null if not there. */
export function cpuTimeNs(fields: string[] | null): number | null {
  if (!fields || fields.length <= 12) return null;
  const utime = Number(fields[11]), stime = Number(fields[12]);
  return Number.isInteger(utime) && Number.isInteger(stime) ? ((utime + stime) * 1e9) / USER_HZ : null;
}

/** The pid, in this /proc, of the process that is `pid` in its own (nested) PID namespace and started at `ticks`: the
 *  one whose NSpid line (its pid in each namespace it is in, this one first) ends with `pid`. Null if none: a
 *  namespace this one does not contain, or gone. Reads /proc once per process, so it is for a new ring, not a hot path. */
export function hostPidOf(pid: number, ticks: string): number | null {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || startTicks(readStatFields(Number(e))) !== ticks) continue;
    try {
      const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${e}/status`, "utf8"))?.[1].trim().split(/\s+/);
      if (nspid && nspid.length > 1 && Number(nspid.at(-1)) === pid) return Number(e);
    } catch {
      /* gone meanwhile */
    }
  }
  return null;
}
