"""How an idempotent replay is answered (DESIGN.md, Idempotency)."""

from __future__ import annotations

from fastapi import Response

REPLAYED_HEADER = "Idempotent-Replayed"


def mark_replayed(response: Response, replayed: bool) -> None:
    """Set the status and header DESIGN.md gives an idempotent replay."""
    if replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
