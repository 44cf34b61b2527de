"""Issue 13 on a real GPU: two users share it under the hardened shim (docs/security.md). Root serves ResNet-18 batch 1
requests (replayed as a CUDA graph, 20/s, open loop) at priority high; an unprivileged user (made here with useradd,
removed after) runs ResNet-50 batch B back to back and asks for TAILGUARD_PRIORITY=100. Phases, each SECONDS long:

  alone      root's requests alone (the reference)
  shared     both: her priority must be clamped to her ceiling (normal, 0): root stays above her, so her process is
             the one held and given the short channel-group timeslice on the real driver, never root's
  truncated  as shared, and halfway in she truncates her own control file and her ring to nothing: both PyTorch
             processes must finish, exit 0, root's requests unharmed

Her slot (priority asked, in force, mechanisms, timeslice) is read from the control files during the shared phase.
Writes one JSON object (latencies, throughput, slots, exit statuses). Run as root from the repository root:

  python3 bench/h100/two_users.py --out FILE.json [--seconds 15] [--batch 256]
"""
import argparse, gc, glob, json, os, pwd, struct, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
USER = "tgmallory"
# both users run a copy of this script and of the shim from a directory she can read (the checkout may be root's only)
BIN = "/tmp/tg-two-users"
SHIM = os.path.join(BIN, "libtailguard.so")
SCRIPT = os.path.join(BIN, "two_users.py")


def requests(seconds, sync_dir):
    import torch, torchvision.models as m
    os.sched_setaffinity(0, {2, 3})
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
        open(os.path.join(sync_dir, "high.ready"), "w").close()
        while not os.path.exists(os.path.join(sync_dir, "go")):
            time.sleep(0.005)
        gc.disable()
        lat, period, start = [], 1 / 20, time.perf_counter() + 0.05
        for i in range(int(seconds * 20)):
            due = start + i * period
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            graph.replay()
            torch.cuda.synchronize()
            lat.append((time.perf_counter() - due) * 1e3)
    print(json.dumps({"latency_ms": lat}))


def batch(batch_size, sync_dir):
    import torch, torchvision.models as m
    os.sched_setaffinity(0, {6, 7})
    torch.backends.cudnn.benchmark = True
    model = m.resnet50(weights=None).cuda().eval()
    x = torch.randn(batch_size, 3, 224, 224, device="cuda")
    with torch.no_grad():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        open(os.path.join(sync_dir, "low.ready"), "w").close()
        n, t0 = 0, time.perf_counter()
        while not os.path.exists(os.path.join(sync_dir, "done")):
            model(x)
            torch.cuda.synchronize()
            n += 1
    print(json.dumps({"iters": n, "iter_per_s": n / (time.perf_counter() - t0)}))


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))] if s else None


def slots(tg_dir):
    """Every live-looking slot of every control file: (file owner uid, pid, priority asked, mechanisms, timeslice)."""
    out = []
    for f in glob.glob(os.path.join(tg_dir, "gpu-*.ctl")):
        with open(f, "rb") as h:
            b = h.read()
        for i in range(64):
            o = 256 + i * 128
            if len(b) < o + 128:
                break
            pid, _, _, prio, mech, ts = struct.unpack_from("<IIQiII", b, o)
            if pid:
                out.append({"file": os.path.basename(f), "owner": os.stat(f).st_uid, "pid": pid, "asked": prio,
                            "mechanisms": mech, "timeslice_us": ts})
    return out


def phase(name, args, tg_dir, mallory, with_batch, truncate_at=None):
    sync = tempfile.mkdtemp(prefix="tg-two-")
    os.chmod(sync, 0o1777)
    env = dict(os.environ, LD_PRELOAD=SHIM, TAILGUARD_DIR=tg_dir)
    me = [sys.executable, SCRIPT]
    hi = subprocess.Popen(me + ["--role", "requests", "--sync", sync, "--seconds", str(args.seconds)],
                          env=dict(env, TAILGUARD_PRIORITY="high"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lo = None
    if with_batch:
        lo = subprocess.Popen(["setpriv", f"--reuid={mallory.pw_uid}", f"--regid={mallory.pw_gid}", "--clear-groups", "--",
                               "/usr/bin/env", f"LD_PRELOAD={SHIM}", sys.executable, SCRIPT, "--role", "batch", "--sync", sync,
                               "--batch", str(args.batch)],
                              env=dict(os.environ, TAILGUARD_DIR=tg_dir, TAILGUARD_PRIORITY="100", HOME="/tmp"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (os.path.exists(os.path.join(sync, "high.ready")) and (not lo or os.path.exists(os.path.join(sync, "low.ready")))):
        if hi.poll() is not None or (lo and lo.poll() is not None):
            break
        time.sleep(0.05)
    open(os.path.join(sync, "go"), "w").close()
    seen, truncated = [], []
    t0 = time.time()
    while hi.poll() is None:
        time.sleep(0.5)
        if lo and not seen and time.time() - t0 > 2:
            seen = slots(tg_dir)
        if lo and truncate_at and not truncated and time.time() - t0 > truncate_at:
            hers = [f for f in glob.glob(os.path.join(tg_dir, "*")) if os.stat(f).st_uid == mallory.pw_uid]
            for f in hers:
                r = subprocess.run(["setpriv", f"--reuid={mallory.pw_uid}", f"--regid={mallory.pw_gid}", "--clear-groups", "--",
                                    "truncate", "-s", "0", f], capture_output=True, text=True)
                truncated.append({"file": os.path.basename(f), "status": r.returncode, "stderr": r.stderr.strip()})
    open(os.path.join(sync, "done"), "w").close()
    hout, herr = hi.communicate()
    res = {"phase": name, "root_exit": hi.returncode, "root_stderr": herr[-2000:], "slots": seen, "truncated": truncated}
    try:
        lat = json.loads(hout.strip().splitlines()[-1])["latency_ms"]
        res.update(requests=len(lat), p50_ms=pct(lat, 50), p90_ms=pct(lat, 90), p99_ms=pct(lat, 99), max_ms=max(lat))
    except Exception as e:  # reported as is
        res["root_output"] = hout[-2000:] + repr(e)
    if lo:
        lout, lerr = lo.communicate(timeout=120)
        res.update(batch_exit=lo.returncode, batch_stderr=lerr[-2000:])
        try:
            res.update(json.loads(lout.strip().splitlines()[-1]))
        except Exception as e:
            res["batch_output"] = lout[-2000:] + repr(e)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role")
    ap.add_argument("--sync")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.role == "requests":
        return requests(args.seconds, args.sync)
    if args.role == "batch":
        return batch(args.batch, args.sync)
    import shutil
    os.makedirs(BIN, exist_ok=True)
    os.chmod(BIN, 0o755)
    shutil.copy(os.path.join(ROOT, "native/build/libtailguard.so"), SHIM)
    shutil.copy(os.path.abspath(__file__), SCRIPT)
    os.chmod(SHIM, 0o755)
    os.chmod(SCRIPT, 0o644)
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER], check=True)
    mallory = pwd.getpwnam(USER)
    tg_dir = tempfile.mkdtemp(prefix="tg-shm-", dir="/dev/shm")
    os.chmod(tg_dir, 0o1777)
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
        out = {"gpu": gpu, "command": "python3 bench/h100/two_users.py " + " ".join(sys.argv[1:]), "user": USER,
               "her_uid": mallory.pw_uid, "phases": []}
        out["phases"].append(phase("alone", args, tg_dir, mallory, False))
        out["phases"].append(phase("shared", args, tg_dir, mallory, True))
        out["phases"].append(phase("truncated", args, tg_dir, mallory, True, truncate_at=args.seconds / 2))
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        for p in out["phases"]:
            print(p["phase"], {k: p.get(k) for k in ("root_exit", "requests", "p50_ms", "p99_ms", "batch_exit", "iter_per_s")})
            for s in p["slots"]:
                print("   slot", s)
            for t in p["truncated"]:
                print("   truncated", t)
    finally:
        subprocess.run(["userdel", USER], capture_output=True)


if __name__ == "__main__":
    main()
