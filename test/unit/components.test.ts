// test/support/components.ts: a test that needs an external component the machine lacks fails with one line naming it
// and the command that installs it; with the component on PATH it gets the component's path.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { COMPONENTS, installCommand, missingComponents, requireComponent } from "../support/components.js";
import { testDir } from "../support/native.js";

/** A PATH of one directory holding the named (empty, executable) programs. */
function pathWith(...programs: string[]): string {
  const dir = path.join(testDir("components"), "bin");
  mkdirSync(dir);
  for (const p of programs) {
    writeFileSync(path.join(dir, p), "#!/bin/sh\nexit 0\n");
    chmodSync(path.join(dir, p), 0o755);
  }
  return dir;
}

describe("requireComponent", () => {
  it("fails with the component, where it looked and the install command when the tool is not on PATH", () => {
    const env = { PATH: pathWith("gcc", "make") };
    expect(() => requireComponent("promtool", env)).toThrow(
      "promtool is missing (no executable `promtool` in PATH), which this test needs: install it with " +
        "`apt-get install --no-install-recommends prometheus` (the README's Quickstart lists everything the full suite needs)");
    expect(() => requireComponent("chromium", env)).toThrow(/^chromium is missing .*`apt-get install --no-install-recommends chromium`/);
    expect(() => requireComponent("prometheus", { PATH: "" })).toThrow(/no executable `prometheus` in PATH/);
  });

  it("returns the tool found on PATH, and not a file that is not executable", () => {
    const bin = pathWith("promtool");
    expect(requireComponent("promtool", { PATH: `/nonexistent:${bin}` })).toBe(path.join(bin, "promtool"));
    chmodSync(path.join(bin, "promtool"), 0o644);
    expect(() => requireComponent("promtool", { PATH: bin })).toThrow(/promtool is missing/);
  });

  it("libFuzzer: clang and clang++ on PATH, and clang's fuzzer runtime", () => {
    expect(() => requireComponent("libfuzzer", { PATH: pathWith("clang") })).toThrow(
      /^clang with libFuzzer is missing \(no executable `clang\+\+` .*`apt-get install --no-install-recommends clang libclang-rt-14-dev`/);
    // a clang that knows no runtime directory (exits 0, prints nothing) has no libFuzzer
    expect(() => requireComponent("libfuzzer", { PATH: pathWith("clang", "clang++") })).toThrow(
      /has no libFuzzer: no libclang_rt\.fuzzer-\w+\.a or libclang_rt\.fuzzer\.a in its runtime directory \(none\)/);
  });

  it("lists what is missing, and one install command for all of it", () => {
    const missing = missingComponents({ PATH: pathWith() }).map((m) => m.name);
    expect(missing).toEqual(expect.arrayContaining(["promtool", "prometheus", "chromium", "libfuzzer"]));
    expect(installCommand(Object.values(COMPONENTS).flatMap((c) => c.packages))).toBe(
      "apt-get install --no-install-recommends prometheus chromium clang libclang-rt-14-dev libamdhip64-dev python3-venv");
  });

  it("the Python test venv: its python with opentelemetry-sdk, else how to make it", () => {
    const venv = testDir("components-venv");
    const env = { PATH: "", TG_PYTHON_VENV: venv };
    const make = "install it with `apt-get install --no-install-recommends python3-venv` then " +
      "`bash test/python/venv.sh` (the README's Quickstart";
    expect(() => requireComponent("python-otel", env)).toThrow(`(no ${venv}/bin/python), which this test needs: ${make}`);
    mkdirSync(path.join(venv, "bin"));
    writeFileSync(path.join(venv, "bin/python"), "");
    expect(() => requireComponent("python-otel", env)).toThrow(`(no opentelemetry-sdk in ${venv}), which this test needs: ${make}`);
    mkdirSync(path.join(venv, "lib/python3.11/site-packages/opentelemetry/sdk"), { recursive: true });
    expect(requireComponent("python-otel", env)).toBe(path.join(venv, "bin/python"));
  });
});
