"""The statistics of the paired measurement (bench/gpu/paired.py), as pure functions of plain lists: the order of the
blocks, percentiles, paired ratios with their 95 % interval, and the verdict against an acceptance bound.

The interval is a Student t interval on the logarithms of the per-round ratios, back-transformed: the geometric mean
exp(m) with exp(m -/+ t * s / sqrt(n)), m and s the mean and standard deviation of the n log ratios, t the 97.5 %
quantile of t with n - 1 degrees of freedom. Logarithms because the effects are multiplicative (a ratio and its
inverse get mirrored intervals); t rather than a bootstrap because with 8-16 rounds a percentile bootstrap's interval
is too narrow (it cannot reach beyond the few values seen, and its tails are normal ones: 1.96 where t with 7 degrees
of freedom says 2.36), and because it is deterministic. It assumes the rounds' log ratios independent and roughly
normal: the pairing inside a round removes the host's drift between rounds, which is what made single runs useless.

Blocks too short for their own P99 (fewer than 100 requests) are judged on pooled percentiles instead, with a bootstrap
over whole rounds (pooled_interval).

Run as a program, it reads {"intervals": [{"ratios": [...], "bound": {"op": "<=", "value": 1.1}}],
"pooled": [{"num": [[...], ...], "den": [[...], ...], "p": 99, "bound": ...}],
"percentiles": [{"values": [...], "p": 99}], "orders": [{"modes": [...], "rounds": 8}]} on stdin and writes each
answer as JSON (test/unit/paired-harness.test.ts checks the arithmetic against its own)."""
import json
import math
import statistics
import sys


def percentile(values, p):
    """Nearest-rank percentile: the smallest sample with at least p % of the samples at or below it; the definition
    of agent/src/stats.ts (the test holds the two to the same answers)."""
    v = sorted(values)
    if not v:
        return None
    return v[percentile_rank(len(v), p) - 1]


def percentile_rank(n, p):
    """1-based rank of the nearest-rank percentile among n ascending samples (12 digits first: 99.9/100*1000 is not
    exactly 999 in binary floating point)."""
    return min(n, max(1, math.ceil(round(p / 100 * n, 12))))


def rank_note(n, p):
    """What a percentile of n samples rests on, for people: 'P99 of 200: the 198th, 2 above it'."""
    if n == 0:
        return f"P{p:g} of 0 samples: none"
    k = percentile_rank(n, p)
    return f"P{p:g} of {n}: the {k}{_ordinal(k)}, {n - k} above it"


def _ordinal(k):
    return "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")


def williams(n):
    """Orders of n modes (indices) in which, over the whole set, each mode is equally often in each position and
    directly after each other mode (a Williams design: n orders for even n, 2n for odd n). Cyclic shifts come first,
    so that a run stopped after any k orders is within one of balanced in position."""
    first, lo, hi = [0], 1, n - 1
    while lo <= hi:
        first.append(lo)
        lo += 1
        if lo <= hi:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % n for x in first] for i in range(n)]
    if n % 2:
        rows += [list(reversed(r)) for r in rows]
    return rows


def block_order(modes, rounds):
    """The modes' order in each round: round r follows the Williams design's order r mod its length."""
    rows = williams(len(modes))
    return [[modes[i] for i in rows[r % len(rows)]] for r in range(rounds)]


def position_counts(order):
    """mode -> how often it ran first, second, ... in its round."""
    counts = {}
    for row in order:
        for pos, mode in enumerate(row):
            counts.setdefault(mode, [0] * len(row))[pos] += 1
    return counts


def _t_two_sided(t, df):
    """P(|T| < t) for Student's t with an integer df (the finite trigonometric series, exact)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(3, df, 2):  # 1 + (2/3) c^2 + (2*4)/(3*5) c^4 + ...
            term *= (k - 1) / k * c2
            total += term
        return 2 / math.pi * (theta + s * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(2, df, 2):  # 1 + (1/2) c^2 + (1*3)/(2*4) c^4 + ...
        term *= (k - 1) / k * c2
        total += term
    return s * total


def t_quantile(df, confidence=0.95):
    """The t value with P(|T| < t) = confidence, by bisection (t7 = 2.364624...)."""
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_interval(ratios, confidence=0.95):
    """Geometric mean of per-round ratios and its t interval on the log scale; no interval from fewer than 2."""
    ratios = [r for r in ratios if r is not None and r > 0 and math.isfinite(r)]
    n = len(ratios)
    out = {"n": n, "geomean": None, "ci": None, "half_width_pct": None, "method": "t interval on log ratios"}
    if n == 0:
        return out
    logs = [math.log(r) for r in ratios]
    m = statistics.fmean(logs)
    out["geomean"] = math.exp(m)
    if n < 2:
        return out
    half = t_quantile(n - 1, confidence) * statistics.stdev(logs) / math.sqrt(n)
    out["ci"] = [math.exp(m - half), math.exp(m + half)]
    out["half_width_pct"] = (math.exp(half) - 1) * 100
    return out


def pooled_interval(rounds_num, rounds_den, p, resamples=4000, confidence=0.95, seed=18):
    """The ratio of two modes' pooled percentiles (all their blocks' samples together) with a 95 % interval from a
    bootstrap that resamples whole rounds, so the pairing inside a round is kept. For blocks too short for their own
    P99 (a 2 s block at 10/s has 20 requests, and its P99 is its largest): many short rounds pooled have one. A
    percentile bootstrap needs many rounds (below 20 it says so and gives no interval); the seed makes it repeatable.
    rounds_num[i] and rounds_den[i] are round i's samples of the numerator's and the denominator's mode."""
    pairs = [(a, b) for a, b in zip(rounds_num, rounds_den) if a and b]
    n = len(pairs)
    out = {"n": n, "ratio": None, "ci": None, "method": f"round bootstrap of pooled P{p:g}, {resamples} resamples"}
    if n == 0:
        return out
    pooled = lambda rows, k: percentile([x for r in rows for x in r[k]], p)
    out["ratio"] = pooled(pairs, 0) / pooled(pairs, 1)
    if n < 20:
        out["method"] += f": not computed from {n} rounds (needs 20)"
        return out
    import random
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        pick = [pairs[rng.randrange(n)] for _ in range(n)]
        ratios.append(pooled(pick, 0) / pooled(pick, 1))
    ratios.sort()
    tail = (1 - confidence) / 2
    out["ci"] = [ratios[int(tail * resamples)], ratios[min(resamples - 1, int((1 - tail) * resamples))]]
    return out


def verdict(ci, bound):
    """'meets' when the whole interval is inside the bound, 'fails' when it is wholly outside, 'unresolved' when it
    straddles the bound (the interval is wider than the effect can be told from the bound) or there is none."""
    if bound is None:
        return None
    if ci is None:
        return "unresolved"
    lo, hi = ci
    if bound["op"] == "<=":
        return "meets" if hi <= bound["value"] else "fails" if lo > bound["value"] else "unresolved"
    if bound["op"] == ">=":
        return "meets" if lo >= bound["value"] else "fails" if hi < bound["value"] else "unresolved"
    raise ValueError(f"bound op {bound['op']!r}: use <= or >=")


def main():
    ask = json.load(sys.stdin)
    out = {"intervals": [], "percentiles": [], "orders": [], "pooled": []}
    for q in ask.get("intervals", []):
        iv = paired_interval(q["ratios"])
        iv["verdict"] = verdict(iv["ci"], q.get("bound"))
        out["intervals"].append(iv)
    for q in ask.get("percentiles", []):
        n = len(q["values"])
        out["percentiles"].append({"value": percentile(q["values"], q["p"]),
                                   "rank": percentile_rank(n, q["p"]) if n else None, "note": rank_note(n, q["p"])})
    for q in ask.get("orders", []):
        order = block_order(q["modes"], q["rounds"])
        out["orders"].append({"order": order, "positions": position_counts(order)})
    for q in ask.get("pooled", []):
        iv = pooled_interval(q["num"], q["den"], q["p"], q.get("resamples", 4000))
        iv["verdict"] = verdict(iv["ci"], q.get("bound"))
        out["pooled"].append(iv)
    out["t975"] = {str(df): t_quantile(df) for df in ask.get("t_df", [])}
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
