// The Python helper (python/, module `tailguard`): its unit tests (test_helper.py, plain unittest, against the fake
// shim of test/programs/fake_abi.c). Python and the SDK come from the venv test/python/venv.sh makes (components.ts:
// python-otel).
import path from "node:path";
import { describe, expect, it } from "vitest";

import { requireComponent } from "../support/components.js";
import { compileProgram, root, runProgram } from "../support/native.js";

const here = path.join(root, "test/python");
/** the checkout's helper first: the venv's installed copy may be older */
const pythonPath = path.join(root, "python");

describe("the Python helper", () => {
  it("passes its unit tests: no-op without the shim, ValueError, nesting, decorator, the span processor", async () => {
    const python = requireComponent("python-otel");
    const fake = compileProgram("fake_abi.c", { extra: ["-shared", "-fPIC"] });
    const r = await runProgram(python, ["-m", "unittest", "-v", "test_helper"], {
      cwd: here,
      env: { ...process.env, PYTHONPATH: pythonPath, TG_FAKE_ABI: fake },
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^Ran \d+ tests in .*\n\nOK\s*$/m);
    expect(r.stderr).not.toMatch(/skipped/);
  });
});
