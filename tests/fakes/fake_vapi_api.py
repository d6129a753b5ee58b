#!/usr/bin/env python3
"""A local stand-in for the Vapi REST API: GET and PATCH on /assistant/{id}, /phone-number/{id}, /tool/{id}.

It behaves like the real API where wiring depends on it (vapi-protocol.md §1.4): bearer key checked
(401), unknown ids 404, PATCH bodies validated like NestJS's whitelist (unknown or read-only
top-level fields → 400 "property X should not exist"), a phone-number PATCH must carry the
number's ``provider``, and PATCH replaces the ``server`` object wholesale (``null`` removes it).

Tests inject failures: ``fail_patch[id] = status`` answers that status to PATCHes of ``id``;
``drop_patch.add(id)`` closes the connection instead of answering. ``requests`` records every call.

As a script: ``fake_vapi_api.py [--key K] [--seed FILE.json]`` prints its base URL on one line and
serves until killed; ``GET /__fake/resources`` (no auth) dumps every resource for assertions, and
``POST /__fake/seed`` adds resources ({"assistant": [...], "phone-number": [...], "tool": [...]}).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import sys
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

KINDS = ("assistant", "phone-number", "tool")
PROVIDERS = ("byo-phone-number", "twilio", "vonage", "vapi", "telnyx")
READ_ONLY = {"id", "orgId", "createdAt", "updatedAt", "status", "isServerUrlSecretSet"}
SERVER_FIELDS = {
    "url", "credentialId", "headers", "timeoutSeconds", "backoffPlan",
    "staticIpAddressesEnabled", "encryptedPaths", "secret",
}  # fmt: skip
WRITABLE: dict[str, set[str]] = {
    "assistant": {
        "name", "transcriber", "model", "voice", "firstMessage", "firstMessageMode",
        "firstMessageInterruptionsEnabled", "voicemailDetection", "clientMessages", "serverMessages",
        "silenceTimeoutSeconds", "maxDurationSeconds", "backgroundSound", "backgroundDenoisingEnabled",
        "modelOutputInMessagesEnabled", "transportConfigurations", "observabilityPlan", "credentials",
        "hooks", "voicemailMessage", "endCallMessage", "endCallPhrases", "compliancePlan", "metadata",
        "analysisPlan", "artifactPlan", "startSpeakingPlan", "stopSpeakingPlan", "monitorPlan",
        "credentialIds", "server", "keypadInputPlan", "messagePlan",
    },
    "phone-number": {
        "provider", "name", "assistantId", "squadId", "workflowId", "server", "fallbackDestination",
        "hooks", "number", "credentialId", "twilioAccountSid", "twilioAuthToken", "twilioApiKey",
        "twilioApiSecret", "smsEnabled", "sipUri", "authentication", "numberE164CheckEnabled",
    },
    "tool": {
        "server", "function", "messages", "async", "destinations", "rejectionPlan",
        "variableExtractionPlan", "parameters", "name", "description",
    },
}  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bad(messages: list[str]) -> web.Response:
    return web.json_response({"message": messages, "error": "Bad Request", "statusCode": 400}, status=400)


class FakeVapiApi:
    """In-memory resources plus an aiohttp app serving them; start() returns the base URL."""

    def __init__(self, key: str = "test-key") -> None:
        self.key = key
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, json body or None)
        self.fail_patch: dict[str, int] = {}
        self.drop_patch: set[str] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- data -------------------------------------------------------------------------------
    def add(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store a resource (id generated when missing) and return a copy of it."""
        item = copy.deepcopy(data)
        item.setdefault("id", f"{kind.split('-')[0]}_{next(self._ids)}")
        item.setdefault("orgId", "org_fake")
        item.setdefault("createdAt", _now())
        item.setdefault("updatedAt", item["createdAt"])
        if kind == "phone-number":
            item.setdefault("provider", "twilio")
        self.resources[(kind, item["id"])] = item
        return copy.deepcopy(item)

    def get(self, kind: str, rid: str) -> dict[str, Any]:
        return copy.deepcopy(self.resources[(kind, rid)])

    def patches(self) -> list[tuple[str, Any]]:
        return [(p, b) for m, p, b in self.requests if m == "PATCH"]

    # -- HTTP -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/__fake/resources", self._dump)
        app.router.add_post("/__fake/seed", self._seed)
        for kind in KINDS:
            app.router.add_get(f"/{kind}/{{id}}", self._handler(kind, "GET"))
            app.router.add_patch(f"/{kind}/{{id}}", self._handler(kind, "PATCH"))
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dump(self, request: web.Request) -> web.Response:
        out: dict[str, list[Any]] = {k: [] for k in KINDS}
        for (kind, _), item in self.resources.items():
            out[kind].append(item)
        return web.json_response(out)

    async def _seed(self, request: web.Request) -> web.Response:
        data = await request.json()
        for kind in KINDS:
            for item in data.get(kind, []):
                self.add(kind, item)
        return web.json_response({"ok": True})

    def _handler(self, kind: str, method: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            rid = request.match_info["id"]
            body: Any = None
            if request.can_read_body:
                try:
                    body = await request.json()
                except ValueError:
                    return _bad(["body must be JSON"])
            self.requests.append((method, request.path, body))
            if request.headers.get("Authorization") != f"Bearer {self.key}":
                return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
            item = self.resources.get((kind, rid))
            if item is None:
                return web.json_response({"message": "Not Found", "statusCode": 404}, status=404)
            if method == "GET":
                return web.json_response(item)
            if rid in self.drop_patch:
                assert request.transport is not None
                request.transport.close()  # the client sees the connection drop mid-request
                return web.Response(status=500)
            if rid in self.fail_patch:
                status = self.fail_patch[rid]
                return web.json_response({"message": f"injected failure {status}"}, status=status)
            problems = self._validate(kind, item, body)
            if problems:
                return _bad(problems)
            for key, value in body.items():
                if value is None:
                    item.pop(key, None)  # null removes the field, like the real API
                else:
                    item[key] = copy.deepcopy(value)  # objects (server) are replaced wholesale
            item["updatedAt"] = _now()
            return web.json_response(item)

        return handle

    @staticmethod
    def _validate(kind: str, item: dict[str, Any], body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        problems = [f"property {k} should not exist" for k in body if k not in WRITABLE[kind]]
        if kind == "phone-number":
            provider = body.get("provider")
            if provider not in PROVIDERS:
                problems.append("provider must be one of the following values: " + ", ".join(PROVIDERS))
            elif provider != item.get("provider"):
                problems.append("provider cannot be changed")
        server = body.get("server", None)
        if "server" in body and server is not None:
            if not isinstance(server, dict):
                problems.append("server must be an object")
            else:
                problems += [f"server.property {k} should not exist" for k in server if k not in SERVER_FIELDS]
                url = server.get("url")
                if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                    problems.append("server.url must be a URL address")
        return problems


async def _serve(key: str, seed: str | None) -> None:
    fake = FakeVapiApi(key)
    if seed:
        with open(seed, encoding="utf-8") as fh:
            data = json.load(fh)
        for kind in KINDS:
            for item in data.get(kind, []):
                fake.add(kind, item)
    url = await fake.start()
    print(url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--key", default="test-key")
    ap.add_argument("--seed", default=None, help="JSON file {kind: [resource, …]}")
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.key, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
