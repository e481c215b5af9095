"""Baseline (b): a raw ASGI callable under uvicorn, np.loadtxt in, one %-format out (anchors doc)."""

import io
import pickle

import numpy as np

with open("/opt/ml/model/model.pkl", "rb") as fh:
    MODEL = pickle.load(fh)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/ping":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    X = np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
    proba = MODEL.predict_proba(X)
    out = (("%.6g,%.6g,%.6g\n" * len(proba)) % tuple(proba.ravel())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/csv"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
