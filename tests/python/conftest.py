"""Fixtures of the Open Inference Protocol client tests: target/debug/myelin
on free loopback ports (HTTP and gRPC) with a temporary store and a small
churn classifier trained on rows made here, and the /predict answers the
clients' results must equal within 1e-6.

tritonclient.grpc and kserve both register the protocol's `inference.*`
messages in protobuf's default pool, so their tests run in separate pytest
processes (scripts/suites/oip.sh).
"""

import json
import os
import random
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("OIP_SERVER_BIN", ROOT / "target" / "debug" / "myelin"))
MODEL = "churn"
TOLERANCE = 1e-6


def churn_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tenure = rng.randint(1, 72)
        plan = rng.choice(["basic", "standard", "pro"])
        autopay = rng.random() < 0.5
        monthly = round(20 + rng.random() * 100, 2)
        score = (tenure < 20) + (plan == "basic") + (not autopay)
        rows.append({"tenure": tenure, "plan": plan, "monthly": monthly,
                     "autopay": autopay, "churned": "yes" if score >= 2 else "no"})
    return rows


def http_json(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class Server:
    """target/debug/myelin serve on port 0 (HTTP and gRPC), addresses read from its log."""

    def __init__(self, store):
        env = dict(os.environ, MYELIN_SERVER__HOST="127.0.0.1", MYELIN_SERVER__PORT="0",
                   MYELIN_GRPC__PORT="0", MYELIN_STORE__PATH=str(store),
                   MYELIN_LOG__FORMAT="json", MYELIN_LOG__LEVEL="info")
        env.pop("RUST_LOG", None)
        self.proc = subprocess.Popen([str(BINARY), "serve"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.http = None
        self.grpc = None
        self.log = []
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.log.append(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                fields = event.get("fields", {})
                if fields.get("message") == "serving":
                    self.http = fields.get("address")
                elif fields.get("message") == "serving the inference protocol over gRPC":
                    self.grpc = fields.get("address")
                if self.http and self.grpc:
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(30):
            self.stop()
            raise RuntimeError("myelin did not start:\n" + "".join(self.log))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def train(srv, body):
    """Trains with POST /train and waits for the job to succeed."""
    base = f"http://{srv.http}"
    job = http_json("POST", f"{base}/train", body)
    deadline = time.time() + 120
    while True:
        job = http_json("GET", f"{base}/jobs/{job['id']}")
        if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            break
        assert time.time() < deadline, f"training did not finish: {job}"
        time.sleep(0.1)
    assert job["status"] == "succeeded", job


REGRESSOR = "reg"


def regression_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x1, x2 = round(rng.uniform(0, 10), 3), round(rng.uniform(0, 10), 3)
        rows.append({"x1": x1, "x2": x2, "y": round(3 * x1 - 2 * x2 + rng.gauss(0, 0.5), 3)})
    return rows


@pytest.fixture(scope="module")
def regressor(server):
    """A regressor `reg` (x1, x2 -> y) on the server, the rows to infer on and
    /predict's values rounded to float32 (the protocol's `value` is FP32)."""
    train(server, {"model": REGRESSOR, "target": "y", "data": regression_rows(200, 3),
                   "params": {"hidden_layers": [8], "epochs": 5, "batch_size": 32}})
    rows = [{"x1": r["x1"], "x2": r["x2"]} for r in regression_rows(20, 4)]
    answer = http_json("POST", f"http://{server.http}/predict",
                       {"model": REGRESSOR, "instances": rows})
    want = np.array([p["value"] for p in answer["predictions"]], dtype=np.float32)
    return rows, want


@pytest.fixture(scope="module")
def server():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build` first")
    with tempfile.TemporaryDirectory() as store:
        srv = Server(store)
        try:
            train(srv, {
                "model": MODEL, "target": "churned", "data": churn_rows(300, 7),
                "params": {"hidden_layers": [8], "epochs": 5, "batch_size": 32},
            })
            yield srv
        finally:
            srv.stop()


ROWS = [r for r in churn_rows(40, 99)]
for r in ROWS:
    del r["churned"]


@pytest.fixture(scope="module")
def expected(server):
    """Labels and per-class probabilities from /predict, and the class order."""
    answer = http_json("POST", f"http://{server.http}/predict",
                       {"model": MODEL, "instances": ROWS})
    meta = http_json("GET", f"http://{server.http}/v2/models/{MODEL}")
    classes = json.loads(meta["outputs"][1]["parameters"]["classes"])
    labels = [p["label"] for p in answer["predictions"]]
    probabilities = np.array([[p["probabilities"][c] for c in classes]
                              for p in answer["predictions"]])
    return labels, probabilities, classes


def columns():
    """One numpy array per raw column, as MLServer's pandas codec would send."""
    return {
        "tenure": ("INT64", np.array([r["tenure"] for r in ROWS], dtype=np.int64)),
        "plan": ("BYTES", np.array([r["plan"].encode() for r in ROWS], dtype=np.object_)),
        "monthly": ("FP64", np.array([r["monthly"] for r in ROWS], dtype=np.float64)),
        "autopay": ("BOOL", np.array([r["autopay"] for r in ROWS], dtype=np.bool_)),
    }


def check(expected, labels, probabilities):
    want_labels, want_probs, _ = expected
    labels = [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(labels).ravel()]
    assert labels == want_labels
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(want_probs.shape)
    assert np.max(np.abs(probabilities - want_probs)) <= TOLERANCE


