#!/usr/bin/env python3
"""Serving benchmark: Myelin `POST /predict` vs a FastAPI + scikit-learn peer.

Run from the repository root:

    python -m pip install -r bench/requirements.txt
    python bench/serve.py --data data --myelin target/release/myelin --out bench/out

What it does (details in bench/README.md):

1. Trains an adult model (target `income`) with `myelin train` into a temporary
   store, and the peer's scikit-learn Pipeline (OneHotEncoder + StandardScaler +
   MLPClassifier([64, 32])) on the same CSV.
2. For every server (Myelin; the FastAPI + uvicorn peer; MLServer if
   installed): spawns it on a free loopback port and times the cold start
   (spawn to the first successful `POST /predict`, polled every 2 ms), reads
   its RSS right after that first prediction, then runs `oha`:
   - saturation: `-z D -c 32` and `-c 64`, bodies of 1 and 256 raw adult
     records; requests/s and server CPU per request (utime + stime of the
     server's process tree from /proc/<pid>/stat, before/after, ÷ 200 answers);
   - steady rate: `-z D -c 32 -q 2000 --latency-correction`, one record:
     achieved rate, p50 / p99 / p99.9;
   - the same at a rate every server sustains (half the FastAPI peer's
     single-row saturation throughput), for a like-for-like latency figure;
   - RSS (VmRSS, VmHWM) after the runs.
3. `--while-training N` (Myelin): submits N long training jobs with
   `POST /train` before a second steady-rate run and reports p99 idle vs while
   training.

Results: a Markdown table on stdout, `<out>/serve.json`, and
`docs/BENCHMARKS-serving.md` (unless --no-docs).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from serve_common import (
    MODEL, ONE_THREAD_BLAS, OHA_SHOWN, PEERS, REPO, STEADY_CONNS, TARGET, TARGETS, Server, _http,
    _show, aggregate, find_mlserver, free_port, loadavg, oha_line, read_records, run_oha,
    tree_mem, v2_body)
from serve_report import ratio_lines, ratios, render_doc, summary_table


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="myelin-serve-bench-"))

    def note(self, s: str):
        self.commands.append(s)

    def run(self, cmd, log: Path, env_extra: dict | None = None, timeout=1800,
            python_env: bool = False) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if env_extra:
            env.update(env_extra)
        shown = (" ".join(f"{k}={v}" for k, v in (env_extra or {}).items()) + " "
                 if env_extra else "") + shlex.join(_show(c) for c in cmd)
        self.note(shown)
        log.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, capture_output=True,
                           timeout=timeout)
        log.write_bytes(r.stdout + b"\n--- stderr ---\n" + r.stderr)
        return r


def bench_server(run: Run, srv: Server, cfg: dict) -> dict:
    a = run.args
    res: dict = {"label": srv.label, "start_command": srv.shell(), "runs": {}}
    print(f"\n== {srv.label} ==", flush=True)
    for rows, body in srv.bodies.items():
        bf = run.tmp / f"{srv.key}_body_{rows}.json"
        bf.write_bytes(body)
        srv.body_files[rows] = bf
        res.setdefault("body_bytes", {})[rows] = len(body)
    run.note(srv.shell())
    try:
        cs = srv.start(timeout=cfg.get("start_timeout", 120))
    except RuntimeError as e:
        run.errors.append(f"{srv.label}: {e}")
        print(f"  start FAILED: {e}", flush=True)
        srv.stop()
        res["failed"] = str(e)
        return res
    res.update(cs)
    res["pid_threads_after_first"] = cs["rss_after_first_predict"].get("threads")
    print(f"  cold start {cs['cold_start_s'] * 1000:.1f} ms ({cs['poll_attempts']} polls), "
          f"RSS after first predict {cs['rss_after_first_predict'].get('vm_rss_mib', 0):.1f} MiB",
          flush=True)
    d = cfg["duration"]
    rec = run.note
    try:
        if a.warmup > 0:
            w = run_oha(a.oha, srv, 1, a.warmup, STEADY_CONNS)
            res["warmup"] = w
            print(f"  warm-up {a.warmup:g} s: {oha_line(w)}", flush=True)
        for rows in (1, a.batch_rows):
            for c in a.conns:
                key = f"saturation_rows{rows}_c{c}"
                r = run_oha(a.oha, srv, rows, d, c, record=rec)
                res["runs"][key] = r
                print(f"  saturation {rows:>3} row(s), -c {c}: {oha_line(r)}", flush=True)
        if cfg.get("derive_equal_rate"):
            # Half this server's single-row saturation throughput: a rate every
            # server in the run sustains, for a like-for-like latency figure.
            sat = res["runs"].get(f"saturation_rows1_c{a.conns[0]}", {})
            if sat.get("requests_per_s"):
                cfg["equal_rate"] = max(10, int(round(sat["requests_per_s"] * 0.5, -1)))
                res["equal_rate"] = cfg["equal_rate"]
        # Latency runs, repeated (interleaved) --latency-repeat times; the
        # summary takes the run with the median p99 and lists every p99.
        phases = [("steady", a.rate)]
        if cfg.get("equal_rate"):
            phases.append(("equal_rate", cfg["equal_rate"]))
        lat: dict[str, list] = {name: [] for name, _ in phases}
        reps = max(1, a.latency_repeat)
        for i in range(reps):
            for name, q in phases:
                r = run_oha(a.oha, srv, 1, d, STEADY_CONNS, qps=q, latency_correction=True,
                            record=rec if i == 0 else None)
                lat[name].append(r)
                res["runs"][f"{name} {i + 1}/{reps}"] = r
                print(f"  steady -q {q:g}{' (equal rate)' if name == 'equal_rate' else ''} "
                      f"[{i + 1}/{reps}]: achieved {r['requests_per_s']:,.0f} req/s; "
                      f"{oha_line(r)}", flush=True)
        for name, rs in lat.items():
            res["runs"][name] = aggregate(rs)
        res["rss_after_runs"] = tree_mem(srv.proc.pid)
        print(f"  RSS after runs: VmRSS {res['rss_after_runs'].get('vm_rss_mib', 0):.1f} MiB, "
              f"VmHWM {res['rss_after_runs'].get('vm_hwm_mib', 0):.1f} MiB", flush=True)
        if cfg.get("while_training"):
            res["while_training"] = while_training(run, srv, cfg["while_training"], d)
    except Exception as e:  # noqa: BLE001
        run.errors.append(f"{srv.label}: {type(e).__name__}: {e}")
        print(f"  FAILED: {e}", flush=True)
    finally:
        srv.stop()
        res["exit_code"] = srv.proc.returncode if srv.proc else None
    for key, r in res["runs"].items():
        if r.get("non_200") and not r.get("aggregate_of"):
            run.errors.append(f"{srv.label} {key}: non-200 answers {r['non_200']}; "
                              f"sample: {json.dumps(r.get('non_200_sample'))}")
    return res


def while_training(run: Run, srv: Server, n: int, duration: float) -> dict:
    a = run.args
    csv_body = (Path(a.data) / "adult.csv").read_bytes()
    params = json.dumps({"epochs": a.train_epochs, "early_stopping_patience": None},
                        separators=(",", ":"))
    path = (f"/train?model=bg&target={TARGET}&params=" + urllib.parse.quote(params, safe=""))
    run.note(f"# {n}x: curl -X POST 'http://127.0.0.1:<port>/train?model=bg&target={TARGET}"
             f"&params={params}' -H 'content-type: text/csv' --data-binary @{a.data}/adult.csv")
    jobs = []
    for _ in range(n):
        status, data, _ = _http(srv.port, "POST", path, csv_body, {"content-type": "text/csv"},
                                timeout=120)
        if status != 202:
            raise RuntimeError(f"POST /train answered {status}: {data[:1000].decode(errors='replace')}")
        jobs.append(json.loads(data)["id"])
    # Wait until every job is running.
    t0 = time.perf_counter()
    states = {}
    while time.perf_counter() - t0 < 120:
        states = {j: json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]) for j in jobs}
        if all(s.get("status") == "running" for s in states.values()):
            break
        if any(s.get("status") in ("failed", "succeeded", "cancelled") for s in states.values()):
            raise RuntimeError(f"training job ended early: {json.dumps(states)[:1000]}")
        time.sleep(0.05)
    time.sleep(1.0)
    print(f"  {n} training job(s) running; steady run while training", flush=True)
    r = run_oha(a.oha, srv, 1, duration, STEADY_CONNS, qps=a.rate, latency_correction=True,
                record=run.note)
    r["server_cpu_includes_training"] = True
    after = {j: json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]) for j in jobs}
    still = all(s.get("status") == "running" for s in after.values())
    print(f"  steady -q {a.rate:g} while {n} job(s) train: achieved "
          f"{r['requests_per_s']:,.0f} req/s; {oha_line(r)}; jobs still running at the end: "
          f"{still}", flush=True)
    for j in jobs:
        try:
            _http(srv.port, "DELETE", f"/jobs/{j}")
        except OSError:
            pass
    # Idle again once the jobs are gone: a second idle figure from the same
    # process, to tell the effect of training from drift in the machine's load.
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:
        st = [json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]).get("status") for j in jobs]
        if not any(x in ("running", "queued") for x in st):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    idle2 = run_oha(a.oha, srv, 1, duration, STEADY_CONNS, qps=a.rate, latency_correction=True,
                    record=run.note)
    print(f"  steady -q {a.rate:g} idle again after the jobs were cancelled: "
          f"{oha_line(idle2)}", flush=True)
    return {"jobs": n, "epochs": a.train_epochs, "run": r, "jobs_running_throughout": still,
            "job_states_after": {j: {k: s.get(k) for k in ("status", "progress", "epoch")
                                     if k in s} for j, s in after.items()},
            "idle_after": idle2}


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "nproc": os.cpu_count()}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "Model name":
                info["cpu_model"] = v
            elif k == "CPU(s)":
                info["cpus"] = int(v)
            elif k == "Core(s) per socket":
                info["cores_per_socket"] = int(v)
            elif k == "Thread(s) per core":
                info["threads_per_core"] = int(v)
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
    except OSError:
        pass
    for dist in ("fastapi", "uvicorn", "starlette", "pydantic", "scikit-learn", "numpy",
                 "pandas", "uvloop", "httptools"):
        try:
            info[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                            capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        info["git_src_dirty"] = bool(dirty)
    except OSError:
        pass
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description="Myelin serving benchmark (see bench/README.md)")
    ap.add_argument("--data", default="data", help="directory with adult.csv")
    ap.add_argument("--myelin", default="target/release/myelin")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--duration", type=float, default=15, help="seconds per Myelin oha run")
    ap.add_argument("--peer-duration", type=float, default=10, help="seconds per peer oha run")
    ap.add_argument("--warmup", type=float, default=2, help="unrecorded warm-up seconds")
    ap.add_argument("--conns", type=lambda s: [int(x) for x in s.split(",")], default=[32, 64],
                    help="connection counts for the saturation runs (default 32,64)")
    ap.add_argument("--rate", type=float, default=2000, help="steady-phase request rate")
    ap.add_argument("--latency-repeat", type=int, default=3,
                    help="repetitions of each steady-rate run (median p99 reported)")
    ap.add_argument("--batch-rows", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the served model")
    ap.add_argument("--peers", default="fastapi,mlserver",
                    help="comma list of fastapi, mlserver; 'none' for Myelin only")
    ap.add_argument("--mlserver-python", default=None,
                    help="python of an environment with mlserver + mlserver-sklearn "
                         "(default: this one, else bench/out/mlserver-venv)")
    ap.add_argument("--while-training", type=int, default=0, metavar="N",
                    help="also measure the steady phase while N training jobs run")
    ap.add_argument("--train-epochs", type=int, default=200,
                    help="epochs of each background training job")
    ap.add_argument("--oha", default=shutil.which("oha") or str(Path.home() / ".cargo/bin/oha"))
    ap.add_argument("--docs", default="docs/BENCHMARKS-serving.md")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary model stores")
    args = ap.parse_args()

    myelin = Path(args.myelin).resolve()
    data = Path(args.data)
    if not myelin.exists():
        raise SystemExit(f"{myelin} not found (cargo build --release)")
    if not (data / "adult.csv").exists():
        raise SystemExit(f"{data / 'adult.csv'} not found: scripts/fetch_datasets.py --out {data}")
    if not Path(args.oha).exists():
        raise SystemExit(f"oha not found at {args.oha} (cargo install oha, or --oha PATH)")
    OHA_SHOWN[args.oha] = "oha"
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]

    run = Run(args)
    run.out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    res: dict = {
        "date": started.isoformat(),
        "command": shlex.join(["python", "bench/serve.py"] + [_show(a) for a in sys.argv[1:]]),
        "machine": machine_info(),
        "load_average_at_start": loadavg(),
        "settings": {"duration_s": args.duration, "peer_duration_s": args.peer_duration,
                     "warmup_s": args.warmup, "conns": args.conns, "rate": args.rate,
                     "batch_rows": args.batch_rows, "model_epochs": args.epochs,
                     "latency_repeat": args.latency_repeat,
                     "while_training": args.while_training, "train_epochs": args.train_epochs},
        "targets": TARGETS,
        "servers": {},
        "skipped": {},
    }
    try:
        res["machine"]["myelin_version"] = subprocess.run(
            [str(myelin), "--version"], capture_output=True, text=True).stdout.strip()
        res["machine"]["myelin_binary_mtime"] = _dt.datetime.fromtimestamp(
            myelin.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat()
        res["machine"]["oha"] = subprocess.run([args.oha, "--version"], capture_output=True,
                                               text=True).stdout.strip()
    except OSError:
        pass
    print(f"load average at start: {res['load_average_at_start']}", flush=True)

    records = read_records(data / "adult.csv", args.batch_rows, TARGET)
    bodies = {n: json.dumps({"model": MODEL, "instances": records[:n]},
                            separators=(",", ":")).encode() for n in (1, args.batch_rows)}
    res["sample_body"] = bodies[1].decode()

    # 1. Models.
    store = run.tmp / "myelin-store"
    print("training the Myelin model ...", flush=True)
    r = run.run([myelin, "train", "--data", data / "adult.csv", "--target", TARGET,
                 "--name", MODEL, "--models", store, "--param", f"epochs={args.epochs}"],
                run.logs / "serve_myelin_train.log")
    if r.returncode != 0:
        raise SystemExit(f"myelin train failed:\n{r.stderr.decode(errors='replace')[-2000:]}")

    equal_rate = None
    order = []
    if "fastapi" in peers:
        missing = [m for m in ("fastapi", "uvicorn", "sklearn", "pandas", "joblib")
                   if importlib.util.find_spec(m) is None]
        if missing:
            res["skipped"]["fastapi"] = f"missing {', '.join(missing)} (pip install -r bench/requirements.txt)"
        else:
            order.append("fastapi")
    mlserver_py = None
    if "mlserver" in peers:
        mlserver_py, why = find_mlserver(args.mlserver_python)
        if mlserver_py:
            res["machine"]["mlserver_env"] = why
            res["machine"]["mlserver_python"] = _show(mlserver_py)
            order.append("mlserver")
        else:
            res["skipped"]["mlserver"] = why

    # 2. Peers first (their saturation figure sets the equal-rate run), then Myelin.
    for key in order:
        py = sys.executable if key == "fastapi" else mlserver_py
        model_file = run.tmp / f"{key}-model.joblib"
        print(f"training the {key} peer model ...", flush=True)
        r = run.run([py, PEERS / "train_sklearn.py", "--data", data / "adult.csv",
                     "--target", TARGET, "--out", model_file, "--max-iter", str(args.epochs),
                     "--rows", f"1,{args.batch_rows}"],
                    run.logs / f"serve_{key}_train.log")
        if r.returncode != 0:
            msg = f"{key} peer training failed: {r.stderr.decode(errors='replace')[-1500:]}"
            run.errors.append(msg)
            res["skipped"][key] = msg
            continue
        try:
            peer_train = json.loads(r.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            peer_train = {}
        port = free_port()
        if key == "fastapi":
            srv = Server("fastapi", "FastAPI + uvicorn (scikit-learn)",
                         [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir",
                          PEERS, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                          "--log-level", "warning"],
                         {"PEER_MODEL_PATH": str(model_file), "PEER_MODEL_NAME": MODEL,
                          **ONE_THREAD_BLAS},
                         port, "/predict", bodies, run.logs / "serve_fastapi.log")
        else:
            mdir = run.tmp / "mlserver"
            mdir.mkdir(exist_ok=True)
            (mdir / "settings.json").write_text(json.dumps({
                "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "parallel_workers": 0,
                "debug": False, "logging_level": "WARNING"}, indent=2))
            mm = mdir / MODEL
            mm.mkdir(exist_ok=True)
            shutil.copy(model_file, mm / "model.joblib")
            (mm / "model-settings.json").write_text(json.dumps({
                "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}, indent=2))
            run.note(f"# {mdir}/settings.json: "
                     + (mdir / "settings.json").read_text().replace("\n", " "))
            run.note(f"# {mm}/model-settings.json: "
                     + (mm / "model-settings.json").read_text().replace("\n", " "))
            vb = {n: json.dumps(v2_body(records[:n]), separators=(",", ":")).encode()
                  for n in (1, args.batch_rows)}
            srv = Server("mlserver", "MLServer (scikit-learn runtime)",
                         [Path(py).parent / "mlserver", "start", mdir],
                         dict(ONE_THREAD_BLAS), port, f"/v2/models/{MODEL}/infer", vb,
                         run.logs / "serve_mlserver.log")
        cfg = {"duration": args.peer_duration, "equal_rate": equal_rate,
               "derive_equal_rate": key == "fastapi" and equal_rate is None}
        out = bench_server(run, srv, cfg)
        if key == "mlserver":
            out["sample_v2_body"] = srv.bodies[1].decode()
        out["model_training"] = peer_train
        res["servers"][key] = out
        if out.get("equal_rate"):
            equal_rate = out["equal_rate"]

    # 3. Myelin.
    port = free_port()
    env = {"MYELIN_STORE__PATH": str(store), "MYELIN_SERVER__HOST": "127.0.0.1",
           "MYELIN_SERVER__PORT": str(port), "MYELIN_GRPC__PORT": str(free_port()),
           "MYELIN_LOG__LEVEL": "warn"}
    if args.while_training:
        env["MYELIN_JOBS__WORKERS"] = str(max(1, args.while_training))
    srv = Server("myelin", "Myelin", [myelin, "serve"], env, port, "/predict", bodies,
                 run.logs / "serve_myelin.log")
    cfg = {"duration": args.duration, "equal_rate": equal_rate,
           "while_training": args.while_training}
    res["servers"]["myelin"] = bench_server(run, srv, cfg)
    res["equal_rate"] = equal_rate

    res["load_average_at_end"] = loadavg()
    res["finished"] = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    res["commands"] = run.commands
    res["errors"] = run.errors
    res["ratios"] = ratios(res)
    (run.out / "serve.json").write_text(json.dumps(res, indent=2, default=str))
    print("\n" + summary_table(res))
    print()
    for line in ratio_lines(res):
        print(f"- {line}")
    print(f"\nload average at end: {res['load_average_at_end']}")
    print(f"wrote {_show(run.out / 'serve.json')}")
    if not args.no_docs:
        dp = Path(args.docs)
        if not dp.is_absolute():
            dp = REPO / dp
        dp.parent.mkdir(parents=True, exist_ok=True)
        dp.write_text(render_doc(res))
        print(f"wrote {_show(dp)}")
    if not args.keep:
        shutil.rmtree(run.tmp, ignore_errors=True)
    if run.errors:
        print(f"\n{len(run.errors)} problem(s):", file=sys.stderr)
        for e in run.errors:
            print(f"- {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
