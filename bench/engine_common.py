"""Measurement side of bench/engine.py: datasets and the matched configuration,
the subprocess runner that records each child's peak RSS, the seeded 80/20
split, and the PyTorch / scikit-learn / GEMM workers that run in a child
process (`python bench/engine.py _worker KIND ...`).

Also imported by bench/suite.py (DATASETS, HIDDEN, make_split, run_measured …).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
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
