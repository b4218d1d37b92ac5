"""Helpers shared by `bars/15-rec-*`: a Myelin server with training at normal
priority, training from rows with or without the timestamp column, server CPU
time, ranking every test user through `GET /recommend`, and an EASE peer in
numpy (Steck 2019, the ridge strength chosen on a validation split carved from
the training rows)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "recommend"))
from eval_common import Acc, MyelinServer, read_ratings, split  # noqa: E402,F401

DEFAULT_RATINGS = "/work/shared/datasets/movielens-100k/ratings.csv"
EASE_GRID = [50.0, 100.0, 200.0, 500.0, 1000.0]


def binary() -> str:
    path = REPO / "target" / "release" / "myelin"
    if not path.exists():
        subprocess.check_call(["cargo", "build", "--release", "--locked"], cwd=REPO)
    return str(path)


def start_server(store: Path) -> MyelinServer:
    os.environ["MYELIN_JOBS__TRAINING_NICE"] = "0"
    os.environ["MYELIN_LOG__LEVEL"] = "warn"
    return MyelinServer(binary(), store, store / "server.log")


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train(server: MyelinServer, model: str, rows, timestamps: bool, params=None) -> dict:
    """Trains from `(user, movie, rating, timestamp)` rows as CSV; returns the finished
    job with `_wall_s` and `_cpu_s` (server CPU over the job) added."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    columns = {"user": "user_id", "item": "movie_id", "value": "rating"}
    if timestamps:
        columns["timestamp"] = "timestamp"
        w.writerow(["user_id", "movie_id", "rating", "timestamp"])
        w.writerows(rows)
    else:
        w.writerow(["user_id", "movie_id", "rating"])
        w.writerows(r[:3] for r in rows)
    body = {"model": model, "task": "recommendation", "params": params or {},
            "interaction_columns": columns, "csv": buf.getvalue()}
    cpu, t0 = process_cpu(server.proc.pid), time.time()
    st, job = server.call("POST", "/train", body)
    if st != 202:
        raise SystemExit(f"POST /train answered {st}: {job}")
    while job.get("status") not in ("succeeded", "failed", "cancelled", "interrupted"):
        time.sleep(0.1)
        st, job = server.call("GET", f"/jobs/{job['id']}")
    if job.get("status") != "succeeded":
        raise SystemExit(f"training job ended {job.get('status')}: {job}")
    job["_wall_s"] = time.time() - t0
    job["_cpu_s"] = process_cpu(server.proc.pid) - cpu
    return job


def targets_of(ratings, test):
    """Test items per user known in training (an unseen item stays a miss), the
    training rows and the training items."""
    train_rows = [r for r, t in zip(ratings, test) if not t]
    users = {r[0] for r in train_rows}
    items = {r[1] for r in train_rows}
    targets: dict[int, list[int]] = {}
    for r, t in zip(ratings, test):
        if t and r[0] in users:
            targets.setdefault(r[0], []).append(r[1] if r[1] in items else -1)
    return train_rows, targets, items


def rank_myelin(server: MyelinServer, model: str, targets, n_items: int) -> dict:
    acc = Acc()
    for u in sorted(targets):
        st, body = server.call("GET", f"/recommend?model={model}&user={u}&k=20")
        if st != 200:
            raise SystemExit(f"GET /recommend for user {u} answered {st}: {body}")
        acc.add([int(x["item"]) for x in body["items"]], targets[u])
    return acc.finish(n_items)


def _ease_scores(train_rows, lam):
    import numpy as np

    users = sorted({r[0] for r in train_rows})
    items = sorted({r[1] for r in train_rows})
    ui = {u: i for i, u in enumerate(users)}
    ii = {m: i for i, m in enumerate(items)}
    x = np.zeros((len(users), len(items)), dtype=np.float64)
    for u, m, *_ in train_rows:
        x[ui[u], ii[m]] = 1.0
    g = x.T @ x
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return x @ b, x, ui, items


def ease_rank(train_rows, targets, lam, n_items) -> dict:
    import numpy as np

    scores, x, ui, items = _ease_scores(train_rows, lam)
    scores[x > 0] = -np.inf
    acc = Acc()
    for u in sorted(targets):
        top = np.argsort(-scores[ui[u]], kind="stable")[:20]
        acc.add([items[i] for i in top], targets[u])
    return acc.finish(n_items)


def ease_peer(train_rows, targets, protocol: str, n_items: int) -> tuple[float, dict]:
    """EASE with λ chosen by validation NDCG@10 (+ HR@10 on `loo`) on an inner split of
    the training rows of the same protocol, then fitted on all training rows."""
    inner_test = split(train_rows, protocol, seed=7)
    inner_rows, inner_targets, inner_items = targets_of(train_rows, inner_test)
    key = "hr_at_10" if protocol == "loo" else "ndcg_at_10"
    best = max(EASE_GRID, key=lambda lam: ease_rank(inner_rows, inner_targets, lam,
                                                    len(inner_items))[key])
    return best, ease_rank(train_rows, targets, best, n_items)


def ensure_numpy(venv: Path):
    """Re-runs the calling script in a venv with numpy unless numpy imports."""
    try:
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(python), "-m", "pip", "install", "-q", "numpy"])
    os.execv(str(python), [str(python)] + sys.argv)
