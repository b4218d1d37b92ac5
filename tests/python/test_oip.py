"""The Open Inference Protocol with the real clients from PyPI.

Starts target/debug/myelin on free loopback ports with a temporary store,
trains a small churn classifier it makes itself, then drives the server with
tritonclient (HTTP with binary tensors on and off, gRPC) and KServe's
InferenceRESTClient (protocol v2): liveness, readiness, metadata and
inference, whose labels and probabilities must equal POST /predict on the
same rows within 1e-6.
"""

import asyncio
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
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("MYELIN_BIN", ROOT / "target" / "debug" / "myelin"))
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


@pytest.fixture(scope="module")
def server():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build` first")
    with tempfile.TemporaryDirectory() as store:
        srv = Server(store)
        try:
            base = f"http://{srv.http}"
            job = http_json("POST", f"{base}/train", {
                "model": MODEL, "target": "churned", "data": churn_rows(300, 7),
                "params": {"hidden_layers": [8], "epochs": 5, "batch_size": 32},
            })
            deadline = time.time() + 120
            while True:
                job = http_json("GET", f"{base}/jobs/{job['id']}")
                if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
                    break
                assert time.time() < deadline, f"training did not finish: {job}"
                time.sleep(0.1)
            assert job["status"] == "succeeded", job
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


def test_tritonclient_http_health_and_metadata(server):
    client = httpclient.InferenceServerClient(server.http)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("no-such-model")
    meta = client.get_model_metadata(MODEL)
    assert meta["platform"] == "myelin"
    assert meta["versions"] == ["1"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]}
    assert inputs == {"tenure": ("FP64", [-1]), "plan": ("BYTES", [-1]),
                      "monthly": ("FP64", [-1]), "autopay": ("BOOL", [-1])}
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_http_infer_equals_predict(server, expected, binary):
    client = httpclient.InferenceServerClient(server.http)
    inputs = []
    for name, (datatype, values) in columns().items():
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput("label", binary_data=binary),
               httpclient.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, inputs, outputs=outputs, request_id="r1")
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))
    # Without requested outputs tritonclient asks for every output in binary.
    result = client.infer(MODEL, inputs)
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))


def test_tritonclient_http_errors_name_the_tensor(server):
    client = httpclient.InferenceServerClient(server.http)
    tensor = httpclient.InferInput("age", [2], "FP64")
    tensor.set_data_from_numpy(np.array([1.0, 2.0]))
    with pytest.raises(Exception, match="unknown input tensor `age`"):
        client.infer(MODEL, [tensor])


def test_tritonclient_grpc_health_metadata_and_infer(server, expected):
    client = grpcclient.InferenceServerClient(server.grpc)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    meta = client.get_model_metadata(MODEL, as_json=True)
    assert meta["platform"] == "myelin"
    assert {t["name"] for t in meta["inputs"]} == {"tenure", "plan", "monthly", "autopay"}
    inputs = []
    for name, (datatype, values) in columns().items():
        tensor = grpcclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    result = client.infer(MODEL, inputs)
    check(expected, result.as_numpy("label"), result.as_numpy("probabilities"))
    result = client.infer(MODEL, inputs, outputs=[grpcclient.InferRequestedOutput("label")])
    assert result.as_numpy("probabilities") is None
    check(expected, result.as_numpy("label"), expected[1])
    with pytest.raises(Exception, match="unknown input tensor `age`"):
        bad = grpcclient.InferInput("age", [2], "FP64")
        bad.set_data_from_numpy(np.array([1.0, 2.0]))
        client.infer(MODEL, [bad])


@pytest.mark.parametrize("binary", [False, True])
def test_kserve_rest_client_v2(server, expected, binary):
    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
        base = f"http://{server.http}"
        try:
            assert await client.is_server_live(base)
            assert await client.is_server_ready(base)
            assert await client.is_model_ready(base, MODEL)
            inputs = []
            for name, (datatype, values) in columns().items():
                tensor = InferInput(name, list(values.shape), datatype)
                tensor.set_data_from_numpy(values, binary_data=binary)
                inputs.append(tensor)
            request = InferRequest(model_name=MODEL, infer_inputs=inputs, request_id="k1")
            response = await client.infer(base, request, model_name=MODEL)
            outputs = {o.name: o.as_numpy() for o in response.outputs}
            check(expected, outputs["label"], outputs["probabilities"])
        finally:
            await client.close()

    asyncio.run(run())
