// A recording session: the id its processes carry (TAILGUARD_SESSION) and the environment that starts them with the
// shim. Used by `tailguard run`, `tailguard doctor` and `tailguard bench`.
import { randomBytes } from "node:crypto";

import { shimPath, simLibDir } from "./native.js";

/** The environment that loads the shim: LD_PRELOAD first, the session, the priority, the simulated GPU. */
export function shimEnv(base: NodeJS.ProcessEnv, session: string, opts: { priority?: string; sim?: boolean }) {
  const env: NodeJS.ProcessEnv = { ...base };
  env.LD_PRELOAD = [shimPath(base), base.LD_PRELOAD].filter(Boolean).join(":");
  env.TAILGUARD_SESSION = session;
  if (opts.priority !== undefined) env.TAILGUARD_PRIORITY = opts.priority;
  if (opts.sim) env.LD_LIBRARY_PATH = [simLibDir, base.LD_LIBRARY_PATH].filter(Boolean).join(":");
  return env;
}

/** A session id names its recorder's pid, so a shim can tell whether anyone will still read its ring. */
export function newSession(): string {
  return `${process.pid}-${randomBytes(4).toString("hex")}`;
}
