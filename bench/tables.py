#!/usr/bin/env python3
"""Myelin defaults vs scikit-learn on public tables, on fresh 80/20 splits.

For every table, in the same run and on the same split (stratified for
classification, seeded by --seed):
  - Myelin: `myelin train` through the CLI with default parameters on the
    training rows, then `myelin eval` on the held-out rows;
  - HistGradientBoostingClassifier / Regressor with defaults (categorical
    columns as pandas categories, handled natively);
  - MLPClassifier / MLPRegressor with defaults after median imputation,
    standard scaling and one-hot encoding (regression targets standardized).
Reports accuracy and ROC AUC (binary) or RMSE on the held-out rows and the
training CPU seconds of each (Myelin: the CLI process's CPU time).

Tables: the sklearn-bundled breast_cancer, diabetes, wine and iris (written
out by this script), and from --data (scripts/fetch_datasets.py): adult,
california_housing, ecoli.

Usage:
    python bench/tables.py --myelin target/release/myelin --data data \\
        [--tables adult,ecoli] [--seed 0] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn import datasets as skd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# name -> (loader, target, task)
BUNDLED = {
    "breast_cancer": (skd.load_breast_cancer, "classification"),
    "wine": (skd.load_wine, "classification"),
    "iris": (skd.load_iris, "classification"),
    "diabetes": (skd.load_diabetes, "regression"),
}
FILES = {
    "adult": ("adult.csv", "income", "classification", []),
    "california_housing": ("california_housing.csv", "MedHouseVal", "regression", []),
    "ecoli": ("ecoli.csv", "class", "classification", ["SequenceName"]),
}
ALL = ["breast_cancer", "wine", "iris", "diabetes", "ecoli", "adult", "california_housing"]


def load(name: str, data_dir: str):
    """(frame, target, task, ignored columns)."""
    if name in BUNDLED:
        loader, task = BUNDLED[name]
        bunch = loader(as_frame=True)
        frame = bunch.frame.copy()
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        if task == "classification":
            frame["target"] = [str(bunch.target_names[t]) for t in bunch.target]
        return frame, "target", task, []
    file, target, task, ignore = FILES[name]
    frame = pd.read_csv(os.path.join(data_dir, file))
    return frame, target, task, ignore


def split(frame, target, task, seed):
    strat = frame[target] if task == "classification" else None
    return train_test_split(frame, test_size=0.2, random_state=seed, stratify=strat)


def features(frame, target, ignore):
    x = frame.drop(columns=[target] + ignore)
    cats = [c for c in x.columns if x[c].dtype == object or str(x[c].dtype) in ("str", "string")]
    return x, cats


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_myelin(binary, train, test, target, task, ignore, workdir, extra=()):
    train_csv = os.path.join(workdir, "train.csv")
    test_csv = os.path.join(workdir, "test.csv")
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    models = os.path.join(workdir, "models")
    env = dict(os.environ, MYELIN_GRPC__PORT="0")
    cmd = [binary, "train", "--data", train_csv, "--target", target, "--name", "bench",
           "--models", models, "--quiet", "--task", task,
           "--report", os.path.join(workdir, "report.json")]
    for column in ignore:
        cmd += ["--ignore", column]
    cmd += list(extra)
    before = children_cpu()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    cpu = children_cpu() - before
    out = subprocess.run([binary, "eval", "--name", "bench", "--models", models, "--data",
                          test_csv, "--json"], check=True, env=env, capture_output=True,
                         text=True).stdout
    metrics = json.loads(out)
    with open(os.path.join(workdir, "report.json")) as f:
        report = json.load(f)
    result = {"cpu_s": cpu, "epochs": report["timing"]["epochs"],
              "evaluated_on": report["metrics"].get("evaluated_on")}
    if task == "classification":
        result["accuracy"] = metrics["accuracy"]
        if metrics.get("roc_auc") is not None:
            result["roc_auc"] = metrics["roc_auc"]
    else:
        result["rmse"] = metrics["rmse"]
    return result


def score(task, model, x_test, y_test):
    if task == "classification":
        out = {"accuracy": float(accuracy_score(y_test, model.predict(x_test)))}
        classes = list(model.classes_)
        if len(classes) == 2:
            proba = model.predict_proba(x_test)[:, 1]
            out["roc_auc"] = float(roc_auc_score(y_test == classes[1], proba))
        return out
    pred = model.predict(x_test)
    return {"rmse": float(np.sqrt(mean_squared_error(y_test, pred)))}


def timed_fit(model, x, y):
    start = time.process_time()
    model.fit(x, y)
    return time.process_time() - start


def run_hgb(train, test, target, task, ignore, seed):
    x_train, cats = features(train, target, ignore)
    x_test, _ = features(test, target, ignore)
    for c in cats:
        kinds = pd.CategoricalDtype(sorted(set(x_train[c].dropna().astype(str))))
        x_train[c] = x_train[c].astype(str).astype(kinds)
        x_test[c] = x_test[c].astype(str).astype(kinds)
    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    model = cls(random_state=seed, categorical_features="from_dtype")
    cpu = timed_fit(model, x_train, train[target])
    return dict(score(task, model, x_test, test[target]), cpu_s=cpu)


def run_mlp(train, test, target, task, ignore, seed):
    x_train, cats = features(train, target, ignore)
    x_test, _ = features(test, target, ignore)
    nums = [c for c in x_train.columns if c not in cats]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), cats),
    ])
    if task == "classification":
        model = make_pipeline(prep, MLPClassifier(random_state=seed))
    else:
        model = TransformedTargetRegressor(
            regressor=make_pipeline(prep, MLPRegressor(random_state=seed)),
            transformer=StandardScaler())
    cpu = timed_fit(model, x_train, train[target])
    return dict(score(task, model, x_test, test[target]), cpu_s=cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--myelin", default="target/release/myelin")
    ap.add_argument("--data", default="data")
    ap.add_argument("--tables", default=",".join(ALL))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--myelin-arg", action="append", default=[],
                    help="extra argument for `myelin train` (repeatable)")
    args = ap.parse_args()
    import warnings
    warnings.filterwarnings("ignore")
    results = []
    for name in [t for t in args.tables.split(",") if t]:
        frame, target, task, ignore = load(name, args.data)
        train, test = split(frame, target, task, args.seed)
        row = {"table": name, "task": task, "rows": len(frame), "seed": args.seed}
        with tempfile.TemporaryDirectory() as workdir:
            row["myelin"] = run_myelin(args.myelin, train, test, target, task, ignore, workdir,
                                       args.myelin_arg)
        row["hgb"] = run_hgb(train.copy(), test.copy(), target, task, ignore, args.seed)
        row["sklearn_mlp"] = run_mlp(train.copy(), test.copy(), target, task, ignore, args.seed)
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    table = markdown(results)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    return 0


def metric_of(row):
    return ("accuracy", True) if row["task"] == "classification" else ("rmse", False)


def markdown(results) -> str:
    lines = ["| table | rows | metric | Myelin | HistGB | sklearn MLP | Myelin AUC | HistGB AUC "
             "| CPU s Myelin / HistGB / MLP |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        m, _ = metric_of(r)
        auc = lambda k: f"{r[k]['roc_auc']:.4f}" if "roc_auc" in r[k] else ""
        lines.append(
            f"| {r['table']} | {r['rows']} | {m} | {r['myelin'][m]:.4f} | {r['hgb'][m]:.4f} "
            f"| {r['sklearn_mlp'][m]:.4f} | {auc('myelin')} | {auc('hgb')} "
            f"| {r['myelin']['cpu_s']:.1f} / {r['hgb']['cpu_s']:.1f} / "
            f"{r['sklearn_mlp']['cpu_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
