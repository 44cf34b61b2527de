"""The original test (README, docs/bench.md) on a real GPU: high-priority ResNet-18 inference (batch 1, open loop at
20 and 10 requests/s, eager and CUDA-graph flavours) sharing the GPU with low-priority ResNet-50 (batch 8 or 1024, back
to back), under one setting:
  standalone  the high-priority process alone, no shim (the reference)
  native      both processes, no shim (the GPU's own time-slicing)
  tailguard   both processes under the shim, TAILGUARD_PRIORITY=high / low (holds, channel-group timeslice)
One process per role; they warm up (cuDNN autotune, graph capture) before a common start, are pinned to different CPUs
and run with Python's GC off in the timed loops. Request latency = completion - scheduled arrival; each request's GPU
time (CUDA events around it) and, per phase, the SM clock, power and utilisation `nvidia-smi` reports (queried every
200 ms, read-only) are recorded too. The low-priority process counts iterations only while the high-priority phases
run.

Usage: python3 mission.py --setting S --low-batch B [--n20 N] [--n10 N] --out FILE.json   (from the repository root)
"""
import argparse, gc, json, os, subprocess, sys, tempfile, threading, time

HIGH_CPUS, LOW_CPUS = {2, 3}, {6, 7}


def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)


def high(sync_dir, n20, n10):
    import torch, torchvision.models as m
    os.sched_setaffinity(0, HIGH_CPUS)
    torch.backends.cudnn.benchmark = True
    model = m.resnet18(weights=None).cuda().eval()
    x = torch.randn(1, 3, 224, 224, device="cuda")
    with torch.no_grad():
        for _ in range(30):
            model(x)
        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            model(x)
        torch.cuda.synchronize()
        flavours = {"graph": lambda: graph.replay(), "eager": lambda: model(x)}
        open(os.path.join(sync_dir, "high.ready"), "w").close()
        wait_for(os.path.join(sync_dir, "go"))
        phases = []
        for rate, n in ((20, n20), (10, n10)):
            for flavour in ("graph", "eager"):
                step = flavours[flavour]
                for _ in range(5):  # settle after the previous phase
                    step()
                torch.cuda.synchronize()
                gc.disable()
                # GPU time of each request: events around it on its stream (includes waiting for other contexts'
                # time slices; with the end-to-end latency it separates GPU from CPU time)
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                lat, gpu, period, start = [], [], 1.0 / rate, time.perf_counter() + 0.05
                wall0 = time.time()
                for i in range(n):
                    due = start + i * period
                    now = time.perf_counter()
                    if now < due:
                        time.sleep(due - now)
                    begin.record()
                    step()
                    end.record()
                    torch.cuda.synchronize()
                    lat.append((time.perf_counter() - due) * 1e3)
                    gpu.append(begin.elapsed_time(end))
                gc.enable()
                phases.append({"flavour": flavour, "rate": rate, "latency_ms": lat, "gpu_ms": gpu,
                               "wall": [wall0, time.time()]})
        open(os.path.join(sync_dir, "done"), "w").close()
    return {"phases": phases}


def low(sync_dir, batch):
    import torch, torchvision.models as m
    os.sched_setaffinity(0, LOW_CPUS)
    torch.backends.cudnn.benchmark = True
    model = m.resnet50(weights=None).cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    done = os.path.join(sync_dir, "done")
    with torch.no_grad():
        for _ in range(5):
            model(x)
        torch.cuda.synchronize()
        open(os.path.join(sync_dir, "low.ready"), "w").close()
        wait_for(os.path.join(sync_dir, "go"))
        gc.disable()
        n, t0 = 0, time.perf_counter()
        while not os.path.exists(done):
            model(x)
            torch.cuda.synchronize()
            n += 1
        elapsed = time.perf_counter() - t0
    return {"batch": batch, "iters": n, "elapsed_s": elapsed, "iter_per_s": n / elapsed}


def gpu_sampler():
    """The GPU's SM clock, power and utilisation every 200 ms while the phases run (read-only queries; the GPU's
    settings are left alone): a contended GPU may run its SMs slower than one serving the high-priority process alone.
    Returns (process, reader thread, [(time, sm_mhz, watts, util %)]); (None, None, []) without nvidia-smi."""
    samples = []
    try:
        proc = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,utilization.gpu",
                                 "--format=csv,noheader,nounits", "-lms", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    except OSError:
        return None, None, samples

    def read():
        for line in proc.stdout:
            try:
                sm, watts, util = (float(x) for x in line.split(","))
                samples.append((time.time(), sm, watts, util))
            except ValueError:
                pass  # "[N/A]" and the like

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, reader, samples


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, -(-len(v) * p // 100) - 1))]  # nearest rank


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["high", "low"])
    ap.add_argument("--sync-dir")
    ap.add_argument("--setting", choices=["standalone", "native", "tailguard"])
    ap.add_argument("--low-batch", type=int, default=1024)
    ap.add_argument("--n20", type=int, default=80)
    ap.add_argument("--n10", type=int, default=60)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.role:
        res = high(a.sync_dir, a.n20, a.n10) if a.role == "high" else low(a.sync_dir, a.low_batch)
        json.dump(res, open(os.path.join(a.sync_dir, a.role + ".json"), "w"))
        return
    sync = tempfile.mkdtemp(prefix="tg-mission-")
    shim = os.path.abspath("native/build/libtailguard.so")
    roles = ["high"] + ([] if a.setting == "standalone" else ["low"])
    procs = {}
    for role in roles:
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if a.setting == "tailguard":
            env.update(LD_PRELOAD=shim, TAILGUARD_PRIORITY=role, TAILGUARD_DIR="/dev/shm/tailguard-mission",
                       TAILGUARD_LOG_LEVEL=os.environ.get("TAILGUARD_LOG_LEVEL", "info"))
        cmd = [sys.executable, __file__, "--role", role, "--sync-dir", sync, "--n20", str(a.n20), "--n10", str(a.n10),
               "--low-batch", str(a.low_batch)]
        procs[role] = subprocess.Popen(cmd, env=env, stderr=open(os.path.join(sync, role + ".err"), "w"))
    for role in roles:
        while not os.path.exists(os.path.join(sync, role + ".ready")):
            if procs[role].poll() is not None:
                sys.exit(f"{role} failed: " + open(os.path.join(sync, role + ".err")).read()[-3000:])
            time.sleep(0.05)
    time.sleep(1.0)  # both in their loops
    sampler, reader, samples = gpu_sampler()
    open(os.path.join(sync, "go"), "w").close()
    for role in roles:
        procs[role].wait()
    if sampler:
        sampler.terminate()
        reader.join(timeout=2)
    out = {"setting": a.setting, "low_batch": a.low_batch if a.setting != "standalone" else None,
           "variant": os.environ.get("TG_VARIANT", "")}
    h = json.load(open(os.path.join(sync, "high.json")))
    def gpu_state(wall):
        inside = [x for x in samples if wall[0] <= x[0] <= wall[1]]
        if not inside:
            return None
        return {"samples": len(inside), "sm_mhz_p50": pct([x[1] for x in inside], 50),
                "sm_mhz_p10": pct([x[1] for x in inside], 10), "power_w_p50": pct([x[2] for x in inside], 50),
                "util_p50": pct([x[3] for x in inside], 50)}
    out["high"] = [{"flavour": p["flavour"], "rate": p["rate"], "n": len(p["latency_ms"]),
                    **{k: pct(p["latency_ms"], q) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))},
                    "max": max(p["latency_ms"]), "latency_ms": p["latency_ms"],
                    "gpu_p50": pct(p["gpu_ms"], 50), "gpu_p99": pct(p["gpu_ms"], 99), "gpu": gpu_state(p["wall"])}
                   for p in h["phases"]]
    if "low" in roles:
        out["low"] = json.load(open(os.path.join(sync, "low.json")))
    out["stderr"] = {r: open(os.path.join(sync, r + ".err")).read()[-2000:] for r in roles}
    json.dump(out, open(a.out, "w"))
    print(a.setting, a.low_batch, [(p["flavour"], p["rate"], round(p["p50"], 3), round(p["p99"], 3), round(p["gpu_p50"], 3),
                                    (p["gpu"] or {}).get("sm_mhz_p50")) for p in out["high"]],
          out.get("low", {}).get("iter_per_s"), flush=True)


if __name__ == "__main__":
    main()
