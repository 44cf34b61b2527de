"""Issue 13 on a real GPU: two users share it under the hardened shim (docs/security.md). Root serves ResNet-18 batch 1
requests (replayed as a CUDA graph, 20/s, open loop) at priority high; an unprivileged user (made here with useradd,
removed after) runs ResNet-50 batch B back to back and asks for TAILGUARD_PRIORITY=100. Both are `tailguard bench`'s
own PyTorch worker (bench/workers/torch_worker.py) and its start/stop protocol. Phases, each SECONDS long:

  alone      root's requests alone (the reference)
  shared     both: her priority must be clamped to her ceiling (normal, 0): root stays above her, so her process is
             the one held and given the short channel-group timeslice on the real driver, never root's
  truncated  as shared, and halfway in she truncates her own control file and her ring to nothing: both PyTorch
             processes must finish, exit 0, root's requests unharmed

Her slot (priority asked, mechanisms, timeslice) is read from the control files during the shared phases. Writes one
JSON object (latencies, throughput, slots, exit statuses). Run as root from the repository root:

  python3 bench/gpu/two_users.py --out FILE.json [--seconds 15] [--batch 256]
"""
import argparse, glob, json, os, pwd, shutil, struct, subprocess, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
USER = "tgmallory"
# both users run copies of the worker and the shim from a directory she can read (the checkout may be root's only)
BIN = "/tmp/tg-two-users"
SHIM = os.path.join(BIN, "libtailguard.so")
WORKER = os.path.join(BIN, "torch_worker.py")


def slots(tg_dir):
    """The slots of every control file: (its owner, pid, priority asked, mechanisms bits, timeslice)."""
    out = []
    for f in glob.glob(os.path.join(tg_dir, "gpu-*.ctl")):
        with open(f, "rb") as h:
            b = h.read()
        for i in range(64):
            o = 256 + i * 128
            if len(b) < o + 128:
                break
            pid, _, _, asked, mech, ts = struct.unpack_from("<IIQiII", b, o)
            if pid:
                out.append({"file": os.path.basename(f), "owner": os.stat(f).st_uid, "pid": pid, "asked": asked,
                            "mechanisms": mech, "timeslice_us": ts})
    return out


def start(cmd, env):
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    threading.Thread(target=lambda: err.extend(p.stderr), daemon=True).start()
    return p, err


def phase(name, args, tg_dir, work, mallory, with_batch, truncate_at=None):
    env = dict(os.environ, LD_PRELOAD=SHIM, TAILGUARD_DIR=tg_dir)
    count = int(args.seconds * 20)
    hi, hi_err = start(["python3", WORKER, "requests", "--model", "resnet18", "--batch", "1", "--flavour", "graph", "--rate", "20",
                        "--count", str(count), "--warmup", "30", "--samples", os.path.join(work, f"{name}.high"), "--sync", "stdio",
                        "--cpus", "2,3"], dict(env, TAILGUARD_PRIORITY="high"))
    lo = lo_err = None
    if with_batch:
        lo, lo_err = start(["setpriv", f"--reuid={mallory.pw_uid}", f"--regid={mallory.pw_gid}", "--clear-groups", "--",
                            "/usr/bin/env", f"LD_PRELOAD={SHIM}", "python3", WORKER, "continuous", "--model", "resnet50",
                            "--batch", str(args.batch), "--warmup", "3", "--samples", os.path.join(work, f"{name}.low"),
                            "--sync", "stdio", "--cpus", "6,7"],
                           dict(os.environ, TAILGUARD_DIR=tg_dir, TAILGUARD_PRIORITY="100", HOME=work))
    for p in [hi] + ([lo] if lo else []):
        line = p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"{name}: a worker did not get ready: {line!r} {''.join((hi_err if p is hi else lo_err) or [])[-2000:]}")
    t0 = time.monotonic_ns() + 200_000_000
    for p in [hi] + ([lo] if lo else []):
        p.stdin.write(f"start {t0}\n")
        p.stdin.flush()
    seen, truncated, began = [], [], time.time()
    while hi.poll() is None:
        time.sleep(0.25)
        if lo and not seen and time.time() - began > 2:
            seen = slots(tg_dir)
        if lo and truncate_at and not truncated and time.time() - began > truncate_at:
            for f in glob.glob(os.path.join(tg_dir, "*")):
                if os.stat(f).st_uid != mallory.pw_uid:
                    continue
                r = subprocess.run(["setpriv", f"--reuid={mallory.pw_uid}", f"--regid={mallory.pw_gid}", "--clear-groups", "--",
                                    "truncate", "-s", "0", f], capture_output=True, text=True)
                truncated.append({"file": os.path.basename(f), "status": r.returncode, "stderr": r.stderr.strip()})
    res = {"phase": name, "root_exit": hi.wait(), "root_stderr": "".join(hi_err)[-2000:], "slots": seen, "truncated": truncated}
    try:
        res["root"] = json.loads(hi.stdout.read().strip().splitlines()[-1])
    except Exception as e:  # reported as is
        res["root_output"] = repr(e)
    if lo:
        lo.stdin.write("stop\n")
        lo.stdin.flush()
        res["batch_exit"] = lo.wait(timeout=120)
        res["batch_stderr"] = "".join(lo_err)[-2000:]
        try:
            res["batch"] = json.loads(lo.stdout.read().strip().splitlines()[-1])
        except Exception as e:
            res["batch_output"] = repr(e)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(BIN, exist_ok=True)
    os.chmod(BIN, 0o755)
    shutil.copy(os.path.join(ROOT, "native/build/libtailguard.so"), SHIM)
    shutil.copy(os.path.join(ROOT, "bench/workers/torch_worker.py"), WORKER)
    os.chmod(SHIM, 0o755)
    os.chmod(WORKER, 0o644)
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER], check=True)
    mallory = pwd.getpwnam(USER)
    tg_dir = tempfile.mkdtemp(prefix="tg-shm-", dir="/dev/shm")
    work = tempfile.mkdtemp(prefix="tg-two-")
    for d in (tg_dir, work):
        os.chmod(d, 0o1777)
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
        out = {"gpu": gpu, "command": "python3 bench/gpu/two_users.py --seconds %g --batch %d" % (args.seconds, args.batch),
               "her_uid": mallory.pw_uid, "phases": []}
        out["phases"].append(phase("alone", args, tg_dir, work, mallory, False))
        out["phases"].append(phase("shared", args, tg_dir, work, mallory, True))
        out["phases"].append(phase("truncated", args, tg_dir, work, mallory, True, truncate_at=args.seconds / 2))
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        for p in out["phases"]:
            print(p["phase"], "root exit", p["root_exit"], p.get("root", {}).get("p50_ms"), p.get("root", {}).get("p99_ms"),
                  "batch exit", p.get("batch_exit"), p.get("batch", {}).get("iter_per_s"))
            for s in p["slots"]:
                print("   slot", s)
            for t in p["truncated"]:
                print("   truncated", t)
    finally:
        subprocess.run(["userdel", USER], capture_output=True)


if __name__ == "__main__":
    main()
