"""A FastAPI API protected by the Ostiary guard.

    pip install ostiary fastapi uvicorn
    OSTIARY_ISSUER=http://127.0.0.1:8000 API_AUDIENCE=http://127.0.0.1:8001 \
        uvicorn fastapi_api:app --port 8001
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI

from ostiary.resource import Guard, Principal, TokenVerifier
from ostiary.resource.starlette import require_scopes

ISSUER = os.environ.get("OSTIARY_ISSUER", "http://127.0.0.1:8000")
AUDIENCE = os.environ.get("API_AUDIENCE", "http://127.0.0.1:8001")

# The verifier discovers the issuer's JWKS and caches it; tokens are checked locally.
guard = Guard(
    TokenVerifier(ISSUER, AUDIENCE, accept_plain_jwt=os.environ.get("API_ACCEPT_PLAIN_JWT") == "1"),
    realm="example-api",
)
app = FastAPI(title="Example API")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/notes")
async def list_notes(caller: Principal = Depends(require_scopes("notes:read", guard=guard))) -> dict[str, object]:
    return {"caller": caller.client_id, "subject": caller.subject, "notes": ["buy milk", "write docs"]}


@app.post("/notes")
async def add_note(caller: Principal = Depends(require_scopes("notes:write", guard=guard))) -> dict[str, object]:
    return {"created": True, "by": caller.client_id}
