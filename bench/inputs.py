#!/usr/bin/env python3
"""Text and image benchmarks: Myelin against scikit-learn on the same split.

Subcommands:

    text     Women's Clothing E-Commerce Reviews (data/womens_clothing_reviews.csv,
             from scripts/fetch_datasets.py): predict `Recommended IND` from the
             review text alone, and from the text plus age and department.
             Myelin (CLI) vs TfidfVectorizer + LogisticRegression and
             TfidfVectorizer + MLPClassifier; 80/20 stratified split, seed 42.
    digits   scikit-learn's bundled 8x8 digits (1,797 images), 80/20 split with
             seed 42. Myelin trains on base64 PNGs; the peer is StandardScaler +
             MLPClassifier (defaults, random_state 42).
    memory   Peak RSS of `myelin train` on synthetic text with a 50,000-term
             vocabulary, against the size of the dense rows x vocabulary matrix
             and against scikit-learn (TfidfVectorizer + LogisticRegression).

Every figure comes from the same run; training time is wall time of the whole
fit (reading, featurizing and training for Myelin; vectorizing and fitting for
scikit-learn). Usage:

    python bench/inputs.py text   --myelin target/release/myelin --data data
    python bench/inputs.py digits --myelin target/release/myelin
    python bench/inputs.py memory --myelin target/release/myelin
    python bench/inputs.py export-digits --data data   # CSVs and PNGs for the README walk-through
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

SEED = 42


def run_myelin_train(myelin: str, models: Path, name: str, train_csv: Path, target: str,
                     extra: list[str], timed: bool = False) -> tuple[float, dict, int | None]:
    """Trains with the CLI; returns (wall seconds, report, peak RSS bytes or None)."""
    report = models / f"{name}-report.json"
    cmd = [myelin, "train", "--data", str(train_csv), "--target", target, "--name", name,
           "--models", str(models), "--task", "classification", "--quiet",
           "--report", str(report), *extra]
    if timed:
        cmd = ["/usr/bin/time", "-v", *cmd]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"myelin train failed:\n{done.stdout}\n{done.stderr}")
    rss = peak_rss(done.stderr) if timed else None
    return wall, json.loads(report.read_text()), rss


def peak_rss(time_output: str) -> int:
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_output)
    if not match:
        sys.exit(f"no peak RSS in /usr/bin/time output:\n{time_output}")
    return int(match.group(1)) * 1024


def myelin_accuracy(myelin: str, models: Path, name: str, test_csv: Path) -> float:
    done = subprocess.run([myelin, "eval", "--name", name, "--models", str(models),
                           "--data", str(test_csv), "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["accuracy"]


def table(rows: list[tuple]) -> None:
    print(f"{'model':<44} {'accuracy':>9} {'train s':>9}")
    for name, acc, secs in rows:
        print(f"{name:<44} {acc:>9.4f} {secs:>9.2f}")


# ---------------------------------------------------------------- text

TEXT_OPTIONS = {"ngram_range": [1, 2], "min_df": 2, "max_features": 20000, "sublinear_tf": True}
TEXT_PARAMS = ["--param", "hidden_layers=[64]", "--param", "epochs=8", "--param", "dropout=0.2",
               "--param", "batch_size=64", "--param", "learning_rate=0.001",
               "--param", "early_stopping_patience=2"]


def text_bench(args: argparse.Namespace) -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    source = Path(args.data) / "womens_clothing_reviews.csv"
    if not source.exists():
        sys.exit(f"{source} is missing: run python scripts/fetch_datasets.py --out {args.data}")
    raw = pd.read_csv(source)
    raw = raw.dropna(subset=["Review Text"])
    df = pd.DataFrame({
        "review": raw["Review Text"].astype(str),
        "age": raw["Age"],
        "department": raw["Department Name"].fillna("unknown"),
        "recommended": raw["Recommended IND"].map({1: "yes", 0: "no"}),
    })
    train, test = train_test_split(df, test_size=0.2, random_state=SEED,
                                   stratify=df["recommended"])
    print(f"reviews: {len(train)} train / {len(test)} test rows, "
          f"majority-class test accuracy {max(test['recommended'].value_counts()) / len(test):.4f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for variant, columns in [("text", ["review"]), ("text+age+department",
                                                         ["review", "age", "department"])]:
            train_csv, test_csv = tmp / f"{variant}-train.csv", tmp / f"{variant}-test.csv"
            train[columns + ["recommended"]].to_csv(train_csv, index=False)
            test[columns + ["recommended"]].to_csv(test_csv, index=False)
            name = re.sub(r"[^a-z0-9]+", "-", variant)
            wall, report, _ = run_myelin_train(
                args.myelin, tmp, name, train_csv, "recommended",
                ["--column", "review=text", "--pipeline", f"text={json.dumps(TEXT_OPTIONS)}",
                 *TEXT_PARAMS])
            rows.append((f"myelin mlp[64] ({variant})",
                         myelin_accuracy(args.myelin, tmp, name, test_csv), wall))

            def featurizer():
                tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=20000,
                                        sublinear_tf=True)
                if columns == ["review"]:
                    return ColumnTransformer([("text", tfidf, "review")])
                return ColumnTransformer([
                    ("text", tfidf, "review"),
                    ("age", StandardScaler(), ["age"]),
                    ("department", OneHotEncoder(handle_unknown="ignore"), ["department"]),
                ])

            peers = [
                ("sklearn tfidf+logreg", LogisticRegression(max_iter=1000)),
                ("sklearn tfidf+mlp(64)", MLPClassifier(hidden_layer_sizes=(64,), max_iter=8,
                                                        early_stopping=True, random_state=SEED)),
            ]
            for label, estimator in peers:
                model = make_pipeline(featurizer(), estimator)
                start = time.perf_counter()
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(train[columns], train["recommended"])
                secs = time.perf_counter() - start
                acc = (model.predict(test[columns]) == test["recommended"]).mean()
                rows.append((f"{label} ({variant})", float(acc), secs))
    table(rows)


# ---------------------------------------------------------------- digits

def png_base64(pixels: list[int], width: int, height: int) -> str:
    """A grayscale 8-bit PNG of `pixels` (row-major), base64-encoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


DIGIT_PARAMS = ["--param", "hidden_layers=[256,128]", "--param", "epochs=60",
                "--param", "batch_size=32", "--param", "learning_rate=0.001",
                "--param", "dropout=0.1", "--param", "validation_fraction=0.1",
                "--param", "early_stopping_patience=10"]


def digits_bench(args: argparse.Namespace) -> None:
    import csv
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=SEED)
    print(f"digits: {len(x_train)} train / {len(x_test)} test images (8x8, 0..16)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for split, xs, ys in [("train", x_train, y_train), ("test", x_test, y_test)]:
            with open(tmp / f"digits-{split}.csv", "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["image", "digit"])
                for x, y in zip(xs, ys):
                    pixels = [round(v * 255 / 16) for v in x]
                    out.writerow([png_base64(pixels, 8, 8), f"d{y}"])
        wall, report, _ = run_myelin_train(
            args.myelin, tmp, "digits", tmp / "digits-train.csv", "digit",
            ["--pipeline", 'image={"width": 8, "height": 8}', *DIGIT_PARAMS])
        rows.append(("myelin mlp[256,128] on PNGs",
                     myelin_accuracy(args.myelin, tmp, "digits", tmp / "digits-test.csv"), wall))
    model = make_pipeline(StandardScaler(), MLPClassifier(random_state=SEED))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
    secs = time.perf_counter() - start
    rows.append(("sklearn scaler+mlp(100) defaults", float(model.score(x_test, y_test)), secs))
    table(rows)


# ---------------------------------------------------------------- memory

VOCABULARY = 50_000


def synthetic_text(rows: int, seed: int) -> tuple[list[str], list[str]]:
    """Documents of 40 tokens over a 60,000-token vocabulary (heavy-tailed), labelled by
    whether they contain more tokens from the first half of the vocabulary."""
    import random
    rng = random.Random(seed)
    docs, labels = [], []
    for _ in range(rows):
        ids = [min(int(rng.paretovariate(0.6)) * 7 + rng.randrange(7), 59_999)
               if rng.random() < 0.5 else rng.randrange(60_000) for _ in range(40)]
        docs.append(" ".join(f"t{i:05d}" for i in ids))
        labels.append("a" if sum(i < 30_000 for i in ids) > 20 else "b")
    return docs, labels


def memory_bench(args: argparse.Namespace) -> None:
    import csv
    rows = args.rows
    docs, labels = synthetic_text(rows, SEED)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "text.csv"
        with open(data, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["doc", "label"])
            out.writerows(zip(docs, labels))
        options = {"ngram_range": [1, 1], "min_df": 1, "max_features": VOCABULARY}
        wall, report, rss = run_myelin_train(
            args.myelin, tmp, "wide", data, "label",
            ["--column", "doc=text", "--pipeline", f"text={json.dumps(options)}",
             "--param", "hidden_layers=[64]", "--param", "epochs=2",
             "--param", "batch_size=256", "--param", "early_stopping_patience=null"],
            timed=True)
        card = json.loads((tmp / "wide" / "1" / "model.json").read_text())
        inputs = card["architecture"]["inputs"] if "architecture" in card else None
        peer = subprocess.run(["/usr/bin/time", "-v", sys.executable, __file__, "_sklearn-memory",
                               str(data)], capture_output=True, text=True)
        if peer.returncode != 0:
            sys.exit(peer.stderr)
        peer_rss = peak_rss(peer.stderr)
    train_rows = report["timing"]["train_rows"]
    dense = train_rows * VOCABULARY * 4
    print(f"synthetic text: {rows} rows, network inputs {inputs}, "
          f"{train_rows} training rows, fit {wall:.1f} s")
    print(f"dense rows x vocabulary f32 matrix of the training rows: {dense / 2**20:10.1f} MiB")
    print(f"myelin train peak RSS:                                 {rss / 2**20:10.1f} MiB "
          f"({rss / dense:.3f} x the dense matrix)")
    print(f"sklearn tfidf+logreg peak RSS (same CSV):              {peer_rss / 2**20:10.1f} MiB "
          f"(myelin / sklearn = {rss / peer_rss:.2f})")


def sklearn_memory_peer(path: str) -> None:
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    df = pd.read_csv(path)
    x = TfidfVectorizer(max_features=VOCABULARY, sublinear_tf=True).fit_transform(df["doc"])
    LogisticRegression(max_iter=200).fit(x, df["label"])


def export_digits(args: argparse.Namespace) -> None:
    """Writes the digits split as CSVs of base64 PNGs plus one PNG file per test digit."""
    import csv

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=SEED)
    out_dir = Path(args.data) / "digits"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for split, xs, ys in [("train", x_train, y_train), ("test", x_test, y_test)]:
        with open(out_dir / f"{split}.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["image", "digit"])
            for x, y in zip(xs, ys):
                encoded = png_base64([round(v * 255 / 16) for v in x], 8, 8)
                out.writerow([encoded, int(y)])
                if split == "test" and y not in written:
                    written.add(y)
                    (out_dir / f"test-{y}.png").write_bytes(base64.b64decode(encoded))
    print(f"wrote {out_dir}/train.csv, {out_dir}/test.csv and {out_dir}/test-<digit>.png")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_sklearn-memory":
        sklearn_memory_peer(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", choices=["text", "digits", "memory", "export-digits"])
    parser.add_argument("--myelin", default="target/release/myelin")
    parser.add_argument("--data", default="data")
    parser.add_argument("--rows", type=int, default=20_000, help="memory: synthetic rows")
    args = parser.parse_args()
    {"text": text_bench, "digits": digits_bench, "memory": memory_bench,
     "export-digits": export_digits}[args.bench](args)


if __name__ == "__main__":
    main()
