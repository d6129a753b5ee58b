"""A small async client for the parts of the Vapi REST API that wiring needs (GET/PATCH one resource)."""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp

from vapi_dev.errors import VapiDevError
from vapi_dev.redact import mask_secrets
from vapi_dev.vapi import DEFAULT_API_URL

DEFAULT_TIMEOUT = 10.0

Kind = Literal["assistant", "phone-number", "tool"]
KINDS: tuple[Kind, ...] = ("assistant", "phone-number", "tool")
KIND_LABEL: dict[str, str] = {"assistant": "assistant", "phone-number": "phone number", "tool": "tool"}


class VapiApiError(VapiDevError):
    """A Vapi API call failed; ``message`` is one sentence saying what happened and what to do."""


class MissingApiKey(VapiApiError):
    """No API key was given although the command needs one."""


class InvalidApiKey(VapiApiError):
    """The API answered 401/403. The key itself is never part of the message."""


class ResourceNotFound(VapiApiError):
    """The API answered 404 for a resource id."""


class ValidationFailed(VapiApiError):
    """The API answered 400 (or 422) and rejected the request body."""


class VapiUnreachable(VapiApiError):
    """The API could not be reached, or did not answer in time."""


class VapiServerError(VapiApiError):
    """The API answered with an unexpected status (5xx, …) or a body that is not JSON."""


def _api_message(body: Any) -> str:
    """The human part of an error body: NestJS sends {"message": str | [str], "error": …}."""
    if isinstance(body, dict):
        msg = body.get("message", body.get("error"))
        if isinstance(msg, list):
            return "; ".join(str(m) for m in msg)
        if msg is not None:
            return str(msg)
    if isinstance(body, str):
        return body.strip()[:300]
    return ""


class VapiApi:
    """GET and PATCH ``/{kind}/{id}`` with a bearer key; every failure is a typed VapiApiError."""

    def __init__(
        self, api_key: str | None, api_url: str = DEFAULT_API_URL, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        key = (api_key or "").strip()
        if not key:
            raise MissingApiKey(
                "a Vapi API key is needed to point resources at the tunnel; set VAPI_API_KEY or pass "
                "--api-key (Dashboard → Organization → API Keys, the private key)"
            )
        if any(ch.isspace() or not ch.isprintable() for ch in key):
            # aiohttp would refuse the header with an error that may echo the value.
            raise InvalidApiKey("the Vapi API key contains spaces or control characters; copy it again")
        parts = urlsplit(api_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise VapiApiError(f"the Vapi API URL {api_url!r} is not an http(s) URL; use e.g. {DEFAULT_API_URL}")
        self._key = key
        self.api_url = api_url.strip().rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VapiApi:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
            )
        return self._session

    async def get(self, kind: Kind, rid: str) -> dict[str, Any]:
        """The resource as the API returns it."""
        return await self._call("GET", kind, rid, None)

    async def patch(self, kind: Kind, rid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply ``body`` to the resource; returns the updated resource."""
        return await self._call("PATCH", kind, rid, body)

    async def _call(self, method: str, kind: Kind, rid: str, body: dict[str, Any] | None) -> dict[str, Any]:
        label = f"{KIND_LABEL[kind]} {rid}"
        url = f"{self.api_url}/{kind}/{quote(rid, safe='')}"
        try:
            async with self._client().request(method, url, json=body) as resp:
                status = resp.status
                raw = await resp.read()
        except asyncio.TimeoutError:
            raise VapiUnreachable(
                f"the Vapi API at {self.api_url} did not answer within {self._timeout.total:g} s "
                f"({method} {label}); check your network and try again"
            ) from None
        except aiohttp.InvalidURL:
            raise VapiApiError(f"the Vapi API URL {self.api_url!r} is not valid; check --vapi-api-url") from None
        except (aiohttp.ClientError, OSError) as exc:
            reason = mask_secrets(str(exc) or type(exc).__name__, [self._key])
            raise VapiUnreachable(
                f"could not reach the Vapi API at {self.api_url} ({reason}); check your network "
                "connection or --vapi-api-url"
            ) from None
        try:
            parsed: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = raw.decode("utf-8", "replace")
        detail = mask_secrets(_api_message(parsed), [self._key])
        if status in (401, 403):
            raise InvalidApiKey(
                f"the Vapi API refused the API key ({status}{': ' + detail if detail else ''}); check "
                "VAPI_API_KEY or --api-key — it must be the private key of the org that owns "
                f"{label}"
            )
        if status == 404:
            raise ResourceNotFound(
                f"{label} was not found (404); check the id in the Vapi dashboard and that the API key "
                "belongs to the same org"
            )
        if status in (400, 422):
            raise ValidationFailed(
                f"Vapi rejected the {'change to' if method == 'PATCH' else 'request for'} {label}: "
                f"{detail or 'bad request'}"
            )
        if not 200 <= status < 300:
            raise VapiServerError(
                f"the Vapi API answered {status} to {method} {label}"
                f"{': ' + detail if detail else ''}; try again in a moment"
            )
        if not isinstance(parsed, dict):
            raise VapiServerError(
                f"the Vapi API sent an unexpected reply to {method} {label} (not a JSON object); check --vapi-api-url"
            )
        return parsed
