// The CLI's discipline (issue 17), for every subcommand in the CLI's own table: `--help`, `-h` and `tailguard help CMD`
// print its usage and exit 0; `--version` is package.json's; a bad option, value or argument exits 2 with one line that
// names the command and what was wrong; any other failure exits 1, with one prefix.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { COMMANDS, commandHelp } from "../../agent/src/cli.js";
import { PRIORITY_ACCEPTED } from "../../agent/src/ingest/native.js";
import { root, runProgram, simEnv, testDir } from "../support/native.js";
import { cli } from "../support/tailguard.js";

const names = Object.keys(COMMANDS);
const tailguard = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  runProgram(process.execPath, [cli, ...args], { env, timeoutMs: 30_000 });
/** The one line a usage error of `name` ends with. */
const usageLine = (name: string, what: string) => `tailguard ${name}: ${what}; see 'tailguard ${name} --help'\n`;

describe("tailguard --help, -h and help", () => {
  it("the table holds every command", () => {
    expect(names).toEqual(["run", "ps", "priority", "report", "agent", "top", "doctor", "options", "demo", "bench"]);
  });

  it.each(names)("%s: --help, -h and `tailguard help CMD` print its usage on stdout and exit 0", async (name) => {
    const help = commandHelp(name);
    expect(help).toMatch(new RegExp(`^usage: tailguard ${name}\\b`));
    for (const args of [[name, "--help"], [name, "-h"], ["help", name], [name, "--no-such-option", "--help"]]) {
      const r = await tailguard(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args.join(" ")).toBe(`${help}\n`);
      expect(r.stderr, args.join(" ")).toBe("");
    }
  });

  it("tailguard --help lists every command's usage; bare tailguard prints it on stderr with status 2", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const r = await tailguard(args);
      expect(r.code, args[0]).toBe(0);
      for (const name of names) expect(r.stdout).toContain(COMMANDS[name].usage);
    }
    const bare = await tailguard([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe("");
    expect(bare.stderr).toMatch(/^usage: tailguard <command> \[options\]/);
  });

  it("after --, --help is the program's: tailguard run passes it on", async () => {
    const dir = testDir("cli-run-help");
    const r = await tailguard(["run", "--", "/bin/sh", "-c", 'echo "program got $1"', "sh", "--help"], simEnv(dir));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("program got --help\n");
  });
});

describe("tailguard --version", () => {
  it("prints package.json's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
    for (const flag of ["--version", "-V"]) {
      const r = await tailguard([flag]);
      expect(r.code, flag).toBe(0);
      expect(r.stdout).toBe(`tailguard ${version}\n`);
    }
  });
});

describe("usage errors: status 2, one line naming the command and what was wrong", () => {
  it.each(names)("%s: an unknown option is named", async (name) => {
    const r = await tailguard([name, "--no-such-option"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toHaveLength(2); // one line
    expect(r.stderr).toMatch(new RegExp(`^tailguard ${name}: unknown option '--no-such-option'.*; see 'tailguard ${name} --help'\\n$`));
  });

  it("a missing value, a bad value, a missing or extra argument", async () => {
    for (const [args, what] of [
      [["agent", "--port"], "option '--port <value>' argument missing"],
      [["agent", "--port", "http"], '--port must be a number from 0 to 65535, not "http"'],
      [["agent", "--spans-file", "/dev/null", "--spans-file-keep", "-1"], '--spans-file-keep must be a number from 0 to 1000, not "-1"'],
      [["top", "--interval", "0"], '--interval must be a number of seconds from 0.1 to 3600, not "0"'],
      [["run", "--priority", "urgent", "--", "/bin/true"], `--priority "urgent" is not a priority (an ${PRIORITY_ACCEPTED})`],
      [["run", "stray", "--", "/bin/true"], "unexpected argument 'stray'"],
      [["run", "--sim"], "no command given: name it after -- (tailguard run [options] -- CMD [ARGS...])"],
      [["ps", "--json=yes"], "option '--json' does not take an argument"],
      [["ps", "extra"], "unexpected argument 'extra'"],
      [["report"], "expects FILE, got none"],
      [["report", "a.jsonl", "b.jsonl"], 'expects FILE, got 2 arguments: "a.jsonl" "b.jsonl"'],
      [["priority", "123"], 'expects <PID|NAME> <P>, got 1 argument: "123"'],
      [["priority", "123", "urgent"], `"urgent" is not a priority (an ${PRIORITY_ACCEPTED})`],
      [["options", "all"], "unexpected argument 'all'"],
      [["bench", "--sim", "--rate=-3"], '--rate "-3" is not a number in (0, 10000]'],
    ] as const) {
      const r = await tailguard([...args], simEnv(testDir("cli-usage")));
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(" ")).toBe(usageLine(args[0], what));
    }
  });

  it("an unknown command lists the commands", async () => {
    for (const args of [["bogus"], ["help", "bogus"]]) {
      const r = await tailguard(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toBe(`tailguard: unknown command "bogus" (commands: ${names.join(", ")}); see 'tailguard --help'\n`);
    }
  });
});

describe("failures: status 1, one prefix", () => {
  it("run -- /nonexistent: the program cannot be started", async () => {
    const r = await tailguard(["run", "--", "/nonexistent"], simEnv(testDir("cli-run-missing")));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("tailguard run: cannot start /nonexistent: spawn /nonexistent ENOENT\n");
  });

  it("priority: no running process matches", async () => {
    const r = await tailguard(["priority", "no-such-program", "-10"], simEnv(testDir("cli-priority")));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tailguard priority: no running process with the shim attached matches "no-such-program": ' +
      "`tailguard ps` lists them\n");
  });
});
