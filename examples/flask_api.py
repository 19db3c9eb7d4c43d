"""A Flask API protected by the Ostiary guard.

    pip install ostiary flask
    OSTIARY_ISSUER=http://127.0.0.1:8000 API_AUDIENCE=http://127.0.0.1:8002 \
        flask --app flask_api run --port 8002
"""

from __future__ import annotations

import os

from flask import Flask, g

from ostiary.resource import Guard, TokenVerifier
from ostiary.resource.flask import require_token

ISSUER = os.environ.get("OSTIARY_ISSUER", "http://127.0.0.1:8000")
AUDIENCE = os.environ.get("API_AUDIENCE", "http://127.0.0.1:8002")

guard = Guard(
    TokenVerifier(ISSUER, AUDIENCE, accept_plain_jwt=os.environ.get("API_ACCEPT_PLAIN_JWT") == "1"),
    realm="example-api",
)
app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/notes")
@require_token(guard, "notes:read")
def list_notes() -> dict[str, object]:
    return {"caller": g.principal.client_id, "notes": ["buy milk", "write docs"]}


@app.post("/notes")
@require_token(guard, "notes:write")
def add_note() -> dict[str, object]:
    return {"created": True, "by": g.principal.client_id}
