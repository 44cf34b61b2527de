#!/usr/bin/env node
// The `tailguard` command: one subcommand per job, each in its own module.
import { mkdtempSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { AGENT_USAGE, agentCommand } from "./cli/agent.js";
import { BENCH_OPTIONS, BENCH_USAGE, benchCommand } from "./bench/command.js";
import { doctor, formatChecks } from "./cli/doctor.js";
import { BadDirError, native, packageRoot, Priority } from "./ingest/native.js";
import { setPriority } from "./cli/priority.js";
import { formatPs, listProcesses } from "./cli/ps.js";
import { formatReport, formatSkipped, report } from "./cli/report.js";
import { run } from "./cli/run.js";
import { parseCommand, UsageError } from "./cli/usage.js";
import { TOP_USAGE, topCommand } from "./cli/top.js";

const PRIORITIES = `Priorities are integers from ${Priority.MIN} to ${Priority.MAX} (larger runs first) or high (${Priority.HIGH}), normal (${Priority.NORMAL}), low (${Priority.LOW}).`;

/** A subcommand: its lines in `tailguard --help`, anything more `tailguard CMD --help` says, and what it does. */
interface Command {
  /** the synopsis, then what it does (indented) */
  usage: string;
  more?: string;
  run(args: string[]): Promise<number>;
}

/** Every subcommand, in the order `tailguard --help` lists them. `--help` and `-h` are answered from here before a
 *  command runs, so none can lack them (test/e2e/cli-discipline.test.ts walks this table). */
export const COMMANDS: Record<string, Command> = {
  run: {
    usage: `  run [--priority P] [--sim] [--record FILE] -- CMD [ARGS...]
                 run CMD with the shim loaded; --sim puts the simulated GPU in front of the real driver;
                 --record writes every event of CMD and its children as JSON lines; prints a summary at exit`,
    more: `Options after -- are CMD's own (tailguard run -- CMD --help). Exit status: CMD's; 3 when no process of CMD
attached the shim; 1 when CMD cannot be started; 2 for a bad option or value.
${PRIORITIES}`,
    async run(rest) {
      // the options before --; what follows is the command's, --help included
      const split = rest.indexOf("--");
      const own = split >= 0 ? rest.slice(0, split) : rest;
      const { values, positionals } = parseCommand("run", {
        args: own,
        options: { priority: { type: "string" }, sim: { type: "boolean" }, record: { type: "string" } },
        allowPositionals: split < 0,
      });
      const cmd = split >= 0 ? rest.slice(split + 1) : positionals;
      const r = await run({ command: cmd, priority: values.priority, sim: values.sim, record: values.record });
      return r.exitCode;
    },
  },
  ps: {
    usage: `  ps [--json]    processes with the shim attached: effective priority, scheduling mechanisms in effect, time held`,
    async run(rest) {
      const { values } = parseCommand("ps", { args: rest, options: { json: { type: "boolean" } } });
      const { rows, removed, dir } = listProcesses();
      if (values.json) console.log(JSON.stringify({ dir, removed, processes: rows }, null, 2));
      else if (rows.length === 0) console.log(`no process has the shim attached (rings in ${dir})`);
      else for (const line of formatPs(rows)) console.log(line);
      return 0;
    },
  },
  priority: {
    usage: `  priority <PID|NAME> <P> [--all]
                 change the priority of a running process (by pid, or the process whose program is NAME; a NAME
                 that several processes have is refused, listing them, unless --all changes every one)`,
    more: `Exit status: 1 when no running process matches, or its priority is not this user's to change; 2 when NAME
matches several processes and --all is not given (nothing is changed).
${PRIORITIES}`,
    async run(rest) {
      const { values, positionals: [target, value] } = parseCommand(
        "priority", { args: rest, options: { all: { type: "boolean" } } }, ["<PID|NAME>", "<P>"]);
      for (const c of setPriority(target, value, process.env, values.all === true))
        console.log(`${c.pid} ${c.command}: priority ${c.from ?? "?"} -> ${c.ceiling !== null && c.to > c.ceiling ? c.ceiling : c.to}` +
          (c.slots ? "" : " (not on a GPU yet: it takes this priority when it first launches)") +
          (c.ceiling !== null && c.to > c.ceiling
            ? ` (asked ${c.to}, above the ceiling ${c.ceiling} the admin's policy gives its user: docs/security.md)`
            : ""));
      return 0;
    },
  },
  report: {
    usage: `  report [--json] FILE
                 percentiles (P50 to P99.99, max) per process of a --record file or an HdrHistogram interval log`,
    async run(rest) {
      const { values, positionals } = parseCommand("report", { args: rest, options: { json: { type: "boolean" } } }, ["FILE"]);
      const r = await report(positionals[0]);
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else for (const line of formatReport(r)) console.log(line);
      // lines that could not be read are left out of the report, not silently
      const skipped = formatSkipped(r);
      if (skipped) process.stderr.write(`${skipped}\n`);
      return 0;
    },
  },
  agent: { usage: AGENT_USAGE, run: agentCommand },
  top: { usage: TOP_USAGE, run: topCommand },
  doctor: {
    usage: `  doctor [--sim] check that the shim attaches and sees launches on this machine`,
    more: "Exit status: 0 when every check passed, 1 when one failed.",
    async run(rest) {
      const { values } = parseCommand("doctor", { args: rest, options: { sim: { type: "boolean" } } });
      const checks = await doctor({ sim: values.sim });
      for (const line of formatChecks(checks)) console.log(line);
      return checks.every((c) => c.ok) ? 0 : 1;
    },
  },
  options: {
    usage: `  options        every TAILGUARD_* variable, its default and accepted values`,
    async run(rest) {
      parseCommand("options", { args: rest, options: {} });
      for (const o of native().options())
        console.log(`${o.variable}  (default: ${o.default || "unset"}; ${o.accepted}; read by ${o.readBy}` +
          `${o.formerly ? `; formerly ${o.formerly}` : ""})\n    ${o.meaning}`);
      return 0;
    },
  },
  demo: {
    usage: `  demo           a recorded run of an inference-like workload on the simulated GPU`,
    async run(rest) {
      parseCommand("demo", { args: rest, options: {} });
      const out = path.join(mkdtempSync(path.join(tmpdir(), "tailguard-demo-")), "demo.jsonl");
      console.log("tailguard demo: an inference-like workload (20 requests of 12 kernels) on the simulated GPU\n");
      const r = await run({
        command: [path.join(packageRoot, "native/build/tg-workload"), "requests", "--rate", "50", "--count", "20",
          "--kernels", "12", "--kernel-us", "150", "--name", "resnet_block"],
        priority: "high",
        sim: true,
        record: out,
      });
      console.log(`\nEvery launch, sync and copy is in ${out} (one JSON object per line).`);
      return r.exitCode;
    },
  },
  bench: { usage: BENCH_USAGE, more: BENCH_OPTIONS, run: benchCommand },
};

const USAGE = `usage: tailguard <command> [options]

${Object.values(COMMANDS).map((c) => c.usage).join("\n")}

tailguard <command> --help (or tailguard help <command>) shows one command's usage; tailguard --version its version.
Exit status: 0 done, 1 failed, 2 a bad command, option or value (run: its command's own status; 3 when no process
attached the shim).

${PRIORITIES}`;

/** What `tailguard CMD --help` prints. */
export function commandHelp(name: string): string {
  const c = COMMANDS[name];
  return `usage: tailguard ${c.usage.trimStart()}${c.more ? `\n\n${c.more}` : ""}`;
}

/** `tailguard 0.1.0`: the package's version, from package.json. */
function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string };
  return `tailguard ${pkg.version}`;
}

/** --help or -h among a command's own arguments (for run: before --; after it they are the program's). */
const asksHelp = (args: string[]) => {
  const split = args.indexOf("--");
  return (split >= 0 ? args.slice(0, split) : args).some((a) => a === "--help" || a === "-h");
};

const commandNames = () => Object.keys(COMMANDS).join(", ");

/** The command named, or a usage error listing them. */
function command(name: string): Command {
  if (!Object.hasOwn(COMMANDS, name))
    throw new UsageError(`tailguard: unknown command ${JSON.stringify(name)} (commands: ${commandNames()})`);
  return COMMANDS[name];
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  switch (name) {
    case undefined:
      process.stderr.write(`${USAGE}\n`);
      return 2;
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    case "--version":
    case "-V":
      console.log(version());
      return 0;
    case "help":
      if (rest.length > 1)
        throw new UsageError(`tailguard: help takes one command, got ${rest.length}: ${rest.join(" ")} (commands: ${commandNames()})`);
      if (rest.length === 0) console.log(USAGE);
      else {
        command(rest[0]);
        console.log(commandHelp(rest[0]));
      }
      return 0;
  }
  const c = command(name);
  if (asksHelp(rest)) {
    console.log(commandHelp(name));
    return 0;
  }
  return c.run(rest);
}

/** The one line an error ends `tailguard` with: one "tailguard CMD: " prefix (a message may carry it already), and
 *  for a usage error, where the command's usage is. */
function errorLine(name: string | undefined, err: unknown): string {
  const known = name !== undefined && Object.hasOwn(COMMANDS, name);
  const prefix = known ? `tailguard ${name}: ` : "tailguard: ";
  let message = err instanceof Error ? err.message : String(err);
  if (message.startsWith(prefix)) message = message.slice(prefix.length);
  const hint = err instanceof UsageError ? `; see 'tailguard ${known ? `${name} ` : ""}--help'` : "";
  return `${prefix}${message}${hint}`;
}

/** Started as the `tailguard` command (node agent/dist/cli.js, or the npm bin link to it), not imported. */
function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntry()) {
  const argv = process.argv.slice(2);
  main(argv).then(
    (code) => process.exit(code),
    (err) => {
      // a bad value (an option, TAILGUARD_DIR) is the caller's to fix: exit 2, and its message says what to do
      const usage = err instanceof UsageError || err instanceof BadDirError;
      process.stderr.write(`${errorLine(argv[0], err)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
