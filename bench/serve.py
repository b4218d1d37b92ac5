#!/usr/bin/env python3
"""Serving benchmark: Myelin `POST /predict` vs a FastAPI + scikit-learn peer.

Run from the repository root:

    python -m pip install -r bench/requirements.txt
    python bench/serve.py --data data --myelin target/release/myelin --out bench/out

What it does (details in bench/README.md):

1. Trains an adult model (target `income`) with `myelin train` into a temporary
   store, and the peer's scikit-learn Pipeline (OneHotEncoder + StandardScaler +
   MLPClassifier([64, 32])) on the same CSV.
2. For every server (Myelin; the FastAPI + uvicorn peer; MLServer if
   installed): spawns it on a free loopback port and times the cold start
   (spawn to the first successful `POST /predict`, polled every 2 ms), reads
   its RSS right after that first prediction, then runs `oha`:
   - saturation: `-z D -c 32` and `-c 64`, bodies of 1 and 256 raw adult
     records; requests/s and server CPU per request (utime + stime of the
     server's process tree from /proc/<pid>/stat, before/after, ÷ 200 answers);
   - steady rate: `-z D -c 32 -q 2000 --latency-correction`, one record:
     achieved rate, p50 / p99 / p99.9;
   - the same at a rate every server sustains (half the FastAPI peer's
     single-row saturation throughput), for a like-for-like latency figure;
   - RSS (VmRSS, VmHWM) after the runs.
3. `--while-training N` (Myelin): submits N long training jobs with
   `POST /train` before a second steady-rate run and reports p99 idle vs while
   training.

Results: a Markdown table on stdout, `<out>/serve.json`, and
`docs/BENCHMARKS-serving.md` (unless --no-docs).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import http.client as http_client_module
import importlib.metadata as md
import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / "peers"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODEL = "adult"
TARGET = "income"
STEADY_CONNS = 32
POLL_INTERVAL = 0.002

TARGETS = {
    "cpu_ms_per_request": 0.05,   # ms of server CPU per single-row request
    "p99_ms_at_2000": 2.0,        # p99 at 2,000 req/s
    "rss_mb": 30.0,               # MB (10^6 bytes)
    "cold_start_s": 0.2,
}

ONE_THREAD_BLAS = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
}


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # Fields after "(comm)"; comm may contain spaces and parentheses.
    return s[s.rindex(")") + 2:].split()


def proc_tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        f = _stat_fields(int(d))
        if f:
            children.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime (clock ticks) of each pid (threads included)."""
    out = {}
    for p in pids:
        f = _stat_fields(p)
        if f:
            out[p] = int(f[11]) + int(f[12])   # fields 14 and 15 of stat(5)
    return out


def mem_status(pid: int) -> dict:
    res = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                    res[k] = int(v.split()[0])
    except OSError:
        pass
    out = {}
    if "VmRSS" in res:
        out["vm_rss_mib"] = res["VmRSS"] / 1024
        out["vm_rss_mb"] = res["VmRSS"] * 1024 / 1e6
    if "VmHWM" in res:
        out["vm_hwm_mib"] = res["VmHWM"] / 1024
        out["vm_hwm_mb"] = res["VmHWM"] * 1024 / 1e6
    if "RssAnon" in res:
        out["rss_anon_mib"] = res["RssAnon"] / 1024
    if "RssFile" in res:
        out["rss_file_mib"] = res["RssFile"] / 1024
    if "Threads" in res:
        out["threads"] = res["Threads"]
    return out


def tree_mem(pid: int) -> dict:
    main = mem_status(pid)
    pids = proc_tree(pid)
    if len(pids) > 1:
        main["processes"] = len(pids)
        main["tree_vm_rss_mib"] = sum(mem_status(p).get("vm_rss_mib", 0) for p in pids)
    return main


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def _http(port, method, path, body=None, headers=None, timeout=30.0):
    conn = http_client_module.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def _typed(v: str):
    try:
        return int(v)
    except ValueError:
        pass
    try:
        x = float(v)
        return x if math.isfinite(x) else v
    except ValueError:
        return v


def read_records(path: Path, n: int, drop: str) -> list[dict]:
    """The first n rows of the CSV as raw JSON records (numbers as numbers)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            row.pop(drop, None)
            out.append({k: _typed(v) for k, v in row.items()})
            if len(out) == n:
                break
    return out


def v2_body(records: list[dict]) -> dict:
    """The same records as an Open Inference Protocol (V2) request, one input
    per column, decoded by MLServer's pandas codec into a DataFrame; the
    requested output is the class probabilities (`predict_proba`)."""
    inputs = []
    for col in records[0]:
        vals = [r[col] for r in records]
        if all(isinstance(v, int) for v in vals):
            dt = "INT64"
        elif all(isinstance(v, (int, float)) for v in vals):
            dt = "FP64"
        else:
            dt, vals = "BYTES", [str(v) for v in vals]
        inputs.append({"name": col, "shape": [len(vals), 1], "datatype": dt, "data": vals})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs,
            "outputs": [{"name": "predict_proba"}]}


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

class Server:
    def __init__(self, key: str, label: str, cmd: list, env: dict, port: int,
                 predict_path: str, bodies: dict[int, bytes], log: Path,
                 cwd: Path = REPO, ready_path: str | None = None):
        self.key, self.label = key, label
        self.cmd = [str(c) for c in cmd]
        self.env_extra = env
        self.port = port
        self.predict_path = predict_path
        self.bodies = bodies
        self.log = log
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.body_files: dict[int, Path] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.predict_path}"

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env_extra.items())
        return (env + " " if env else "") + shlex.join(_show(c) for c in self.cmd)

    def start(self, timeout: float) -> dict:
        env = dict(os.environ)
        env.update(self.env_extra)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log, "wb")
        body = self.bodies[1]
        hdr = {"content-type": "application/json"}
        attempts = 0
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=env, cwd=self.cwd, stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        last_err = None
        while True:
            attempts += 1
            try:
                status, data, _ = _http(self.port, "POST", self.predict_path, body, hdr,
                                        timeout=max(1.0, timeout))
                if status == 200:
                    cold = time.perf_counter() - t0
                    mem = tree_mem(self.proc.pid)
                    return {"cold_start_s": cold, "poll_attempts": attempts,
                            "first_response": data.decode(errors="replace")[:2000],
                            "rss_after_first_predict": mem}
                last_err = f"HTTP {status}: {data[:500].decode(errors='replace')}"
            except (ConnectionError, OSError, http_client_module.HTTPException) as e:
                last_err = repr(e)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} "
                                   f"before answering (see {_show(self.log)}); last: {last_err}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{self.label}: no successful prediction after "
                                   f"{timeout:.0f} s; last: {last_err}")
            time.sleep(POLL_INTERVAL)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def sample_failure(self, rows: int, tries: int = 20) -> dict | None:
        """Send the request until a non-200 answer comes back; return it."""
        for _ in range(tries):
            try:
                status, data, headers = _http(self.port, "POST", self.predict_path,
                                              self.bodies[rows],
                                              {"content-type": "application/json"})
            except (OSError, http_client_module.HTTPException) as e:
                return {"error": repr(e)}
            if status != 200:
                return {"status": status, "body": data.decode(errors="replace")[:2000],
                        "content_type": headers.get("content-type")}
        return None


OHA_SHOWN: dict[str, str] = {}


def _show(c) -> str:
    c = str(c)
    if c == sys.executable:
        return "python"
    if c in OHA_SHOWN:
        return OHA_SHOWN[c]
    if c.startswith("/"):
        for base in (REPO, REPO.resolve()):
            try:
                return str(Path(c).relative_to(base))
            except ValueError:
                pass
    return c


# --------------------------------------------------------------------------
# oha
# --------------------------------------------------------------------------

def run_oha(oha: str, server: Server, rows: int, duration: float, conns: int,
            qps: float | None = None, latency_correction: bool = False,
            record=None) -> dict:
    body_file = server.body_files[rows]
    cmd = [oha, "-z", f"{duration:g}s", "-c", str(conns)]
    if qps:
        cmd += ["-q", f"{qps:g}"]
    if latency_correction:
        cmd += ["--latency-correction"]
    cmd += ["--no-tui", "--output-format", "json", "-m", "POST",
            "-H", "content-type: application/json", "-D", str(body_file), server.url]
    if record is not None:
        record(shlex.join(_show(c) for c in cmd))

    pids = proc_tree(server.proc.pid)
    c0 = cpu_ticks(pids)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    c1 = cpu_ticks(pids)
    # oha's own CPU: the only child of ours that has been waited for since c0.
    if p.returncode != 0:
        raise RuntimeError(f"oha exited {p.returncode}: {err.decode(errors='replace')[-2000:]}")
    o = json.loads(out)
    server_cpu = sum(c1.get(k, v) - v for k, v in c0.items()) / CLK_TCK

    summary = o.get("summary", {})
    codes = {str(k): int(v) for k, v in (o.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (o.get("errorDistribution") or {}).items()}
    ok = codes.get("200", 0)
    non200 = {k: v for k, v in codes.items() if k != "200"}
    elapsed = summary.get("total") or duration
    lat = o.get("latencyPercentiles") or {}

    def ms(key):
        v = lat.get(key)
        return None if v is None else v * 1000.0

    res = {
        "rows_per_request": rows,
        "connections": conns,
        "duration_s": duration,
        "qps": qps,
        "latency_correction": latency_correction,
        "elapsed_s": elapsed,
        "ok_requests": ok,
        "non_200": non200,
        "client_errors": errors,
        "requests_per_s": ok / elapsed if elapsed else None,
        "rows_per_s": ok * rows / elapsed if elapsed else None,
        "server_cpu_s": server_cpu,
        "server_cpu_cores": server_cpu / wall if wall else None,
        "server_cpu_ms_per_request": server_cpu * 1000.0 / ok if ok else None,
        "server_cpu_us_per_row": server_cpu * 1e6 / (ok * rows) if ok else None,
        "p50_ms": ms("p50"), "p90_ms": ms("p90"), "p99_ms": ms("p99"),
        "p999_ms": ms("p99.9"), "max_ms": (summary.get("slowest") or 0) * 1000.0 or None,
        "mean_ms": (summary.get("average") or 0) * 1000.0 or None,
        "oha_requests_per_s": summary.get("requestsPerSec"),
        "oha_success_rate": summary.get("successRate"),
        "load_average_after": loadavg(),
        "rss_after": tree_mem(server.proc.pid),
    }
    if non200:
        res["non_200_sample"] = server.sample_failure(rows)
    return res


def aggregate(rs: list[dict]) -> dict:
    """The run with the median p99 (of an odd count; the upper median otherwise),
    with every run's p50 / p99 / p99.9 attached."""
    ok = [r for r in rs if r.get("p99_ms") is not None] or rs
    med = dict(sorted(ok, key=lambda r: r.get("p99_ms") or 0)[len(ok) // 2])
    med["aggregate_of"] = len(rs)
    for f in ("p50_ms", "p99_ms", "p999_ms", "requests_per_s"):
        med[f + "_all"] = [r.get(f) for r in rs]
    med["non_200"] = {}
    for r in rs:
        for k, v in r["non_200"].items():
            med["non_200"][k] = med["non_200"].get(k, 0) + v
    return med


def oha_line(r: dict) -> str:
    s = (f"{r['requests_per_s']:,.0f} req/s, CPU {r['server_cpu_ms_per_request']:.4f} ms/req"
         if r.get("server_cpu_ms_per_request") is not None else "no successful request")
    if r.get("p99_ms") is not None:
        s += f", p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    if r["non_200"]:
        s += f", NON-200: {r['non_200']}"
    errs = {k: v for k, v in r["client_errors"].items()}
    if errs:
        s += f", client errors: {errs}"
    return s


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="myelin-serve-bench-"))

    def note(self, s: str):
        self.commands.append(s)

    def run(self, cmd, log: Path, env_extra: dict | None = None, timeout=1800,
            python_env: bool = False) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if env_extra:
            env.update(env_extra)
        shown = (" ".join(f"{k}={v}" for k, v in (env_extra or {}).items()) + " "
                 if env_extra else "") + shlex.join(_show(c) for c in cmd)
        self.note(shown)
        log.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, capture_output=True,
                           timeout=timeout)
        log.write_bytes(r.stdout + b"\n--- stderr ---\n" + r.stderr)
        return r


def bench_server(run: Run, srv: Server, cfg: dict) -> dict:
    a = run.args
    res: dict = {"label": srv.label, "start_command": srv.shell(), "runs": {}}
    print(f"\n== {srv.label} ==", flush=True)
    for rows, body in srv.bodies.items():
        bf = run.tmp / f"{srv.key}_body_{rows}.json"
        bf.write_bytes(body)
        srv.body_files[rows] = bf
        res.setdefault("body_bytes", {})[rows] = len(body)
    run.note(srv.shell())
    try:
        cs = srv.start(timeout=cfg.get("start_timeout", 120))
    except RuntimeError as e:
        run.errors.append(f"{srv.label}: {e}")
        print(f"  start FAILED: {e}", flush=True)
        srv.stop()
        res["failed"] = str(e)
        return res
    res.update(cs)
    res["pid_threads_after_first"] = cs["rss_after_first_predict"].get("threads")
    print(f"  cold start {cs['cold_start_s'] * 1000:.1f} ms ({cs['poll_attempts']} polls), "
          f"RSS after first predict {cs['rss_after_first_predict'].get('vm_rss_mib', 0):.1f} MiB",
          flush=True)
    d = cfg["duration"]
    rec = run.note
    try:
        if a.warmup > 0:
            w = run_oha(a.oha, srv, 1, a.warmup, STEADY_CONNS)
            res["warmup"] = w
            print(f"  warm-up {a.warmup:g} s: {oha_line(w)}", flush=True)
        for rows in (1, a.batch_rows):
            for c in a.conns:
                key = f"saturation_rows{rows}_c{c}"
                r = run_oha(a.oha, srv, rows, d, c, record=rec)
                res["runs"][key] = r
                print(f"  saturation {rows:>3} row(s), -c {c}: {oha_line(r)}", flush=True)
        if cfg.get("derive_equal_rate"):
            # Half this server's single-row saturation throughput: a rate every
            # server in the run sustains, for a like-for-like latency figure.
            sat = res["runs"].get(f"saturation_rows1_c{a.conns[0]}", {})
            if sat.get("requests_per_s"):
                cfg["equal_rate"] = max(10, int(round(sat["requests_per_s"] * 0.5, -1)))
                res["equal_rate"] = cfg["equal_rate"]
        # Latency runs, repeated (interleaved) --latency-repeat times; the
        # summary takes the run with the median p99 and lists every p99.
        phases = [("steady", a.rate)]
        if cfg.get("equal_rate"):
            phases.append(("equal_rate", cfg["equal_rate"]))
        lat: dict[str, list] = {name: [] for name, _ in phases}
        reps = max(1, a.latency_repeat)
        for i in range(reps):
            for name, q in phases:
                r = run_oha(a.oha, srv, 1, d, STEADY_CONNS, qps=q, latency_correction=True,
                            record=rec if i == 0 else None)
                lat[name].append(r)
                res["runs"][f"{name} {i + 1}/{reps}"] = r
                print(f"  steady -q {q:g}{' (equal rate)' if name == 'equal_rate' else ''} "
                      f"[{i + 1}/{reps}]: achieved {r['requests_per_s']:,.0f} req/s; "
                      f"{oha_line(r)}", flush=True)
        for name, rs in lat.items():
            res["runs"][name] = aggregate(rs)
        res["rss_after_runs"] = tree_mem(srv.proc.pid)
        print(f"  RSS after runs: VmRSS {res['rss_after_runs'].get('vm_rss_mib', 0):.1f} MiB, "
              f"VmHWM {res['rss_after_runs'].get('vm_hwm_mib', 0):.1f} MiB", flush=True)
        if cfg.get("while_training"):
            res["while_training"] = while_training(run, srv, cfg["while_training"], d)
    except Exception as e:  # noqa: BLE001
        run.errors.append(f"{srv.label}: {type(e).__name__}: {e}")
        print(f"  FAILED: {e}", flush=True)
    finally:
        srv.stop()
        res["exit_code"] = srv.proc.returncode if srv.proc else None
    for key, r in res["runs"].items():
        if r.get("non_200") and not r.get("aggregate_of"):
            run.errors.append(f"{srv.label} {key}: non-200 answers {r['non_200']}; "
                              f"sample: {json.dumps(r.get('non_200_sample'))}")
    return res


def while_training(run: Run, srv: Server, n: int, duration: float) -> dict:
    a = run.args
    csv_body = (Path(a.data) / "adult.csv").read_bytes()
    params = json.dumps({"epochs": a.train_epochs, "early_stopping_patience": None},
                        separators=(",", ":"))
    path = (f"/train?model=bg&target={TARGET}&params=" + urllib.parse.quote(params, safe=""))
    run.note(f"# {n}x: curl -X POST 'http://127.0.0.1:<port>/train?model=bg&target={TARGET}"
             f"&params={params}' -H 'content-type: text/csv' --data-binary @{a.data}/adult.csv")
    jobs = []
    for _ in range(n):
        status, data, _ = _http(srv.port, "POST", path, csv_body, {"content-type": "text/csv"},
                                timeout=120)
        if status != 202:
            raise RuntimeError(f"POST /train answered {status}: {data[:1000].decode(errors='replace')}")
        jobs.append(json.loads(data)["id"])
    # Wait until every job is running.
    t0 = time.perf_counter()
    states = {}
    while time.perf_counter() - t0 < 120:
        states = {j: json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]) for j in jobs}
        if all(s.get("status") == "running" for s in states.values()):
            break
        if any(s.get("status") in ("failed", "succeeded", "cancelled") for s in states.values()):
            raise RuntimeError(f"training job ended early: {json.dumps(states)[:1000]}")
        time.sleep(0.05)
    time.sleep(1.0)
    print(f"  {n} training job(s) running; steady run while training", flush=True)
    r = run_oha(a.oha, srv, 1, duration, STEADY_CONNS, qps=a.rate, latency_correction=True,
                record=run.note)
    r["server_cpu_includes_training"] = True
    after = {j: json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]) for j in jobs}
    still = all(s.get("status") == "running" for s in after.values())
    print(f"  steady -q {a.rate:g} while {n} job(s) train: achieved "
          f"{r['requests_per_s']:,.0f} req/s; {oha_line(r)}; jobs still running at the end: "
          f"{still}", flush=True)
    for j in jobs:
        try:
            _http(srv.port, "DELETE", f"/jobs/{j}")
        except OSError:
            pass
    # Idle again once the jobs are gone: a second idle figure from the same
    # process, to tell the effect of training from drift in the machine's load.
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:
        st = [json.loads(_http(srv.port, "GET", f"/jobs/{j}")[1]).get("status") for j in jobs]
        if not any(x in ("running", "queued") for x in st):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    idle2 = run_oha(a.oha, srv, 1, duration, STEADY_CONNS, qps=a.rate, latency_correction=True,
                    record=run.note)
    print(f"  steady -q {a.rate:g} idle again after the jobs were cancelled: "
          f"{oha_line(idle2)}", flush=True)
    return {"jobs": n, "epochs": a.train_epochs, "run": r, "jobs_running_throughout": still,
            "job_states_after": {j: {k: s.get(k) for k in ("status", "progress", "epoch")
                                     if k in s} for j, s in after.items()},
            "idle_after": idle2}


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "nproc": os.cpu_count()}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
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
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
    except OSError:
        pass
    for dist in ("fastapi", "uvicorn", "starlette", "pydantic", "scikit-learn", "numpy",
                 "pandas", "uvloop", "httptools"):
        try:
            info[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                            capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        info["git_src_dirty"] = bool(dirty)
    except OSError:
        pass
    return info


def find_mlserver(arg: str | None) -> tuple[str | None, str]:
    """Python interpreter with mlserver + mlserver-sklearn, or (None, reason)."""
    cands = [arg] if arg else [sys.executable,
                               str(REPO / "bench/out/mlserver-venv/bin/python")]
    for py in cands:
        if not py or not Path(py).exists():
            continue
        r = subprocess.run([py, "-c", "import mlserver, mlserver_sklearn, importlib.metadata as m;"
                            "print(', '.join(d + ' ' + m.version(d) for d in ('mlserver', "
                            "'mlserver-sklearn', 'fastapi', 'uvicorn', 'uvloop', 'scikit-learn', "
                            "'pandas')))"], capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip()
    return None, ("mlserver + mlserver-sklearn not importable"
                  + (f" with {arg}" if arg else " (pass --mlserver-python)"))


def main() -> int:
    ap = argparse.ArgumentParser(description="Myelin serving benchmark (see bench/README.md)")
    ap.add_argument("--data", default="data", help="directory with adult.csv")
    ap.add_argument("--myelin", default="target/release/myelin")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--duration", type=float, default=15, help="seconds per Myelin oha run")
    ap.add_argument("--peer-duration", type=float, default=10, help="seconds per peer oha run")
    ap.add_argument("--warmup", type=float, default=2, help="unrecorded warm-up seconds")
    ap.add_argument("--conns", type=lambda s: [int(x) for x in s.split(",")], default=[32, 64],
                    help="connection counts for the saturation runs (default 32,64)")
    ap.add_argument("--rate", type=float, default=2000, help="steady-phase request rate")
    ap.add_argument("--latency-repeat", type=int, default=3,
                    help="repetitions of each steady-rate run (median p99 reported)")
    ap.add_argument("--batch-rows", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the served model")
    ap.add_argument("--peers", default="fastapi,mlserver",
                    help="comma list of fastapi, mlserver; 'none' for Myelin only")
    ap.add_argument("--mlserver-python", default=None,
                    help="python of an environment with mlserver + mlserver-sklearn "
                         "(default: this one, else bench/out/mlserver-venv)")
    ap.add_argument("--while-training", type=int, default=0, metavar="N",
                    help="also measure the steady phase while N training jobs run")
    ap.add_argument("--train-epochs", type=int, default=200,
                    help="epochs of each background training job")
    ap.add_argument("--oha", default=shutil.which("oha") or str(Path.home() / ".cargo/bin/oha"))
    ap.add_argument("--docs", default="docs/BENCHMARKS-serving.md")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary model stores")
    args = ap.parse_args()

    myelin = Path(args.myelin).resolve()
    data = Path(args.data)
    if not myelin.exists():
        raise SystemExit(f"{myelin} not found (cargo build --release)")
    if not (data / "adult.csv").exists():
        raise SystemExit(f"{data / 'adult.csv'} not found: scripts/fetch_datasets.py --out {data}")
    if not Path(args.oha).exists():
        raise SystemExit(f"oha not found at {args.oha} (cargo install oha, or --oha PATH)")
    OHA_SHOWN[args.oha] = "oha"
    peers = [] if args.peers == "none" else [p.strip() for p in args.peers.split(",") if p.strip()]

    run = Run(args)
    run.out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    res: dict = {
        "date": started.isoformat(),
        "command": shlex.join(["python", "bench/serve.py"] + [_show(a) for a in sys.argv[1:]]),
        "machine": machine_info(),
        "load_average_at_start": loadavg(),
        "settings": {"duration_s": args.duration, "peer_duration_s": args.peer_duration,
                     "warmup_s": args.warmup, "conns": args.conns, "rate": args.rate,
                     "batch_rows": args.batch_rows, "model_epochs": args.epochs,
                     "latency_repeat": args.latency_repeat,
                     "while_training": args.while_training, "train_epochs": args.train_epochs},
        "targets": TARGETS,
        "servers": {},
        "skipped": {},
    }
    try:
        res["machine"]["myelin_version"] = subprocess.run(
            [str(myelin), "--version"], capture_output=True, text=True).stdout.strip()
        res["machine"]["myelin_binary_mtime"] = _dt.datetime.fromtimestamp(
            myelin.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat()
        res["machine"]["oha"] = subprocess.run([args.oha, "--version"], capture_output=True,
                                               text=True).stdout.strip()
    except OSError:
        pass
    print(f"load average at start: {res['load_average_at_start']}", flush=True)

    records = read_records(data / "adult.csv", args.batch_rows, TARGET)
    bodies = {n: json.dumps({"model": MODEL, "instances": records[:n]},
                            separators=(",", ":")).encode() for n in (1, args.batch_rows)}
    res["sample_body"] = bodies[1].decode()

    # 1. Models.
    store = run.tmp / "myelin-store"
    print("training the Myelin model ...", flush=True)
    r = run.run([myelin, "train", "--data", data / "adult.csv", "--target", TARGET,
                 "--name", MODEL, "--models", store, "--param", f"epochs={args.epochs}"],
                run.logs / "serve_myelin_train.log")
    if r.returncode != 0:
        raise SystemExit(f"myelin train failed:\n{r.stderr.decode(errors='replace')[-2000:]}")

    equal_rate = None
    order = []
    if "fastapi" in peers:
        missing = [m for m in ("fastapi", "uvicorn", "sklearn", "pandas", "joblib")
                   if importlib.util.find_spec(m) is None]
        if missing:
            res["skipped"]["fastapi"] = f"missing {', '.join(missing)} (pip install -r bench/requirements.txt)"
        else:
            order.append("fastapi")
    mlserver_py = None
    if "mlserver" in peers:
        mlserver_py, why = find_mlserver(args.mlserver_python)
        if mlserver_py:
            res["machine"]["mlserver_env"] = why
            res["machine"]["mlserver_python"] = _show(mlserver_py)
            order.append("mlserver")
        else:
            res["skipped"]["mlserver"] = why

    # 2. Peers first (their saturation figure sets the equal-rate run), then Myelin.
    for key in order:
        py = sys.executable if key == "fastapi" else mlserver_py
        model_file = run.tmp / f"{key}-model.joblib"
        print(f"training the {key} peer model ...", flush=True)
        r = run.run([py, PEERS / "train_sklearn.py", "--data", data / "adult.csv",
                     "--target", TARGET, "--out", model_file, "--max-iter", str(args.epochs),
                     "--rows", f"1,{args.batch_rows}"],
                    run.logs / f"serve_{key}_train.log")
        if r.returncode != 0:
            msg = f"{key} peer training failed: {r.stderr.decode(errors='replace')[-1500:]}"
            run.errors.append(msg)
            res["skipped"][key] = msg
            continue
        try:
            peer_train = json.loads(r.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            peer_train = {}
        port = free_port()
        if key == "fastapi":
            srv = Server("fastapi", "FastAPI + uvicorn (scikit-learn)",
                         [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir",
                          PEERS, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                          "--log-level", "warning"],
                         {"PEER_MODEL_PATH": str(model_file), "PEER_MODEL_NAME": MODEL,
                          **ONE_THREAD_BLAS},
                         port, "/predict", bodies, run.logs / "serve_fastapi.log")
        else:
            mdir = run.tmp / "mlserver"
            mdir.mkdir(exist_ok=True)
            (mdir / "settings.json").write_text(json.dumps({
                "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "parallel_workers": 0,
                "debug": False, "logging_level": "WARNING"}, indent=2))
            mm = mdir / MODEL
            mm.mkdir(exist_ok=True)
            shutil.copy(model_file, mm / "model.joblib")
            (mm / "model-settings.json").write_text(json.dumps({
                "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}, indent=2))
            run.note(f"# {mdir}/settings.json: "
                     + (mdir / "settings.json").read_text().replace("\n", " "))
            run.note(f"# {mm}/model-settings.json: "
                     + (mm / "model-settings.json").read_text().replace("\n", " "))
            vb = {n: json.dumps(v2_body(records[:n]), separators=(",", ":")).encode()
                  for n in (1, args.batch_rows)}
            srv = Server("mlserver", "MLServer (scikit-learn runtime)",
                         [Path(py).parent / "mlserver", "start", mdir],
                         dict(ONE_THREAD_BLAS), port, f"/v2/models/{MODEL}/infer", vb,
                         run.logs / "serve_mlserver.log")
        cfg = {"duration": args.peer_duration, "equal_rate": equal_rate,
               "derive_equal_rate": key == "fastapi" and equal_rate is None}
        out = bench_server(run, srv, cfg)
        if key == "mlserver":
            out["sample_v2_body"] = srv.bodies[1].decode()
        out["model_training"] = peer_train
        res["servers"][key] = out
        if out.get("equal_rate"):
            equal_rate = out["equal_rate"]

    # 3. Myelin.
    port = free_port()
    env = {"MYELIN_STORE__PATH": str(store), "MYELIN_SERVER__HOST": "127.0.0.1",
           "MYELIN_SERVER__PORT": str(port), "MYELIN_GRPC__PORT": str(free_port()),
           "MYELIN_LOG__LEVEL": "warn"}
    if args.while_training:
        env["MYELIN_JOBS__WORKERS"] = str(max(1, args.while_training))
    srv = Server("myelin", "Myelin", [myelin, "serve"], env, port, "/predict", bodies,
                 run.logs / "serve_myelin.log")
    cfg = {"duration": args.duration, "equal_rate": equal_rate,
           "while_training": args.while_training}
    res["servers"]["myelin"] = bench_server(run, srv, cfg)
    res["equal_rate"] = equal_rate

    res["load_average_at_end"] = loadavg()
    res["finished"] = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    res["commands"] = run.commands
    res["errors"] = run.errors
    res["ratios"] = ratios(res)
    (run.out / "serve.json").write_text(json.dumps(res, indent=2, default=str))
    print("\n" + summary_table(res))
    print()
    for line in ratio_lines(res):
        print(f"- {line}")
    print(f"\nload average at end: {res['load_average_at_end']}")
    print(f"wrote {_show(run.out / 'serve.json')}")
    if not args.no_docs:
        dp = Path(args.docs)
        if not dp.is_absolute():
            dp = REPO / dp
        dp.parent.mkdir(parents=True, exist_ok=True)
        dp.write_text(render_doc(res))
        print(f"wrote {_show(dp)}")
    if not args.keep:
        shutil.rmtree(run.tmp, ignore_errors=True)
    if run.errors:
        print(f"\n{len(run.errors)} problem(s):", file=sys.stderr)
        for e in run.errors:
            print(f"- {e}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

ORDER = ("myelin", "fastapi", "mlserver")


def _f(x, fmt="{:.2f}"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return fmt.format(x)


def _run(res, key, name):
    return (res["servers"].get(key) or {}).get("runs", {}).get(name) or {}


def summary_table(res: dict) -> str:
    b = res["settings"]["batch_rows"]
    rate = res["settings"]["rate"]
    eq = res.get("equal_rate")
    cols = [k for k in ORDER if k in res["servers"] and not res["servers"][k].get("failed")]
    if not cols:
        return "_no server answered_"
    label = {k: res["servers"][k]["label"] for k in cols}

    def row(name, fn, target=""):
        return "| " + name + " | " + " | ".join(fn(k) for k in cols) + f" | {target} |"

    def sat(k, rows, c, field, fmt):
        return _f(_run(res, k, f"saturation_rows{rows}_c{c}").get(field), fmt)

    lines = ["| | " + " | ".join(label[k] for k in cols) + " | target (Myelin) |",
             "| --- | " + " | ".join("---:" for _ in cols) + " | --- |"]
    lines.append(row("cold start: spawn → first 200 (ms)",
                     lambda k: _f((res["servers"][k].get("cold_start_s") or 0) * 1000, "{:.0f}"),
                     f"< {TARGETS['cold_start_s'] * 1000:.0f} ms"))
    for c in res["settings"]["conns"]:
        lines.append(row(f"1 row, -c {c}: req/s", lambda k, c=c: sat(k, 1, c, "requests_per_s", "{:,.0f}")))
        lines.append(row(f"1 row, -c {c}: server CPU ms / request",
                         lambda k, c=c: sat(k, 1, c, "server_cpu_ms_per_request", "{:.4f}"),
                         f"≤ {TARGETS['cpu_ms_per_request']} ms"))
    for c in res["settings"]["conns"]:
        lines.append(row(f"{b} rows, -c {c}: req/s (rows/s)",
                         lambda k, c=c: sat(k, b, c, "requests_per_s", "{:,.0f}") + " ("
                         + sat(k, b, c, "rows_per_s", "{:,.0f}") + ")"))
        lines.append(row(f"{b} rows, -c {c}: server CPU ms / request (µs / row)",
                         lambda k, c=c: sat(k, b, c, "server_cpu_ms_per_request", "{:.3f}") + " ("
                         + sat(k, b, c, "server_cpu_us_per_row", "{:.2f}") + ")"))
    reps = res["settings"].get("latency_repeat", 1)
    rep_note = f", median-p99 run of {reps}" if reps > 1 else ""

    def p99s(k, name):
        return ", ".join(_f(x) for x in _run(res, k, name).get("p99_ms_all", []))
    st = lambda k, f, fmt="{:.2f}": _f(_run(res, k, "steady").get(f), fmt)  # noqa: E731
    lines.append(row(f"-q {rate:g} -c {STEADY_CONNS}: achieved req/s",
                     lambda k: st(k, "requests_per_s", "{:,.0f}")))
    lines.append(row(f"-q {rate:g}: p50 / p99 / p99.9 (ms){rep_note}",
                     lambda k: f"{st(k, 'p50_ms')} / {st(k, 'p99_ms')} / {st(k, 'p999_ms')}",
                     f"p99 < {TARGETS['p99_ms_at_2000']:g} ms"))
    if reps > 1:
        lines.append(row(f"-q {rate:g}: p99 of each of the {reps} runs (ms)",
                         lambda k: p99s(k, "steady")))
    if eq:
        er = lambda k, f, fmt="{:.2f}": _f(_run(res, k, "equal_rate").get(f), fmt)  # noqa: E731
        lines.append(row(f"-q {eq} (all sustain it): achieved req/s",
                         lambda k: er(k, "requests_per_s", "{:,.0f}")))
        lines.append(row(f"-q {eq}: p50 / p99 / p99.9 (ms){rep_note}",
                         lambda k: f"{er(k, 'p50_ms')} / {er(k, 'p99_ms')} / {er(k, 'p999_ms')}"))
        if reps > 1:
            lines.append(row(f"-q {eq}: p99 of each of the {reps} runs (ms)",
                             lambda k: p99s(k, "equal_rate")))
    wt = (res["servers"].get("myelin") or {}).get("while_training")
    if wt:
        r = wt["run"]
        lines.append(row(f"-q {rate:g} while {wt['jobs']} training job(s) run: p50 / p99 / p99.9 (ms)",
                         lambda k: (f"{_f(r.get('p50_ms'))} / {_f(r.get('p99_ms'))} / "
                                    f"{_f(r.get('p999_ms'))} ({_f(r.get('requests_per_s'), '{:,.0f}')} req/s)")
                         if k == "myelin" else "—"))

    def mem(k, when, f):
        m = res["servers"][k].get(when) or {}
        return _f(m.get(f), "{:.1f}")
    lines.append(row("RSS after first prediction: VmRSS / VmHWM (MiB)",
                     lambda k: f"{mem(k, 'rss_after_first_predict', 'vm_rss_mib')} / "
                               f"{mem(k, 'rss_after_first_predict', 'vm_hwm_mib')}"))
    lines.append(row("RSS after the runs: VmRSS / VmHWM (MiB)",
                     lambda k: f"{mem(k, 'rss_after_runs', 'vm_rss_mib')} / "
                               f"{mem(k, 'rss_after_runs', 'vm_hwm_mib')}",
                     f"< {TARGETS['rss_mb']:g} MB ({TARGETS['rss_mb'] * 1e6 / 2**20:.1f} MiB)"))
    return "\n".join(lines)


def ratios(res: dict) -> dict:
    out = {}
    my = res["servers"].get("myelin") or {}
    c0 = res["settings"]["conns"][0]
    b = res["settings"]["batch_rows"]
    for peer in ("fastapi", "mlserver"):
        p = res["servers"].get(peer)
        if not p or p.get("failed") or my.get("failed"):
            continue
        r = {}

        def div(a, bb):
            return a / bb if a is not None and bb else None
        for rows in (1, b):
            k = f"saturation_rows{rows}_c{c0}"
            r[f"cpu_per_request_rows{rows}"] = div(
                _run(res, "myelin", k).get("server_cpu_ms_per_request"),
                _run(res, peer, k).get("server_cpu_ms_per_request"))
            r[f"requests_per_s_rows{rows}"] = div(
                _run(res, "myelin", k).get("requests_per_s"),
                _run(res, peer, k).get("requests_per_s"))
        r["p99_equal_rate"] = div(_run(res, "myelin", "equal_rate").get("p99_ms"),
                                  _run(res, peer, "equal_rate").get("p99_ms"))
        r["p99_at_rate"] = div(_run(res, "myelin", "steady").get("p99_ms"),
                               _run(res, peer, "steady").get("p99_ms"))
        r["rss_after_runs"] = div((my.get("rss_after_runs") or {}).get("vm_rss_mib"),
                                  (p.get("rss_after_runs") or {}).get("vm_rss_mib"))
        r["cold_start"] = div(my.get("cold_start_s"), p.get("cold_start_s"))
        out[peer] = r
    return out


def _frac(x):
    """0.0123 -> '1/81'; 3.2 -> '3.2×'."""
    if x is None:
        return "—"
    if x < 1:
        return f"1/{1 / x:,.0f}" if 1 / x >= 10 else f"1/{1 / x:.1f}"
    return f"{x:,.1f}×"


def ratio_lines(res: dict) -> list[str]:
    out = []
    c0 = res["settings"]["conns"][0]
    b = res["settings"]["batch_rows"]
    for peer, r in res.get("ratios", {}).items():
        lbl = res["servers"][peer]["label"]
        my1 = _run(res, "myelin", f"saturation_rows1_c{c0}")
        pe1 = _run(res, peer, f"saturation_rows1_c{c0}")
        myb = _run(res, "myelin", f"saturation_rows{b}_c{c0}")
        peb = _run(res, peer, f"saturation_rows{b}_c{c0}")
        if r.get("cpu_per_request_rows1"):
            out.append(f"server CPU per single-row request: Myelin "
                       f"{my1['server_cpu_ms_per_request']:.4f} ms = "
                       f"{_frac(r['cpu_per_request_rows1'])} of {lbl} "
                       f"({pe1['server_cpu_ms_per_request']:.3f} ms)")
        if r.get(f"cpu_per_request_rows{b}"):
            out.append(f"server CPU per {b}-row request: Myelin "
                       f"{myb['server_cpu_ms_per_request']:.3f} ms = "
                       f"{_frac(r[f'cpu_per_request_rows{b}'])} of {lbl} "
                       f"({peb['server_cpu_ms_per_request']:.3f} ms)")
        if r.get("requests_per_s_rows1"):
            out.append(f"saturation throughput, 1 row, -c {c0}: Myelin "
                       f"{my1['requests_per_s']:,.0f} req/s = {_frac(r['requests_per_s_rows1'])} "
                       f"{lbl} ({pe1['requests_per_s']:,.0f} req/s)")
        if r.get(f"requests_per_s_rows{b}"):
            out.append(f"saturation throughput, {b} rows, -c {c0}: Myelin "
                       f"{myb['requests_per_s']:,.0f} req/s = "
                       f"{_frac(r[f'requests_per_s_rows{b}'])} {lbl} "
                       f"({peb['requests_per_s']:,.0f} req/s)")
        if r.get("p99_equal_rate"):
            eq = res.get("equal_rate")
            out.append(f"p99 at {eq} req/s: Myelin "
                       f"{_run(res, 'myelin', 'equal_rate')['p99_ms']:.2f} ms = "
                       f"{_frac(r['p99_equal_rate'])} of {lbl} "
                       f"({_run(res, peer, 'equal_rate')['p99_ms']:.2f} ms)")
        if r.get("rss_after_runs"):
            out.append(f"RSS after the runs: Myelin = {_frac(r['rss_after_runs'])} of {lbl}")
        if r.get("cold_start"):
            out.append(f"cold start: Myelin = {_frac(r['cold_start'])} of {lbl}")
    return out


def target_lines(res: dict) -> list[str]:
    my = res["servers"].get("myelin") or {}
    if my.get("failed"):
        return ["Myelin did not start: no figures."]
    out = []

    def verdict(ok):
        return "met" if ok else "not met"
    cpu = [(c, _run(res, "myelin", f"saturation_rows1_c{c}").get("server_cpu_ms_per_request"))
           for c in res["settings"]["conns"]]
    cpu = [(c, x) for c, x in cpu if x is not None]
    if cpu:
        worst = max(x for _, x in cpu)
        out.append(f"server CPU per single-row request ≤ {TARGETS['cpu_ms_per_request']} ms: "
                   + ", ".join(f"{x:.4f} ms at -c {c}" for c, x in cpu)
                   + f" — {verdict(worst <= TARGETS['cpu_ms_per_request'])}")
    st = _run(res, "myelin", "steady")
    if st.get("p99_ms") is not None:
        out.append(f"p99 < {TARGETS['p99_ms_at_2000']:g} ms at {res['settings']['rate']:g} req/s: "
                   f"{st['p99_ms']:.2f} ms at an achieved {st['requests_per_s']:,.0f} req/s — "
                   f"{verdict(st['p99_ms'] < TARGETS['p99_ms_at_2000'])}")
    m = my.get("rss_after_runs") or {}
    if m.get("vm_rss_mb") is not None:
        out.append(f"RSS < {TARGETS['rss_mb']:g} MB: VmRSS {m['vm_rss_mb']:.1f} MB "
                   f"({m['vm_rss_mib']:.1f} MiB), VmHWM {m['vm_hwm_mb']:.1f} MB after the runs — "
                   f"{verdict(m['vm_rss_mb'] < TARGETS['rss_mb'])} for VmRSS, "
                   f"{verdict(m['vm_hwm_mb'] < TARGETS['rss_mb'])} for VmHWM")
    m1 = my.get("rss_after_first_predict") or {}
    if m1.get("vm_rss_mb") is not None:
        out.append(f"RSS < {TARGETS['rss_mb']:g} MB right after the first prediction: VmRSS "
                   f"{m1['vm_rss_mb']:.1f} MB ({m1['vm_rss_mib']:.1f} MiB) — "
                   f"{verdict(m1['vm_rss_mb'] < TARGETS['rss_mb'])}")
    if my.get("cold_start_s") is not None:
        out.append(f"cold start < {TARGETS['cold_start_s']:g} s: {my['cold_start_s'] * 1000:.0f} ms — "
                   f"{verdict(my['cold_start_s'] < TARGETS['cold_start_s'])}")
    return out


def detail_table(res: dict) -> str:
    lines = ["| server | run | rows | -c | -q | req/s | rows/s | server CPU ms/req | "
             "server CPU (cores) | p50 ms | p99 ms | p99.9 ms | max ms | 200 | non-200 | "
             "client errors | VmRSS / VmHWM after (MiB) | load avg after |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
             "---: | ---: | --- | --- | ---: | ---: |"]
    for k in ORDER:
        s = res["servers"].get(k)
        if not s:
            continue
        runs = dict(s.get("runs", {}))
        if s.get("while_training"):
            runs[f"steady while {s['while_training']['jobs']} training job(s)"] = s["while_training"]["run"]
            if s["while_training"].get("idle_after"):
                runs["steady, idle again after training"] = s["while_training"]["idle_after"]
        for name, r in runs.items():
            if not isinstance(r, dict) or r.get("aggregate_of"):
                continue
            training = r.get("server_cpu_includes_training")
            lines.append(
                f"| {s['label']} | {name} | {r['rows_per_request']} | {r['connections']} | "
                f"{_f(r.get('qps'), '{:g}')} | {_f(r.get('requests_per_s'), '{:,.0f}')} | "
                f"{_f(r.get('rows_per_s'), '{:,.0f}')} | "
                + ("— (training) | " if training else
                   f"{_f(r.get('server_cpu_ms_per_request'), '{:.4f}')} | ")
                + f"{_f(r.get('server_cpu_cores'), '{:.2f}')} | {_f(r.get('p50_ms'))} | "
                f"{_f(r.get('p99_ms'))} | {_f(r.get('p999_ms'))} | {_f(r.get('max_ms'), '{:.1f}')} | "
                f"{r['ok_requests']:,} | {json.dumps(r['non_200']) if r['non_200'] else '0'} | "
                f"{'; '.join(f'{e}: {n}' for e, n in r['client_errors'].items()) or '0'} | "
                f"{_f((r.get('rss_after') or {}).get('vm_rss_mib'), '{:.1f}')} / "
                f"{_f((r.get('rss_after') or {}).get('vm_hwm_mib'), '{:.1f}')} | "
                f"{_f((r.get('load_average_after') or [None])[0])} |")
    return "\n".join(lines)


def render_doc(res: dict) -> str:
    mi = res["machine"]
    cores = mi.get("cpus") or mi.get("nproc")
    la0 = " / ".join(str(x) for x in res["load_average_at_start"])
    la1 = " / ".join(str(x) for x in res["load_average_at_end"])
    st = res["settings"]
    sw = ", ".join(f"{k} {mi[k]}" for k in ("fastapi", "uvicorn", "starlette", "pydantic",
                                             "scikit-learn", "numpy", "pandas") if mi.get(k))
    lines = [
        "# Myelin serving benchmarks",
        "",
        "Generated by `bench/serve.py`; do not edit by hand — rerun the harness "
        "(see [bench/README.md](../bench/README.md)).",
        "",
        f"- Date (UTC): {res['date']}",
        f"- Machine: {mi.get('cpu_model', 'unknown CPU')}, {cores} CPU(s)"
        + (f" ({mi.get('cores_per_socket')} core(s) per socket, "
           f"{mi.get('threads_per_core')} thread(s) per core)" if mi.get("cores_per_socket") else "")
        + (f", {mi['hypervisor']} guest" if mi.get("hypervisor") else ""),
        f"- Load average (1/5/15 min) at start: {la0}; at end: {la1}. Server, load "
        "generator and anything else running share these CPUs; a load average above ~0.5 "
        "at the start means other work was running.",
        f"- Software: {mi.get('myelin_version', 'myelin')} (commit {mi.get('git_commit', '?')}"
        + (", uncommitted changes under src/" if mi.get("git_src_dirty") else "")
        + f"; binary built {mi.get('myelin_binary_mtime', '?')}), {mi.get('oha', 'oha')}, "
        f"Python {mi.get('python')}, {sw}"
        + "."
        + (f" MLServer environment ({mi.get('mlserver_python')}): {mi['mlserver_env']}."
           if mi.get("mlserver_env") else ""),
        f"- Model: adult (48,842 rows, 14 raw fields, target `income`), {st['model_epochs']} "
        "epochs — quality is irrelevant here. Myelin: `myelin train` defaults otherwise "
        "(hidden layers [128, 64]). Peers: scikit-learn Pipeline(ColumnTransformer("
        "StandardScaler on the numeric fields, OneHotEncoder on the text fields) + "
        f"MLPClassifier((64, 32), max_iter={st['model_epochs']})).",
        f"- Request: `POST /predict` with `{{\"model\": \"adult\", \"instances\": [...]}}`, "
        f"1 raw record ({res['servers'].get('myelin', {}).get('body_bytes', {}).get(1, '?')} "
        f"bytes) or {st['batch_rows']} records; every server answers a label and the class "
        "probabilities for each instance.",
        f"- Runs: oha, keep-alive connections, {st['duration_s']:g} s per Myelin run and "
        f"{st['peer_duration_s']:g} s per peer run, after an unrecorded {st['warmup_s']:g} s "
        "warm-up. Server CPU = utime + stime of the server's process tree "
        "(/proc/<pid>/stat, before and after the run) ÷ answers with status 200. "
        "Latency runs use `--latency-correction` (measured from the scheduled send time, "
        f"so queueing is not hidden) and are repeated {st.get('latency_repeat', 1)} times, "
        "interleaved; the summary shows the run with the median p99 and lists every p99.",
        "",
        "Sample single-row body:",
        "",
        "```json",
        res.get("sample_body", ""),
        "```",
        "",
        "## Summary",
        "",
        summary_table(res),
        "",
    ]
    rl = ratio_lines(res)
    if rl:
        lines += ["Ratios (same run, -c {} for saturation):".format(st["conns"][0]), ""]
        lines += [f"- {x}" for x in rl] + [""]
    tl = target_lines(res)
    if tl:
        lines += ["Targets (Myelin; stated, not enforced):", ""] + [f"- {x}" for x in tl] + [""]
    wt = (res["servers"].get("myelin") or {}).get("while_training")
    if wt:
        idle = _run(res, "myelin", "steady")
        r = wt["run"]
        lines += [
            "## Latency while training",
            "",
            f"{wt['jobs']} training job(s) (`POST /train`, adult CSV body, "
            f"`params={{\"epochs\":{wt['epochs']},\"early_stopping_patience\":null}}`, "
            f"`MYELIN_JOBS__WORKERS={max(1, wt['jobs'])}`) were running during the second "
            f"steady run (jobs still running at its end: {wt['jobs_running_throughout']}; "
            "they were cancelled afterwards).",
            "",
            "| Myelin, -q {:g} -c {} | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms |".format(
                st["rate"], STEADY_CONNS),
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| idle (median-p99 run of {idle.get('aggregate_of', 1)}) | "
            f"{_f(idle.get('requests_per_s'), '{:,.0f}')} | {_f(idle.get('p50_ms'))} | "
            f"{_f(idle.get('p99_ms'))} | {_f(idle.get('p999_ms'))} | {_f(idle.get('max_ms'), '{:.1f}')} |",
            f"| while {wt['jobs']} job(s) train | {_f(r.get('requests_per_s'), '{:,.0f}')} | "
            f"{_f(r.get('p50_ms'))} | {_f(r.get('p99_ms'))} | {_f(r.get('p999_ms'))} | "
            f"{_f(r.get('max_ms'), '{:.1f}')} |",
        ]
        i2 = wt.get("idle_after")
        if i2:
            lines.append(
                f"| idle again, after the jobs were cancelled | "
                f"{_f(i2.get('requests_per_s'), '{:,.0f}')} | {_f(i2.get('p50_ms'))} | "
                f"{_f(i2.get('p99_ms'))} | {_f(i2.get('p999_ms'))} | {_f(i2.get('max_ms'), '{:.1f}')} |")
        lines += ["", "The 1-minute load average after each of these runs is in the table "
                  "below; on a shared machine the idle figures before and after bracket the "
                  "drift in background load.", ""]
    lines += ["## Every run", "", detail_table(res), ""]
    notes = [
        "oha runs on the same machine as the server and competes with it for the CPUs; "
        "saturation req/s is therefore a floor for a dedicated server, while CPU per "
        "request (the server's own CPU time) is largely unaffected by the client.",
        "“client errors” are oha's own errors; with `-z`, requests still in flight when "
        "the time is up are counted there as aborted (at most one per connection) and "
        "are not failures of the server.",
        "The FastAPI peer runs one uvicorn worker (one process), the endpoint is a plain "
        "`def` run on FastAPI's thread pool, BLAS is limited to one thread "
        f"(OPENBLAS_NUM_THREADS=1 …); uvicorn's HTTP parser and event loop are "
        f"{'httptools + uvloop' if mi.get('httptools') and mi.get('uvloop') else 'h11 + asyncio (uvicorn without the [standard] extras)'}.",
    ]
    fa = res["servers"].get("fastapi") or {}
    pc = (fa.get("model_training") or {}).get("predict_cpu_ms")
    if pc:
        notes.append("The scikit-learn Pipeline's own cost, in-process without HTTP "
                     "(`DataFrame.from_records` + `predict_proba`, best of 5 × 20 calls): "
                     + ", ".join(f"{v:.3f} ms CPU for {k} record(s)" for k, v in pc.items())
                     + _share(pc.get("1"), _run(res, "fastapi", f"saturation_rows1_c{st['conns'][0]}"))
                     + ".")
    if "mlserver" in res["servers"]:
        notes.append("MLServer speaks the Open Inference Protocol (V2): the same records are "
                     "sent as one input per column with the pandas codec "
                     "(`\"parameters\": {\"content_type\": \"pd\"}`) to "
                     "`/v2/models/adult/infer`, the runtime calls `predict_proba`; "
                     "`parallel_workers` is 0 so inference runs in the server process. "
                     "MLServer pins its own FastAPI/Starlette versions, so it runs from its own "
                     "virtual environment (`python -m venv bench/out/mlserver-venv && "
                     "bench/out/mlserver-venv/bin/pip install mlserver mlserver-sklearn`; "
                     "a clean install from PyPI).")
        ms = res["servers"].get("mlserver") or {}
        if ms.get("sample_v2_body"):
            notes.append("MLServer single-row body: `" + ms["sample_v2_body"] + "`")
    for k, why in res.get("skipped", {}).items():
        notes.append(f"{k} peer not run: {why}")
    lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## Commands",
        "",
        "```sh",
        "python scripts/fetch_datasets.py --out data",
        "cargo build --release",
        "python -m pip install -r bench/requirements.txt",
        res["command"],
        "```",
        "",
        "What the harness ran (temporary paths shortened to `$TMP`; ports are free "
        "loopback ports picked at run time):",
        "",
        "```sh",
        *[_tmp(c) for c in res["commands"]],
        "```",
        "",
    ]
    if res.get("errors"):
        lines += ["## Problems in this run", ""]
        for e in res["errors"]:
            lines += ["```", _tmp(e.strip()), "```", ""]
    return "\n".join(lines)


def _share(model_ms, sat: dict) -> str:
    srv_ms = sat.get("server_cpu_ms_per_request")
    if not model_ms or not srv_ms:
        return ""
    return (f"; the single-record figure is {model_ms / srv_ms:.0%} of the FastAPI "
            f"server's CPU per single-row request ({srv_ms:.3f} ms)")


def _tmp(s: str) -> str:
    t = tempfile.gettempdir()
    import re
    return re.sub(re.escape(t) + r"/myelin-serve-bench-[^/ ']+", "$TMP", s)


if __name__ == "__main__":
    sys.exit(main())
