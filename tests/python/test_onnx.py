"""ONNX export: the exported model passes onnx.checker and onnxruntime
reproduces /predict; explanations agree with shap.KernelExplainer."""

import json
import random
import time
import urllib.request

import numpy as np
import pytest

from conftest import MODEL, churn_rows, http_json

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

EXPORT_TOLERANCE = 1e-5


def export(server, model, version=1):
    url = f"http://{server.http}/models/{model}/versions/{version}/export?format=onnx"
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.headers["Content-Type"] == "application/octet-stream"
        return response.read()


def feeds(rows, schema):
    """One [N, 1] array per raw column: float (NaN missing) or string."""
    out = {}
    for name, kind in schema.items():
        values = [r.get(name) for r in rows]
        if kind == "categorical":
            out[name] = np.array([["" if v is None else str(v)] for v in values], dtype=object)
        else:
            out[name] = np.array([[np.nan if v is None else float(v)] for v in values],
                                 dtype=np.float32)
    return out


def schema_of(server, model, version=1):
    card = http_json("GET", f"http://{server.http}/models/{model}/versions/{version}")
    return {c["name"]: c["encoder"]["encoding"] for c in card["pipeline"]["columns"]}, card


def kinds(encodings):
    return {name: ("categorical" if enc == "one_hot" else "number")
            for name, enc in encodings.items()}


def test_exported_classifier_matches_predict_on_200_rows(server):
    model = onnx.load_from_string(export(server, MODEL))
    onnx.checker.check_model(model, full_check=True)
    encodings, card = schema_of(server, MODEL)
    rows = churn_rows(200, 1234)
    rng = random.Random(5)
    for r in rows:
        del r["churned"]
        if rng.random() < 0.1:
            r[rng.choice(list(r))] = None
    rows[0]["plan"] = "enterprise"  # unseen category: the __unknown__ slot
    answer = http_json("POST", f"http://{server.http}/predict", {"model": MODEL, "instances": rows})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"], feeds(rows, kinds(encodings)))
    classes = card["target_encoder"]["labels"]
    want = np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])
    assert [str(x) for x in labels] == [p["label"] for p in answer["predictions"]]
    assert np.max(np.abs(probabilities - want)) <= EXPORT_TOLERANCE


def train(server, body):
    base = f"http://{server.http}"
    job = http_json("POST", f"{base}/train", body)
    deadline = time.time() + 120
    while job["status"] not in ("succeeded", "failed", "cancelled", "interrupted"):
        assert time.time() < deadline, job
        time.sleep(0.1)
        job = http_json("GET", f"{base}/jobs/{job['id']}")
    assert job["status"] == "succeeded", job


def synthetic(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = [rng.uniform(-2, 2) for _ in range(5)]
        y = 3 * x[0] - 2 * x[1] + 1 * x[2] + 0.3 * x[3]
        rows.append({f"x{i}": v for i, v in enumerate(x)} | {"y": y})
    return rows


def test_exported_regressor_matches_predict(server):
    train(server, {"model": "linear", "target": "y", "data": synthetic(400, 3),
                   "params": {"hidden_layers": [16], "epochs": 20, "activation": "gelu"}})
    model = onnx.load_from_string(export(server, "linear"))
    onnx.checker.check_model(model, full_check=True)
    rows = [{k: v for k, v in r.items() if k != "y"} for r in synthetic(200, 9)]
    answer = http_json("POST", f"http://{server.http}/predict", {"model": "linear", "instances": rows})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    encodings, _ = schema_of(server, "linear")
    (values,) = session.run(["value"], feeds(rows, kinds(encodings)))
    want = np.array([p["value"] for p in answer["predictions"]])
    assert np.max(np.abs(values.ravel() - want) / np.maximum(1.0, np.abs(want))) <= EXPORT_TOLERANCE


def spearman(a, b):
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_attribution_ranking_agrees_with_shap_kernel_explainer(server):
    shap = pytest.importorskip("shap")
    train(server, {"model": "linear-shap", "target": "y", "data": synthetic(400, 4),
                   "params": {"hidden_layers": [16], "epochs": 20}})
    base = f"http://{server.http}"
    names = [f"x{i}" for i in range(5)]
    card = http_json("GET", f"{base}/models/linear-shap/versions/1")
    background = np.array([[card["baseline"][n] for n in names]])

    def predict(matrix):
        rows = [dict(zip(names, map(float, row))) for row in matrix]
        answer = http_json("POST", f"{base}/predict", {"model": "linear-shap", "instances": rows})
        return np.array([p["value"] for p in answer["predictions"]])

    explainer = shap.KernelExplainer(predict, background)
    probe = np.array([[r[n] for n in names] for r in synthetic(8, 21)])
    shap_values = explainer.shap_values(probe, nsamples=200, silent=True)
    answer = http_json("POST", f"{base}/explain",
                       {"model": "linear-shap", "instances": [dict(zip(names, map(float, r))) for r in probe]})
    ours = np.array([[{a["column"]: a["attribution"] for a in e["attributions"]}[n] for n in names]
                     for e in answer["explanations"]])
    theirs = np.abs(np.asarray(shap_values)).mean(axis=0)
    rho = spearman(theirs, np.abs(ours).mean(axis=0))
    assert rho >= 0.8, (theirs, ours)
