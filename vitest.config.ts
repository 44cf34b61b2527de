import { defineConfig } from "vitest/config";

// Tests spawn real processes on the simulated GPU; give them time on a 2-core machine and keep files in separate
// forks so a crash in one native test cannot take the others down.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
  },
});
