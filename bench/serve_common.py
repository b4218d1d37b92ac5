"""Measurement side of bench/serve.py: constants, /proc CPU and memory helpers,
loopback HTTP, the adult records and their Open Inference Protocol body, the
`Server` under test (spawn, cold start, stop) and the oha runs against it.

Also imported by bench/oip.py and bench/recommend/ (eval_http.py, load.py).
"""

from __future__ import annotations

import csv
import http.client as http_client_module
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
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
