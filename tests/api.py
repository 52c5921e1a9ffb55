"""The API client the tests speak through: httpx over the ASGI app, as one role."""

from __future__ import annotations

import httpx


class Api:
    """An httpx client over the ASGI app that speaks as one role."""

    def __init__(self, app: object, keys: dict[str, str]) -> None:
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                         base_url="http://creditgate.test")
        self._keys = keys

    def _headers(self, role: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if role is not None:
            out.setdefault("Authorization", f"Bearer {self._keys[role]}")
        return out

    async def request(self, method: str, path: str, *, role: str | None = "admin",
                      headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self._client.request(method, path, headers=self._headers(role, headers),
                                          **kwargs)  # type: ignore[arg-type]

    async def get(self, path: str, **kw: object) -> httpx.Response:
        return await self.request("GET", path, **kw)  # type: ignore[arg-type]

    async def post(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("POST", path, json=json, **kw)  # type: ignore[arg-type]

    async def put(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("PUT", path, json=json, **kw)  # type: ignore[arg-type]

    async def patch(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("PATCH", path, json=json, **kw)  # type: ignore[arg-type]
