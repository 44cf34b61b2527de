// A command used wrongly, and the one parse of a command's arguments that says so. `tailguard` prints a UsageError with
// one "tailguard CMD: " prefix and a pointer to `tailguard CMD --help`, and exits with status 2 (any other error: 1).
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A bad option, value or argument. Its message says what was wrong, with the value, and what to do; by convention it
 *  starts with "tailguard CMD: ". */
export class UsageError extends Error {}

/** A negative number stands for itself (`tailguard priority 123 -10`, `--spans-file-keep -1`), not for short options
 *  -1 and -0: parseArgs would take it for those. */
const NEGATIVE = /^-\d+(\.\d+)?$/;

/**
 * `command`'s arguments through Node's parseArgs (strict): an unknown option, a missing value, a value given to a flag,
 * an argument the command does not take, or (with `positionals`) too few or too many arguments is a UsageError naming
 * the command and the argument. `--help` is not parsed here: `tailguard` answers it before a command runs.
 */
export function parseCommand<T extends ParseArgsConfig>(
  command: string,
  config: T & { args: string[] },
  positionals?: string[],
): { values: ReturnType<typeof parseArgs<T>>["values"]; positionals: string[] } {
  const negatives = new Map<string, string>();
  const args = config.args.map((a, i) => {
    if (!NEGATIVE.test(a)) return a;
    const stand = `\0${i}`;
    negatives.set(stand, a);
    return stand;
  });
  let parsed: { values: ReturnType<typeof parseArgs<T>>["values"]; positionals: string[] };
  try {
    parsed = parseArgs({ ...config, args, allowPositionals: config.allowPositionals ?? positionals !== undefined, strict: true }) as typeof parsed;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith("ERR_PARSE_ARGS_")) throw err;
    // Node's words ("Unknown option '--x'", "Option '--port <value>' argument missing"), on one line
    const what = e.message
      .replace(/\s*\n\s*/g, " ")
      .replace(/\. This command does not take positional arguments/, "")
      .replace(/\.$/, "")
      .replace(/\0\d+/g, (s) => negatives.get(s) ?? s);
    throw new UsageError(`tailguard ${command}: ${what[0].toLowerCase()}${what.slice(1)}`);
  }
  const back = (v: unknown): unknown =>
    typeof v === "string" ? negatives.get(v) ?? v : Array.isArray(v) ? v.map(back) : v;
  const values = Object.fromEntries(Object.entries(parsed.values).map(([k, v]) => [k, back(v)])) as typeof parsed.values;
  const given = parsed.positionals.map((p) => back(p) as string);
  if (positionals && given.length !== positionals.length) {
    const got = given.length
      ? `${given.length} argument${given.length > 1 ? "s" : ""}: ${given.map((p) => JSON.stringify(p)).join(" ")}`
      : "none";
    throw new UsageError(`tailguard ${command}: expects ${positionals.join(" ")}, got ${got}`);
  }
  return { values, positionals: given };
}
