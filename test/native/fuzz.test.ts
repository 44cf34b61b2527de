// The libFuzzer targets of bench/fuzz.mjs (test/fuzz/) on a short budget: what a hostile user writes into a ring or
// a control file, or puts in the admin's policy, finds no crash, hang or leak in the code that reads it. `npm run fuzz`
// runs the same for 10 million inputs per target (results in results/fuzz-DATE/). Needs clang and libFuzzer (Debian:
// clang, libclang-rt-14-dev; support/components.ts), which .ci/run installs.
import { describe, expect, it } from "vitest";

import { fuzz } from "../../bench/fuzz.mjs";
import { requireComponent } from "../support/components.js";

describe("fuzzing (short budget)", () => {
  for (const [target, runs] of [["ring", 150_000], ["control", 1_000_000], ["decoder", 300_000]] as const) {
    it(`${target}: ${runs.toLocaleString("en-US")} inputs, no crash, no timeout, no leak`, async () => {
      requireComponent("libfuzzer");
      const r = await fuzz(target, runs);
      expect(r.tail).toBe("");
      expect(r).toMatchObject({ crashes: 0, timeouts: 0, leaks: 0, exit: 0 });
      expect(r.inputs).toBeGreaterThanOrEqual(runs);
    }, 300_000);
  }
});
