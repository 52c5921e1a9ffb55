"""Request-scoped observation helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request

from app.metrics import Channels, Decided, count_decisions


def count(request: Request, decided: Decided | None) -> None:
    """Count committed decisions in the metrics."""
    if decided:
        channels: Channels = request.app.state.channels
        count_decisions(decided, channels)
