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
import math
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

import engine  # noqa: E402
import oip  # noqa: E402
import serve  # noqa: E402

HIDDEN = engine.HIDDEN
SIZES_FULL = [1_000, 10_000, 100_000, 1_000_000]
SIZES_QUICK = [1_000, 10_000, 100_000]

TARGETS = {
    "train_cpu_vs_pytorch": 1 / 3,
    "gemm_fraction": 0.5,
    "serve_cpu_ms": 0.05,
    "serve_p99_ms": 2.0,
    "serve_rss_mb": 30.0,
    "cold_start_s": 0.2,
    "rec_p99_ms": 2.0,
    "rec_cpu_ms": 0.1,
}


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


def f(x, fmt="{:.2f}"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return fmt.format(x)


def div(a, b):
    return a / b if a is not None and b else None


def verdict(ok) -> str:
    return "—" if ok is None else ("met" if ok else "**not met**")


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
        for ds, spec in engine.DATASETS.items():
            if q and ds != "adult":
                continue
            src = Path(self.a.data) / f"{ds}.csv"
            train, test, _, _ = engine.make_split(src, self.out, ds)
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
        for p in engine.MYELIN_SPEED_PARAMS:
            p = f"epochs={epochs}" if p.startswith("epochs=") else p
            cmd += (["--pipeline", p[len("pipeline."):]] if p.startswith("pipeline.")
                    else ["--param", p])
        m = engine.run_measured(cmd, log_path=self.logs / f"threads_myelin_{ds}_{i}.log",
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
        m = engine.run_measured(cmd, log_path=self.logs / f"threads_{kind}_{ds}_{threads}.log",
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
        self.run("recommend_peer", cmd, timeout=300, env=dict.fromkeys(engine.ONE_THREAD_ENV, "1"))
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


def train_flops_per_row(d: int) -> float:
    """GEMM FLOPs per training row: forward, weight gradients, input gradients of the
    layers after the first (biases and element-wise work not counted)."""
    widths = [d] + HIDDEN + [1]
    mats = [a * b for a, b in zip(widths, widths[1:])]
    return 2.0 * (sum(mats) + sum(mats) + sum(mats[1:]))


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


def sec_head(s: dict) -> str:
    return (f"Load average (1/5/15 min) before: {' / '.join(map(str, s.get('load_before', [])))}; "
            f"after: {' / '.join(map(str, s.get('load_after', [])))}; "
            f"section wall time {s.get('wall_s', 0):.0f} s.")


def render_engine(s: dict) -> list[str]:
    res = s.get("engine")
    if not res:
        return ["_engine section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         f"Matched configuration on adult: MLP {HIDDEN} ReLU, Adam lr 1e-3, batch 256, "
         f"{res['epochs']} epochs, one thread, same 80/20 split for every system "
         f"(best of {res['repeat']}). CPU-s/epoch is process CPU time around the training loop.", "",
         engine.speed_table(res.get("speed") or {}), ""]
    L += [f"- {x}" for x in engine.ratio_lines(res.get("speed") or {}, res.get("quality") or {})]
    L += ["", "Test quality on both datasets (Myelin defaults and the matched configuration):", "",
          engine.quality_table(res.get("quality") or {}), "",
          "Single-core GEMM rate of this machine (numpy, one BLAS thread):", "",
          engine.gemm_table(res.get("gemm")), ""]
    gi = s.get("gemm_inside")
    if gi:
        L += [f"Myelin's training step, counted as GEMM work only "
              f"({gi['flops_per_row']:,.0f} FLOP per row: forward, weight gradients, and input "
              f"gradients of the layers after the first, with {gi['features']} inputs), runs at "
              f"**{gi['gflops']:.1f} GFLOP/s per CPU-second** — "
              f"{f(gi['fraction_of_1024'] and gi['fraction_of_1024'] * 100, '{:.0f}')}% of numpy's "
              f"1024³ SGEMM rate ({f(gi['numpy_sgemm_1024'], '{:.1f}')} GFLOP/s) and "
              f"{f(gi['fraction_of_layer'] and gi['fraction_of_layer'] * 100, '{:.0f}')}% of numpy on "
              f"the first layer's own 256 × {gi['features']} × 64 shape "
              f"({f(gi['numpy_sgemm_layer'], '{:.1f}')} GFLOP/s). The whole step (activations, loss, "
              f"Adam, batch gathering) is in the denominator, so this understates the rate inside "
              f"the GEMM calls themselves.", ""]
    L += ["Details: [docs/BENCHMARKS-engine.md](docs/BENCHMARKS-engine.md)."]
    return L


def render_threads(s: dict) -> list[str]:
    rows = s.get("rows")
    if not rows:
        return ["_threads section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         f"Matched configuration, {s['epochs']} epochs. PyTorch gets `torch.set_num_threads(n)`, "
         f"scikit-learn a threadpoolctl limit of n on its BLAS, and OMP/OpenBLAS/MKL thread "
         f"variables are set to n. Myelin trains one model on one thread by design (its thread "
         f"pool is the job queue, not the GEMM): its \"2 threads\" rows are **two Myelin trainings "
         f"at once**, one per core; the figures are the mean of the two, and rows/s is their sum. "
         f"\"+ 1 busy process\" adds one CPU-bound process (`{s.get('busy_cmd')}`) for the whole "
         f"run, so three runnable threads share two cores — what a shared machine does. Wall "
         f"time is the fit loop's; CPU is the training process's CPU time over the same loop (for "
         f"PyTorch and scikit-learn it includes their threads' spin-waiting). \"× 1 thread\" "
         f"compares with the same system's 1-thread row of this run: a CPU-s/epoch ratio above "
         f"1 is CPU burnt without doing more work. Test metric: ROC AUC (adult) or RMSE "
         f"(california_housing) for the peers; Myelin's are in section 1. The load average above "
         f"counts everything else on the machine: at a load near or above 2 even the \"2 threads\" "
         f"rows are already oversubscribed.", "",
         "| dataset | system | condition | wall-s / epoch | CPU-s / epoch | rows/s (all runs) "
         "| wall × 1 thread | CPU × 1 thread | wall × Myelin (same condition) | test AUC / RMSE |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    idx = {(r["dataset"], r["system"], r["condition"]): r for r in rows}
    names = {"myelin": "Myelin", "pytorch": "PyTorch", "sklearn": "scikit-learn"}
    for r in rows:
        one = idx.get((r["dataset"], r["system"], "1 thread")) or {}
        my = idx.get((r["dataset"], "myelin", r["condition"]))
        L.append(f"| {r['dataset']} | {names[r['system']]} | {r['condition']} | "
                 f"{f(r.get('wall_per_epoch'), '{:.3f}')} | {f(r.get('cpu_per_epoch'), '{:.3f}')} | "
                 f"{f(r.get('rows_per_s_total'), '{:,.0f}')} | "
                 f"{f(div(r.get('wall_per_epoch'), one.get('wall_per_epoch')), '{:.2f}×')} | "
                 f"{f(div(r.get('cpu_per_epoch'), one.get('cpu_per_epoch')), '{:.2f}×')} | "
                 f"{f(div(r.get('wall_per_epoch'), (my or {}).get('wall_per_epoch')), '{:.1f}×')} | "
                 f"{f(r.get('metric'), '{:.4f}')} |")
    L += ["", "Why Myelin does not collapse: a training job is one thread that never waits on "
          "another thread. Its GEMMs (`matrixmultiply`, built without its threading feature) run "
          "on the calling thread, so there is no per-GEMM fork/join barrier to spin at. "
          "Concurrency comes from running several jobs (`jobs.workers`), each on a thread of its "
          "own in the idle scheduling class, away from the threads that serve HTTP, and passing "
          "a yield point between mini-batches. When the machine is "
          "oversubscribed a Myelin job simply gets a smaller share of a core: its wall time "
          "grows with the oversubscription while its CPU per epoch stays put. Thread pools that "
          "split every small GEMM across threads and spin-wait at the join instead burn CPU "
          "waiting for a descheduled partner — the CPU × 1 thread column."]
    return L


def render_serving(s: dict) -> list[str]:
    res = s.get("serve")
    if not res:
        return ["_serving section failed: " + s.get("failed", "no result") + "_"]
    L = [sec_head(s), "",
         "The same adult model in every server (Myelin's own model; the peers serve a "
         "scikit-learn pipeline with the same [64, 32] MLP), raw records in, probabilities out; "
         "every server is started by the harness on 127.0.0.1, one at a time; oha on the "
         "same machine. Server CPU per request = Δ(utime + stime) of the server's process tree "
         "÷ 200 answers.", ""]
    skipped = res.get("skipped") or {}
    for k, v in skipped.items():
        L.append(f"- {k} skipped: {v}")
    L += [serve.summary_table(res), ""]
    L += [f"- {x}" for x in serve.ratio_lines(res)]
    L += ["", "No bare axum \"hello\" probe is built by the suite; the comparison point in the "
          "targets (0.10 ms per request) is therefore not re-measured here.",
          "", "Details: [docs/BENCHMARKS-serving.md](docs/BENCHMARKS-serving.md)."]
    return L


def render_oip(s: dict) -> list[str]:
    res = s.get("oip")
    if not res:
        return ["_oip section failed: " + s.get("failed", "no result") + "_"]
    return [sec_head(s), ""] + oip.markdown(res)


def render_recommend(s: dict, serving: dict | None) -> list[str]:
    if s.get("failed") and not s.get("load"):
        return ["_recommend section failed: " + s["failed"] + "_"]
    L = [sec_head(s), ""]
    ld = s.get("load")
    peer = s.get("peer")
    if ld:
        sat, st = ld["saturation"], ld["steady"]
        L += ["`GET /recommend?model=ml100k&user=<random known user>&k=10` on a model trained "
              "on every ML-100k rating (default Mult-DAE + item-item blend), 32 connections, "
              f"oha on the same machine ({ld.get('oha_version', 'oha')}).", "",
              "| run | req/s | server CPU ms / req | p50 ms | p99 ms | p99.9 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, r in (("saturation", sat), (f"steady -q {st.get('qps') or 2000:g}", st)):
            L.append(f"| {name} | {f(r['requests_per_s'], '{:,.0f}')} | "
                     f"{f(r['server_cpu_ms_per_request'], '{:.4f}')} | {f(r['p50_ms'], '{:.3f}')} | "
                     f"{f(r['p99_ms'], '{:.3f}')} | {f(r['p999_ms'], '{:.3f}')} |")
        L.append("")
        rss = (ld.get("rss_after") or {}).get("vm_rss_mib")
        L.append(f"Server RSS after the runs: {f(rss, '{:.1f}')} MiB.")
        L.append("")
    if peer:
        my_cpu = (ld or {}).get("saturation", {}).get("server_cpu_ms_per_request")
        L += [f"Peer in the same run: `implicit` {peer['version']} ALS ({peer['factors']} factors, "
              f"one thread) on the same ratings, `model.recommend(user, user_items, N=10)` called "
              f"in-process {peer['calls']:,} times for random users: "
              f"**{peer['cpu_ms_per_call']:.4f} ms CPU per call** with no HTTP, no JSON and no "
              f"network stack. Myelin's whole /recommend request (HTTP + JSON + scoring) costs "
              f"{f(div(my_cpu, peer['cpu_ms_per_call']), '{:.2f}×')} of that library call.", ""]
    cat = s.get("catalog") or []
    if cat:
        L += ["Scoring cost as the catalog grows (`recommend_eval --timing --hidden 300`, "
              "synthetic items, one user with |h| = 100 history items, score + top-10, one thread, "
              "best of five rounds):", "",
              "| items | component | wall ms / user | CPU ms / user | CPU × 1k items |",
              "| ---: | --- | ---: | ---: | ---: |"]
        base = {r["component"]: r["cpu_ms"] for r in cat if r["items"] == cat[0]["items"]}
        for r in cat:
            L.append(f"| {r['items']:,} | {r['component']} | {r['wall_ms']:.4f} | {r['cpu_ms']:.4f} | "
                     f"{f(div(r['cpu_ms'], base.get(r['component'])), '{:,.0f}×')} |")
        L += ["", "The Mult-DAE scores a user with one `u8 × i8` dot product per item over its "
              "int8 serving copy of the decoder (item-major, per-item scale; AVX-512 VNNI when "
              "the CPU has it) and keeps the top k in a bounded insertion list: "
              "O(hidden · items) work per user, linear in the catalog. The timing example "
              "measures the item-item part and the blend only up to 10k items; the 100k and 1M "
              "rows are the DAE alone. At 1M items the decoder (1M × 320 bytes, 320 MB) no "
              "longer fits in any cache, so the last step grows somewhat faster than the item "
              "count.", ""]
    L.append("Details: [docs/BENCHMARKS-recommend.md](docs/BENCHMARKS-recommend.md).")
    return L


def render_micro(s: dict) -> list[str]:
    c = s.get("criterion") or {}
    if not c:
        return ["_micro-benchmarks failed: " + s.get("failed", "no result") + "_"]
    ns = lambda k: (c.get(k) or {}).get("mean_ns")  # noqa: E731

    def t(x):
        if x is None:
            return "—"
        return f"{x / 1e6:.3f} ms" if x >= 1e6 else f"{x / 1e3:.2f} µs"
    L = [sec_head(s), "",
         "criterion, `benches/nn.rs`: a 39,000 × 108 synthetic table, MLP [64, 32], batch 256 "
         "(adult's shape after one-hot encoding); the pipeline rows use an adult-like raw table "
         "(6 numeric, 8 categorical columns). Mean time per iteration.", "",
         "| benchmark | mean | 95% CI |", "| --- | ---: | --- |"]
    for k in sorted(c):
        L.append(f"| `{k}` | {t(c[k]['mean_ns'])} | {t(c[k]['lo_ns'])} – {t(c[k]['hi_ns'])} |")
    fwd, sgd, adam = ns("nn/forward_256"), ns("nn/train_step_sgd_256"), ns("nn/train_step_adam_256")
    L.append("")
    if fwd and sgd:
        L.append(f"- Backward + SGD update (train step with SGD − forward): {t(sgd - fwd)} per "
                 f"256-row batch; the training forward also keeps activations, so this is an "
                 f"estimate.")
    if sgd and adam:
        L.append(f"- Adam's extra update cost over SGD (train step with Adam − with SGD): "
                 f"{t(adam - sgd)} per step (noise can make it negative: it is small).")
    if adam:
        fl = train_flops_per_row(108) * 256
        L.append(f"- GEMM work per Adam step: {fl / 1e6:.2f} MFLOP → {fl / adam:.1f} GFLOP/s "
                 f"(wall time of one thread).")
    return L


def render(res: dict) -> str:
    m = res.get("machine", {})
    secs = res["sections"]
    q = res["quick"]
    L = ["# Myelin benchmarks", "",
         "Generated by `bench/suite.py`; do not edit by hand. Every figure comes from one run "
         "of the suite, and every comparison is against a peer measured in that same run "
         "(this machine is shared, so absolute numbers move between runs; ratios and "
         "CPU-seconds move much less).", "",
         f"- Date (UTC): {res['date']} → {res.get('finished', '')}"
         + (" — **quick run** (shorter durations, fewer repeats)" if q else ""),
         f"- Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', m.get('cores'))} CPU(s)"
         + (f", {m['Hypervisor vendor']} guest" if m.get("Hypervisor vendor") else "")
         + f"; Linux {m.get('kernel')}; Python {m.get('python')}; {m.get('rustc', '')}",
         f"- Commit: {m.get('commit', '?')}; Myelin binary: `{res.get('myelin')}`",
         f"- Load average (1/5/15 min) at start: {' / '.join(map(str, res.get('load_start', [])))}; "
         f"at end: {' / '.join(map(str, res.get('load_end', [])))}. Each section lists its own.",
         f"- Suite wall time: {res.get('wall_s', 0) / 60:.1f} min.", "",
         "Command:", "", f"    {res['command']}", ""]
    L += ["## Verdicts against the targets", ""] + verdicts(res) + [""]
    parts = (("1. Training — Myelin vs PyTorch vs scikit-learn", "engine", render_engine),
             ("2. Two threads and an oversubscribed machine", "threads", render_threads),
             ("3. Serving /predict — Myelin vs FastAPI+uvicorn vs MLServer", "serving", render_serving),
             ("4. Recommendation — /recommend and catalog size", "recommend", None),
             ("5. Engine micro-benchmarks (criterion)", "micro", render_micro),
             ("6. Open Inference Protocol — HTTP and gRPC vs /predict vs MLServer", "oip",
              render_oip))
    for title, key, fn in parts:
        if key not in secs:
            continue
        L += [f"## {title}", ""]
        if key == "recommend":
            L += render_recommend(secs[key], secs.get("serving"))
        else:
            L += fn(secs[key])
        L.append("")
    L += ["## Not covered", "",
          "- No bare axum \"hello\" probe: the serving figures are compared with the peers "
          "only, not with an empty axum handler.",
          "- No allocator comparison (system malloc vs mimalloc/jemalloc) and no `target-cpu` "
          "variants: the suite measures the binary it is given.",
          "- /recommend has no HTTP peer; the peer is `implicit`'s ALS `recommend` called "
          "in-process (no HTTP, no JSON), which favours the peer.",
          "- Myelin trains one model on one thread, so its two-thread figures are two "
          "trainings at once rather than one training on two threads.",
          "- The load generator (oha) shares the two cores with the server under test; "
          "saturation throughput is bounded by both, CPU per request is the server's own.",
          ""]
    L += ["## Exact commands", "", "Run by the suite, in order (section scripts add their own "
          "sub-commands to their detail documents):", ""]
    L += [f"    {c}" for c in res.get("commands", [])]
    if res.get("errors"):
        L += ["", "## Problems in this run", ""] + [f"- {e}" for e in res["errors"]]
    return "\n".join(L) + "\n"


def verdicts(res: dict) -> list[str]:
    secs = res["sections"]
    L = ["| target | measured (same run) | verdict |", "| --- | --- | --- |"]
    eng = (secs.get("engine") or {}).get("engine") or {}
    sp = eng.get("speed") or {}
    my, pt = sp.get("myelin") or {}, sp.get("pytorch") or {}
    r = div(my.get("cpu_seconds_per_epoch"), pt.get("cpu_seconds_per_epoch"))
    if r is not None:
        L.append(f"| training CPU-s/epoch on adult ≤ 1/3 of PyTorch | {my['cpu_seconds_per_epoch']:.4f} vs "
                 f"{pt['cpu_seconds_per_epoch']:.4f} s = {r:.2f}× (1/{1 / r:.1f}) | "
                 f"{verdict(r <= TARGETS['train_cpu_vs_pytorch'])} |")
    gi = (secs.get("engine") or {}).get("gemm_inside")
    if gi and gi.get("fraction_of_1024") is not None:
        L.append(f"| ≥ 50% of single-core GEMM rate inside the training step | {gi['gflops']:.1f} GFLOP/s "
                 f"= {gi['fraction_of_1024'] * 100:.0f}% of numpy 1024³ SGEMM "
                 f"({gi['numpy_sgemm_1024']:.1f}); {f(gi['fraction_of_layer'] and gi['fraction_of_layer'] * 100, '{:.0f}')}% "
                 f"of numpy on the layer shape | {verdict(gi['fraction_of_1024'] >= TARGETS['gemm_fraction'])} |")
    th = (secs.get("threads") or {}).get("rows") or []
    if th:
        idx = {(r["dataset"], r["system"], r["condition"]): r for r in th}
        parts = []
        worst_my = None
        for sysname, label in (("myelin", "Myelin"), ("pytorch", "PyTorch"), ("sklearn", "scikit-learn")):
            a = idx.get(("adult", sysname, "1 thread")) or {}
            b = idx.get(("adult", sysname, "2 threads + 1 busy process")) or {}
            cpu_x = div(b.get("cpu_per_epoch"), a.get("cpu_per_epoch"))
            wall_x = div(b.get("wall_per_epoch"), a.get("wall_per_epoch"))
            parts.append(f"{label} CPU {f(cpu_x, '{:.1f}×')}, wall {f(wall_x, '{:.1f}×')}")
            if sysname == "myelin":
                worst_my = cpu_x
        ok = worst_my <= 1.3 if worst_my is not None else None
        L.append(f"| two-thread training does not collapse when oversubscribed (adult, 2 threads + 1 busy "
                 f"process vs 1 thread, per epoch; Myelin: CPU within 1.3×) | {'; '.join(parts)} | "
                 f"{verdict(ok)} |")
    sv = (secs.get("serving") or {}).get("serve") or {}
    mys = (sv.get("servers") or {}).get("myelin") or {}
    if mys:
        c0 = sv["settings"]["conns"][0]
        sat = (mys.get("runs") or {}).get(f"saturation_rows1_c{c0}") or {}
        cpu = sat.get("server_cpu_ms_per_request")
        peers = []
        for p in ("fastapi", "mlserver"):
            pr = ((sv.get("servers") or {}).get(p) or {}).get("runs", {}).get(f"saturation_rows1_c{c0}") or {}
            pc = pr.get("server_cpu_ms_per_request")
            if pc and cpu:
                peers.append(f"{sv['servers'][p]['label']} {pc:.2f} ms ({pc / cpu:,.0f}× Myelin)")
        L.append(f"| server CPU ≤ 0.05 ms per single-row /predict | {f(cpu, '{:.4f}')} ms"
                 + (f"; {', '.join(peers)}" if peers else "") + f" | "
                 f"{verdict(cpu <= TARGETS['serve_cpu_ms'] if cpu else None)} |")
        st = (mys.get("runs") or {}).get("steady") or {}
        p99 = st.get("p99_ms")
        L.append(f"| /predict p99 < 2 ms at 2,000 req/s, 32 connections | p99 {f(p99)} ms at "
                 f"{f(st.get('requests_per_s'), '{:,.0f}')} req/s | "
                 f"{verdict(p99 < TARGETS['serve_p99_ms'] and (st.get('requests_per_s') or 0) >= 1900 if p99 else None)} |")
        rss = (mys.get("rss_after_runs") or {}).get("vm_rss_mb")
        L.append(f"| RSS < 30 MB with one model | {f(rss, '{:.1f}')} MB after the runs | "
                 f"{verdict(rss < TARGETS['serve_rss_mb'] if rss else None)} |")
        cs = mys.get("cold_start_s")
        L.append(f"| cold start < 0.2 s | {f(cs and cs * 1000, '{:.0f}')} ms | "
                 f"{verdict(cs < TARGETS['cold_start_s'] if cs else None)} |")
    rec = secs.get("recommend") or {}
    ld = rec.get("load")
    if ld:
        st, sat = ld["steady"], ld["saturation"]
        L.append(f"| /recommend p99 < 2 ms at 2,000 req/s | p99 {f(st['p99_ms'])} ms at "
                 f"{f(st['requests_per_s'], '{:,.0f}')} req/s | "
                 f"{verdict(st['p99_ms'] is not None and st['p99_ms'] < 2 and st['requests_per_s'] >= 1900)} |")
        L.append(f"| /recommend ≤ 0.1 ms server CPU per request | {f(sat['server_cpu_ms_per_request'], '{:.4f}')} ms "
                 f"(saturation), {f(st['server_cpu_ms_per_request'], '{:.4f}')} ms (2,000 req/s) | "
                 f"{verdict(sat['server_cpu_ms_per_request'] <= TARGETS['rec_cpu_ms'])} |")
    cat = rec.get("catalog") or []
    big = [r for r in cat if r["component"].startswith("dae")]
    if len(big) >= 2:
        a, b = big[0], big[-1]
        L.append(f"| bounded growth with catalog size | DAE: {a['cpu_ms']:.4f} ms at {a['items']:,} items → "
                 f"{b['cpu_ms']:.3f} ms at {b['items']:,} ({b['cpu_ms'] / a['cpu_ms']:,.0f}× for "
                 f"{b['items'] / a['items']:,.0f}× items; O(hidden · items)) | "
                 f"{verdict(b['cpu_ms'] / a['cpu_ms'] <= 1.5 * b['items'] / a['items'])} |")
    o = (secs.get("oip") or {}).get("oip")
    if o:
        L.append(oip_verdict(o))
    return L


def oip_verdict(o: dict) -> str:
    """The verdict row of the inference protocol targets."""
    cpu = o["myelin_cpu_ms_per_request"]
    ml = o.get("mlserver_cpu_ms_per_request")
    ratios = ", ".join(f"{label} {cpu[key] / cpu['predict']:.2f}×"
                       for key, label in (("oip_http_json", "HTTP JSON"),
                                          ("oip_http_binary", "HTTP binary"),
                                          ("oip_grpc", "gRPC")))
    worst = max(cpu[k] for k in ("oip_http_json", "oip_http_binary", "oip_grpc"))
    below = f"; MLServer {ml / worst:,.0f}× the costliest" if ml else "; MLServer not run"
    return (f"| OIP single-row infer: server CPU ≤ 1.3× /predict's and ≥ 100× below MLServer's | "
            f"{ratios} of /predict ({cpu['predict']:.4f} ms){below} | {verdict(oip.verdicts(o))} |")


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
