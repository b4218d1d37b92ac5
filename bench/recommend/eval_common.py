"""Shared by bench/recommend/eval_http.py, load.py and bars.py: the evaluation
splits of `examples/recommend_eval.rs` (its Rust RNG reimplemented bit for bit),
the ranking metrics, and `myelin serve` on a free loopback port.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serve_common import _http, free_port  # noqa: E402

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# --------------------------------------------------------------------------
# The Rust split RNG: rand_core 0.9 `seed_from_u64` (PCG32 expansion),
# rand_chacha 0.9 ChaCha8 (64-bit block counter, stream 0, blocks in order),
# rand 0.9 `SliceRandom::shuffle` (IncreasingUniform) and `random_range` for
# u32 (Canon's method, default "biased" variant).
# --------------------------------------------------------------------------


def _rotl(x, n):
    return ((x << n) & M32) | (x >> (32 - n))


class ChaCha8:
    def __init__(self, seed_u64: int):
        state = seed_u64 & M64
        words = []
        for _ in range(8):
            state = (state * 6364136223846793005 + 11634580027462260723) & M64
            xorshifted = (((state >> 18) ^ state) >> 27) & M32
            rot = state >> 59
            words.append(((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & M32)
        self.key = words
        self.counter = 0
        self.buf: list[int] = []
        self.pos = 0

    def _block(self):
        c = self.counter
        s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *self.key,
             c & M32, (c >> 32) & M32, 0, 0]
        x = list(s)

        def qr(a, b, c_, d):
            x[a] = (x[a] + x[b]) & M32; x[d] = _rotl(x[d] ^ x[a], 16)
            x[c_] = (x[c_] + x[d]) & M32; x[b] = _rotl(x[b] ^ x[c_], 12)
            x[a] = (x[a] + x[b]) & M32; x[d] = _rotl(x[d] ^ x[a], 8)
            x[c_] = (x[c_] + x[d]) & M32; x[b] = _rotl(x[b] ^ x[c_], 7)

        for _ in range(4):  # 8 rounds = 4 double rounds
            qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
            qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
        self.buf = [(x[i] + s[i]) & M32 for i in range(16)]
        self.pos = 0
        self.counter += 1

    def next_u32(self) -> int:
        if self.pos >= len(self.buf):
            self._block()
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def range_u32(self, bound: int) -> int:
        """`random_range(..bound)` for u32 (sample_single_inclusive(0, bound-1))."""
        rng = bound & M32
        if rng == 0:
            return self.next_u32()
        m = self.next_u32() * rng
        result, lo = m >> 32, m & M32
        if lo > ((-rng) & M32):
            new_hi = (self.next_u32() * rng) >> 32
            if lo + new_hi > M32:
                result += 1
        return result


def _bound_u32(m: int) -> tuple[int, int]:
    product, current = m, m + 1
    while product * current <= M32:
        product *= current
        current += 1
    return product, current - m


def shuffle(items: list, rng: ChaCha8) -> None:
    """rand 0.9 `shuffle` = `partial_shuffle(len)` with IncreasingUniform from 0."""
    if len(items) <= 1:
        return
    n, chunk, remaining = 0, 0, 1
    for i in range(len(items)):
        next_n = n + 1
        if remaining == 0:
            bound, rem = _bound_u32(next_n)
            chunk = rng.range_u32(bound)
            remaining = rem
        remaining -= 1
        if remaining == 0:
            idx = chunk
        else:
            idx = chunk % next_n
            chunk //= next_n
        n = next_n
        items[i], items[idx] = items[idx], items[i]


def read_ratings(path: Path) -> list[tuple[int, int, str, int]]:
    out = []
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            out.append((int(row[0]), int(row[1]), row[2], int(row[3])))
    return out


def split(ratings, protocol: str, seed: int = 42) -> list[bool]:
    by_user: dict[int, list[int]] = {}
    for i, r in enumerate(ratings):
        by_user.setdefault(r[0], []).append(i)
    test = [False] * len(ratings)
    rng = ChaCha8(seed)
    for user in sorted(by_user):
        rows = by_user[user]
        if protocol == "loo":
            test[max(rows, key=lambda i: (ratings[i][3], ratings[i][1]))] = True
        else:
            rows = sorted(rows)
            shuffle(rows, rng)
            count = int(math.floor(len(rows) * 0.2 + 0.5))  # f64::round (half away from 0)
            for i in rows[:count]:
                test[i] = True
    return test


# --------------------------------------------------------------------------
# Metrics (RankingAccumulator in src/recommend/metrics.rs)
# --------------------------------------------------------------------------


class Acc:
    def __init__(self):
        self.hr = self.ndcg = self.recall = 0.0
        self.users = 0
        self.covered: set = set()

    def add(self, ranked: list, targets: list):
        if not targets:
            return
        self.users += 1
        t = set(targets)
        dcg, hit = 0.0, False
        for rank, item in enumerate(ranked[:10]):
            self.covered.add(item)
            if item in t:
                hit = True
                dcg += 1.0 / math.log2(rank + 2)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(targets), 10)))
        self.ndcg += dcg / ideal
        self.hr += hit
        # `targets.contains` counts each ranked item once; duplicates in targets
        # (a user rating the same movie twice) keep the Rust denominator.
        self.recall += sum(1 for i in ranked[:20] if i in t) / len(targets)

    def finish(self, n_items: int) -> dict:
        u = max(self.users, 1)
        return {"hr_at_10": self.hr / u, "ndcg_at_10": self.ndcg / u,
                "recall_at_20": self.recall / u,
                "coverage_at_10": len(self.covered) / max(n_items, 1), "users": self.users}


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class MyelinServer:
    def __init__(self, binary: str, store: Path, log: Path):
        self.port = free_port()
        env = dict(os.environ, MYELIN_SERVER__PORT=str(self.port), MYELIN_GRPC__PORT="0",
                   MYELIN_STORE__PATH=str(store), MYELIN_SERVER__HOST="127.0.0.1")
        self.logf = open(log, "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=str(store))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if _http(self.port, "GET", "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"myelin exited early, see {log}")
            time.sleep(0.02)
        raise SystemExit("myelin did not become healthy")

    def call(self, method, path, body=None, ctype="application/json", timeout=120):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        st, data, _ = _http(self.port, method, path, body=body,
                            headers={"content-type": ctype} if body is not None else {},
                            timeout=timeout)
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, data.decode(errors="replace")

    def train(self, model: str, rows, params: dict, attributes: dict | None = None) -> dict:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["user_id", "movie_id", "rating", "timestamp"])
        w.writerows(rows)
        body = {"model": model, "task": "recommendation", "params": params,
                "interaction_columns": {"user": "user_id", "item": "movie_id",
                                        "value": "rating", "timestamp": "timestamp"},
                "csv": buf.getvalue(), **(attributes or {})}
        t0 = time.time()
        st, job = self.call("POST", "/train", body)
        if st != 202:
            raise SystemExit(f"POST /train answered {st}: {job}")
        jid = job["id"]
        while True:
            st, job = self.call("GET", f"/jobs/{jid}")
            if job.get("status") in ("succeeded", "failed", "cancelled", "interrupted"):
                break
            time.sleep(0.25)
        if job.get("status") != "succeeded":
            raise SystemExit(f"training job ended {job.get('status')}: {job}")
        job["_wall_s"] = time.time() - t0
        return job

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.logf.close()
