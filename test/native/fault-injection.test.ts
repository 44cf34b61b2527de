// bench/fault-inject.mjs, one round: every region of a live ring and of a live control file corrupted, zeroed or
// truncated while its application runs and an agent drains it. The application finishes with its own results, the
// agent stays up, and what it can tell is wrong it reports as a quarantined ring. `npm run fuzz` runs more rounds.
import { describe, expect, it } from "vitest";

import { cases, runFaultInjection } from "../../bench/fault-inject.mjs";

describe("fault injection into live rings and control files", () => {
  it(`${cases().length} cases: the applications finish unchanged, the agent stays up and reports what it can tell`, async () => {
    const r = await runFaultInjection({ rounds: 1, seed: 1 });
    expect(r.alive).toBe(true);
    expect(r.results.filter((c) => c.problems.length).map((c) => `${c.case} (${c.damage}): ${c.problems.join("; ")}`)).toEqual([]);
    expect(r.results.length).toBe(cases().length);
    // the truncations at least are always told
    expect(r.results.filter((c) => c.case.startsWith("ring truncated")).every((c) => c.reported)).toBe(true);
  }, 120_000);
});
