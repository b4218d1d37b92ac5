#!/usr/bin/env python3
"""Engine benchmark: Myelin vs PyTorch vs scikit-learn on one CPU core.

Run from the repository root:

    python scripts/fetch_datasets.py --out data
    cargo build --release
    python bench/engine.py --data data --myelin target/release/myelin

What it does, for adult (classification, target `income`) and
california_housing (regression, target `MedHouseVal`):

1. Splits each dataset 80/20 with scikit-learn's
   `train_test_split(df, test_size=0.2, random_state=42)` (df = `pandas.read_csv`
   of the source) and writes `<out>/<ds>_train.csv` / `<ds>_test.csv` in the
   order it returns, with the source's columns and the source's text unchanged,
   so every system trains and tests on identical rows.
2. Quality: Myelin with its default parameters (`myelin train` + `myelin eval`),
   PyTorch and scikit-learn with a matched MLP ([64, 32] ReLU, Adam lr 1e-3,
   batch 256, 20 epochs), all scored on the same test rows.
3. Speed (adult): the same [64, 32] / Adam / batch 256 / 20 epoch configuration
   in all three systems, one thread each; CPU-seconds per epoch (process CPU
   time around the fit loop only), rows/s, and test accuracy + ROC AUC.
4. Peak RSS of every system (each runs as its own subprocess; the figure is the
   child's ru_maxrss from wait4).
5. A single-core GEMM reference: numpy `A @ B` GFLOP/s with one BLAS thread.

Results: a Markdown table on stdout, `<out>/engine.json`, and (for a full run,
or with --docs) a regenerated `docs/BENCHMARKS-engine.md`.

`--only peers` runs PyTorch + scikit-learn (+ GEMM) without the Myelin binary;
`--only myelin` runs just Myelin.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _repo_relative(arg: str) -> str:
    """A command-line argument as written in reports: repository paths relative."""
    if arg.startswith("/"):
        try:
            return str(Path(arg).resolve().relative_to(REPO))
        except ValueError:
            pass
    return arg
SEED = 42
TEST_SIZE = 0.2
SPLIT_DESC = ("scikit-learn `train_test_split(df, test_size=0.2, random_state=42)` "
              "on the DataFrame `pandas.read_csv` returns")

DATASETS = {
    "adult": {"target": "income", "task": "classification", "positive": ">50K"},
    "california_housing": {"target": "MedHouseVal", "task": "regression"},
}

# Matched configuration used for the speed comparison (and peers' quality runs).
HIDDEN = [64, 32]
BATCH = 256
EPOCHS = 20
LR = 1e-3

MYELIN_SPEED_PARAMS = [
    "hidden_layers=[64,32]",
    "optimizer=adam",
    "batch_size=256",
    "epochs=20",
    "early_stopping_patience=null",
    "validation_fraction=0",
    # The peers' 108 one-hot + standardized inputs: no piecewise-linear bins.
    "pipeline.numeric_bins=0",
]

ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
}


# --------------------------------------------------------------------------
# Subprocess runner with per-child peak RSS
# --------------------------------------------------------------------------

def run_measured(cmd, *, log_path: Path, stdout_path: Path | None = None,
                 timeout: float = 3600.0, threads: int = 1) -> dict:
    """Run `cmd` as a child process, return rc, wall, cpu and peak RSS (MiB).

    Peak RSS is the child's own ru_maxrss as returned by os.wait4 (Linux: KiB),
    so it is not mixed up with other children the harness has run.
    """
    env = dict(os.environ)
    env.update({k: str(threads) for k in ONE_THREAD_ENV})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    err_f = open(log_path, "wb")
    out_f = open(stdout_path, "wb") if stdout_path else None
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd],
                            stdout=out_f or err_f,
                            stderr=err_f if out_f else subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=REPO)
    deadline = t0 + timeout
    hwm_kib = 0
    status_file = f"/proc/{proc.pid}/status"
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        hwm_kib = max(hwm_kib, _vm_hwm_kib(status_file))
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if out_f:
        out_f.close()
    err_f.close()
    return {
        "cmd": [str(c) for c in cmd],
        "rc": proc.returncode,
        "wall_seconds": wall,
        "cpu_seconds": ru.ru_utime + ru.ru_stime,
        # VmHWM of the child's own address space, sampled every 5 ms. This is
        # the figure reported: wait4's ru_maxrss also counts the harness's own
        # RSS at spawn time (Linux carries the pre-exec high-water mark over).
        "peak_rss_mib": (hwm_kib or ru.ru_maxrss) / 1024.0,
        "ru_maxrss_mib": ru.ru_maxrss / 1024.0,
    }


def _vm_hwm_kib(status_file: str) -> int:
    try:
        with open(status_file) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------

def make_split(src: Path, out: Path, name: str) -> tuple[Path, Path, int, int]:
    """Split with scikit-learn's `train_test_split(df, test_size=0.2, random_state=42)`.

    The split is computed on the DataFrame pandas reads from `src` (the split the
    reference peer figures were measured on); the rows are then written out as
    the source's own CSV lines, in the order `train_test_split` returns them, so
    their text is preserved exactly.
    """
    import pandas as pd
    from sklearn.model_selection import train_test_split

    lines = src.read_text().splitlines()
    header, rows = lines[0], [r for r in lines[1:] if r]
    if any('"' in r for r in rows[:1000]):
        # Quoted fields could hold newlines; the benchmark datasets have none.
        raise SystemExit(f"{src}: quoted CSV fields are not supported by the splitter")
    df = pd.read_csv(src)
    n = len(df)
    if n != len(rows) or not isinstance(df.index, pd.RangeIndex):
        raise SystemExit(f"{src}: pandas read {n} rows, the file has {len(rows)} lines")
    train_df, test_df = train_test_split(df, test_size=TEST_SIZE, random_state=SEED)
    train_p, test_p = out / f"{name}_train.csv", out / f"{name}_test.csv"
    for path, idx in ((train_p, train_df.index), (test_p, test_df.index)):
        text = header + "\n" + "\n".join(rows[i] for i in idx) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return train_p, test_p, len(train_df), len(test_df)


# --------------------------------------------------------------------------
# Workers (run in a child process: `engine.py _worker ...`)
# --------------------------------------------------------------------------

def _load_xy(train_csv: str, test_csv: str, target: str, task: str, positive):
    """One-hot + standardize with pandas/sklearn, fitted on train only."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tr = pd.read_csv(train_csv)
    te = pd.read_csv(test_csv)
    feats = [c for c in tr.columns if c != target]
    cat = [c for c in feats if not pd.api.types.is_numeric_dtype(tr[c])]
    num = [c for c in feats if c not in cat]
    ct = ColumnTransformer(
        [("num", StandardScaler(), num),
         ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat)]
    )
    xtr = ct.fit_transform(tr[feats]).astype(np.float32)
    xte = ct.transform(te[feats]).astype(np.float32)
    if task == "classification":
        ytr = (tr[target].astype(str) == positive).to_numpy(np.float32)
        yte = (te[target].astype(str) == positive).to_numpy(np.float32)
    else:
        ytr = tr[target].to_numpy(np.float32)
        yte = te[target].to_numpy(np.float32)
    return xtr, ytr, xte, yte


def _metrics(task: str, y, pred) -> dict:
    import numpy as np
    from sklearn import metrics as m

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if task == "classification":
        p = np.clip(pred, 1e-7, 1 - 1e-7)
        return {
            "accuracy": float(m.accuracy_score(y, p >= 0.5)),
            "roc_auc": float(m.roc_auc_score(y, p)),
            "log_loss": float(m.log_loss(y, p)),
        }
    return {
        "rmse": float(math.sqrt(m.mean_squared_error(y, pred))),
        "mae": float(m.mean_absolute_error(y, pred)),
        "r2": float(m.r2_score(y, pred)),
    }


def _self_rss_mib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_torch(a) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = _load_xy(a.train, a.test, a.target, a.task, a.positive)
    n, d = xtr.shape
    layers, prev = [], d
    for h in HIDDEN:
        layers += [torch.nn.Linear(prev, h), torch.nn.ReLU()]
        prev = h
    layers.append(torch.nn.Linear(prev, 1))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = (torch.nn.BCEWithLogitsLoss() if a.task == "classification"
               else torch.nn.MSELoss())
    X = torch.from_numpy(xtr)
    Y = torch.from_numpy(ytr).unsqueeze(1)
    gen = torch.Generator().manual_seed(a.seed)
    rss_before = _self_rss_mib()

    c0, w0 = time.process_time(), time.perf_counter()
    model.train()
    for _ in range(a.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0

    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(xte)).squeeze(1)
        pred = torch.sigmoid(out) if a.task == "classification" else out
    return {
        "system": "pytorch",
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "features": d,
        "train_rows": n,
        "epochs": a.epochs,
        "fit_cpu_seconds": cpu,
        "fit_wall_seconds": wall,
        "rss_before_fit_mib": rss_before,
        "metrics": _metrics(a.task, yte, pred.numpy()),
    }


def worker_sklearn(a) -> dict:
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from threadpoolctl import threadpool_limits

    xtr, ytr, xte, yte = _load_xy(a.train, a.test, a.target, a.task, a.positive)
    n, d = xtr.shape
    common = dict(hidden_layer_sizes=tuple(HIDDEN), activation="relu", solver="adam",
                  learning_rate_init=LR, batch_size=BATCH, max_iter=a.epochs,
                  shuffle=True, early_stopping=False, tol=0.0,
                  n_iter_no_change=10 ** 9, random_state=a.seed)
    if a.task == "classification":
        model = MLPClassifier(**common)
        ytr_fit = ytr.astype(int)
    else:
        model = MLPRegressor(**common)
        ytr_fit = ytr
    rss_before = _self_rss_mib()
    with threadpool_limits(limits=a.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c0, w0 = time.process_time(), time.perf_counter()
        model.fit(xtr, ytr_fit)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if a.task == "classification":
            pred = model.predict_proba(xte)[:, list(model.classes_).index(1)]
        else:
            pred = model.predict(xte)
    return {
        "system": "sklearn",
        "version": sklearn.__version__,
        "threads": a.threads,
        "features": d,
        "train_rows": n,
        "epochs": int(model.n_iter_),
        "dtype": str(model.coefs_[0].dtype),
        "fit_cpu_seconds": cpu,
        "fit_wall_seconds": wall,
        "rss_before_fit_mib": rss_before,
        "metrics": _metrics(a.task, yte, pred),
    }


def worker_gemm(a) -> dict:
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    shapes = [(256, 108, 64), (256, 64, 32), (256, 64, 108), (1024, 1024, 1024)]
    res = []
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1):
        for dtype in (np.float32, np.float64):
            for m, k, n in shapes:
                A = rng.standard_normal((m, k)).astype(dtype)
                B = rng.standard_normal((k, n)).astype(dtype)
                C = A @ B  # warm-up
                flop = 2.0 * m * k * n
                reps = max(3, int(2e9 / flop))
                best = math.inf
                for _ in range(5):
                    # CPU time of this (single-threaded) process: robust to
                    # other load descheduling it.
                    t0 = time.process_time()
                    for _ in range(reps):
                        C = A @ B
                    best = min(best, (time.process_time() - t0) / reps)
                    if best * reps > 2.0:
                        break
                res.append({"dtype": np.dtype(dtype).name, "m": m, "k": k, "n": n,
                            "seconds": best, "gflops": flop / best / 1e9})
        del C
        info = [{k: v for k, v in lib.items()
                 if k in ("internal_api", "version", "architecture", "num_threads")}
                for lib in threadpool_info()]
    return {"system": "numpy", "version": np.__version__, "blas": info, "results": res}


WORKERS = {"torch": worker_torch, "sklearn": worker_sklearn, "gemm": worker_gemm}


def worker_main(argv) -> int:
    p = argparse.ArgumentParser(prog="engine.py _worker")
    p.add_argument("kind", choices=sorted(WORKERS))
    p.add_argument("--train")
    p.add_argument("--test")
    p.add_argument("--target")
    p.add_argument("--task")
    p.add_argument("--positive")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads (torch.set_num_threads / threadpoolctl limit)")
    p.add_argument("--result", required=True)
    a = p.parse_args(argv)
    res = WORKERS[a.kind](a)
    res["self_peak_rss_mib"] = _vm_hwm_kib("/proc/self/status") / 1024.0 or None
    Path(a.result).write_text(json.dumps(res, indent=2))
    return 0


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.models = self.out / "models"
        self.commands: list[str] = []
        self.errors: list[str] = []

    def rel(self, p) -> str:
        p = Path(p)
        try:
            return str(p.resolve().relative_to(REPO))
        except ValueError:
            return str(p)

    def note_cmd(self, cmd):
        def show(c):
            if isinstance(c, Path):
                return self.rel(c)
            return "python" if c == sys.executable else str(c)
        self.commands.append(shlex.join(show(c) for c in cmd))

    # ---- peers -------------------------------------------------------------
    def peer(self, kind: str, ds: str, train: Path, test: Path, repeat: int) -> dict | None:
        spec = DATASETS[ds]
        runs = []
        for r in range(repeat):
            result = self.out / "runs" / f"{kind}_{ds}_{r}.json"
            result.parent.mkdir(parents=True, exist_ok=True)
            result.unlink(missing_ok=True)
            cmd = [sys.executable, Path(__file__).resolve(), "_worker", kind,
                   "--train", train, "--test", test, "--target", spec["target"],
                   "--task", spec["task"], "--epochs", str(self.args.epochs),
                   "--result", result]
            if spec.get("positive"):
                cmd += ["--positive", spec["positive"]]
            if r == 0:
                self.note_cmd(cmd)
            log = self.logs / f"{kind}_{ds}_{r}.log"
            m = run_measured(cmd, log_path=log)
            if m["rc"] != 0 or not result.exists():
                self.errors.append(f"{kind} {ds}: exit {m['rc']}\n{tail(log)}")
                print(f"  {kind:8} {ds}: FAILED (see {self.rel(log)})", flush=True)
                return None
            res = json.loads(result.read_text())
            res["process"] = m
            runs.append(res)
            print(f"  {kind:8} {ds} run {r + 1}/{repeat}: "
                  f"{res['fit_cpu_seconds'] / res['epochs']:.3f} CPU-s/epoch, "
                  f"RSS {m['peak_rss_mib']:.0f} MiB, {fmt_metrics(res['metrics'])}",
                  flush=True)
        return summarize(runs)

    # ---- myelin ------------------------------------------------------------
    def myelin(self, ds: str, name: str, train: Path, test: Path,
               params: list[str], repeat: int) -> dict | None:
        spec = DATASETS[ds]
        exe = Path(self.args.myelin)
        runs = []
        for r in range(repeat):
            report = self.out / "runs" / f"myelin_{name}_{r}.json"
            report.parent.mkdir(parents=True, exist_ok=True)
            report.unlink(missing_ok=True)
            cmd = [exe, "train", "--data", train, "--target", spec["target"],
                   "--name", name, "--models", self.models, "--report", report]
            for p in params:
                if p.startswith("pipeline."):
                    cmd += ["--pipeline", p[len("pipeline."):]]
                else:
                    cmd += ["--param", p]
            if r == 0:
                self.note_cmd(cmd)
            log = self.logs / f"myelin_{name}_train_{r}.log"
            m = run_measured(cmd, log_path=log)
            if m["rc"] != 0 or not report.exists():
                self.errors.append(f"myelin train {name}: exit {m['rc']}\n{tail(log)}")
                print(f"  myelin   {name}: train FAILED (see {self.rel(log)})", flush=True)
                return None
            rep = json.loads(report.read_text())
            timing = rep.get("timing") or {}
            res = {
                "system": "myelin",
                "name": name,
                "params": params,
                "report_version": rep.get("version"),
                "train_metrics": rep.get("metrics"),
                "timing": timing,
                "epochs": timing.get("epochs") or len(rep.get("history") or []) or None,
                "train_rows": timing.get("train_rows"),
                "fit_cpu_seconds": timing.get("fit_cpu_seconds"),
                "fit_wall_seconds": timing.get("fit_wall_seconds"),
                "process": m,
            }
            runs.append(res)
        best = summarize(runs)
        # Evaluate the (last) trained model on the shared test split.
        ecmd = [exe, "eval", "--name", name, "--models", self.models,
                "--data", test, "--json"]
        self.note_cmd(ecmd)
        elog = self.logs / f"myelin_{name}_eval.log"
        eout = self.logs / f"myelin_{name}_eval.json"
        em = run_measured(ecmd, log_path=elog, stdout_path=eout)
        try:
            best["metrics"] = parse_json_stdout(eout.read_text())
        except (OSError, ValueError) as e:
            self.errors.append(f"myelin eval {name}: exit {em['rc']} ({e})\n{tail(elog)}")
            best["metrics"] = {}
        best["eval_process"] = em
        if em["rc"] != 0:
            self.errors.append(f"myelin eval {name}: exit {em['rc']}\n{tail(elog)}")
        cpe = best.get("cpu_seconds_per_epoch")
        print(f"  myelin   {name}: "
              + (f"{cpe:.3f} CPU-s/epoch, " if cpe else "")
              + f"RSS {best['peak_rss_mib']:.0f} MiB, {fmt_metrics(best['metrics'])}",
              flush=True)
        return best


def parse_json_stdout(text: str) -> dict:
    text = text.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        # Tolerate log lines around the JSON object.
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise ValueError("no JSON object in eval output")
        obj = json.loads(text[start:end + 1])
    if isinstance(obj, dict) and isinstance(obj.get("metrics"), dict):
        obj = obj["metrics"]
    return obj


def summarize(runs: list[dict]) -> dict:
    """Best-of-N timing (least disturbed by other load), max RSS over runs."""
    def cpe(r):
        c, e = r.get("fit_cpu_seconds"), r.get("epochs")
        return c / e if c is not None and e else math.inf

    best = dict(min(runs, key=cpe))
    e = best.get("epochs")
    n = best.get("train_rows")
    if best.get("fit_cpu_seconds") is not None and e:
        best["cpu_seconds_per_epoch"] = best["fit_cpu_seconds"] / e
        if n:
            best["rows_per_cpu_second"] = n * e / best["fit_cpu_seconds"]
    if best.get("fit_wall_seconds") and e and n:
        best["rows_per_wall_second"] = n * e / best["fit_wall_seconds"]
    best["repeats"] = len(runs)
    best["cpu_seconds_per_epoch_all"] = [cpe(r) for r in runs]
    if len(runs) > 1:
        best["cpu_seconds_per_epoch_median"] = statistics.median(
            best["cpu_seconds_per_epoch_all"])
    best["peak_rss_mib"] = max(r["process"]["peak_rss_mib"] for r in runs)
    return best


def fmt_metrics(m: dict | None) -> str:
    if not m:
        return "no metrics"
    keys = [k for k in ("accuracy", "roc_auc", "log_loss", "rmse", "mae", "r2") if k in m]
    return ", ".join(f"{k} {m[k]:.4f}" for k in keys if isinstance(m[k], (int, float)))


# --------------------------------------------------------------------------
# Machine info
# --------------------------------------------------------------------------

def machine_info(myelin: Path | None) -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
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
            elif k == "Socket(s)":
                info["sockets"] = int(v)
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
    except OSError:
        pass
    info["nproc"] = os.cpu_count()
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        flags = open("/proc/cpuinfo").read()
        info["simd"] = [f for f in ("avx2", "fma", "avx512f") if f" {f}" in flags]
    except OSError:
        pass
    for mod in ("numpy", "pandas", "sklearn", "torch"):
        try:
            import importlib.metadata as md
            dist = {"sklearn": "scikit-learn"}.get(mod, mod)
            info[mod] = md.version(dist)
        except Exception:  # noqa: BLE001
            pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
            capture_output=True, text=True).stdout.strip() or None
    except OSError:
        pass
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        info["git_src_dirty"] = bool(dirty)
    except OSError:
        pass
    if myelin and myelin.exists():
        info["myelin_binary_mtime"] = _dt.datetime.fromtimestamp(
            myelin.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat()
        try:
            v = subprocess.run([str(myelin), "--version"], capture_output=True,
                               text=True, timeout=30).stdout.strip()
            info["myelin_version"] = v or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return info


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

SYSTEM_LABEL = {"myelin": "Myelin", "pytorch": "PyTorch", "sklearn": "scikit-learn"}


def _f(x, fmt="{:.4f}"):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def speed_table(speed: dict) -> str:
    ref = (speed.get("pytorch") or {}).get("cpu_seconds_per_epoch")
    rows = ["| System | CPU-s / epoch | × PyTorch | rows / CPU-s | wall-s (fit) | "
            "peak RSS (MiB) | test accuracy | test ROC AUC |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for sys_ in ("myelin", "pytorch", "sklearn"):
        r = speed.get(sys_)
        if not r:
            rows.append(f"| {SYSTEM_LABEL[sys_]} | not run | | | | | | |")
            continue
        m = r.get("metrics") or {}
        cpe = r.get("cpu_seconds_per_epoch")
        rows.append(
            f"| {SYSTEM_LABEL[sys_]} | {_f(cpe)} | {_f(ratio(cpe, ref), '{:.2f}×')} | "
            f"{_f(r.get('rows_per_cpu_second'), '{:,.0f}')} | "
            f"{_f(r.get('fit_wall_seconds'), '{:.2f}')} | "
            f"{_f(r.get('peak_rss_mib'), '{:.0f}')} | {_f(m.get('accuracy'))} | "
            f"{_f(m.get('roc_auc'))} |")
    return "\n".join(rows)


def quality_table(quality: dict) -> str:
    rows = ["| Dataset | System | Setup | accuracy | ROC AUC | log loss | RMSE | MAE | R² | "
            "peak RSS (MiB) |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for ds in DATASETS:
        for key, setup in (("myelin", "Myelin defaults"),
                           ("myelin_matched", "[64,32] Adam, batch 256, 20 epochs"),
                           ("pytorch", "[64,32] Adam, batch 256, 20 epochs"),
                           ("sklearn", "[64,32] Adam, batch 256, 20 epochs")):
            r = quality.get(ds, {}).get(key)
            label = SYSTEM_LABEL[key.split("_")[0]]
            if not r:
                if key != "myelin_matched":
                    rows.append(f"| {ds} | {label} | {setup} | not run | | | | | | |")
                continue
            m = r.get("metrics") or {}
            rows.append(
                f"| {ds} | {label} | {setup} | {_f(m.get('accuracy'))} | "
                f"{_f(m.get('roc_auc'))} | {_f(m.get('log_loss'))} | {_f(m.get('rmse'))} | "
                f"{_f(m.get('mae'))} | {_f(m.get('r2'))} | "
                f"{_f(r.get('peak_rss_mib'), '{:.0f}')} |")
    return "\n".join(rows)


def gemm_table(gemm: dict | None) -> str:
    if not gemm:
        return "_not run_"
    rows = ["| dtype | m × k × n | GFLOP/s (1 thread) |", "| --- | --- | ---: |"]
    for r in gemm["results"]:
        rows.append(f"| {r['dtype']} | {r['m']} × {r['k']} × {r['n']} | {r['gflops']:.1f} |")
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')})"
                     for b in gemm.get("blas", []))
    return "\n".join(rows) + f"\n\nnumpy {gemm.get('version')}, BLAS: {blas or 'unknown'}."


def ratio_lines(speed: dict, quality: dict) -> list[str]:
    out = []
    my, pt, sk = speed.get("myelin"), speed.get("pytorch"), speed.get("sklearn")
    if my and pt:
        r = ratio(my.get("cpu_seconds_per_epoch"), pt.get("cpu_seconds_per_epoch"))
        if r:
            out.append(f"Myelin CPU-s/epoch = {r:.2f}× PyTorch "
                       f"({'faster' if r < 1 else 'slower'} by {max(r, 1 / r):.2f}×).")
        rr = ratio(my.get("peak_rss_mib"), pt.get("peak_rss_mib"))
        if rr:
            out.append(f"Myelin peak RSS = {rr:.2f}× PyTorch.")
    if sk and pt:
        r = ratio(sk.get("cpu_seconds_per_epoch"), pt.get("cpu_seconds_per_epoch"))
        if r:
            out.append(f"scikit-learn CPU-s/epoch = {r:.2f}× PyTorch.")
    if my and sk:
        r = ratio(my.get("cpu_seconds_per_epoch"), sk.get("cpu_seconds_per_epoch"))
        if r:
            out.append(f"Myelin CPU-s/epoch = {r:.2f}× scikit-learn.")
    return out


def render_doc(res: dict) -> str:
    mi = res["machine"]
    cpu = mi.get("cpu_model", "unknown CPU")
    cores = mi.get("cpus") or mi.get("nproc")
    lines = [
        "# Myelin engine benchmarks",
        "",
        "Generated by `bench/engine.py`; do not edit by hand — rerun the harness "
        "(see [bench/README.md](../bench/README.md)).",
        "",
        f"- Date (UTC): {res['date']}",
        f"- Machine: {cpu}, {cores} CPU(s)"
        + (f" ({mi['hypervisor']} guest)" if mi.get("hypervisor") else "")
        + (f", {mi['memory_gib']} GiB RAM" if mi.get("memory_gib") else "")
        + (f", SIMD: {', '.join(mi['simd'])}" if mi.get("simd") else ""),
        f"- Software: Python {mi.get('python')}, PyTorch {mi.get('torch', '—')}, "
        f"scikit-learn {mi.get('sklearn', '—')}, numpy {mi.get('numpy', '—')}, "
        f"pandas {mi.get('pandas', '—')}"
        + (f", {mi['myelin_version']}" if mi.get("myelin_version") else "")
        + (f" (commit {mi['git_commit']}"
           + (", uncommitted changes under src/" if mi.get("git_src_dirty") else "")
           + (f"; binary built {mi['myelin_binary_mtime']}" if mi.get("myelin_binary_mtime")
              else "") + ")" if mi.get("git_commit") else ""),
        f"- Load average (1/5/15 min) at start: "
        f"{' / '.join(str(x) for x in mi.get('load_average_at_start', []))}, at end: "
        f"{' / '.join(str(x) for x in mi.get('load_average_at_end', []))} "
        f"(above ~0.5 means other work shared the machine).",
        f"- Every system runs in its own process with one thread "
        f"({', '.join(f'{k}=1' for k in ONE_THREAD_ENV)}, `torch.set_num_threads(1)`, "
        f"threadpoolctl limit 1 for scikit-learn).",
        f"- Split: {SPLIT_DESC} (test 20%, rows written in the order it returns); "
        "identical CSV rows for every system.",
        "",
        "## Training speed — adult, matched configuration",
        "",
        f"MLP with hidden layers {HIDDEN} (ReLU), Adam lr {LR:g}, batch {BATCH}, "
        f"{res['epochs']} epochs, shuffled every epoch, no early stopping, no validation "
        f"split; {res.get('adult_train_rows', '?')} training rows, "
        f"{res.get('adult_features', '?')} features after one-hot encoding. CPU-s/epoch is "
        "process CPU time around the training loop only (data loading and preprocessing "
        "excluded; Myelin reports it in `timing.fit_cpu_seconds` of `--report`), best of "
        f"{res['repeat']} run(s). rows / CPU-s = training rows × epochs / fit CPU-seconds. "
        "Peak RSS is the whole process (interpreter and libraries included).",
        "",
        speed_table(res["speed"]),
        "",
    ]
    rl = ratio_lines(res["speed"], res["quality"])
    notes = []
    for key in ("pytorch", "sklearn"):
        r = res["speed"].get(key)
        if r and r.get("rss_before_fit_mib"):
            notes.append(f"{SYSTEM_LABEL[key]} RSS after imports and data preparation, "
                         f"before training: {r['rss_before_fit_mib']:.0f} MiB.")
    if res["speed"].get("pytorch"):
        notes.append("PyTorch is the PyPI wheel, which links the CUDA runtime even when "
                     "only the CPU is used; part of its RSS is those libraries.")
    sk = res["speed"].get("sklearn")
    if sk:
        notes.append(f"scikit-learn trains in {sk.get('dtype', '?')} (input dtype kept) "
                     "with its default L2 penalty alpha = 1e-4.")
    if rl or notes:
        lines += [f"- {x}" for x in rl + notes] + [""]
    lines += [
        "## Model quality on the held-out 20%",
        "",
        "Myelin is trained with its default parameters; PyTorch and scikit-learn with the "
        "matched configuration above (features one-hot encoded and standardized; the "
        "regression target is left in its original units). Classification positive class: "
        "`>50K`.",
        "",
        quality_table(res["quality"]),
        "",
        "## Single-core GEMM reference (numpy)",
        "",
        "`A @ B` with one BLAS thread, CPU time, best of several timed batches. 256 × 108 × 64 is the "
        "first layer's forward product on a 256-row adult batch.",
        "",
        gemm_table(res.get("gemm")),
        "",
        "## Commands",
        "",
        "```sh",
        "python scripts/fetch_datasets.py --out data",
        "cargo build --release",
        res["command"],
        "```",
        "",
        "Each measured process (the first repeat of each):",
        "",
        "```sh",
        *res["commands"],
        "```",
        "",
    ]
    if res.get("errors"):
        lines += ["## Failures in this run", ""]
        for e in res["errors"]:
            lines += ["```", e.strip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        return worker_main(sys.argv[2:])

    ap = argparse.ArgumentParser(description="Myelin engine benchmark (see bench/README.md)")
    ap.add_argument("--data", default="data", help="directory with adult.csv and "
                    "california_housing.csv (scripts/fetch_datasets.py)")
    ap.add_argument("--myelin", default="target/release/myelin", help="Myelin binary")
    ap.add_argument("--out", default="bench/out", help="output directory")
    ap.add_argument("--only", choices=["all", "peers", "myelin"], default="all",
                    help="run only the peers (PyTorch, scikit-learn, GEMM) or only Myelin")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed repetitions of each speed run (best is reported)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--docs", default=None,
                    help="Markdown file to regenerate (default: docs/BENCHMARKS-engine.md "
                         "for --only all; not written otherwise)")
    ap.add_argument("--no-docs", action="store_true", help="do not write the Markdown doc")
    args = ap.parse_args()

    b = Bench(args)
    b.out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    myelin = Path(args.myelin)
    run_myelin = args.only in ("all", "myelin")
    run_peers = args.only in ("all", "peers")
    if run_myelin and not myelin.exists():
        raise SystemExit(f"Myelin binary {myelin} not found "
                         "(cargo build --release, or use --only peers)")
    if run_myelin and b.models.exists():
        # Start from an empty model store so `eval` scores the model trained here.
        import shutil
        shutil.rmtree(b.models)
    if run_peers:
        # find_spec only: importing torch here would inflate the harness's RSS.
        import importlib.util
        missing = [m for m in ("torch", "sklearn", "pandas", "threadpoolctl")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise SystemExit(f"missing {', '.join(missing)}: "
                             "pip install -r bench/requirements.txt")

    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    res = {
        "date": started.isoformat(),
        "command": shlex.join(["python", "bench/engine.py"]
                             + [_repo_relative(a) for a in sys.argv[1:]]),
        "only": args.only,
        "epochs": args.epochs,
        "repeat": args.repeat,
        "seed": SEED,
        "machine": machine_info(myelin if run_myelin else None),
        "splits": {},
        "quality": {},
        "speed": {},
        "gemm": None,
    }

    splits = {}
    for ds in DATASETS:
        src = data / f"{ds}.csv"
        if not src.exists():
            raise SystemExit(f"{src} not found: run scripts/fetch_datasets.py --out {data}")
        tr, te, ntr, nte = make_split(src, b.out, ds)
        splits[ds] = (tr, te)
        res["splits"][ds] = {"train": b.rel(tr), "test": b.rel(te),
                             "train_rows": ntr, "test_rows": nte, "method": SPLIT_DESC}
        print(f"split {ds}: {ntr} train / {nte} test rows -> {b.rel(tr)}, {b.rel(te)}")
    res["adult_train_rows"] = res["splits"]["adult"]["train_rows"]

    # Speed + adult quality (matched configuration).
    print(f"\nadult, matched configuration ({args.repeat} repeats):", flush=True)
    tr, te = splits["adult"]
    if run_myelin:
        params = [f"epochs={args.epochs}" if p.startswith("epochs=") else p
                  for p in MYELIN_SPEED_PARAMS]
        r = b.myelin("adult", "adult-speed", tr, te, params, args.repeat)
        res["speed"]["myelin"] = r
        res["quality"].setdefault("adult", {})["myelin_matched"] = r
    if run_peers:
        for kind, key in (("torch", "pytorch"), ("sklearn", "sklearn")):
            r = b.peer(kind, "adult", tr, te, args.repeat)
            res["speed"][key] = r
            res["quality"].setdefault("adult", {})[key] = r
            if r and key == "pytorch":
                res["adult_features"] = r.get("features")

    # California: peers with the matched configuration (one run each).
    tr, te = splits["california_housing"]
    if run_peers:
        print("\ncalifornia_housing, matched configuration:", flush=True)
        for kind, key in (("torch", "pytorch"), ("sklearn", "sklearn")):
            r = b.peer(kind, "california_housing", tr, te, 1)
            res["quality"].setdefault("california_housing", {})[key] = r

    # Myelin default parameters on both datasets.
    if run_myelin:
        print("\nMyelin, default parameters:", flush=True)
        for ds, (tr, te) in splits.items():
            r = b.myelin(ds, f"{ds}-default", tr, te, [], 1)
            res["quality"].setdefault(ds, {})["myelin"] = r

    if run_peers:
        print("\nGEMM reference (numpy, 1 thread):", flush=True)
        gres = b.out / "runs" / "gemm.json"
        gcmd = [sys.executable, Path(__file__).resolve(), "_worker", "gemm",
                "--result", gres]
        b.note_cmd(gcmd)
        m = run_measured(gcmd, log_path=b.logs / "gemm.log")
        if m["rc"] == 0 and gres.exists():
            res["gemm"] = json.loads(gres.read_text())
        else:
            b.errors.append(f"gemm: exit {m['rc']}\n{tail(b.logs / 'gemm.log')}")

    res["commands"] = b.commands
    res["errors"] = b.errors
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    res["finished"] = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()

    (b.out / "engine.json").write_text(json.dumps(res, indent=2, default=str))

    print("\n## Training speed — adult, matched configuration\n")
    print(speed_table(res["speed"]))
    for x in ratio_lines(res["speed"], res["quality"]):
        print(f"- {x}")
    print("\n## Model quality (test split)\n")
    print(quality_table(res["quality"]))
    print("\n## GEMM reference\n")
    print(gemm_table(res["gemm"]))
    print(f"\nwrote {b.rel(b.out / 'engine.json')}")

    docs = args.docs or ("docs/BENCHMARKS-engine.md" if args.only == "all" else None)
    if docs and not args.no_docs:
        dp = Path(docs)
        if not dp.is_absolute():
            dp = REPO / dp
        dp.parent.mkdir(parents=True, exist_ok=True)
        dp.write_text(render_doc(res))
        print(f"wrote {b.rel(dp)}")
    if b.errors:
        print(f"\n{len(b.errors)} failure(s):", file=sys.stderr)
        for e in b.errors:
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
