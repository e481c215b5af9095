"""Baseline (g): a typical FastAPI + pandas server (async def, read_csv in, to_csv out)."""

import io
import pickle

import pandas as pd
from fastapi import FastAPI, Request, Response

with open("/opt/ml/model/model.pkl", "rb") as fh:
    MODEL = pickle.load(fh)

app = FastAPI()


@app.get("/ping")
async def ping() -> Response:
    return Response(status_code=200)


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    frame = pd.read_csv(io.BytesIO(await request.body()), header=None)
    proba = MODEL.predict_proba(frame.to_numpy())
    return Response(pd.DataFrame(proba).to_csv(header=False, index=False), media_type="text/csv")
