#!/usr/bin/env python3
"""Warm start against training from scratch on a time split, through the HTTP API.

    cargo build --release
    python bench/warm_start.py --myelin target/release/myelin --data data/adult.csv

The table's rows are taken as time order: the first 60% are "old", the next 20%
"new", the last 20% the test rows. Version 1 is trained on the old rows, then

  (a) warm start: `init_from` version 1, trained on the new rows only;
  (b) scratch on the new rows only;
  (c) scratch on old + new rows;

each with the default recipe (no `params`), through `POST /train` of a
`myelin serve` on a free loopback port with a temporary store. Printed: test
accuracy (or RMSE for a numeric target) from `POST /predict`, the fit's CPU
seconds (`timing.fit_cpu_seconds` of the card: the training thread) and the
job's wall seconds. With scikit-learn importable, HistGradientBoosting with its
defaults on the same rows is printed as a peer.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body=None, timeout: float = 600.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def train(self, body: dict) -> dict:
        status, job = self.call("POST", "/train", body)
        if status != 202:
            raise RuntimeError(f"POST /train answered {status}: {job}")
        while True:
            _, job = self.call("GET", f"/jobs/{job['id']}")
            if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
                break
            time.sleep(0.5)
        if job["status"] != "succeeded":
            raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}")
        return job


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def score(api: Api, model: str, version: int, header, rows, target: str) -> tuple[str, float]:
    t = header.index(target)
    truth = [r[t] for r in rows]
    predicted = []
    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        instances = [{h: v for h, v in zip(header, r) if h != target and v != ""} for r in chunk]
        status, answer = api.call("POST", "/predict",
                                  {"model": model, "version": version, "instances": instances})
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}: {answer}")
        predicted.extend(answer["predictions"])
    if "label" in predicted[0]:
        hits = sum(str(p["label"]) == y for p, y in zip(predicted, truth))
        return "accuracy", hits / len(truth)
    sq = sum((float(p["value"]) - float(y)) ** 2 for p, y in zip(predicted, truth))
    return "rmse", (sq / len(truth)) ** 0.5


def run(args) -> int:
    with open(args.data, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r and r[header.index(args.target)] != ""]
    n = len(rows)
    old, new, test = rows[: n * 6 // 10], rows[n * 6 // 10: n * 8 // 10], rows[n * 8 // 10:]
    print(f"{args.data}: {n} rows in time order: old {len(old)}, new {len(new)}, test {len(test)}")

    store = tempfile.mkdtemp(prefix="myelin-warm-")
    port = free_port()
    env = dict(os.environ, MYELIN_STORE__PATH=store, MYELIN_SERVER__HOST="127.0.0.1",
               MYELIN_SERVER__PORT=str(port), MYELIN_GRPC__PORT="0", MYELIN_LOG__LEVEL="warn")
    proc = subprocess.Popen([args.myelin, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    api = Api(port)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if api.call("GET", "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("myelin serve did not start")
            time.sleep(0.2)

        def train(model: str, part, init=None) -> dict:
            body = {"model": model, "target": args.target, "csv": to_csv(header, part)}
            if init:
                body["init_from"] = init
            job = api.train(body)
            _, card = api.call("GET", f"/models/{model}/versions/{job['version']}")
            metric, value = score(api, model, job["version"], header, test, args.target)
            wall = (parse_time(job["finished_at"]) - parse_time(job["started_at"]))
            return {"model": model, "rows": len(part), "metric": metric, "value": value,
                    "fit_cpu_s": card["timing"]["fit_cpu_seconds"], "job_wall_s": wall,
                    "epochs": card["timing"]["epochs"], "init_from": card.get("init_from")}

        v1 = train("ws-v1", old)
        results = [
            ("v1: scratch on old", v1),
            ("(a) warm start from v1 on new", train("ws-warm", new, {"model": "ws-v1", "version": 1})),
            ("(b) scratch on new", train("ws-new", new)),
            ("(c) scratch on old+new", train("ws-all", old + new)),
        ]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    peers = hgb_peer(header, old, new, test, args.target)
    print()
    print(f"| run | rows trained | epochs | test {results[0][1]['metric']} | fit CPU s | job wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in results:
        print(f"| {label} | {r['rows']} | {r['epochs']} | {r['value']:.4f} | {r['fit_cpu_s']:.1f} | {r['job_wall_s']:.1f} |")
    for label, rows_trained, value, cpu in peers:
        print(f"| peer: {label} | {rows_trained} | – | {value:.4f} | {cpu:.1f} | – |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": dict(results), "peers": peers}, f, indent=2)
    return 0


def parse_time(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def hgb_peer(header, old, new, test, target):
    """HistGradientBoosting defaults on new and on old+new, when scikit-learn is there."""
    try:
        import pandas as pd
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError:
        print("(scikit-learn not importable: no peer)")
        return []

    def frame(rows):
        df = pd.DataFrame(rows, columns=header).replace("", None)
        for c in df.columns:
            converted = pd.to_numeric(df[c], errors="coerce")
            if converted.notna().sum() == df[c].notna().sum():
                df[c] = converted
            else:
                df[c] = df[c].astype("category")
        return df

    full = frame(old + new + test)
    y = full.pop(target)
    classify = not pd.api.types.is_numeric_dtype(y) or y.nunique() <= 20
    x = full
    n_old, n_new = len(old), len(new)
    out = []
    for label, lo in (("HGB on new", n_old), ("HGB on old+new", 0)):
        model = (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
            categorical_features="from_dtype", random_state=0)
        t0 = time.process_time()
        model.fit(x.iloc[lo:n_old + n_new], y.iloc[lo:n_old + n_new])
        cpu = time.process_time() - t0
        pred = model.predict(x.iloc[n_old + n_new:])
        truth = y.iloc[n_old + n_new:]
        value = ((pred == truth).mean() if classify
                 else float((((pred - truth) ** 2).mean()) ** 0.5))
        out.append((label, n_new if lo else n_old + n_new, float(value), cpu))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--myelin", default="target/release/myelin")
    ap.add_argument("--data", default="data/adult.csv")
    ap.add_argument("--target", default="income")
    ap.add_argument("--json", help="also write the figures to this file")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
