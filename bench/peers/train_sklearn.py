#!/usr/bin/env python3
"""Train the scikit-learn peer model for bench/serve.py.

    python bench/peers/train_sklearn.py --data data/adult.csv --target income --out model.joblib

A Pipeline of ColumnTransformer(OneHotEncoder on text columns, StandardScaler on
numeric columns) + MLPClassifier(hidden_layer_sizes=(64, 32)), fitted on the
whole CSV for a few iterations (model quality is irrelevant to the serving
benchmark), saved with joblib. The file is loaded by fastapi_app.py and by the
MLServer scikit-learn runtime. Prints one JSON line, including the in-process
CPU cost of `predict_proba` on a DataFrame of 1 and 256 records (no HTTP).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings


def build_pipeline(df, target: str, max_iter: int, seed: int):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    feats = [c for c in df.columns if c != target]
    cat = [c for c in feats if not pd.api.types.is_numeric_dtype(df[c])]
    num = [c for c in feats if c not in cat]
    pre = ColumnTransformer([
        ("num", StandardScaler(), num),
        ("cat", OneHotEncoder(handle_unknown="ignore"), cat),
    ])
    mlp = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=max_iter,
                        batch_size=256, random_state=seed)
    return Pipeline([("pre", pre), ("mlp", mlp)]), feats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--target", default="income")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-iter", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--rows", type=lambda v: [int(x) for x in v.split(",")], default=[1, 256],
                    help="batch sizes for the in-process predict timing (default 1,256)")
    a = ap.parse_args()

    import joblib
    import pandas as pd
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    df = pd.read_csv(a.data)
    pipe, feats = build_pipeline(df, a.target, a.max_iter, a.seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(df[feats], df[a.target].astype(str))
    fit_s = time.perf_counter() - t0
    joblib.dump(pipe, a.out)
    print(json.dumps({"out": a.out, "rows": len(df), "features": feats,
                      "classes": [str(c) for c in pipe.classes_],
                      "fit_seconds": round(fit_s, 3), "sklearn": sklearn.__version__,
                      "predict_cpu_ms": time_predict(pipe, df, feats, a.rows)}))


def time_predict(pipe, df, feats, sizes) -> dict:
    """In-process CPU ms per call of DataFrame.from_records + predict_proba, the
    model's own cost without HTTP (best of 5 batches)."""
    import pandas as pd

    records = df[feats].head(max(sizes)).to_dict("records")
    out = {}
    for n in sizes:
        recs = records[:n]
        pipe.predict_proba(pd.DataFrame.from_records(recs, columns=feats))  # warm-up
        reps, best = 20, float("inf")
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(reps):
                pipe.predict_proba(pd.DataFrame.from_records(recs, columns=feats))
            best = min(best, (time.process_time() - t0) / reps)
        out[str(n)] = round(best * 1000, 4)
    return out
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
