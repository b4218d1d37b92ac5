#!/usr/bin/env python3
"""Compressed serving: f32 vs int8 (and f16) weights of tabular models.

For adult: server CPU per row of a 256-row POST /predict at each precision
(CPU time of the server process over repeated requests), the weights' memory,
and the accuracy lost on the validation rows (stored in the model card at
training); the peer is onnxruntime on the same model exported to ONNX, f32
and dynamically quantized to int8 (onnxruntime.quantization.quantize_dynamic),
timed in-process on the same 256 rows. For digits (8x8 PNGs): memory and
accuracy lost. Every figure comes from one run. Usage:

    python bench/compressed.py --myelin target/release/myelin --data data

Needs data/adult.csv and data/digits/train.csv (python bench/inputs.py
export-digits --data data), numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_common import _typed as typed  # noqa: E402  (CSV fields as JSON numbers or strings)

ROWS, REPEATS = 256, 200


def call(method, url, body=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        out = r.read()
    return out if raw else json.loads(out)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train(myelin, store, name, path, target, extra):
    subprocess.run([myelin, "train", "--data", str(path), "--target", target, "--name", name,
                    "--models", str(store), "--quiet", *extra], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--myelin", default="target/release/myelin")
    parser.add_argument("--data", default="data")
    args = parser.parse_args()
    data = Path(args.data)
    with open(data / "adult.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r]
    records = [{k: typed(v) for k, v in zip(header, r) if k != "income"} for r in rows[-ROWS:]]
    with tempfile.TemporaryDirectory(prefix="myelin-bench-compressed-") as tmp:
        store = Path(tmp) / "store"
        train_csv = Path(tmp) / "adult.csv"
        with open(train_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows[:-ROWS])
        train(args.myelin, store, "adult", train_csv, "income",
              ["--param", "hidden_layers=[64,32]", "--param", "epochs=10"])
        digits = data / "digits" / "train.csv"
        if digits.exists():
            train(args.myelin, store, "digits", digits, "digit",
                  ["--task", "classification", "--pipeline", 'image={"width": 8, "height": 8}',
                   "--param", "hidden_layers=[256,128]", "--param", "epochs=60",
                   "--param", "batch_size=32"])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, MYELIN_SERVER__HOST="127.0.0.1", MYELIN_SERVER__PORT=str(port),
                   MYELIN_GRPC__PORT="0", MYELIN_STORE__PATH=str(store), MYELIN_LOG__LEVEL="warn",
                   MYELIN_SERVING__MAX_ACCURACY_DROP="1")
        server = subprocess.Popen([args.myelin, "serve"], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    call("GET", f"{base}/readyz")
                    break
                except OSError:
                    time.sleep(0.05)
            cards = {m: call("GET", f"{base}/models/{m}/versions/1")
                     for m in (["adult", "digits"] if digits.exists() else ["adult"])}
            cpu = {}
            answers = {}
            for precision in ["f32", "f16", "int8"]:
                body = {"model": "adult", "instances": records, "precision": precision}
                answers[precision] = call("POST", f"{base}/predict", body)
                before = cpu_seconds(server.pid)
                for _ in range(REPEATS):
                    call("POST", f"{base}/predict", body)
                cpu[precision] = (cpu_seconds(server.pid) - before) / (REPEATS * ROWS)
            exported = call("GET", f"{base}/models/adult/versions/1/export", raw=True)
        finally:
            server.terminate()
            server.wait(30)
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
        f32_path = Path(tmp) / "adult.onnx"
        int8_path = Path(tmp) / "adult-int8.onnx"
        f32_path.write_bytes(exported)
        quantize_dynamic(str(f32_path), str(int8_path), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": 1})
        feeds = {}
        for column in cards["adult"]["pipeline"]["columns"]:
            name = column["name"]
            values = [r[name] for r in records]
            if column["encoder"]["encoding"] == "one_hot":
                feeds[name] = np.array([[str(v)] for v in values], dtype=object)
            else:
                feeds[name] = np.array([[float(v)] for v in values], dtype=np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        peer = {}
        for label, path in [("f32", f32_path), ("int8", int8_path)]:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session.run(None, feeds)
            before = time.process_time()
            for _ in range(REPEATS):
                session.run(None, feeds)
            peer[label] = ((time.process_time() - before) / (REPEATS * ROWS), path.stat().st_size)

    def flips(precision):
        return sum(a["label"] != b["label"] for a, b in
                   zip(answers["f32"]["predictions"], answers[precision]["predictions"]))

    adult = cards["adult"]["compression"]
    load = os.getloadavg()
    print(f"Load average (1/5/15 min) at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; "
          f"binary `{args.myelin}`.\n")
    print("adult, MLP [64, 32], 256-row requests, "
          f"{REPEATS} requests per precision; Myelin: server process CPU per row (HTTP and JSON "
          "included); onnxruntime: in-process CPU per row of session.run on the same rows "
          "(one thread, tensors prepared beforehand).\n")
    print("| system | precision | CPU µs / row | weights (KiB) | accuracy lost on validation | labels changed (256 rows) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    sizes = {"f32": adult["f32_bytes"], "f16": adult["f16"]["bytes"], "int8": adult["int8"]["bytes"]}
    drops = {"f32": 0.0, "f16": adult["f16"]["accuracy_drop"], "int8": adult["int8"]["accuracy_drop"]}
    for p in ["f32", "f16", "int8"]:
        used = answers[p].get("precision", "f32")
        print(f"| Myelin | {p}{'' if used == p else f' (served {used})'} | {cpu[p] * 1e6:.2f} | "
              f"{sizes[p] / 1024:.1f} | {drops[p]:+.4f} | {flips(p)} |")
    for p in ["f32", "int8"]:
        print(f"| onnxruntime {ort.__version__} | {p} | {peer[p][0] * 1e6:.2f} | "
              f"{peer[p][1] / 1024:.1f} (file) | | |")
    if "digits" in cards:
        d = cards["digits"]["compression"]
        print(f"\ndigits (8x8 PNGs, MLP [256, 128]), {d['rows']} validation rows: weights "
              f"{d['f32_bytes'] / 1024:.1f} KiB f32, {d['f16']['bytes'] / 1024:.1f} KiB f16, "
              f"{d['int8']['bytes'] / 1024:.1f} KiB int8; accuracy lost f16 "
              f"{d['f16']['accuracy_drop']:+.4f}, int8 {d['int8']['accuracy_drop']:+.4f} "
              f"({d['int8']['changed_labels']} labels changed).")
    print(f"adult: {adult['rows']} validation rows; labels changed by int8: "
          f"{adult['int8']['changed_labels']}.")


if __name__ == "__main__":
    main()
