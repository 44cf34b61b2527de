import { defineConfig } from "vitest/config";

// Tests spawn real processes on the simulated GPU; give them time on a 2-core machine and keep files in separate
// forks so a crash in one native test cannot take the others down. Files run one at a time: the scheduler tests
// measure latency on the simulated GPU, whose clock advances only as fast as its processes' threads get CPU time, and
// a concurrent file's 8 launching threads on 2 cores would starve them.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
