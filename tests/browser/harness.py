"""Starting target/debug/myelin on a free loopback port with a temporary
store, launching Debian's headless Chromium, and logging every request the
browser makes."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real binary on loopback; `env` adds MYELIN_* settings."""

    def __init__(self, binary=None, env=None):
        self.binary = Path(binary or os.environ.get("DASHBOARD_BINARY", ROOT / "target/debug/myelin"))
        self.store = tempfile.TemporaryDirectory(prefix="myelin-ui-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = None
        full = dict(os.environ)
        full.update({
            "MYELIN_SERVER__HOST": "127.0.0.1",
            "MYELIN_SERVER__PORT": str(self.port),
            "MYELIN_GRPC__PORT": "0",
            "MYELIN_STORE__PATH": self.store.name,
            "MYELIN_LOG__LEVEL": "warn",
            # Training at normal priority: in the idle class it can starve on a busy machine.
            "MYELIN_JOBS__TRAINING_NICE": "0",
        })
        full.update(env or {})
        self.log = open(Path(self.store.name) / "server.log", "wb")
        self.process = subprocess.Popen([str(self.binary), "serve"], env=full, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"myelin did not start: {Path(self.store.name, 'server.log').read_text()}")
                time.sleep(0.1)

    def call(self, method, path, body=None, key=None):
        """JSON call; returns (status, parsed body or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        key = key or self.key
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                raw = res.read()
                return res.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def ok(self, method, path, body=None, expect=200):
        status, answer = self.call(method, path, body)
        assert status == expect, f"{method} {path}: {status} {answer}"
        return answer

    def wait_for_job(self, job_id, timeout=180):
        deadline = time.time() + timeout
        while True:
            job = self.ok("GET", f"/jobs/{job_id}")
            if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
                return job
            assert time.time() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.2)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        self.store.cleanup()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class RequestLog:
    """Every URL a page requested."""

    def __init__(self, page):
        self.urls = []
        page.on("request", lambda request: self.urls.append(request.url))

    def foreign(self, base):
        return [u for u in self.urls if not (u.startswith(base + "/") or u == base or u.startswith(("data:", "blob:")))]


def churn_rows(n, seed=1):
    """Deterministic churn-like rows: churn depends on tenure, plan and autopay."""
    state = seed
    rows = []
    plans = ["basic", "plus", "pro"]
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        tenure = state % 72
        plan = plans[(state >> 8) % 3]
        autopay = (state >> 16) % 2 == 0
        monthly = round(20 + ((state >> 24) % 8000) / 100, 2)
        churned = "yes" if (tenure < 12 and plan == "basic") or (not autopay and tenure < 24) else "no"
        rows.append({"customer_id": f"c{len(rows)}", "tenure": tenure, "plan": plan, "monthly": monthly,
                     "autopay": "true" if autopay else "false", "churned": churned})
    return rows


def to_csv(rows):
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def interaction_rows():
    """60 users in 4 clusters, each user with 6 of their cluster's 10 items."""
    rows = []
    for u in range(60):
        cluster = u % 4
        for j in range(6):
            item = cluster * 10 + (u * 7 + j * 3) % 10
            rows.append({"user_id": f"u{u}", "item_id": f"i{item}"})
    return rows


def item_attributes():
    return [{"item_id": f"i{i}", "genre": ["drama", "comedy", "news", "sport"][i // 10]} for i in range(40)]


def png(width, height, pixels):
    """A grayscale PNG of `pixels` (rows of 0..255 ints)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def image_rows(n):
    """Rows of an 8×8 PNG (`image`, base64), a `note` and a `shade` label:
    light images are bright on the left half, dark ones on the right."""
    import base64
    rows = []
    words = ["bright", "left", "glow", "dim", "right", "shadow"]
    for i in range(n):
        light = i % 2 == 0
        pixels = [[(200 if (x < 4) == light else 40) + (i * 7 + x * 3 + y) % 20 for x in range(8)] for y in range(8)]
        note = " ".join(words[(i + k) % 3 + (0 if light else 3)] for k in range(3))
        rows.append({"image": base64.b64encode(png(8, 8, pixels)).decode(), "note": note,
                     "shade": "light" if light else "dark"})
    return rows
