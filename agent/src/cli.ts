#!/usr/bin/env node
// The `tailguard` command: one subcommand per job, each in its own module.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { AGENT_USAGE, agentCommand } from "./cli/agent.js";
import { BENCH_USAGE, benchCommand } from "./bench/command.js";
import { doctor, formatChecks } from "./cli/doctor.js";
import { BadDirError, native, packageRoot, Priority } from "./ingest/native.js";
import { setPriority } from "./cli/priority.js";
import { formatPs, listProcesses } from "./cli/ps.js";
import { formatReport, formatSkipped, report } from "./cli/report.js";
import { run } from "./cli/run.js";
import { UsageError } from "./cli/usage.js";
import { TOP_USAGE, topCommand } from "./cli/top.js";

const USAGE = `usage: tailguard <command> [options]

  run [--priority P] [--sim] [--record FILE] -- CMD [ARGS...]
                 run CMD with the shim loaded; --sim puts the simulated GPU in front of the real driver;
                 --record writes every event of CMD and its children as JSON lines; prints a summary at exit
  ps [--json]    processes with the shim attached: effective priority, scheduling mechanisms in effect, time held
  priority <PID|NAME> <P> [--all]
                 change the priority of a running process (by pid, or the process whose program is NAME; a NAME
                 that several processes have is refused, listing them, unless --all changes every one)
  report [--json] FILE
                 percentiles (P50 to P99.99, max) per process of a --record file or an HdrHistogram interval log
${AGENT_USAGE}
${TOP_USAGE}
  doctor [--sim] check that the shim attaches and sees launches on this machine
  options        every TAILGUARD_* variable, its default and accepted values
  demo           a recorded run of an inference-like workload on the simulated GPU
${BENCH_USAGE}

Priorities are integers from ${Priority.MIN} to ${Priority.MAX} (larger runs first) or high (${Priority.HIGH}), normal (${Priority.NORMAL}), low (${Priority.LOW}).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run": {
      const split = rest.indexOf("--");
      const own = split >= 0 ? rest.slice(0, split) : rest;
      const { values, positionals } = parseArgs({
        args: own,
        options: { priority: { type: "string" }, sim: { type: "boolean" }, record: { type: "string" } },
        allowPositionals: true,
      });
      const cmd = split >= 0 ? rest.slice(split + 1) : positionals;
      const r = await run({ command: cmd, priority: values.priority, sim: values.sim, record: values.record });
      return r.exitCode;
    }
    case "ps": {
      const { values } = parseArgs({ args: rest, options: { json: { type: "boolean" } } });
      const { rows, removed, dir } = listProcesses();
      if (values.json) console.log(JSON.stringify({ dir, removed, processes: rows }, null, 2));
      else if (rows.length === 0) console.log(`no process has the shim attached (rings in ${dir})`);
      else for (const line of formatPs(rows)) console.log(line);
      return 0;
    }
    case "priority": {
      // not parseArgs: a priority may be negative (-10), which it would take for an option
      const positionals = rest.filter((a) => a !== "--all");
      if (positionals.length !== 2) throw new UsageError(`usage: tailguard priority <PID|NAME> <P> [--all]\n\n${USAGE}`);
      for (const c of setPriority(positionals[0], positionals[1], process.env, rest.includes("--all")))
        console.log(`${c.pid} ${c.command}: priority ${c.from ?? "?"} -> ${c.ceiling !== null && c.to > c.ceiling ? c.ceiling : c.to}` +
          (c.slots ? "" : " (not on a GPU yet: it takes this priority when it first launches)") +
          (c.ceiling !== null && c.to > c.ceiling
            ? ` (asked ${c.to}, above the ceiling ${c.ceiling} the admin's policy gives its user: docs/security.md)`
            : ""));
      return 0;
    }
    case "report": {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { json: { type: "boolean" } },
        allowPositionals: true,
      });
      if (positionals.length !== 1) throw new UsageError(`usage: tailguard report [--json] FILE\n\n${USAGE}`);
      const r = await report(positionals[0]);
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else for (const line of formatReport(r)) console.log(line);
      // lines that could not be read are left out of the report, not silently
      const skipped = formatSkipped(r);
      if (skipped) process.stderr.write(`${skipped}\n`);
      return 0;
    }
    case "agent":
      return agentCommand(rest);
    case "bench":
      return benchCommand(rest);
    case "top":
      return topCommand(rest);
    case "doctor": {
      const { values } = parseArgs({ args: rest, options: { sim: { type: "boolean" } } });
      const checks = await doctor({ sim: values.sim });
      for (const line of formatChecks(checks)) console.log(line);
      return checks.every((c) => c.ok) ? 0 : 1;
    }
    case "options": {
      for (const o of native().options())
        console.log(`${o.variable}  (default: ${o.default || "unset"}; ${o.accepted}; read by ${o.readBy}` +
          `${o.formerly ? `; formerly ${o.formerly}` : ""})\n    ${o.meaning}`);
      return 0;
    }
    case "demo": {
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
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command ? 0 : 2;
    default:
      throw new UsageError(`tailguard: unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    // a bad value (an option, TAILGUARD_DIR) is the caller's to fix: exit 2, and its message says what to do
    const usage = err instanceof UsageError || err instanceof BadDirError;
    process.stderr.write(`${err instanceof UsageError ? err.message : `tailguard: ${(err as Error).message}`}\n`);
    process.exit(usage ? 2 : 1);
  },
);
