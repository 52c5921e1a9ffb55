"""Request-scoped observation helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request

from app.credit.release import Decided
from app.metrics import Channels, count_decisions


def count(request: Request, decided: Decided | None) -> None:
    """Count committed decisions in the metrics."""
    if decided:
        channels: Channels = request.app.state.channels
        count_decisions(decided, channels)
