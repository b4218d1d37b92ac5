"""FastAPI peer for bench/serve.py: a scikit-learn Pipeline behind POST /predict.

Same request shape as Myelin's `POST /predict`:

    {"model": "adult", "instances": [{"age": 25, "workclass": "Private", ...}]}

answered with

    {"model": "adult", "predictions": [{"label": "<=50K", "probabilities": {"<=50K": 0.9, ">50K": 0.1}}]}

Run (bench/serve.py does this):

    PEER_MODEL_PATH=model.joblib PEER_MODEL_NAME=adult \
        python -m uvicorn fastapi_app:app --app-dir bench/peers \
        --host 127.0.0.1 --port 8000 --workers 1 --log-level warning

The endpoint is a plain `def` (FastAPI runs it on its thread pool), the usual
way to serve blocking scikit-learn code. Instances become a DataFrame with the
training columns (missing fields are NaN, unknown fields are dropped).
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODEL_PATH = os.environ["PEER_MODEL_PATH"]
MODEL_NAME = os.environ.get("PEER_MODEL_NAME", "adult")

pipeline = joblib.load(MODEL_PATH)
CLASSES = [str(c) for c in pipeline.classes_]
COLUMNS = list(pipeline.feature_names_in_)


class PredictRequest(BaseModel):
    model: str
    instances: list[dict[str, Any]]


app = FastAPI(title="sklearn peer", docs_url=None, redoc_url=None)


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(req: PredictRequest) -> dict:
    if req.model != MODEL_NAME:
        raise HTTPException(status_code=404, detail=f"unknown model {req.model!r}")
    if not req.instances:
        raise HTTPException(status_code=422, detail="instances is empty")
    df = pd.DataFrame.from_records(req.instances, columns=COLUMNS)
    proba = pipeline.predict_proba(df)
    best = np.argmax(proba, axis=1)
    preds = [
        {"label": CLASSES[b], "probabilities": dict(zip(CLASSES, row))}
        for b, row in zip(best.tolist(), proba.tolist())
    ]
    return {"model": MODEL_NAME, "predictions": preds}
