#!/usr/bin/env python3
"""Open Inference Protocol benchmark: server CPU per single-row request.

Run from the repository root with a release build:

    python -m pip install -r bench/requirements.txt   # tritonclient[grpc] among them
    python bench/oip.py --data data --myelin target/release/myelin

What it does:

1. Trains an adult model (target `income`) with `myelin train` into a
   temporary store; starts `myelin serve` on free loopback ports (HTTP, gRPC).
2. Single-row requests on one kept-alive connection, in interleaved rounds so
   that load from elsewhere hits every mode alike: `POST /predict` (JSON),
   OIP HTTP with JSON tensors, OIP HTTP with binary tensors, OIP gRPC
   (`raw_input_contents`, tritonclient). Server CPU per request is the time
   on a CPU of every thread of the server's process tree
   (/proc/<pid>/task/<tid>/schedstat, in nanoseconds), before and after each
   round, divided by the requests of the round; the median round is
   reported.
3. MLServer's OIP endpoint (bench/serve.py's peer: the scikit-learn runtime
   and the same adult CSV), if an environment with mlserver and
   mlserver-sklearn exists (--mlserver-python, else bench/out/mlserver-venv):
   the same single-row measurement on `/v2/models/adult/infer`.
4. Throughput of a 256-row binary OIP request and of a 256-row `/predict`,
   in rows per second (sequential requests).

Prints a Markdown table and the ratios against `/predict` and MLServer (same
run); writes `<out>/oip.json`. Exits non-zero if a ratio misses its target
(OIP <= 1.3x /predict, MLServer >= 100x OIP).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_common as common  # noqa: E402  (bench/serve_common.py: /proc helpers, records, MLServer)

REPO = common.REPO
MODEL = common.MODEL
TARGET = common.TARGET
WITHIN_PREDICT = 1.3
BELOW_MLSERVER = 100.0


def oip_json_body(records: list[dict], kinds: dict[str, str]) -> bytes:
    inputs = []
    for col, datatype in kinds.items():
        vals = [r[col] for r in records]
        if datatype == "BYTES":
            vals = [str(v) for v in vals]
        elif datatype == "BOOL":
            vals = [bool(v) for v in vals]
        else:
            vals = [float(v) for v in vals]
        inputs.append({"name": col, "shape": [len(vals)], "datatype": datatype, "data": vals})
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


def oip_binary_body(records: list[dict], kinds: dict[str, str]) -> tuple[bytes, int]:
    inputs, blobs = [], []
    for col, datatype in kinds.items():
        vals = [r[col] for r in records]
        if datatype == "BYTES":
            blob = b"".join(struct.pack("<I", len(s)) + s
                            for s in (str(v).encode() for v in vals))
        elif datatype == "BOOL":
            blob = bytes(int(bool(v)) for v in vals)
        else:
            datatype = "FP64"
            blob = struct.pack(f"<{len(vals)}d", *[float(v) for v in vals])
        inputs.append({"name": col, "shape": [len(vals)], "datatype": datatype,
                       "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({"inputs": inputs,
                         "parameters": {"binary_data_output": True}},
                        separators=(",", ":")).encode()
    return header + b"".join(blobs), len(header)


class HttpMode:
    def __init__(self, port: int, path: str, body: bytes, headers: dict):
        self.port, self.path, self.body, self.headers = port, path, body, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self) -> None:
        self.conn.request("POST", self.path, body=self.body, headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{self.path}: HTTP {r.status}: {data[:300]!r}")


class GrpcMode:
    def __init__(self, address: str, records: list[dict], kinds: dict[str, str]):
        import numpy as np
        import tritonclient.grpc as grpcclient

        self.client = grpcclient.InferenceServerClient(address)
        self.inputs = []
        for col, datatype in kinds.items():
            vals = [r[col] for r in records]
            if datatype == "BYTES":
                arr = np.array([str(v).encode() for v in vals], dtype=np.object_)
            elif datatype == "BOOL":
                arr = np.array([bool(v) for v in vals])
            else:
                datatype, arr = "FP64", np.array([float(v) for v in vals])
            t = grpcclient.InferInput(col, list(arr.shape), datatype)
            t.set_data_from_numpy(arr)
            self.inputs.append(t)

    def send(self) -> None:
        self.client.infer(MODEL, self.inputs)


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU nanoseconds of every thread of pid's process tree, by thread id
    (/proc/<pid>/task/<tid>/schedstat, first field: time on a CPU)."""
    out = {}
    for p in common.proc_tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    out[int(tid)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return out


def server_cpu_per_request(pid: int, mode, n: int) -> float:
    """Milliseconds of server CPU per request over n sequential requests:
    per-thread schedstat (nanoseconds; clock ticks of /proc/<pid>/stat are
    10 ms, too coarse for rounds of a few tens of ms), summed over the
    threads alive at the end (a thread born during the round counts whole)."""
    before = thread_cpu_ns(pid)
    for _ in range(n):
        mode.send()
    after = thread_cpu_ns(pid)
    ns = sum(t - before.get(tid, 0) for tid, t in after.items())
    return ns / 1e6 / n


def rows_per_second(mode, rows: int, seconds: float) -> float:
    mode.send()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mode.send()
        count += 1
    return rows * count / (time.perf_counter() - t0)


def wait_http(port: int, path: str, proc, timeout: float = 120.0, body=None) -> None:
    t0 = time.time()
    while True:
        try:
            method = "GET" if body is None else "POST"
            status, data, _ = common._http(port, method, path, body,
                                           {"content-type": "application/json"})
            if status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if time.time() - t0 > timeout:
            raise SystemExit(f"no answer from {path} within {timeout} s")
        time.sleep(0.05)


def stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data", help="directory holding adult.csv")
    ap.add_argument("--myelin", default=str(REPO / "target/release/myelin"))
    ap.add_argument("--requests", type=int, default=1000, help="requests per round and mode")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--mlserver-requests", type=int, default=300)
    ap.add_argument("--mlserver-python", default=None)
    ap.add_argument("--batch-seconds", type=float, default=3.0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "bench/out"))
    args = ap.parse_args()
    csv_path = Path(args.data) / "adult.csv"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = common.read_records(csv_path, 256, TARGET)
    tmp = Path(tempfile.mkdtemp(prefix="myelin-oip-bench-"))
    res: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "load_average_at_start": common.loadavg(), "settings": vars(args)}
    procs = []
    try:
        store = tmp / "store"
        r = subprocess.run([args.myelin, "train", "--data", str(csv_path), "--target", TARGET,
                            "--name", MODEL, "--models", str(store), "--quiet",
                            "--param", f"epochs={args.epochs}"], capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"myelin train failed: {r.stderr.decode()[-2000:]}")
        port, grpc_port = common.free_port(), common.free_port()
        env = dict(os.environ, MYELIN_STORE__PATH=str(store), MYELIN_SERVER__HOST="127.0.0.1",
                   MYELIN_SERVER__PORT=str(port), MYELIN_GRPC__PORT=str(grpc_port),
                   MYELIN_LOG__LEVEL="warn")
        myelin = subprocess.Popen([args.myelin, "serve"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        procs.append(myelin)
        wait_http(port, "/v2/health/ready", myelin)
        _, meta, _ = common._http(port, "GET", f"/v2/models/{MODEL}")
        kinds = {t["name"]: t["datatype"] for t in json.loads(meta)["inputs"]}
        one = records[:1]
        predict_body = json.dumps({"model": MODEL, "instances": one},
                                  separators=(",", ":")).encode()
        binary, length = oip_binary_body(one, kinds)
        json_h = {"content-type": "application/json"}
        modes = {
            "predict": HttpMode(port, "/predict", predict_body, json_h),
            "oip_http_json": HttpMode(port, f"/v2/models/{MODEL}/infer",
                                      oip_json_body(one, kinds), json_h),
            "oip_http_binary": HttpMode(port, f"/v2/models/{MODEL}/infer", binary,
                                        {"content-type": "application/octet-stream",
                                         "inference-header-content-length": str(length)}),
            "oip_grpc": GrpcMode(f"127.0.0.1:{grpc_port}", one, kinds),
        }
        for mode in modes.values():
            for _ in range(50):
                mode.send()
        samples: dict[str, list[float]] = {k: [] for k in modes}
        for _ in range(args.rounds):
            for key, mode in modes.items():
                samples[key].append(server_cpu_per_request(myelin.pid, mode, args.requests))
        cpu = {k: statistics.median(v) for k, v in samples.items()}
        res["myelin_cpu_ms_per_request"] = cpu
        res["myelin_cpu_samples"] = samples

        batch, blen = oip_binary_body(records[:256], kinds)
        batch_oip = HttpMode(port, f"/v2/models/{MODEL}/infer", batch,
                             {"content-type": "application/octet-stream",
                              "inference-header-content-length": str(blen)})
        batch_predict = HttpMode(port, "/predict", json.dumps(
            {"model": MODEL, "instances": records[:256]}, separators=(",", ":")).encode(), json_h)
        res["rows_per_s_256"] = {
            "oip_http_binary": rows_per_second(batch_oip, 256, args.batch_seconds),
            "predict": rows_per_second(batch_predict, 256, args.batch_seconds),
        }
        stop(myelin)

        py, why = common.find_mlserver(args.mlserver_python)
        if py:
            model_file = tmp / "mlserver-model.joblib"
            r = subprocess.run([py, str(common.PEERS / "train_sklearn.py"), "--data",
                                str(csv_path), "--target", TARGET, "--out", str(model_file),
                                "--max-iter", str(args.epochs)], capture_output=True)
            if r.returncode != 0:
                raise SystemExit(f"peer training failed: {r.stderr.decode()[-2000:]}")
            mport = common.free_port()
            mdir = tmp / "mlserver"
            (mdir / MODEL).mkdir(parents=True)
            (mdir / "settings.json").write_text(json.dumps({
                "host": "127.0.0.1", "http_port": mport, "grpc_port": common.free_port(),
                "metrics_port": common.free_port(), "parallel_workers": 0,
                "debug": False, "logging_level": "WARNING"}))
            shutil.copy(model_file, mdir / MODEL / "model.joblib")
            (mdir / MODEL / "model-settings.json").write_text(json.dumps({
                "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}))
            body = json.dumps(common.v2_body(one), separators=(",", ":")).encode()
            ml = subprocess.Popen([str(Path(py).parent / "mlserver"), "start", str(mdir)],
                                  env=dict(os.environ, **common.ONE_THREAD_BLAS),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
            procs.append(ml)
            wait_http(mport, f"/v2/models/{MODEL}/infer", ml, body=body)
            mode = HttpMode(mport, f"/v2/models/{MODEL}/infer", body, json_h)
            for _ in range(50):
                mode.send()
            ms = [server_cpu_per_request(ml.pid, mode, args.mlserver_requests)
                  for _ in range(3)]
            res["mlserver_cpu_ms_per_request"] = statistics.median(ms)
            res["mlserver_cpu_samples"] = ms
            stop(ml)
        else:
            res["mlserver_skipped"] = why
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    ok = verdicts(res)
    res["pass"] = ok
    print("\n".join(markdown(res)))
    (out_dir / "oip.json").write_text(json.dumps(res, indent=2))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


MODES = (("predict", "`POST /predict` (JSON)"),
         ("oip_http_json", "OIP HTTP, JSON tensors"),
         ("oip_http_binary", "OIP HTTP, binary tensors"),
         ("oip_grpc", "OIP gRPC (`raw_input_contents`)"))


def verdicts(res: dict) -> bool:
    """Whether every OIP mode is within 1.3x of /predict and, when MLServer
    ran, at least 100x below it."""
    cpu = res["myelin_cpu_ms_per_request"]
    ml = res.get("mlserver_cpu_ms_per_request")
    ok = True
    for key, _ in MODES[1:]:
        ok &= cpu[key] <= WITHIN_PREDICT * cpu["predict"]
        if ml:
            ok &= ml >= BELOW_MLSERVER * cpu[key]
    return ok


def markdown(res: dict) -> list[str]:
    """The result as Markdown (bench/suite.py puts it in BENCHMARKS.md)."""
    cpu = res["myelin_cpu_ms_per_request"]
    ml = res.get("mlserver_cpu_ms_per_request")
    st = res["settings"]
    L = ["Server CPU per single-row request (the first adult record), one kept-alive "
         f"connection, {st['rounds']} interleaved rounds of {st['requests']} requests per mode, "
         "median round; CPU = time on a CPU of every server thread "
         "(/proc/<pid>/task/<tid>/schedstat) over the round ÷ requests. Clients: Python "
         "`http.client` (HTTP) and `tritonclient.grpc`, on the same machine; their CPU is "
         "not counted. MLServer: the scikit-learn runtime on the same CSV (bench/serve.py's "
         "peer), `/v2/models/adult/infer` with JSON tensors.", "",
         "| mode | server CPU ms / request | × /predict | MLServer ÷ this |",
         "| --- | ---: | ---: | ---: |"]
    for key, label in MODES:
        ratio = cpu[key] / cpu["predict"]
        below = f"{ml / cpu[key]:,.0f}×" if ml else "—"
        L.append(f"| {label} | {cpu[key]:.4f} | {ratio:.2f}× | {below} |")
    if ml:
        L.append(f"| MLServer OIP (scikit-learn runtime) | {ml:.4f} | {ml / cpu['predict']:,.0f}× | |")
    else:
        L.append(f"| MLServer | skipped: {res.get('mlserver_skipped')} | | |")
    rows = res["rows_per_s_256"]
    L += ["", f"- 256-row OIP request with binary tensors: {rows['oip_http_binary']:,.0f} rows/s "
          f"(sequential requests; `/predict` with the same 256 records: {rows['predict']:,.0f} rows/s).",
          f"- Targets: every OIP mode ≤ {WITHIN_PREDICT}× `/predict`'s CPU and ≥ "
          f"{BELOW_MLSERVER:.0f}× below MLServer's: {'met' if verdicts(res) else '**not met**'}.",
          f"- Load average (1/5/15 min) at start: "
          f"{' / '.join(map(str, res['load_average_at_start']))}; date {res['date']}."]
    return L


if __name__ == "__main__":
    sys.exit(main())
