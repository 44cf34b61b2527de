"""Issue 16 on the GPU machine: the shim's per-request device times against CUDA events the application records itself,
and what measuring them costs. Workers: a request worker (ResNet-18 batch 1, eager, open loop at --rate) and a batch
worker (ResNet-50 batch --batch, back to back), from bench/gpu/workloads.py, each pinned to its own CPUs.

accuracy  (run under `tailguard run --record FILE`, which loads the shim into the workers and records their rings)
  --mode attached: both workers under the shim with every scheduling mechanism off (paired.py's TELEMETRY_ENV), so the
  request queues behind the batch job as it would natively; --mode priority: TAILGUARD_PRIORITY=high / low.
  For --reps repetitions of --seconds, the request worker records, around each request, its own pair of timing events
  (the first followed at once by a one-element marker kernel, the request's first launch) and the host times just
  before the first (submitted) and after its sync (returned). Its GPU time is the events' elapsed time. Its events
  reach the host clock through its own host times (app_mapping: the earliest sync-return bound). Queue delay is
  counted for both from the request's first launch, which the shim timestamps and the application cannot (PyTorch
  launches inside its call, ~190 us after `submitted` on the H200; the app's figure from `submitted` is reported
  beside). Medians per repetition, shim / app, within 5 %.
  -> DIR/requests-MODE.jsonl (one line per request).

analyze   --recording FILE --mode MODE: matches each request of requests-MODE.jsonl to the shim's request window that
  began inside it (the `window` and `gpu_time` lines of the request worker's pid), and compares per repetition the
  medians of GPU time and queue delay: shim / app, judged against issue 16's 5 %. -> DIR/accuracy-MODE.json.

cost      (under `tailguard run`, so the rings are drained as the agent would): workers under the shim with
  TAILGUARD_PRIORITY=high / low, --procs of each role with TAILGUARD_GPU_TIME=on and as many with =off. Each round is
  one block of --block seconds in which arrivals (open loop at --rate) go alternately to the two settings' request
  workers and the batch workers of the two settings take turns iteration by iteration, the order inside each pair
  drawn at random (seeded): both settings see the same seconds of the host. A setting's workers take its turns in
  rotation, so that one process's own speed (where it sits in memory and in the GPU's run list: a few percent,
  measured) weighs less on its setting. Per round: on / off of request P50, P99 (pooled with a round bootstrap under 100 requests
  a round) and batch iterations per second; paired_stats.py's interval over the rounds, judged against issue 16's 1 %.
  -> DIR/cost.json.

    node agent/dist/cli.js run --record DIR/rec-priority.jsonl -- python3 bench/gpu/gputime.py accuracy --mode priority \\
        --out DIR [--reps 3] [--seconds 15] [--rate 20] [--batch 32]
    python3 bench/gpu/gputime.py analyze --mode priority --recording DIR/rec-priority.jsonl --out DIR
    node agent/dist/cli.js run -- python3 bench/gpu/gputime.py cost --out DIR [--rounds 20] [--block 3]

bench/gpu/gputime.sh runs all of it. --fake runs the controller and the analysis with CPU-only stand-in workers (no
torch, no GPU: the request's "events" are host times) so that the script itself is tested without a GPU."""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import paired_stats as stats  # noqa: E402
import workloads  # noqa: E402

# paired.py's TELEMETRY_ENV: the shim records, nothing is scheduled
TELEMETRY_ENV = {"TAILGUARD_HOLDS": "0", "TAILGUARD_TIMESLICE_US": "0", "TAILGUARD_BUDGET_US": "0",
                 "TAILGUARD_MIN_SHARE": "0"}
ACCURACY_BOUND = 0.05  # issue 16: medians within 5 %
COST_BOUND = 0.01  # issue 16: <= 1 % on request latency and batch throughput


# ---------------------------------------------------------------------------------------------------------- workers

class EventRequests:
    """The request of bench/gpu/workloads.py with the application's own timing around it: host times and a pair of
    timing events per request, from a pool created (and recorded once) at start, so that no event is created inside a
    request (PyTorch creates an event's CUDA event at its first record: hundreds of microseconds)."""

    POOL = 2000  # pairs: more than a repetition's requests

    def __init__(self, fake):
        self.fake = fake
        self.used = 0
        if fake:
            self.service_s = 0.002
            return
        import torch
        self.torch = torch
        self.req = workloads.requests("eager")
        self.step = self.req._step
        self.pool = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                     for _ in range(self.POOL)]
        for a, b in self.pool:
            a.record()
            b.record()
        # a one-element kernel launched right after the first event: the request's first launch. Without it, the
        # first launch would be the first convolution's, after ~300 us of PyTorch's host-side preparation, in which
        # the GPU runs `a` and then another process's kernels: `a` would not mark where the request's work began.
        self.marker = torch.zeros(1, device="cuda")
        torch.cuda.synchronize()

    def run(self):
        """-> dict: submitted and returned (CLOCK_MONOTONIC ns), and the two events (kept until the rep ends)."""
        if self.fake:
            t0 = time.monotonic_ns()
            time.sleep(self.service_s)
            t1 = time.monotonic_ns()  # stand-in events: the first 20 us after submitted, the last 10 us before return
            return {"submitted": t0, "returned": t1, "a": t0 + 20_000, "b": t1 - 10_000}
        if self.used >= len(self.pool):
            raise SystemExit(f"gputime.py: more than {len(self.pool)} requests in a repetition: raise POOL")
        a, b = self.pool[self.used]
        self.used += 1
        t0 = time.monotonic_ns()  # submitted: just before the first call
        a.record()
        self.marker.add_(1)  # the first launch, right after `a`: see resolve()
        self.step()
        b.record()
        self.torch.cuda.synchronize()
        return {"submitted": t0, "returned": time.monotonic_ns(), "a": a, "b": b}

    def resolve(self, rows):
        """The repetition's requests with their raw device times: d_a_ns and d_b_ns, each event's device time after
        the repetition's first event, and gpu_ms. The mapping to the host clock is the analysis's (app_mapping)."""
        self.used = 0
        first = rows[0]["a"] if rows else None
        for r in rows:
            if self.fake:
                r["d_a_ns"], r["d_b_ns"] = r["a"] - first, r["b"] - first
                r["gpu_ms"] = (r["b"] - r["a"]) / 1e6
            else:
                r["d_a_ns"] = first.elapsed_time(r["a"]) * 1e6 if r["a"] is not first else 0.0
                r["d_b_ns"] = first.elapsed_time(r["b"]) * 1e6
                r["gpu_ms"] = r["a"].elapsed_time(r["b"])
        for r in rows:
            r.pop("a")
            r.pop("b")
        return app_mapping(rows)["drift_ns"] if rows else None


def app_mapping(rows, span=10):
    """The application's device times on the host clock, from its own events and host times. Each request bounds the
    host time of the repetition's first event E from both sides: its first event cannot have completed before the
    host recorded it (`submitted` - d_a: a lower bound), nor its last event after the sync that saw it returned
    (`returned` - d_b: an upper bound). The lower bounds are loose by hundreds of microseconds here (run 3 on the
    H200: 270-340 us between the two): a recorded event reaches the GPU only with the next launch, which PyTorch makes
    ~190 us later, and beside a batch job that never stops the GPU is rarely free for it. A spinning sync returns
    microseconds after the work, so E's host time for a request is the earliest upper bound of the `span` requests
    either side of it (which follows a drift between the clocks of a few ppm), late by what Python adds between the
    driver's return and its clock read (tens of microseconds at most). Adds gpu_start (ns) to each row; returns
    {"drift_ns": the earliest upper bound of the second half minus the first half's, "bounds_gap_us": the median
    distance between the two sides}."""
    lower = [r["submitted"] - r["d_a_ns"] for r in rows]
    upper = [r["returned"] - r["d_b_ns"] for r in rows]
    gaps = []
    for i, r in enumerate(rows):
        near = slice(max(0, i - span), i + span + 1)
        anchor = min(upper[near])
        gaps.append((anchor - max(lower[near])) / 1e3)
        r["gpu_start"] = int(anchor + r["d_a_ns"])
    half = len(rows) // 2
    return {"drift_ns": min(upper[half:]) - min(upper[:half]) if half else 0,
            "bounds_gap_us": statistics.median(gaps) if gaps else None}


def worker(role, fake):
    """A worker process: builds its workload, says "ready", then serves commands on stdin, one JSON reply each."""
    cpus = os.environ.get("GPUTIME_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    if role == "request":
        w = EventRequests(fake)
    else:
        w = workloads.batch_job(int(os.environ.get("GPUTIME_BATCH", "32")), fake=fake)
    import gc
    gc.disable()
    reply = lambda obj: (sys.stdout.write(json.dumps(obj) + "\n"), sys.stdout.flush())  # noqa: E731
    reply({"ready": os.getpid()})
    rows = []
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "request":
            r = w.run()
            rows.append(r)
            reply({"returned": r["returned"], "service_ms": (r["returned"] - r["submitted"]) / 1e6})
        elif op == "resolve":  # the repetition's requests, with their device times
            drift = w.resolve(rows)
            out = [{k: v for k, v in r.items()} for r in rows]
            rows = []
            reply({"rows": out, "drift_ns": drift})
        elif op == "iterate":
            t0 = time.monotonic_ns()
            w.run()
            reply({"ms": (time.monotonic_ns() - t0) / 1e6})
        elif op == "spin":  # iterate until a "stop" line arrives; reply with the count
            n, t0 = 0, time.monotonic_ns()
            stop = threading.Event()
            threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
            while not stop.is_set():
                w.run()
                n += 1
            reply({"iterations": n, "seconds": (time.monotonic_ns() - t0) / 1e9})
        elif op == "quit":
            return


class Worker:
    def __init__(self, name, role, env, out, fake):
        self.name = name
        self.err = open(os.path.join(out, f"{name}.err"), "w")
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker", "--role", role]
                                  + (["--fake"] if fake else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, env=env, text=True, bufsize=1)
        self.pid = self.p.pid

    def send(self, obj):
        self.p.stdin.write(json.dumps(obj) + "\n")
        self.p.stdin.flush()

    def read(self, timeout=600):
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"gputime.py: worker {self.name} (pid {self.pid}) ended; see its {self.name}.err")
        return json.loads(line)

    def call(self, obj):
        self.send(obj)
        return self.read()

    def quit(self):
        try:
            self.send({"op": "quit"})
        except BrokenPipeError:
            pass
        self.p.wait(timeout=60)


def start(specs, out, fake, batch):
    """specs: [(name, role, cpus, extra env)] -> {name: Worker}, all ready."""
    workers = {}
    for name, role, cpus, extra in specs:
        env = dict(os.environ, GPUTIME_CPUS=cpus, GPUTIME_BATCH=str(batch), **extra)
        workers[name] = Worker(name, role, env, out, fake)
    for w in workers.values():
        w.read()
    return workers


def open_loop(rate, seconds, serve):
    """Arrivals every 1/rate s for `seconds`; serve(scheduled_ns) runs one and returns its completion time (ns).
    -> latencies in ms, from the scheduled arrival (a server that falls behind is not hidden)."""
    period = int(1e9 / rate)
    t = time.monotonic_ns() + period
    end = t + int(seconds * 1e9)
    lat = []
    while t < end:
        now = time.monotonic_ns()
        if t > now:
            time.sleep((t - now) / 1e9)
        lat.append((serve(t) - t) / 1e6)
        t += period
    return lat


# --------------------------------------------------------------------------------------------------------- accuracy

def accuracy(a):
    if a.mode == "priority":
        hi, lo = {"TAILGUARD_PRIORITY": "high"}, {"TAILGUARD_PRIORITY": "low"}
    else:
        hi = lo = {"TAILGUARD_PRIORITY": "normal", **TELEMETRY_ENV}
    w = start([("request", "request", a.high_cpus, hi), ("batch", "batch", a.low_cpus, lo)], a.out, a.fake, a.batch)
    path = os.path.join(a.out, f"requests-{a.mode}.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"mode": a.mode, "request_pid": w["request"].pid, "batch_pid": w["batch"].pid,
                            "reps": a.reps, "seconds": a.seconds, "rate": a.rate, "batch": a.batch,
                            "machine": workloads.versions(a.fake)}) + "\n")
        for rep in range(a.reps):
            w["batch"].send({"op": "spin"})
            time.sleep(1.0)  # the batch job in its stride
            open_loop(a.rate, a.seconds, lambda t: w["request"].call({"op": "request"})["returned"])
            w["batch"].p.stdin.write("stop\n")
            w["batch"].p.stdin.flush()
            spun = w["batch"].read()
            got = w["request"].call({"op": "resolve"})
            for r in got["rows"]:
                f.write(json.dumps({"rep": rep, **r}) + "\n")
            print(f"  {a.mode} rep {rep}: {len(got['rows'])} requests, batch {spun['iterations']} iterations "
                  f"in {spun['seconds']:.1f} s, anchor drift over the rep {got['drift_ns'] / 1e3:.1f} us", flush=True)
    for x in w.values():
        x.quit()


def read_recording(path, pid):
    """The request worker's windows from a `tailguard run --record` file: [{begin, end, gpu_start, gpu_end}] on
    CLOCK_MONOTONIC ns (gpu_* None when the shim said `missing`), and the missing reasons counted."""
    origin, windows, gpu, missing = None, {}, {}, {}
    with open(path) as f:
        for line in f:
            x = json.loads(line)
            if x.get("kind") == "recording":
                origin = int(x["origin_monotonic_ns"])
                continue
            if x.get("pid") != pid:
                continue
            if x.get("kind") == "window" and x.get("op") == "end":
                windows[x["window"]] = {"begin": x["t"], "end": x["t"] + x["dur"]}
            elif x.get("kind") == "gpu_time" and x.get("op") == "window":
                gpu[x["window"]] = (x["gpu_start"], x["gpu_end"])
            elif x.get("kind") == "gpu_time" and x.get("op") == "missing":
                missing[x["reason"]] = missing.get(x["reason"], 0) + 1
    if origin is None:
        raise SystemExit(f"gputime.py: {path} has no recording line: is it a `tailguard run --record` file?")
    out = []
    for seq, w in sorted(windows.items()):
        g = gpu.get(seq)
        out.append({"seq": seq, "begin": origin + w["begin"], "end": origin + w["end"],
                    "gpu_start": origin + g[0] if g else None, "gpu_end": origin + g[1] if g else None})
    return out, missing


def analyze(a):
    path = os.path.join(a.out, f"requests-{a.mode}.jsonl")
    with open(path) as f:
        head = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    windows, missing = read_recording(a.recording, head["request_pid"])
    begins = [w["begin"] for w in windows]
    mapping = {rep: app_mapping([r for r in rows if r["rep"] == rep]) for rep in range(head["reps"])}
    import bisect
    matched = []
    for r in rows:  # the windows that began inside the request (its first launch follows `submitted`)
        i = bisect.bisect_left(begins, r["submitted"])
        inside = []
        while i < len(windows) and windows[i]["begin"] <= r["returned"]:
            inside.append(windows[i])
            i += 1
        if inside and inside[0]["gpu_start"] is not None:
            w, last = inside[0], inside[-1]
            merged_end = last["gpu_end"] if last["gpu_end"] is not None else w["gpu_end"]
            matched.append({**r, "windows": len(inside), "shim_gpu_ms": (w["gpu_end"] - w["gpu_start"]) / 1e6,
                            "shim_gpu_merged_ms": (merged_end - w["gpu_start"]) / 1e6,
                            "shim_queue_ms": (w["gpu_start"] - w["begin"]) / 1e6,
                            "submit_gap_us": (w["begin"] - r["submitted"]) / 1e3,
                            # queue delay from one instant for both: the request's first launch, which the shim
                            # timestamps (the app cannot: PyTorch makes it inside its call)
                            "app_queue_ms": (r["gpu_start"] - w["begin"]) / 1e6,
                            "app_queue_from_submitted_ms": (r["gpu_start"] - r["submitted"]) / 1e6,
                            "start_diff_us": (w["gpu_start"] - r["gpu_start"]) / 1e3})
    reps = []
    for rep in range(head["reps"]):
        m = [x for x in matched if x["rep"] == rep]
        n = sum(1 for x in rows if x["rep"] == rep)
        if not m:
            reps.append({"rep": rep, "requests": n, "matched": 0})
            continue
        med = lambda k: statistics.median(x[k] for x in m)  # noqa: E731
        reps.append({"rep": rep, "requests": n, "matched": len(m),
                     "gpu_ms": {"app": med("gpu_ms"), "shim": med("shim_gpu_ms"),
                                "shim_windows_merged": med("shim_gpu_merged_ms")},
                     "split": sum(1 for x in m if x["windows"] > 1),
                     "queue_ms": {"app": med("app_queue_ms"), "shim": med("shim_queue_ms"),
                                  "app_from_submitted": med("app_queue_from_submitted_ms")},
                     "submit_gap_us_median": med("submit_gap_us"),
                     "start_diff_us_median": med("start_diff_us"),
                     "abs_diff_us_median": {"gpu": statistics.median(abs(x["shim_gpu_ms"] - x["gpu_ms"]) * 1e3
                                                                     for x in m),
                                            "start": statistics.median(abs(x["start_diff_us"]) for x in m)},
                     "app_mapping": mapping[rep]})
    verdicts = {}
    for k in ("gpu_ms", "queue_ms"):
        ratios = [r[k]["shim"] / r[k]["app"] for r in reps if r.get(k) and r[k]["app"] > 0]
        ok = bool(ratios) and all(abs(x - 1) <= ACCURACY_BOUND for x in ratios)
        verdicts[k] = {"shim_over_app": ratios, "bound": f"within {ACCURACY_BOUND:.0%} every repetition",
                       "verdict": "meets" if ok else "fails"}
    result = {"mode": a.mode, "config": head, "recording": os.path.basename(a.recording), "missing": missing,
              "windows": len(windows), "requests": len(rows), "matched": len(matched), "reps": reps,
              "verdicts": verdicts}
    with open(os.path.join(a.out, f"accuracy-{a.mode}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"accuracy, {a.mode}: {len(matched)} of {len(rows)} requests matched to a shim window with device times "
          f"({len(windows)} windows; missing: {missing or 'none'})")
    for r in reps:
        if r["matched"]:
            print(f"  rep {r['rep']}: GPU ms app {r['gpu_ms']['app']:.3f} shim {r['gpu_ms']['shim']:.3f}; queue ms app "
                  f"{r['queue_ms']['app']:.3f} shim {r['queue_ms']['shim']:.3f} (medians of {r['matched']}; "
                  f"{r['split']} requests in more than one window; device start shim - app "
                  f"{r['start_diff_us_median']:+.1f} us; the app's queue from its own submitted "
                  f"{r['queue_ms']['app_from_submitted']:.3f} ms, {r['submit_gap_us_median']:.0f} us before the launch)")
    for k, v in verdicts.items():
        print(f"  {k}: shim / app " + " ".join(f"{x:.3f}" for x in v["shim_over_app"]) + f"  {v['verdict']}")
    return 0 if all(v["verdict"] == "meets" for v in verdicts.values()) else 1


# ------------------------------------------------------------------------------------------------------------- cost

def cost(a):
    """--procs workers of each role and setting: requests and batch turns go to a setting by the seeded draw, then
    to its workers in turn, so a difference between two processes of one setting (where each sits in memory, in the
    GPU's run list) is spread over both settings' figures less, the more there are."""
    specs = []
    for s in ("on", "off"):
        for k in range(a.procs):
            specs.append((f"request-{s}{k}", "request", a.high_cpus, {"TAILGUARD_PRIORITY": "high",
                                                                       "TAILGUARD_GPU_TIME": s}))
            specs.append((f"batch-{s}{k}", "batch", a.low_cpus, {"TAILGUARD_PRIORITY": "low",
                                                                 "TAILGUARD_GPU_TIME": s}))
    w = start(specs, a.out, a.fake, a.batch)
    turn = {}

    def pick(role, s):
        k = turn[(role, s)] = (turn.get((role, s), -1) + 1) % a.procs
        return w[f"{role}-{s}{k}"]

    rng = random.Random(a.seed)
    rounds = []
    for r in range(a.rounds):
        iters = {"on": [], "off": []}
        stop = threading.Event()
        rng_b = random.Random(rng.random())

        def batch_turns():
            while not stop.is_set():
                pair = ["on", "off"]
                rng_b.shuffle(pair)
                for s in pair:
                    iters[s].append(pick("batch", s).call({"op": "iterate"})["ms"])

        th = threading.Thread(target=batch_turns)
        th.start()
        lat = {"on": [], "off": []}
        order = []

        def serve(t):
            if not order:
                order.extend(rng.sample(["on", "off"], 2))
            s = order.pop()
            done = pick("request", s).call({"op": "request"})["returned"]
            lat[s].append((done - t) / 1e6)
            return done

        open_loop(a.rate, a.block, serve)
        stop.set()
        th.join()
        for x in w.values():
            if x.name.startswith("request-"):
                x.call({"op": "resolve"})  # give the events back to the pool
        rounds.append({"round": r, "latency_ms": lat, "iteration_ms": iters})
        print(f"  round {r}: requests on {len(lat['on'])} off {len(lat['off'])}, P50 on "
              f"{stats.percentile(lat['on'], 50):.3f} off {stats.percentile(lat['off'], 50):.3f} ms; batch it/s on "
              f"{1e3 / statistics.fmean(iters['on']):.1f} off {1e3 / statistics.fmean(iters['off']):.1f}", flush=True)
    for x in w.values():
        x.quit()
    on = [x["latency_ms"]["on"] for x in rounds]
    off = [x["latency_ms"]["off"] for x in rounds]
    lat_bound = {"op": "<=", "value": 1 + COST_BOUND}
    ratios = {}
    for name, p in (("request P50, on / off", 50), ("request P99, on / off", 99)):
        if p == 99 and min(len(x) for x in on + off) < 100:
            iv = stats.pooled_interval(on, off, 99)
            ratios[name] = {**iv, "geomean": iv["ratio"], "bound": lat_bound, "verdict": stats.verdict(iv["ci"], lat_bound)}
        else:
            per = [stats.percentile(x, p) / stats.percentile(y, p) for x, y in zip(on, off)]
            iv = stats.paired_interval(per)
            ratios[name] = {**iv, "per_round": per, "bound": lat_bound, "verdict": stats.verdict(iv["ci"], lat_bound)}
    per = [statistics.fmean(x["iteration_ms"]["off"]) / statistics.fmean(x["iteration_ms"]["on"]) for x in rounds]
    iv = stats.paired_interval(per)
    tb = {"op": ">=", "value": 1 - COST_BOUND}
    ratios["batch it/s, on / off"] = {**iv, "per_round": per, "bound": tb, "verdict": stats.verdict(iv["ci"], tb)}
    result = {"config": {"rounds": a.rounds, "block_s": a.block, "procs": a.procs, "rate": a.rate, "batch": a.batch, "seed": a.seed,
                         "machine": workloads.versions(a.fake)}, "rounds": rounds, "ratios": ratios}
    with open(os.path.join(a.out, "cost.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"cost of TAILGUARD_GPU_TIME, on / off, {a.rounds} rounds of {a.block:g} s:")
    for name, x in ratios.items():
        ci = f"{x['ci'][0]:.3f}-{x['ci'][1]:.3f}" if x["ci"] else "-"
        print(f"  {name:24} {x['geomean']:.3f}  {ci}  {x['bound']['op']} {x['bound']['value']}  {x['verdict']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["accuracy", "analyze", "cost", "worker"])
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--mode", choices=["attached", "priority"], default="priority")
    ap.add_argument("--recording", help="analyze: the `tailguard run --record` file of the accuracy run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0, help="accuracy: seconds per repetition (default 15)")
    ap.add_argument("--rounds", type=int, default=20, help="cost: rounds (default 20)")
    ap.add_argument("--block", type=float, default=3.0, help="cost: seconds per round (default 3)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s (default 20)")
    ap.add_argument("--batch", type=int, default=32, help="the batch job's batch size (default 32)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--procs", type=int, default=2, help="cost: workers of each role and setting (default 2)")
    ap.add_argument("--high-cpus", default="2,3")
    ap.add_argument("--low-cpus", default="6,7")
    ap.add_argument("--role", choices=["request", "batch"])
    ap.add_argument("--fake", action="store_true", help="CPU-only stand-in workers, no torch or GPU")
    a = ap.parse_args()
    if a.what == "worker":
        return worker(a.role, a.fake)
    if not a.out:
        ap.error("--out DIR is needed")
    if a.reps < 3 and a.what == "accuracy":
        ap.error(f"--reps {a.reps}: at least 3 (issue 16 asks for 3 repetitions)")
    os.makedirs(a.out, exist_ok=True)
    if a.what == "analyze":
        if not a.recording:
            ap.error("analyze needs --recording FILE (the accuracy run's `tailguard run --record` file)")
        return analyze(a)
    return accuracy(a) if a.what == "accuracy" else cost(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
