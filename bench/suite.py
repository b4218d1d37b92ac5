#!/usr/bin/env python3
"""The whole benchmark suite in one run: Myelin against its peers, then BENCHMARKS.md.

Run from the repository root:

    python bench/suite.py --data data --myelin target/release/myelin [--quick]

Sections, one after the other (each records the load average before and after):

1. engine    — `bench/engine.py`: adult and california_housing, Myelin vs PyTorch
               vs scikit-learn, one thread, matched MLP; numpy single-core GEMM rate;
               Myelin's GEMM-equivalent rate inside its training step.
2. threads   — the same matched training with one and two threads, alone and with
               one extra CPU-bound process on the machine (oversubscribed).
3. serving   — `bench/serve.py`: /predict vs FastAPI+uvicorn and MLServer.
4. recommend — `bench/recommend/load.py` (/recommend load on ML-100k), the
               `recommend_eval --timing` example (scoring cost vs catalog size), and
               `implicit`'s ALS recommend call on the same ratings as an in-process peer.
5. micro     — `cargo bench --bench nn` (criterion).

Writes BENCHMARKS.md (full run) or bench/out/BENCHMARKS-quick.md (--quick), plus
bench/out/suite.json. Every section is bounded by a timeout; servers are started on
127.0.0.1 by the section scripts and stopped by them.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as _dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import engine_common  # noqa: E402
from suite_report import div, f, render, train_flops_per_row  # noqa: E402

SIZES_FULL = [1_000, 10_000, 100_000, 1_000_000]
SIZES_QUICK = [1_000, 10_000, 100_000]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rel(p) -> str:
    p = Path(p)
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def show_cmd(cmd) -> str:
    return shlex.join("python" if str(c) == sys.executable else rel(c) if isinstance(c, Path)
                      else str(c) for c in cmd)


class Suite:
    def __init__(self, a):
        self.a = a
        self.out = Path(a.out).resolve()
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.res: dict = {"date": now(), "quick": a.quick,
                          "command": shlex.join(["python", "bench/suite.py"] + sys.argv[1:]),
                          "sections": {}, "errors": []}

    # ---- plumbing ----------------------------------------------------------
    def run(self, name: str, cmd, timeout: float, env=None) -> subprocess.Popen | None:
        """Run a section command, log its output, return None on failure/timeout."""
        log = self.logs / f"suite_{name}.log"
        print(f"$ {show_cmd(cmd)}", flush=True)
        self.res.setdefault("commands", []).append(show_cmd(cmd))
        with open(log, "w") as out:
            p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=REPO,
                                 env={**os.environ, **(env or {})}, start_new_session=True)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # SIGINT first: the section scripts stop the servers they started in their
                # `finally` blocks on KeyboardInterrupt; then the whole process group.
                os.killpg(p.pid, signal.SIGINT)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                self.res["errors"].append(f"{name}: timed out after {timeout:.0f} s (log {rel(log)})")
                print(f"  {name}: TIMEOUT", flush=True)
                return None
        if p.returncode != 0:
            self.res["errors"].append(f"{name}: exit {p.returncode} (log {rel(log)})")
            print(f"  {name}: exit {p.returncode}, see {rel(log)}", flush=True)
        return p

    def section(self, name: str, fn):
        if name not in self.a.sections:
            return
        print(f"\n=== {name} ===", flush=True)
        sec = {"load_before": loadavg(), "started": now()}
        t0 = time.perf_counter()
        try:
            sec.update(fn() or {})
        except Exception as e:  # a failed section must not lose the others
            sec["failed"] = f"{type(e).__name__}: {e}"
            self.res["errors"].append(f"{name}: {sec['failed']}")
            print(f"  {name} FAILED: {sec['failed']}", flush=True)
        sec["wall_s"] = time.perf_counter() - t0
        sec["load_after"] = loadavg()
        self.res["sections"][name] = sec
        (self.out / "suite.json").write_text(json.dumps(self.res, indent=2, default=str))

    # ---- 1. engine -----------------------------------------------------------
    def engine(self):
        q = self.a.quick
        cmd = [sys.executable, HERE / "engine.py", "--data", self.a.data, "--myelin",
               self.a.myelin, "--out", self.out, "--repeat", "1" if q else "3",
               "--epochs", "5" if q else "20"]
        if q:
            cmd.append("--no-docs")
        self.run("engine", cmd, timeout=900)
        res = json.loads((self.out / "engine.json").read_text())
        return {"engine": res, "gemm_inside": gemm_inside(res)}

    # ---- 2. threads ----------------------------------------------------------
    def threads(self):
        q = self.a.quick
        epochs = 2 if q else 3
        out = self.out / "threads"
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for ds, spec in engine_common.DATASETS.items():
            if q and ds != "adult":
                continue
            src = Path(self.a.data) / f"{ds}.csv"
            train, test, _, _ = engine_common.make_split(src, self.out, ds)
            for system in ("myelin", "pytorch", "sklearn"):
                for cond, threads, busy in (("1 thread", 1, False), ("2 threads", 2, False),
                                            ("2 threads + 1 busy process", 2, True)):
                    r = self.train_once(system, ds, spec, train, test, threads, busy, epochs, out)
                    r.update({"dataset": ds, "system": system, "condition": cond,
                              "threads": threads, "busy": busy})
                    rows.append(r)
                    print(f"  {ds:18} {system:8} {cond:28} "
                          f"wall/epoch {f(r.get('wall_per_epoch'), '{:.3f}')} s, "
                          f"CPU/epoch {f(r.get('cpu_per_epoch'), '{:.3f}')} s", flush=True)
        return {"epochs": epochs, "rows": rows,
                "busy_cmd": show_cmd(BUSY_CMD)}

    def train_once(self, system, ds, spec, train, test, threads, busy, epochs, out) -> dict:
        busy_proc = None
        if busy:
            busy_proc = subprocess.Popen(BUSY_CMD, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
        try:
            if system == "myelin":
                # Myelin trains one model on one thread by design: its "2 threads" row is two
                # trainings at once, one per core.
                n = threads
                with cf.ThreadPoolExecutor(n) as ex:
                    futs = [ex.submit(self.myelin_train, ds, spec, train, epochs, out, i)
                            for i in range(n)]
                    runs = [x.result() for x in futs]
            else:
                runs = [self.peer_train(system, ds, spec, train, test, threads, epochs, out)]
        finally:
            if busy_proc:
                busy_proc.kill()
                busy_proc.wait()
        ok = [r for r in runs if r.get("fit_cpu_seconds") is not None]
        if not ok:
            return {"failed": True}
        e = ok[0]["epochs"]
        return {"runs": len(ok),
                "cpu_per_epoch": sum(r["fit_cpu_seconds"] for r in ok) / len(ok) / e,
                "wall_per_epoch": sum(r["fit_wall_seconds"] for r in ok) / len(ok) / e,
                "rows_per_s_total": sum(r["train_rows"] * e / r["fit_wall_seconds"] for r in ok),
                "metric": ok[0].get("metric")}

    def myelin_train(self, ds, spec, train, epochs, out, i) -> dict:
        report = out / f"myelin_{ds}_{i}.json"
        report.unlink(missing_ok=True)
        cmd = [Path(self.a.myelin).resolve(), "train", "--data", train, "--target", spec["target"],
               "--name", f"{ds}-threads-{i}", "--models", out / "models", "--report", report]
        for p in engine_common.MYELIN_SPEED_PARAMS:
            p = f"epochs={epochs}" if p.startswith("epochs=") else p
            cmd += (["--pipeline", p[len("pipeline."):]] if p.startswith("pipeline.")
                    else ["--param", p])
        m = engine_common.run_measured(cmd, log_path=self.logs / f"threads_myelin_{ds}_{i}.log",
                                       timeout=600)
        if m["rc"] != 0 or not report.exists():
            self.res["errors"].append(f"threads: myelin {ds} exit {m['rc']}")
            return {}
        t = json.loads(report.read_text()).get("timing") or {}
        return {"fit_cpu_seconds": t.get("fit_cpu_seconds"), "fit_wall_seconds": t.get("fit_wall_seconds"),
                "epochs": t.get("epochs") or epochs, "train_rows": t.get("train_rows")}

    def peer_train(self, system, ds, spec, train, test, threads, epochs, out) -> dict:
        kind = {"pytorch": "torch", "sklearn": "sklearn"}[system]
        result = out / f"{kind}_{ds}_{threads}.json"
        result.unlink(missing_ok=True)
        cmd = [sys.executable, HERE / "engine.py", "_worker", kind, "--train", train, "--test", test,
               "--target", spec["target"], "--task", spec["task"], "--epochs", str(epochs),
               "--threads", str(threads), "--result", result]
        if spec.get("positive"):
            cmd += ["--positive", spec["positive"]]
        m = engine_common.run_measured(cmd, log_path=self.logs / f"threads_{kind}_{ds}_{threads}.log",
                                       timeout=300, threads=threads)
        if m["rc"] != 0 or not result.exists():
            self.res["errors"].append(f"threads: {system} {ds} exit {m['rc']}")
            return {}
        r = json.loads(result.read_text())
        met = r.get("metrics") or {}
        r["metric"] = met.get("roc_auc") or met.get("rmse")
        return r

    # ---- 3. serving ----------------------------------------------------------
    def serving(self):
        q = self.a.quick
        cmd = [sys.executable, HERE / "serve.py", "--data", self.a.data, "--myelin", self.a.myelin,
               "--out", self.out]
        if q:
            cmd += ["--duration", "4", "--peer-duration", "4", "--warmup", "1", "--conns", "32",
                    "--latency-repeat", "1", "--no-docs"]
        else:
            cmd += ["--while-training", "2"]
        if self.a.mlserver_python:
            cmd += ["--mlserver-python", self.a.mlserver_python]
        self.run("serving", cmd, timeout=1200)
        return {"serve": json.loads((self.out / "serve.json").read_text())}

    # ---- 6. inference protocol -----------------------------------------------
    def oip(self):
        cmd = [sys.executable, HERE / "oip.py", "--data", self.a.data, "--myelin", self.a.myelin,
               "--out", self.out]
        if self.a.quick:
            cmd += ["--rounds", "3", "--batch-seconds", "1"]
        if self.a.mlserver_python:
            cmd += ["--mlserver-python", self.a.mlserver_python]
        (self.out / "oip.json").unlink(missing_ok=True)
        self.run("oip", cmd, timeout=900)
        return {"oip": json.loads((self.out / "oip.json").read_text())}

    # ---- 4. recommend --------------------------------------------------------
    def recommend(self):
        q = self.a.quick
        ratings = Path(self.a.data) / "movielens-100k" / "ratings.csv"
        out: dict = {}
        cmd = [sys.executable, HERE / "recommend" / "load.py", "--ratings", ratings,
               "--myelin", self.a.myelin, "--duration", "4" if q else "15"]
        if q:
            cmd.append("--no-docs")
        (self.out / "recommend_load.json").unlink(missing_ok=True)
        self.run("recommend_load", cmd, timeout=600)
        p = self.out / "recommend_load.json"
        if p.exists():
            out["load"] = json.loads(p.read_text())
        out["peer"] = self.recommend_peer(ratings)
        # Catalog scaling.
        build = ["cargo", "build", "--release", "--example", "recommend_eval"]
        self.run("recommend_build", build, timeout=1200)
        exe = REPO / "target" / "release" / "examples" / "recommend_eval"
        sizes = SIZES_QUICK if q else SIZES_FULL
        cmd = [exe, "--timing", "--hidden", "300", "--sizes", ",".join(map(str, sizes))]
        p = self.run("recommend_timing", cmd, timeout=900)
        rows = []
        if p is not None:
            for line in (self.logs / "suite_recommend_timing.log").read_text().splitlines():
                m = re.match(r"\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*$", line)
                if m:
                    rows.append({"items": int(m[1]), "component": m[2],
                                 "wall_ms": float(m[3]), "cpu_ms": float(m[4])})
        out["catalog"] = rows
        return out

    def recommend_peer(self, ratings: Path) -> dict | None:
        result = self.out / "recommend_peer.json"
        result.unlink(missing_ok=True)
        cmd = [sys.executable, HERE / "suite.py", "_als", "--ratings", ratings,
               "--calls", "500" if self.a.quick else "3000", "--result", result]
        self.run("recommend_peer", cmd, timeout=300, env=dict.fromkeys(engine_common.ONE_THREAD_ENV, "1"))
        return json.loads(result.read_text()) if result.exists() else None

    # ---- 5. criterion --------------------------------------------------------
    def micro(self):
        crit = REPO / "target" / "criterion"
        args = ["--quick", "--noplot"] if self.a.quick else \
            ["--noplot", "--warm-up-time", "1", "--measurement-time", "4"]
        cmd = ["cargo", "bench", "--bench", "nn", "--"] + args
        started = time.time()
        self.run("micro", cmd, timeout=1500)
        out = {}
        for est in crit.glob("*/*/new/estimates.json"):
            if est.stat().st_mtime < started:
                continue
            name = f"{est.parents[2].name}/{est.parents[1].name}"
            e = json.loads(est.read_text())
            out[name] = {"mean_ns": e["mean"]["point_estimate"],
                         "lo_ns": e["mean"]["confidence_interval"]["lower_bound"],
                         "hi_ns": e["mean"]["confidence_interval"]["upper_bound"]}
        return {"criterion": out}


BUSY_CMD = [sys.executable, "-c", "while True: pass"]


def gemm_inside(res: dict) -> dict | None:
    my = (res.get("speed") or {}).get("myelin") or {}
    d = res.get("adult_features")
    if not my.get("fit_cpu_seconds") or not d:
        return None
    flops = train_flops_per_row(d) * my["train_rows"] * my["epochs"]
    rate = flops / my["fit_cpu_seconds"] / 1e9
    g = {(r["dtype"], r["m"], r["k"], r["n"]): r["gflops"]
         for r in ((res.get("gemm") or {}).get("results") or [])}
    peak = g.get(("float32", 1024, 1024, 1024))
    layer = g.get(("float32", 256, d, 64))
    return {"features": d, "flops_per_row": train_flops_per_row(d), "gflops": rate,
            "numpy_sgemm_1024": peak, "numpy_sgemm_layer": layer,
            "fraction_of_1024": div(rate, peak), "fraction_of_layer": div(rate, layer)}


# --------------------------------------------------------------------------
# In-process recommendation peer: implicit's ALS `recommend` on ML-100k
# --------------------------------------------------------------------------

def als_worker(argv) -> int:
    ap = argparse.ArgumentParser(prog="suite.py _als")
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--result", required=True)
    a = ap.parse_args(argv)
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits
    import implicit

    df = pd.read_csv(a.ratings)
    users = df["user_id"].astype("category")
    items = df["movie_id"].astype("category")
    ui = sp.csr_matrix((np.ones(len(df), dtype=np.float32),
                        (users.cat.codes.to_numpy(), items.cat.codes.to_numpy())))
    with threadpool_limits(limits=1):
        model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05,
                                        random_state=0, num_threads=1)
        model.fit(ui, show_progress=False)
        rng = np.random.default_rng(0)
        picks = rng.integers(0, ui.shape[0], size=a.calls)
        for u in picks[:100]:
            model.recommend(int(u), ui[int(u)], N=10, filter_already_liked_items=True)
        c0, w0 = time.process_time(), time.perf_counter()
        for u in picks:
            model.recommend(int(u), ui[int(u)], N=10, filter_already_liked_items=True)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    Path(a.result).write_text(json.dumps({
        "system": "implicit ALS", "version": implicit.__version__, "factors": 64,
        "users": int(ui.shape[0]), "items": int(ui.shape[1]), "calls": a.calls,
        "cpu_ms_per_call": cpu * 1e3 / a.calls, "wall_ms_per_call": wall * 1e3 / a.calls}))
    return 0


# --------------------------------------------------------------------------
# BENCHMARKS.md
# --------------------------------------------------------------------------

def machine() -> dict:
    info = {"python": platform.python_version(), "kernel": platform.release(),
            "cores": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor",
                     "L2 cache", "L3 cache"):
                info[k] = v
    except OSError:
        pass
    try:
        info["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True,
                                       text=True).stdout.strip()
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, cwd=REPO).stdout.strip()
    except OSError:
        pass
    return info


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_als":
        return als_worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description="Myelin benchmark suite (see bench/README.md)")
    ap.add_argument("--data", default="data",
                    help="directory with adult.csv, california_housing.csv, movielens-100k/")
    ap.add_argument("--myelin", default="target/release/myelin")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--quick", action="store_true",
                    help="short runs (about a third of the full run's time); writes "
                         "bench/out/BENCHMARKS-quick.md and leaves docs/ alone")
    ap.add_argument("--sections", default="engine,threads,serving,recommend,micro,oip",
                    type=lambda s: s.split(","),
                    help="comma-separated subset of engine,threads,serving,recommend,micro,oip")
    ap.add_argument("--mlserver-python", default=None,
                    help="Python of an environment with mlserver + mlserver-sklearn "
                         "(default: bench/out/mlserver-venv, see bench/README.md)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the report from bench/out/suite.json without running anything")
    ap.add_argument("--report", default=None,
                    help="Markdown output (default BENCHMARKS.md; bench/out/BENCHMARKS-quick.md "
                         "with --quick)")
    a = ap.parse_args()
    if a.render_only:
        res = json.loads((Path(a.out) / "suite.json").read_text())
        report = Path(a.report or ("bench/out/BENCHMARKS-quick.md" if res["quick"] else "BENCHMARKS.md"))
        report = report if report.is_absolute() else REPO / report
        report.write_text(render(res))
        print(f"wrote {rel(report)} from {rel(Path(a.out) / 'suite.json')}")
        return 0
    for name in (Path(a.myelin), Path(a.data) / "adult.csv"):
        if not name.exists():
            raise SystemExit(f"{name} not found (cargo build --release; "
                             "python scripts/fetch_datasets.py --out data)")
    if not shutil.which("oha") and not (Path.home() / ".cargo/bin/oha").exists():
        raise SystemExit("oha not found: cargo install oha")
    s = Suite(a)
    s.res["machine"] = machine()
    s.res["myelin"] = a.myelin
    s.res["load_start"] = loadavg()
    t0 = time.perf_counter()
    s.section("engine", s.engine)
    s.section("threads", s.threads)
    s.section("serving", s.serving)
    s.section("recommend", s.recommend)
    s.section("micro", s.micro)
    s.section("oip", s.oip)
    s.res["wall_s"] = time.perf_counter() - t0
    s.res["load_end"] = loadavg()
    s.res["finished"] = now()
    (s.out / "suite.json").write_text(json.dumps(s.res, indent=2, default=str))
    report = Path(a.report or ("bench/out/BENCHMARKS-quick.md" if a.quick else "BENCHMARKS.md"))
    if not report.is_absolute():
        report = REPO / report
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(s.res))
    print(f"\nwrote {rel(report)} and {rel(s.out / 'suite.json')} "
          f"({s.res['wall_s'] / 60:.1f} min)")
    if s.res["errors"]:
        print(f"{len(s.res['errors'])} problem(s):", file=sys.stderr)
        for e in s.res["errors"]:
            print(f"- {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
