"""One ``post()``: send a body to a URL with aiohttp and get the whole reply back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")  # the test aiohttp's ClientResponse.json() makes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str  # the Content-Type header, lower-cased ("" when there was none)

    def json(self) -> Any:
        """The body as JSON; like aiohttp's ``ClientResponse.json()``, it must be labelled JSON."""
        assert _JSON_TYPE.match(self.content_type), f"not a JSON reply: Content-Type {self.content_type!r}"
        stripped = self.body.strip()
        return json.loads(stripped) if stripped else None


async def post(url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """POST ``body`` to ``url`` in a fresh client session and read the reply."""
    async with aiohttp.ClientSession() as client, client.post(url, data=body, headers=headers or {}) as r:
        return Reply(r.status, await r.read(), r.headers.get("Content-Type", "").lower())
