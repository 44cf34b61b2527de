"""Paired, alternating-block measurement of tailguard on a GPU (issue 18): measurements that survive a host that moves
a host-bound job by +-20 % within minutes on its own.

Every worker process of a case is started once, warmed up (cuDNN autotune, CUDA-graph capture) and kept; the modes then
run in short blocks, each round running every mode once in an order that balances position and carry-over (a Williams
design: A B, B A, ... for two modes; six orders for three), for --rounds rounds. A mode is a set of workers that are
active during its block; the others sit idle, blocked reading their stdin. Per round, each mode's numbers are divided by
its reference's in the same round, and the geometric mean of those ratios over the rounds gets a 95 % interval
(paired_stats.py says which and why), judged against issue 18's bounds: "meets" (the interval inside the bound),
"fails" (outside), "unresolved" (it straddles the bound: the run cannot tell).

Cases and modes (workers pinned: high-priority ones to --high-cpus, low-priority ones to --low-cpus, this controller
and the ring reader to --control-cpus; Python's GC off inside blocks):
  graph-b1024  ResNet-18 b1 replayed as a CUDA graph at 20 requests/s, against ResNet-50 batch 1024
  eager-b8     ResNet-18 b1 eager at 10 requests/s, against ResNet-50 batch 8
               modes: alone (the bare high worker), native (bare high + bare low: the GPU's own time-slicing),
               tailguard (high and low under LD_PRELOAD=libtailguard.so, TAILGUARD_PRIORITY=high / low)
  attach       ResNet-50 batch 8 alone: bare, against attached (under the shim with every scheduling mechanism off,
               TELEMETRY_ENV below, as `tailguard bench`'s telemetry mode)
The shim's workers share a private TAILGUARD_DIR, whose rings bench/gpu/rings.mjs drains as the agent would (when node
and the built agent are there; else the shim's full lanes drop records, and the result says so); their attachment with
the intended priority is checked after the warm-up (the run stops if one is not attached).

Block: the controller sends every active worker the block's CLOCK_MONOTONIC start; the high worker sends requests on
its open-loop schedule from --settle seconds before the start (those not counted), latency = completion - scheduled
arrival, and each request's GPU time from CUDA events around it; the low worker iterates from the command on and
counts the whole iterations that complete inside the block (rate = iterations between the first and the last
completion inside, over the time between them: no partial iteration at either end). Per block the controller records
host load over exactly the block: CPU steal and busy time from /proc/stat (all CPUs and the workers' CPUs), every
worker's utime+stime from /proc/PID/stat (idle ones too), the ring reader's, and nvidia-smi's SM clock, power and
utilisation (sampled every 500 ms, read-only; the GPU's settings are never changed).

Why an idle worker costs the active ones nothing: it makes no calls (blocked in read() on its stdin: no CPU, which the
per-block CPU times show), and a CUDA context without submitted work takes no GPU time slices: the GPU time-slices
between the channel groups that have work pending and passes over the others, so the active contexts switch only
among themselves. What an idle context keeps is its memory (a few GB of 141) and its runlist entry. An idle shim
worker of high priority is not busy (its last request window ended at its sync) and holds nobody; that it is attached
gives the low-priority shim worker its short timeslice, as under tailguard in any case.

--fake runs the same controller, pipes, blocks and statistics with CPU-only stand-ins (bench/gpu/workloads.py: a request
sleeps, an iteration spins), without torch or a GPU.

Usage (from the repository root; bench/gpu/paired.sh runs the three cases):
  python3 bench/gpu/paired.py --case graph-b1024|eager-b8|attach [--block S] [--rounds N] [--settle S] [--out DIR]
                              [--rate R] [--batch B] [--drain auto|on|off] [--fake]
Output: DIR/paired.json (machine, configuration, every block's raw numbers, the summary; default
./results/paired-CASE-TIME/), each worker's stderr in DIR/NAME.err, and a table on stdout. A run that fails writes
DIR/failed.json with what it had and exits 1."""
import argparse
import gc
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired_stats as stats  # noqa: E402
import workloads  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(ROOT, "native/build/libtailguard.so")
RINGS = os.path.join(ROOT, "bench/gpu/rings.mjs")

# agent/src/bench/orchestrate.ts's TELEMETRY_ENV: the shim records, nothing is scheduled (the test proves they agree)
TELEMETRY_ENV = {"TAILGUARD_HOLDS": "0", "TAILGUARD_TIMESLICE_US": "0", "TAILGUARD_BUDGET_US": "0",
                 "TAILGUARD_MIN_SHARE": "0"}
# shim: None (bare), "priority" (TAILGUARD_PRIORITY=role), "telemetry" (TELEMETRY_ENV, priority normal)
WORKERS = {
    "high-bare": {"role": "high", "shim": None},
    "low-bare": {"role": "low", "shim": None},
    "high-tg": {"role": "high", "shim": "priority"},
    "low-tg": {"role": "low", "shim": "priority"},
    "low-attached": {"role": "low", "shim": "telemetry"},
}
INTENDED_PRIORITY = {("priority", "high"): 10, ("priority", "low"): -10, ("telemetry", "low"): 0}
MODES = {
    "alone": {"workers": ["high-bare"], "text": "the high-priority worker alone, no shim (the latency reference)"},
    "native": {"workers": ["high-bare", "low-bare"], "text": "both bare: the GPU's own time-slicing"},
    "tailguard": {"workers": ["high-tg", "low-tg"], "text": "both under the shim, TAILGUARD_PRIORITY=high / low"},
    "bare": {"workers": ["low-bare"], "text": "the batch job alone, no shim (the throughput reference)"},
    "attached": {"workers": ["low-attached"], "text": "the batch job alone under the shim, scheduling off"},
}
CASES = {
    "graph-b1024": {"flavour": "graph", "rate": 20.0, "batch": 1024, "modes": ["alone", "native", "tailguard"]},
    "eager-b8": {"flavour": "eager", "rate": 10.0, "batch": 8, "modes": ["alone", "native", "tailguard"]},
    "attach": {"flavour": None, "rate": None, "batch": 8, "modes": ["bare", "attached"]},
}
# (name, block metric, numerator mode, denominator mode, issue 18's acceptance bound or None)
RATIOS = {
    "graph-b1024": [
        ("request P50, tailguard / alone", "p50_ms", "tailguard", "alone", {"op": "<=", "value": 1.10}),
        ("request P99, tailguard / alone", "p99_ms", "tailguard", "alone", {"op": "<=", "value": 1.05}),
        ("batch it/s, tailguard / native", "iter_per_s", "tailguard", "native", {"op": ">=", "value": 0.97}),
        ("request P50, native / alone", "p50_ms", "native", "alone", None),
        ("request P99, native / alone", "p99_ms", "native", "alone", None),
        ("request P99, tailguard / native", "p99_ms", "tailguard", "native", None),
        ("request GPU ms P50, tailguard / alone", "gpu_p50_ms", "tailguard", "alone", None),
        ("batch CPU ms/iteration, tailguard / native", "cpu_ms_per_iter", "tailguard", "native", None),
    ],
    "eager-b8": [
        ("batch it/s, tailguard / native", "iter_per_s", "tailguard", "native", {"op": ">=", "value": 0.97}),
        ("request P99, tailguard / native", "p99_ms", "tailguard", "native", {"op": "<=", "value": 1.00}),
        ("request P50, tailguard / alone", "p50_ms", "tailguard", "alone", None),
        ("request P99, tailguard / alone", "p99_ms", "tailguard", "alone", None),
        ("request P50, native / alone", "p50_ms", "native", "alone", None),
        ("request P99, native / alone", "p99_ms", "native", "alone", None),
        ("batch CPU ms/iteration, tailguard / native", "cpu_ms_per_iter", "tailguard", "native", None),
    ],
    "attach": [
        ("batch it/s, attached / bare", "iter_per_s", "attached", "bare", {"op": ">=", "value": 0.99}),
        ("batch CPU ms/iteration, attached / bare", "cpu_ms_per_iter", "attached", "bare", None),
    ],
}
PERCENTILE_OF = {"p50_ms": 50, "p99_ms": 99}
LEAD_S = 0.05  # from sending a block's command to the first (settling) request
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    """The run cannot go on; the message says why and what to look at."""


# ---------------------------------------------------------------------------------------------------------- worker

def sleep_until(t_ns):
    while True:
        left = t_ns - time.monotonic_ns()
        if left <= 0:
            return
        time.sleep(left / 1e9)


def request_block(load, cmd):
    """The open-loop schedule of one block: `settle` uncounted requests, then one every 1/rate s from the start."""
    period = 1e9 / cmd["rate"]
    n, settle = cmd["requests"], cmd["settle_requests"]
    first = cmd["start_ns"] - settle * period
    latency, gpu = [], []
    gc.collect()
    gc.disable()
    cpu0 = None
    for i in range(settle + n):
        due = int(first + i * period)
        if i == settle:
            cpu0 = time.process_time_ns()
        sleep_until(due)
        gpu_ms = load.run()
        done = time.monotonic_ns()
        if i >= settle:
            latency.append((done - due) / 1e6)
            gpu.append(gpu_ms)
    cpu1 = time.process_time_ns()
    gc.enable()
    return {"requests": n, "settle_requests": settle, "latency_ms": latency, "gpu_ms": gpu,
            "cpu_ms": (cpu1 - cpu0) / 1e6}


def batch_block(load, cmd):
    """Iterations from the command until the first completion after the block's end; the whole iterations completed
    inside the block are counted, with the process's CPU time over them."""
    start, end = cmd["start_ns"], cmd["start_ns"] + int(cmd["seconds"] * 1e9)
    inside, settle, after = [], 0, 0
    gc.collect()
    gc.disable()
    while True:
        load.run()
        t, cpu = time.monotonic_ns(), time.process_time_ns()
        if t < start:
            settle += 1
        elif t <= end:
            inside.append((t, cpu))
        else:
            after = 1
            break
    gc.enable()
    out = {"settle_iterations": settle, "iterations": max(0, len(inside) - 1), "elapsed_s": None, "iter_per_s": None,
           "cpu_ms_per_iter": None, "iteration_ms": None, "after_end": after}
    if len(inside) >= 2:
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        k = len(inside) - 1
        steps = sorted((b[0] - a[0]) / 1e6 for a, b in zip(inside, inside[1:]))
        out.update(elapsed_s=(t1 - t0) / 1e9, iter_per_s=k / ((t1 - t0) / 1e9), cpu_ms_per_iter=(c1 - c0) / 1e6 / k,
                   iteration_ms={"p50": stats.percentile(steps, 50), "max": steps[-1]})
    return out


def worker_main(spec):
    """One warm worker: builds its workload, says ready, then runs each block it is sent (one JSON line each way)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answers
    say = lambda obj: answers.write(json.dumps(obj) + "\n")  # noqa: E731
    cpus = spec.get("cpus")
    if cpus:
        os.sched_setaffinity(0, cpus)
    t0 = time.monotonic()
    if spec["role"] == "high":
        load = workloads.requests(spec["flavour"], fake=spec["fake"])
        run = request_block
    else:
        load = workloads.batch_job(spec["batch"], fake=spec["fake"])
        run = batch_block
    with open("/proc/self/maps") as f:
        shim_loaded = any("libtailguard" in line for line in f)
    say({"ready": True, "pid": os.getpid(), "warmup_s": time.monotonic() - t0, "shim_loaded": shim_loaded,
         "cpus": sorted(os.sched_getaffinity(0)), **workloads.versions(spec["fake"])})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        if cmd["cmd"] != "block":
            raise ValueError(f"unknown command {cmd!r}")
        say(run(load, cmd))


# ------------------------------------------------------------------------------------------------------ controller

class Worker:
    """A worker process and its pipes; answers are read with a deadline."""

    def __init__(self, name, spec, env, out_dir):
        self.name, self.spec = name, spec
        self.err_path = os.path.join(out_dir, name + ".err")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.err_path, "w"),
                                     env=env, cwd=ROOT)
        self.pid = self.proc.pid
        self.buf = b""
        self.ready = None

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def answer(self, deadline):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"worker {self.name} (pid {self.pid}) did not answer in time; {self.stderr_tail()}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    raise Failed(f"worker {self.name} (pid {self.pid}) exited with status {code}; {self.stderr_tail()}")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def stderr_tail(self):
        try:
            with open(self.err_path, errors="replace") as f:
                tail = f.read()[-3000:]
        except OSError:
            tail = ""
        return f"its stderr ({self.err_path}) ends:\n{tail}" if tail.strip() else "its stderr is empty"

    def stop(self, grace_s=30):
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RingReader:
    """bench/gpu/rings.mjs on the private TAILGUARD_DIR: drains it and reports rings and control-file slots."""

    def __init__(self, node, ring_dir, out_dir):
        self.err_path = os.path.join(out_dir, "rings.err")
        self.proc = subprocess.Popen([node, RINGS, ring_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.err_path, "w"), text=True, bufsize=1)
        self.pid = self.proc.pid

    def status(self):
        try:
            self.proc.stdin.write("status\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            with open(self.err_path, errors="replace") as f:
                raise Failed(f"the ring reader (bench/gpu/rings.mjs) stopped: {f.read()[-2000:]}")
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class GpuSampler:
    """nvidia-smi's SM clock, power and utilisation every 500 ms (read-only queries)."""

    def __init__(self):
        self.samples, self.proc = [], None
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,utilization.gpu",
                                          "--format=csv,noheader,nounits", "-lms", "500"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError:
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            fields = [_number(x) for x in line.split(",")]
            if len(fields) == 3 and fields[0] is not None:
                self.samples.append((time.monotonic_ns(), *fields))

    def between(self, t0, t1):
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if not inside:
            return None
        col = lambda i: [s[i] for s in inside if s[i] is not None]  # noqa: E731
        return {"samples": len(inside), "sm_mhz_p50": stats.percentile(col(1), 50), "sm_mhz_min": min(col(1)),
                "power_w_p50": stats.percentile(col(2), 50), "util_pct_p50": stats.percentile(col(3), 50)}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]" and the like


def cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(rest[11]) + int(rest[12])


def host_times():
    """/proc/stat's cpu lines: name -> (user, nice, system, idle, iowait, irq, softirq, steal) in ticks."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                parts = line.split()
                out[parts[0]] = [int(x) for x in parts[1:9]] + [0] * (9 - len(parts))
    return out


def host_load(a, b, names):
    """Steal and busy time (% of all time) of the CPUs named, between two host_times()."""
    d = [sum(b[n][i] - a[n][i] for n in names if n in a and n in b) for i in range(8)]
    total = sum(d)
    if total <= 0:
        return {"steal_pct": None, "busy_pct": None}
    return {"steal_pct": 100 * d[7] / total, "busy_pct": 100 * (total - d[3] - d[4] - d[7]) / total}


def parse_cpus(text):
    cpus = set()
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        cpus.update(range(int(a), int(b or a) + 1))
    return cpus


def usable_cpus(text):
    """The CPUs asked for, if this process may run on all of them; else None (not pinned, and the result says so)."""
    cpus = parse_cpus(text)
    return sorted(cpus) if cpus and cpus <= os.sched_getaffinity(0) else None


def run_text(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine(fake):
    m = {"python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
         "cpu_model": None, "gpu": None, "driver": None, "torch": None, "torchvision": None, "cuda": None,
         "commit": os.environ.get("TG_COMMIT") or run_text(["git", "rev-parse", "--short", "HEAD"]),
         "dirty": bool(run_text(["git", "status", "--porcelain", "--untracked-files=no"])),
         "command": [sys.executable] + sys.argv}
    try:
        with open("/proc/cpuinfo") as f:
            m["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    if not fake:
        q = run_text(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
        if q:
            m["gpu"], _, m["driver"] = (x.strip() for x in q.splitlines()[0].partition(","))
    return m


def tg_option(text):
    """--tg-env's value: TAILGUARD_NAME=VALUE."""
    if not text.startswith("TAILGUARD_") or "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: give TAILGUARD_NAME=VALUE, e.g. TAILGUARD_HOLDS=0")
    return tuple(text.split("=", 1))


def worker_env(spec, ring_dir, shim, tg_env=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILGUARD_") and k != "LD_PRELOAD"}
    if spec["shim"] and shim:
        env.update(LD_PRELOAD=shim, TAILGUARD_DIR=ring_dir,
                   TAILGUARD_LOG_LEVEL=os.environ.get("TAILGUARD_LOG_LEVEL", "info"))
        if spec["shim"] == "priority":
            env["TAILGUARD_PRIORITY"] = spec["role"]
            env.update(tg_env)  # a lever under test (--tg-env), on the scheduled workers only
        else:
            env.update(TAILGUARD_PRIORITY="normal", **TELEMETRY_ENV)
    return env


def latest_rings(status):
    """pid -> its ring of the latest exec generation."""
    out = {}
    for r in status["rings"]:
        if r["pid"] not in out or r["generation"] > out[r["pid"]]["generation"]:
            out[r["pid"]] = r
    return out


def attachment(workers, ring_dir, status, fake):
    """Each shim worker's attachment as seen now; raises Failed for one that is not attached as intended."""
    seen, wrong = {}, []
    rings = latest_rings(status) if status else {}
    slots = {s["pid"]: s for s in status["slots"]} if status else {}
    for w in workers.values():
        if not w.spec["shim"]:
            continue
        intended = INTENDED_PRIORITY[(w.spec["shim"], w.spec["role"])]
        ring_file = any(f.startswith(f"{w.pid}.") and f.endswith(".ring") for f in os.listdir(ring_dir))
        ring, slot = rings.get(w.pid), slots.get(w.pid)
        a = {"pid": w.pid, "intended_priority": intended, "shim_loaded": w.ready["shim_loaded"], "ring_file": ring_file,
             "ring_priority": ring["priority"] if ring else None, "slot_priority": slot["priority"] if slot else None,
             "mechanisms": slot["mechanisms"] if slot else None}
        seen[w.name] = a
        if not a["shim_loaded"] or not ring_file:
            wrong.append(f"{w.name}: the shim is not loaded (shim in its maps: {a['shim_loaded']}, ring file in "
                         f"{ring_dir}: {ring_file}); {w.stderr_tail()}")
        elif status and a["ring_priority"] != intended:
            wrong.append(f"{w.name}: its ring says priority {a['ring_priority']}, intended {intended}")
        elif status and not fake and a["slot_priority"] != intended:
            wrong.append(f"{w.name}: its slot in the GPU's control file says priority {a['slot_priority']} (None: no "
                         f"slot, it did not reach the GPU through the shim), intended {intended}")
        elif status and w.spec["shim"] == "telemetry" and a["mechanisms"]:
            wrong.append(f"{w.name}: scheduling is off, yet mechanisms {a['mechanisms']} are in effect")
    if wrong:
        raise Failed("a shim worker is not attached as intended:\n  " + "\n  ".join(wrong))
    return seen


def mechanism_problems(workers, blocks, fake):
    """As `tailguard bench` checks: a low-priority shim worker beside a higher priority must have had a scheduling
    mechanism in effect at some block's end (only a real GPU has slots); the result is kept, flagged."""
    out = []
    for n, w in workers.items():
        if w.spec["shim"] == "priority" and w.spec["role"] == "low" and not fake:
            if not any((b.get("rings") or {}).get(n, {}).get("mechanisms") for b in blocks):
                out.append(f"{n}: no scheduling mechanism was ever in effect although a higher priority was attached")
    return out


def block_summary(answer, role):
    """A worker's answer with the figures the ratios use."""
    if role == "low":
        return answer
    lat, gpu = answer["latency_ms"], answer["gpu_ms"]
    n = len(lat)
    return {**answer, "n": n, "p50_ms": stats.percentile(lat, 50), "p99_ms": stats.percentile(lat, 99),
            "max_ms": max(lat) if lat else None, "gpu_p50_ms": stats.percentile(gpu, 50),
            "gpu_p99_ms": stats.percentile(gpu, 99)}


def run_block(ctx, rnd, pos, mode):
    a = ctx["args"]
    active = [ctx["workers"][n] for n in MODES[mode]["workers"]]
    cmd = {"cmd": "block", "round": rnd, "mode": mode, "seconds": a.block}
    settle_s = a.settle
    if ctx["case"]["rate"]:
        rate = ctx["case"]["rate"]
        cmd.update(rate=rate, requests=max(1, round(a.block * rate)), settle_requests=max(1, int(a.settle * rate)))
        settle_s = max(a.settle, cmd["settle_requests"] / rate)
    start = time.monotonic_ns() + int((LEAD_S + settle_s) * 1e9)
    end = start + int(a.block * 1e9)
    cmd["start_ns"] = start
    for w in active:
        w.send(cmd)
    procs = {**{n: w.pid for n, w in ctx["workers"].items()}, **({"rings": ctx["rings"].pid} if ctx["rings"] else {})}
    sleep_until(start)
    h0, c0 = host_times(), {n: cpu_ticks(p) for n, p in procs.items()}
    sleep_until(end)
    h1, c1 = host_times(), {n: cpu_ticks(p) for n, p in procs.items()}
    deadline = time.monotonic() + a.block + 120
    block = {"round": rnd, "position": pos, "mode": mode, "start_ns": start, "seconds": a.block, "high": None,
             "low": None}
    for w in active:
        block[w.spec["role"]] = {"worker": w.name, **block_summary(w.answer(deadline), w.spec["role"])}
    worker_cpus = [f"cpu{c}" for c in sorted(ctx["worker_cpus"])]
    block["host"] = {"all": host_load(h0, h1, ["cpu"]),
                     "worker_cpus": host_load(h0, h1, worker_cpus) if worker_cpus else None,
                     "cpu_ms": {n: (c1[n] - c0[n]) * 1000 / CLK_TCK if c0[n] is not None and c1[n] is not None
                                else None for n in procs},
                     "idle": [n for n in ctx["workers"] if n not in MODES[mode]["workers"]]}
    block["gpu"] = ctx["sampler"].between(start, end) if ctx["sampler"] else None
    if ctx["rings"]:
        st = ctx["rings"].status()
        rings = latest_rings(st)
        slots = {s["pid"]: s for s in st["slots"]}
        block["rings"] = {n: {"launches": rings[w.pid]["launches"] if w.pid in rings else None,
                              "dropped": rings[w.pid]["dropped"] if w.pid in rings else None,
                              "mechanisms": slots[w.pid]["mechanisms"] if w.pid in slots else None,
                              "holds": slots[w.pid]["holds"] if w.pid in slots else None}
                          for n, w in ctx["workers"].items() if w.spec["shim"]}
        block["rings_drained"] = st["drained"]
    return block


def metric(block, name):
    side = block["low"] if name in ("iter_per_s", "cpu_ms_per_iter") else block["high"]
    return side.get(name) if side else None


def summarize(case_name, order, blocks):
    by = {(b["round"], b["mode"]): b for b in blocks}
    rounds = sorted({b["round"] for b in blocks})
    ratios = []
    for name, m, num, den, bound in RATIOS[case_name]:
        per_round = []
        for r in rounds:
            x, y = metric(by[(r, num)], m), metric(by[(r, den)], m)
            per_round.append(x / y if x is not None and y else None)
        iv = stats.paired_interval(per_round)
        ci = iv["ci"]
        entry = {"name": name, "metric": m, "numerator": num, "denominator": den, "per_round": per_round,
                 **iv, "bound": bound, "verdict": stats.verdict(ci, bound),
                 "excludes_1": None if ci is None else (ci[0] > 1 or ci[1] < 1)}
        if m == "p99_ms" or (m in PERCENTILE_OF and bound):
            lat = lambda mode: [by[(r, mode)]["high"]["latency_ms"] if by[(r, mode)]["high"] else [] for r in rounds]
            pooled_iv = stats.pooled_interval(lat(num), lat(den), PERCENTILE_OF[m])
            pooled_iv["verdict"] = stats.verdict(pooled_iv["ci"], bound)
            entry["pooled"] = pooled_iv
            # a block with fewer than 100 requests has no P99 of its own (it is the block's largest): judge the pooled one
            fewest = min((len(x) for x in lat(num) + lat(den)), default=0)
            if m == "p99_ms" and fewest < 100:
                entry["judged_on"] = "pooled"
                entry["verdict"] = pooled_iv["verdict"]
        ratios.append(entry)
    modes = order[0]
    pooled, basis = {}, {}
    for mode in modes:
        highs = [b["high"] for b in blocks if b["mode"] == mode and b["high"]]
        if not highs:
            continue
        lat = [x for h in highs for x in h["latency_ms"]]
        ns = sorted({h["n"] for h in highs})
        pooled[mode] = {"requests": len(lat), "p50_ms": stats.percentile(lat, 50),
                        "p99_ms": stats.percentile(lat, 99), "p99_rests_on": stats.rank_note(len(lat), 99)}
        basis[mode] = {"requests_per_block": ns, "p50": stats.rank_note(ns[0], 50), "p99": stats.rank_note(ns[0], 99)}
    pooled_ratios = {f"P99, {a} / {b}": pooled[a]["p99_ms"] / pooled[b]["p99_ms"]
                     for a, b in (("tailguard", "alone"), ("native", "alone"), ("tailguard", "native"))
                     if a in pooled and b in pooled}
    steal = [b["host"]["all"]["steal_pct"] for b in blocks if b["host"]["all"]["steal_pct"] is not None]
    wsteal = [b["host"]["worker_cpus"]["steal_pct"] for b in blocks
              if b["host"]["worker_cpus"] and b["host"]["worker_cpus"]["steal_pct"] is not None]
    idle_cpu = [b["host"]["cpu_ms"][n] for b in blocks for n in b["host"]["idle"] if b["host"]["cpu_ms"][n] is not None]
    host = {"steal_pct_p50": stats.percentile(steal, 50), "steal_pct_max": max(steal, default=None),
            "worker_cpus_steal_pct_max": max(wsteal, default=None),
            "idle_worker_cpu_ms_max": max(idle_cpu, default=None),
            "per_mode": {}}
    for mode in modes:
        mine = [b for b in blocks if b["mode"] == mode]
        host["per_mode"][mode] = {
            "steal_pct_p50": stats.percentile([b["host"]["all"]["steal_pct"] or 0 for b in mine], 50),
            "busy_pct_p50": stats.percentile([b["host"]["all"]["busy_pct"] or 0 for b in mine], 50),
            "sm_mhz_p50": stats.percentile([b["gpu"]["sm_mhz_p50"] for b in mine if b["gpu"]], 50)}
    return {"ratios": ratios, "percentile_basis": basis, "pooled": pooled, "pooled_ratios": pooled_ratios,
            "host": host, "positions": stats.position_counts(order),
            "verdicts": {r["name"]: r["verdict"] for r in ratios if r["bound"]}}


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def table(result):
    s, c = result["summary"], result["config"]
    lines = [f"paired {result['case']}: {c['rounds']} rounds of {', '.join(c['modes'])}, {c['block_s']:g} s blocks"
             f"{' (fake workers)' if c['fake'] else ''}; {result['machine']['gpu'] or 'no GPU'}",
             f"{'ratio':44} {'geo mean':>8}  {'95 % interval':>15}  {'bound':>7}  verdict"]
    for r in s["ratios"]:
        ci = f"{fmt(r['ci'][0])}-{fmt(r['ci'][1])}" if r["ci"] else "-"
        bound = f"{r['bound']['op']} {r['bound']['value']:.2f}" if r["bound"] else ""
        judged = r.get("judged_on") == "pooled"
        lines.append(f"{r['name']:44} {fmt(r['geomean']):>8}  {ci:>15}  {bound:>7}  "
                     f"{'(per block: no P99 of its own)' if judged else r['verdict'] or ''}")
        pooled = r.get("pooled")
        if pooled and (judged or pooled["ci"]):
            pci = f"{fmt(pooled['ci'][0])}-{fmt(pooled['ci'][1])}" if pooled["ci"] else "-"
            lines.append(f"{'  pooled over rounds (round bootstrap)':44} {fmt(pooled['ratio']):>8}  {pci:>15}  {bound:>7}  "
                         f"{(pooled['verdict'] or '') if r['bound'] else ''}")
    for mode, b in s["percentile_basis"].items():
        p = s["pooled"][mode]
        lines.append(f"{mode}: per block {b['p99']}; pooled P50 {fmt(p['p50_ms'])} ms, P99 {fmt(p['p99_ms'])} ms "
                     f"({p['p99_rests_on']})")
    if s["pooled_ratios"]:
        lines.append("pooled P99 ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in s["pooled_ratios"].items()))
    h = s["host"]
    lines.append(f"host: steal median {fmt(h['steal_pct_p50'], 2)} %, max {fmt(h['steal_pct_max'], 2)} % "
                 f"(workers' CPUs max {fmt(h['worker_cpus_steal_pct_max'], 2)} %); idle workers' CPU per block at most "
                 f"{fmt(h['idle_worker_cpu_ms_max'], 0)} ms")
    sm = {m: x["sm_mhz_p50"] for m, x in h["per_mode"].items() if x["sm_mhz_p50"] is not None}
    if sm:
        lines.append("SM clock, median per mode: " + ", ".join(f"{m} {v:.0f} MHz" for m, v in sm.items()))
    if s.get("rings"):
        lines.append("rings: " + "; ".join(f"{n} {x['launches']} launches, {x['dropped']} records dropped"
                                            for n, x in s["rings"].items()))
    if not c["pinned"]:
        lines.append("note: workers not pinned (the CPUs asked for are not all available here)")
    if c["rounds"] < 8:
        lines.append(f"note: {c['rounds']} rounds; issue 18 asks for at least 8")
    if c["rings"] != "drained":
        lines.append(f"note: rings {c['rings']}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), default="graph-b1024")
    ap.add_argument("--block", type=float, default=10.0, help="seconds per block (default 10)")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of every mode (default 8)")
    ap.add_argument("--settle", type=float, help="uncounted seconds before each block (default 1; --fake 0.1)")
    ap.add_argument("--rate", type=float, help="requests/s (default: the case's)")
    ap.add_argument("--batch", type=int, help="the batch job's batch size (default: the case's)")
    ap.add_argument("--out", help="output directory (default ./results/paired-CASE-TIME)")
    ap.add_argument("--fake", action="store_true", help="CPU-only stand-in workers, no torch or GPU")
    ap.add_argument("--drain", choices=["auto", "on", "off"], default="auto",
                    help="drain the shim's rings with bench/gpu/rings.mjs (auto: when node and the built agent exist)")
    ap.add_argument("--shim", default=SHIM, help="the shim library (default native/build/libtailguard.so)")
    ap.add_argument("--high-cpus", default="2,3")
    ap.add_argument("--low-cpus", default="6,7")
    ap.add_argument("--control-cpus", default="0,1")
    ap.add_argument("--ready-timeout", type=float, help="seconds for the warm-up (default 600; --fake 60)")
    ap.add_argument("--tg-env", action="append", default=[], metavar="TAILGUARD_X=V",
                    type=tg_option,
                    help="an option for the tailguard mode's workers (a lever under test); repeatable")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(json.loads(a.worker))
    if a.block <= 0 or a.rounds < 2:
        ap.error("--block must be positive and --rounds at least 2 (issue 18 asks for 8 or more)")
    a.settle = (0.1 if a.fake else 1.0) if a.settle is None else a.settle
    a.ready_timeout = (60 if a.fake else 600) if a.ready_timeout is None else a.ready_timeout
    case = dict(CASES[a.case])
    if a.rate is not None:
        case["rate"] = a.rate if case["rate"] else ap.error("--rate: the attach case sends no requests")
    if a.batch is not None:
        case["batch"] = a.batch
    if (case["rate"] is not None and case["rate"] <= 0) or case["batch"] <= 0:
        ap.error("--rate and --batch must be positive")
    out = a.out or os.path.join("results", f"paired-{a.case}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)

    shim = os.path.abspath(a.shim)
    if not os.path.exists(shim):
        if not a.fake:
            sys.exit(f"paired.py: the shim {shim} is not built: run `make -C native build/libtailguard.so`")
        shim = None  # the stand-ins run bare; the result says so
    node = shutil.which("node")
    can_drain = bool(node) and all(os.path.exists(os.path.join(ROOT, p)) for p in
                                   ("agent/dist/ingest/native.js", "build/Release/tailguard.node"))
    if a.drain == "on" and not can_drain:
        sys.exit("paired.py: --drain on needs node on PATH, agent/dist (npx tsc -p .) and build/Release/tailguard.node")
    drain = shim is not None and a.drain != "off" and can_drain

    modes = case["modes"]
    names = [n for n in WORKERS if any(n in MODES[m]["workers"] for m in modes)]
    cpus_for = {"high": usable_cpus(a.high_cpus), "low": usable_cpus(a.low_cpus)}
    control_cpus = usable_cpus(a.control_cpus)
    pinned = all(cpus_for[WORKERS[n]["role"]] for n in names) and control_cpus is not None
    if pinned:  # all or nothing: unpinned workers would inherit the controller's CPUs
        os.sched_setaffinity(0, control_cpus)  # the ring reader and nvidia-smi inherit it
    order = stats.block_order(modes, a.rounds)
    result = {"tool": "bench/gpu/paired.py", "case": a.case, "machine": machine(a.fake),
              "config": {"modes": modes, "mode_text": {m: MODES[m]["text"] for m in modes}, "rounds": a.rounds,
                         "block_s": a.block, "settle_s": a.settle, "rate": case["rate"], "flavour": case["flavour"],
                         "batch": case["batch"], "fake": a.fake, "shim": shim, "pinned": pinned,
                         "cpus": {"high": cpus_for["high"], "low": cpus_for["low"], "control": control_cpus},
                         "design": "Williams (balanced for position and carry-over over each full set of orders)",
                         "rings": "drained" if drain else "not drained: " + (
                             "no shim" if shim is None else "--drain off" if a.drain == "off" else
                             "node or the built agent missing; full lanes drop records"),
                         "order": order},
              "workers": {}, "blocks": [], "problems": []}
    ring_dir = tempfile.mkdtemp(prefix="tg-paired-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ctx = {"args": a, "case": case, "workers": {}, "rings": None, "sampler": None,
           "worker_cpus": set((cpus_for["high"] or []) + (cpus_for["low"] or [])) if pinned else set()}
    t_start = time.monotonic()
    try:
        if drain:
            ctx["rings"] = RingReader(node, ring_dir, out)
            try:
                ctx["rings"].status()
            except Failed as e:
                if a.drain == "on":
                    raise
                ctx["rings"].stop()
                ctx["rings"] = None
                result["config"]["rings"] = f"not drained: bench/gpu/rings.mjs failed ({e}); full lanes drop records"
        for n in names:  # all at once: their warm-ups overlap
            spec = {**WORKERS[n], "name": n, "fake": a.fake, "flavour": case["flavour"], "batch": case["batch"],
                    "cpus": cpus_for[WORKERS[n]["role"]] if pinned else None}
            ctx["workers"][n] = Worker(n, spec, worker_env(spec, ring_dir, shim, a.tg_env), out)
        deadline = time.monotonic() + a.ready_timeout
        for n, w in ctx["workers"].items():
            w.ready = w.answer(deadline)
            result["workers"][n] = {**w.spec, "pid": w.pid, "ready": w.ready,
                                    "env": {k: v for k, v in worker_env(w.spec, ring_dir, shim, a.tg_env).items()
                                            if k.startswith("TAILGUARD_") or k == "LD_PRELOAD"}}
        first = next(iter(ctx["workers"].values())).ready
        for k in ("torch", "torchvision", "cuda"):
            result["machine"][k] = first.get(k)
        result["machine"]["gpu"] = result["machine"]["gpu"] or first.get("gpu")
        result["warmup_s"] = time.monotonic() - t_start
        status = ctx["rings"].status() if ctx["rings"] else None
        result["attachment"] = attachment(ctx["workers"], ring_dir, status, a.fake)
        if not a.fake and shutil.which("nvidia-smi"):
            ctx["sampler"] = GpuSampler()
        per_block = a.block + a.settle + LEAD_S
        print(f"paired {a.case}: {len(names)} workers warm in {result['warmup_s']:.0f} s; {a.rounds} rounds of "
              f"{len(modes)} blocks of {a.block:g} s, about {a.rounds * len(modes) * per_block:.0f} s more",
              file=sys.stderr, flush=True)
        for rnd, row in enumerate(order):
            for pos, mode in enumerate(row):
                b = run_block(ctx, rnd, pos, mode)
                result["blocks"].append(b)
                hi = f" P50 {fmt(b['high']['p50_ms'])} P99 {fmt(b['high']['p99_ms'])} ms" if b["high"] else ""
                lo = f" {fmt(b['low']['iter_per_s'], 2)} it/s" if b["low"] else ""
                print(f"  round {rnd + 1} {mode}:{hi}{lo}", file=sys.stderr, flush=True)
        if ctx["rings"]:
            result["rings_at_end"] = ctx["rings"].status()
            result["problems"] = mechanism_problems(ctx["workers"], result["blocks"], a.fake)
    except (Failed, OSError, ValueError, KeyError) as e:
        result["error"] = str(e)
        with open(os.path.join(out, "failed.json"), "w") as f:
            json.dump(result, f)
        print(f"paired.py: {e}\n(what it had: {os.path.join(out, 'failed.json')})", file=sys.stderr)
        return 1
    finally:
        for w in ctx["workers"].values():
            w.stop()
        for part in (ctx["rings"], ctx["sampler"]):
            if part:
                part.stop()
        shutil.rmtree(ring_dir, ignore_errors=True)
    result["wall_s"] = time.monotonic() - t_start
    result["summary"] = summarize(a.case, order, result["blocks"])
    if "rings_at_end" in result:  # whether draining kept up: a full lane drops records
        rings = latest_rings(result["rings_at_end"])
        result["summary"]["rings"] = {n: {k: rings[w["pid"]][k] for k in ("launches", "dropped", "lost")}
                                      for n, w in result["workers"].items() if w["shim"] and w["pid"] in rings}
    path = os.path.join(out, "paired.json")
    with open(path, "w") as f:
        json.dump(result, f)
    print(table(result))
    for p in result.get("problems", []):
        print(f"PROBLEM: {p}: the tailguard mode did not run as intended; its ratios mean nothing")
    print(f"(every block and the summary: {path})")
    return 1 if result.get("problems") else 0


if __name__ == "__main__":
    sys.exit(main())
