// The shim never breaks its host: no reader, bad options, another interposer, a shim that cannot load.
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { cli, recordRun } from "../support/tailguard.js";
import { compileProgram, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { native } from "../../agent/src/ingest/native.js";

describe("with nothing reading the ring", () => {
  it("the program runs to completion; each full lane drops and counts exactly what did not fit", async () => {
    const dir = testDir("noreader");
    const bin = compileProgram("threads.c", { cuda: true });
    const T = 4;
    const N = 20_000;
    const capacity = 1024;
    // A session whose "recorder" is this test process keeps the ring after exit without anyone draining it.
    const env = simEnv(dir, {
      LD_PRELOAD: shimLib,
      TAILGUARD_RING_RECORDS: String(capacity),
      TAILGUARD_SESSION: `${process.pid}-noreader`,
    });
    const r = await runProgram(bin, [String(T), String(N)], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`threads=${T} launches=${T * N}\n`);
    expect(r.stderr).toBe("");
    const rings = native().scanRings(path.join(dir, "rings"));
    expect(rings).toHaveLength(1);
    const c = rings[0].counters;
    // the main thread's lane: process start and exit; each worker's lane: stream create, N launches, sync, of which
    // the first `capacity` fit. The workers' lanes also hold the scheduler's request-window records: a window begins
    // at a first launch (taking the place of a launch in that lane) and ends at a sync that covers all its streams;
    // how many windows there are depends on how the threads interleave (1 if they overlap, up to T), and a window's
    // begin record may come only after every lane is full (when the scheduler attached late on a busy machine: CI saw
    // it once), so no lane need hold one.
    expect(c.lanes).toBe(1 + T);
    expect(c.tail).toBe(2 + T * capacity);
    expect(c.launches).toBe(T * N);
    const windowRecords = c.dropped - T * (N + 2 - capacity);
    const begins = c.droppedLaunches - T * (N - (capacity - 1));
    expect(begins).toBeGreaterThanOrEqual(0);
    expect(begins).toBeLessThanOrEqual(T);
    expect(windowRecords).toBeGreaterThanOrEqual(Math.max(1, begins));
    expect(windowRecords).toBeLessThanOrEqual(2 * T);
  });

  it("TAILGUARD_DISABLE=1 passes everything through and registers nothing", async () => {
    const dir = testDir("disabled");
    const bin = compileProgram("cuda_direct.c", { cuda: true });
    const ref = await runProgram(bin, ["20"], { env: simEnv(dir) });
    const r = await runProgram(bin, ["20"], { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_DISABLE: "1" }) });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(ref.stdout);
    expect(existsSync(path.join(dir, "rings"))).toBe(false);
  });
});

describe("malformed options", () => {
  it("get one clear message each and a safe default, never a crash", async () => {
    const dir = testDir("badopts");
    const bin = compileProgram("cuda_direct.c", { cuda: true });
    const ref = await runProgram(bin, ["20"], { env: simEnv(dir) });
    const env = simEnv(dir, {
      LD_PRELOAD: shimLib,
      TAILGUARD_RING_RECORDS: "lots",
      TAILGUARD_PRIORITY: "urgent",
      TAILGUARD_LOG_LEVEL: "loud",
      TAILGUARD_PRIORTY: "high",
      TAILGUARD_DIR: "relative/dir",
    });
    const r = await runProgram(bin, ["20"], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(ref.stdout);
    // the simulated GPU reads TAILGUARD_LOG_LEVEL too and says so under its own name; these are the shim's lines
    const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("tailguard["));
    const expected = [
      /TAILGUARD_LOG_LEVEL="loud" is not valid \(accepted: error\|warn\|info\|debug\); using the default "warn"/,
      /unknown variable TAILGUARD_PRIORTY ignored/,
      /TAILGUARD_DIR="relative\/dir" is not valid .*using the default "\/dev\/shm\/tailguard"/,
      /TAILGUARD_RING_RECORDS="lots" is not valid .*using the default "65536"/,
      /TAILGUARD_PRIORITY="urgent" is not valid .*using the default "normal"/,
    ];
    for (const re of expected) expect(lines.filter((l) => re.test(l)), re.source).toHaveLength(1);
    expect(lines).toHaveLength(expected.length);
  });
});

describe("another LD_PRELOAD interposer", () => {
  it("keeps dlsym(RTLD_NEXT) relative to its caller, in either preload order", async () => {
    const second = compileProgram("second_preload.c", { extra: ["-shared", "-fPIC"] });
    const hello = compileProgram("says_hello.c");
    for (const preload of [`${shimLib}:${second}`, `${second}:${shimLib}`]) {
      const r = await runProgram(hello, [], { env: { ...process.env, LD_PRELOAD: preload, TAILGUARD_DIR: testDir("next") } });
      expect(r.code, `${preload}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe("[second] hello\n");
    }
  });
});

describe("a shim that cannot load", () => {
  it("`tailguard run` says NOT ATTACHED with the loader's message and fails", async () => {
    const dir = testDir("noattach");
    const bogus = path.join(dir, "libnot-a-library.so");
    writeFileSync(bogus, "this is not an ELF file\n");
    const bin = compileProgram("cuda_direct.c", { cuda: true });
    const r = await runProgram(process.execPath, [cli, "run", "--sim", "--", bin, "5"], {
      env: { ...simEnv(dir), TAILGUARD_SHIM: bogus },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/NOT ATTACHED/);
    expect(r.stderr).toMatch(/the dynamic loader said: ERROR: ld\.so: object '.*libnot-a-library\.so' from LD_PRELOAD cannot be preloaded/);
    expect(r.stderr).toMatch(/tailguard doctor/);
  });

  it("an invalid --priority is refused before anything runs", async () => {
    const dir = testDir("badprio");
    const rec = await recordRun(dir, ["/bin/true"], { priority: "urgent" });
    expect(rec.run.code).toBe(2);
    expect(rec.run.stderr).toMatch(/--priority "urgent" is not a priority/);
  });
});
