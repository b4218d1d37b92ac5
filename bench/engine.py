#!/usr/bin/env python3
"""Engine benchmark: Myelin vs PyTorch vs scikit-learn on one CPU core.

Run from the repository root:

    python scripts/fetch_datasets.py --out data
    cargo build --release
    python bench/engine.py --data data --myelin target/release/myelin

What it does, for adult (classification, target `income`) and
california_housing (regression, target `MedHouseVal`):

1. Splits each dataset 80/20 with scikit-learn's
   `train_test_split(df, test_size=0.2, random_state=42)` (df = `pandas.read_csv`
   of the source) and writes `<out>/<ds>_train.csv` / `<ds>_test.csv` in the
   order it returns, with the source's columns and the source's text unchanged,
   so every system trains and tests on identical rows.
2. Quality: Myelin with its default parameters (`myelin train` + `myelin eval`),
   PyTorch and scikit-learn with a matched MLP ([64, 32] ReLU, Adam lr 1e-3,
   batch 256, 20 epochs), all scored on the same test rows.
3. Speed (adult): the same [64, 32] / Adam / batch 256 / 20 epoch configuration
   in all three systems, one thread each; CPU-seconds per epoch (process CPU
   time around the fit loop only), rows/s, and test accuracy + ROC AUC.
4. Peak RSS of every system (each runs as its own subprocess; the figure is the
   child's ru_maxrss from wait4).
5. A single-core GEMM reference: numpy `A @ B` GFLOP/s with one BLAS thread.

Results: a Markdown table on stdout, `<out>/engine.json`, and (for a full run,
or with --docs) a regenerated `docs/BENCHMARKS-engine.md`.

`--only peers` runs PyTorch + scikit-learn (+ GEMM) without the Myelin binary;
`--only myelin` runs just Myelin.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from engine_common import (
    DATASETS, EPOCHS, MYELIN_SPEED_PARAMS, REPO, SEED, SPLIT_DESC, _repo_relative, make_split,
    run_measured, tail, worker_main)
from engine_report import gemm_table, quality_table, ratio_lines, render_doc, speed_table


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.models = self.out / "models"
        self.commands: list[str] = []
        self.errors: list[str] = []

    def rel(self, p) -> str:
        p = Path(p)
        try:
            return str(p.resolve().relative_to(REPO))
        except ValueError:
            return str(p)

    def note_cmd(self, cmd):
        def show(c):
            if isinstance(c, Path):
                return self.rel(c)
            return "python" if c == sys.executable else str(c)
        self.commands.append(shlex.join(show(c) for c in cmd))

    # ---- peers -------------------------------------------------------------
    def peer(self, kind: str, ds: str, train: Path, test: Path, repeat: int) -> dict | None:
        spec = DATASETS[ds]
        runs = []
        for r in range(repeat):
            result = self.out / "runs" / f"{kind}_{ds}_{r}.json"
            result.parent.mkdir(parents=True, exist_ok=True)
            result.unlink(missing_ok=True)
            cmd = [sys.executable, Path(__file__).resolve(), "_worker", kind,
                   "--train", train, "--test", test, "--target", spec["target"],
                   "--task", spec["task"], "--epochs", str(self.args.epochs),
                   "--result", result]
            if spec.get("positive"):
                cmd += ["--positive", spec["positive"]]
            if r == 0:
                self.note_cmd(cmd)
            log = self.logs / f"{kind}_{ds}_{r}.log"
            m = run_measured(cmd, log_path=log)
            if m["rc"] != 0 or not result.exists():
                self.errors.append(f"{kind} {ds}: exit {m['rc']}\n{tail(log)}")
                print(f"  {kind:8} {ds}: FAILED (see {self.rel(log)})", flush=True)
                return None
            res = json.loads(result.read_text())
            res["process"] = m
            runs.append(res)
            print(f"  {kind:8} {ds} run {r + 1}/{repeat}: "
                  f"{res['fit_cpu_seconds'] / res['epochs']:.3f} CPU-s/epoch, "
                  f"RSS {m['peak_rss_mib']:.0f} MiB, {fmt_metrics(res['metrics'])}",
                  flush=True)
        return summarize(runs)

    # ---- myelin ------------------------------------------------------------
    def myelin(self, ds: str, name: str, train: Path, test: Path,
               params: list[str], repeat: int) -> dict | None:
        spec = DATASETS[ds]
        exe = Path(self.args.myelin)
        runs = []
        for r in range(repeat):
            report = self.out / "runs" / f"myelin_{name}_{r}.json"
            report.parent.mkdir(parents=True, exist_ok=True)
            report.unlink(missing_ok=True)
            cmd = [exe, "train", "--data", train, "--target", spec["target"],
                   "--name", name, "--models", self.models, "--report", report]
            for p in params:
                if p.startswith("pipeline."):
                    cmd += ["--pipeline", p[len("pipeline."):]]
                else:
                    cmd += ["--param", p]
            if r == 0:
                self.note_cmd(cmd)
            log = self.logs / f"myelin_{name}_train_{r}.log"
            m = run_measured(cmd, log_path=log)
            if m["rc"] != 0 or not report.exists():
                self.errors.append(f"myelin train {name}: exit {m['rc']}\n{tail(log)}")
                print(f"  myelin   {name}: train FAILED (see {self.rel(log)})", flush=True)
                return None
            rep = json.loads(report.read_text())
            timing = rep.get("timing") or {}
            res = {
                "system": "myelin",
                "name": name,
                "params": params,
                "report_version": rep.get("version"),
                "train_metrics": rep.get("metrics"),
                "timing": timing,
                "epochs": timing.get("epochs") or len(rep.get("history") or []) or None,
                "train_rows": timing.get("train_rows"),
                "fit_cpu_seconds": timing.get("fit_cpu_seconds"),
                "fit_wall_seconds": timing.get("fit_wall_seconds"),
                "process": m,
            }
            runs.append(res)
        best = summarize(runs)
        # Evaluate the (last) trained model on the shared test split.
        ecmd = [exe, "eval", "--name", name, "--models", self.models,
                "--data", test, "--json"]
        self.note_cmd(ecmd)
        elog = self.logs / f"myelin_{name}_eval.log"
        eout = self.logs / f"myelin_{name}_eval.json"
        em = run_measured(ecmd, log_path=elog, stdout_path=eout)
        try:
            best["metrics"] = parse_json_stdout(eout.read_text())
        except (OSError, ValueError) as e:
            self.errors.append(f"myelin eval {name}: exit {em['rc']} ({e})\n{tail(elog)}")
            best["metrics"] = {}
        best["eval_process"] = em
        if em["rc"] != 0:
            self.errors.append(f"myelin eval {name}: exit {em['rc']}\n{tail(elog)}")
        cpe = best.get("cpu_seconds_per_epoch")
        print(f"  myelin   {name}: "
              + (f"{cpe:.3f} CPU-s/epoch, " if cpe else "")
              + f"RSS {best['peak_rss_mib']:.0f} MiB, {fmt_metrics(best['metrics'])}",
              flush=True)
        return best


def parse_json_stdout(text: str) -> dict:
    text = text.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        # Tolerate log lines around the JSON object.
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise ValueError("no JSON object in eval output")
        obj = json.loads(text[start:end + 1])
    if isinstance(obj, dict) and isinstance(obj.get("metrics"), dict):
        obj = obj["metrics"]
    return obj


def summarize(runs: list[dict]) -> dict:
    """Best-of-N timing (least disturbed by other load), max RSS over runs."""
    def cpe(r):
        c, e = r.get("fit_cpu_seconds"), r.get("epochs")
        return c / e if c is not None and e else math.inf

    best = dict(min(runs, key=cpe))
    e = best.get("epochs")
    n = best.get("train_rows")
    if best.get("fit_cpu_seconds") is not None and e:
        best["cpu_seconds_per_epoch"] = best["fit_cpu_seconds"] / e
        if n:
            best["rows_per_cpu_second"] = n * e / best["fit_cpu_seconds"]
    if best.get("fit_wall_seconds") and e and n:
        best["rows_per_wall_second"] = n * e / best["fit_wall_seconds"]
    best["repeats"] = len(runs)
    best["cpu_seconds_per_epoch_all"] = [cpe(r) for r in runs]
    if len(runs) > 1:
        best["cpu_seconds_per_epoch_median"] = statistics.median(
            best["cpu_seconds_per_epoch_all"])
    best["peak_rss_mib"] = max(r["process"]["peak_rss_mib"] for r in runs)
    return best


def fmt_metrics(m: dict | None) -> str:
    if not m:
        return "no metrics"
    keys = [k for k in ("accuracy", "roc_auc", "log_loss", "rmse", "mae", "r2") if k in m]
    return ", ".join(f"{k} {m[k]:.4f}" for k in keys if isinstance(m[k], (int, float)))


# --------------------------------------------------------------------------
# Machine info
# --------------------------------------------------------------------------

def machine_info(myelin: Path | None) -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
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
            elif k == "Socket(s)":
                info["sockets"] = int(v)
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
    except OSError:
        pass
    info["nproc"] = os.cpu_count()
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        flags = open("/proc/cpuinfo").read()
        info["simd"] = [f for f in ("avx2", "fma", "avx512f") if f" {f}" in flags]
    except OSError:
        pass
    for mod in ("numpy", "pandas", "sklearn", "torch"):
        try:
            import importlib.metadata as md
            dist = {"sklearn": "scikit-learn"}.get(mod, mod)
            info[mod] = md.version(dist)
        except Exception:  # noqa: BLE001
            pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
            capture_output=True, text=True).stdout.strip() or None
    except OSError:
        pass
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        info["git_src_dirty"] = bool(dirty)
    except OSError:
        pass
    if myelin and myelin.exists():
        info["myelin_binary_mtime"] = _dt.datetime.fromtimestamp(
            myelin.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0).isoformat()
        try:
            v = subprocess.run([str(myelin), "--version"], capture_output=True,
                               text=True, timeout=30).stdout.strip()
            info["myelin_version"] = v or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return info


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        return worker_main(sys.argv[2:])

    ap = argparse.ArgumentParser(description="Myelin engine benchmark (see bench/README.md)")
    ap.add_argument("--data", default="data", help="directory with adult.csv and "
                    "california_housing.csv (scripts/fetch_datasets.py)")
    ap.add_argument("--myelin", default="target/release/myelin", help="Myelin binary")
    ap.add_argument("--out", default="bench/out", help="output directory")
    ap.add_argument("--only", choices=["all", "peers", "myelin"], default="all",
                    help="run only the peers (PyTorch, scikit-learn, GEMM) or only Myelin")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed repetitions of each speed run (best is reported)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--docs", default=None,
                    help="Markdown file to regenerate (default: docs/BENCHMARKS-engine.md "
                         "for --only all; not written otherwise)")
    ap.add_argument("--no-docs", action="store_true", help="do not write the Markdown doc")
    args = ap.parse_args()

    b = Bench(args)
    b.out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    myelin = Path(args.myelin)
    run_myelin = args.only in ("all", "myelin")
    run_peers = args.only in ("all", "peers")
    if run_myelin and not myelin.exists():
        raise SystemExit(f"Myelin binary {myelin} not found "
                         "(cargo build --release, or use --only peers)")
    if run_myelin and b.models.exists():
        # Start from an empty model store so `eval` scores the model trained here.
        import shutil
        shutil.rmtree(b.models)
    if run_peers:
        # find_spec only: importing torch here would inflate the harness's RSS.
        import importlib.util
        missing = [m for m in ("torch", "sklearn", "pandas", "threadpoolctl")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise SystemExit(f"missing {', '.join(missing)}: "
                             "pip install -r bench/requirements.txt")

    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    res = {
        "date": started.isoformat(),
        "command": shlex.join(["python", "bench/engine.py"]
                             + [_repo_relative(a) for a in sys.argv[1:]]),
        "only": args.only,
        "epochs": args.epochs,
        "repeat": args.repeat,
        "seed": SEED,
        "machine": machine_info(myelin if run_myelin else None),
        "splits": {},
        "quality": {},
        "speed": {},
        "gemm": None,
    }

    splits = {}
    for ds in DATASETS:
        src = data / f"{ds}.csv"
        if not src.exists():
            raise SystemExit(f"{src} not found: run scripts/fetch_datasets.py --out {data}")
        tr, te, ntr, nte = make_split(src, b.out, ds)
        splits[ds] = (tr, te)
        res["splits"][ds] = {"train": b.rel(tr), "test": b.rel(te),
                             "train_rows": ntr, "test_rows": nte, "method": SPLIT_DESC}
        print(f"split {ds}: {ntr} train / {nte} test rows -> {b.rel(tr)}, {b.rel(te)}")
    res["adult_train_rows"] = res["splits"]["adult"]["train_rows"]

    # Speed + adult quality (matched configuration).
    print(f"\nadult, matched configuration ({args.repeat} repeats):", flush=True)
    tr, te = splits["adult"]
    if run_myelin:
        params = [f"epochs={args.epochs}" if p.startswith("epochs=") else p
                  for p in MYELIN_SPEED_PARAMS]
        r = b.myelin("adult", "adult-speed", tr, te, params, args.repeat)
        res["speed"]["myelin"] = r
        res["quality"].setdefault("adult", {})["myelin_matched"] = r
    if run_peers:
        for kind, key in (("torch", "pytorch"), ("sklearn", "sklearn")):
            r = b.peer(kind, "adult", tr, te, args.repeat)
            res["speed"][key] = r
            res["quality"].setdefault("adult", {})[key] = r
            if r and key == "pytorch":
                res["adult_features"] = r.get("features")

    # California: peers with the matched configuration (one run each).
    tr, te = splits["california_housing"]
    if run_peers:
        print("\ncalifornia_housing, matched configuration:", flush=True)
        for kind, key in (("torch", "pytorch"), ("sklearn", "sklearn")):
            r = b.peer(kind, "california_housing", tr, te, 1)
            res["quality"].setdefault("california_housing", {})[key] = r

    # Myelin default parameters on both datasets.
    if run_myelin:
        print("\nMyelin, default parameters:", flush=True)
        for ds, (tr, te) in splits.items():
            r = b.myelin(ds, f"{ds}-default", tr, te, [], 1)
            res["quality"].setdefault(ds, {})["myelin"] = r

    if run_peers:
        print("\nGEMM reference (numpy, 1 thread):", flush=True)
        gres = b.out / "runs" / "gemm.json"
        gcmd = [sys.executable, Path(__file__).resolve(), "_worker", "gemm",
                "--result", gres]
        b.note_cmd(gcmd)
        m = run_measured(gcmd, log_path=b.logs / "gemm.log")
        if m["rc"] == 0 and gres.exists():
            res["gemm"] = json.loads(gres.read_text())
        else:
            b.errors.append(f"gemm: exit {m['rc']}\n{tail(b.logs / 'gemm.log')}")

    res["commands"] = b.commands
    res["errors"] = b.errors
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    res["finished"] = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()

    (b.out / "engine.json").write_text(json.dumps(res, indent=2, default=str))

    print("\n## Training speed — adult, matched configuration\n")
    print(speed_table(res["speed"]))
    for x in ratio_lines(res["speed"], res["quality"]):
        print(f"- {x}")
    print("\n## Model quality (test split)\n")
    print(quality_table(res["quality"]))
    print("\n## GEMM reference\n")
    print(gemm_table(res["gemm"]))
    print(f"\nwrote {b.rel(b.out / 'engine.json')}")

    docs = args.docs or ("docs/BENCHMARKS-engine.md" if args.only == "all" else None)
    if docs and not args.no_docs:
        dp = Path(docs)
        if not dp.is_absolute():
            dp = REPO / dp
        dp.parent.mkdir(parents=True, exist_ok=True)
        dp.write_text(render_doc(res))
        print(f"wrote {b.rel(dp)}")
    if b.errors:
        print(f"\n{len(b.errors)} failure(s):", file=sys.stderr)
        for e in b.errors:
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
