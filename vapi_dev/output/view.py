"""Printable views of exchange bodies: JSON as data, anything else as text, with secrets masked."""

from __future__ import annotations

from typing import Any

from vapi_dev.exchange import Exchange
from vapi_dev.redact import Masker
from vapi_dev.vapi.auth import AuthConfig


def make_masker(cfg: AuthConfig | None, show_secrets: bool) -> Masker:
    """The Masker of a listen run: the configured secret values and header names, off with --show-secrets."""
    if cfg is None:
        return Masker(enabled=not show_secrets)
    return Masker(cfg.secret_values(), cfg.secret_header_names(), enabled=not show_secrets)


class BodyView:
    """(request, reply) bodies fit for printing: JSON as data, anything else as text; masked by ``mask``.

    A body that cannot be walked as data (nested too deeply) is shown as its masked text instead, so one
    odd body never costs an output its line.
    """

    def __init__(self, mask: Masker) -> None:
        self.mask = mask

    def __call__(self, ex: Exchange) -> tuple[Any, Any]:
        try:
            reply_data = ex.response_json()
        except RecursionError:  # parse_json of a body nested too deeply
            reply_data = None
        return self._one(ex.payload, ex.body), self._one(reply_data, ex.response_body)

    def _one(self, data: Any, raw: bytes) -> Any:
        if data is not None:
            try:
                return self.mask.data(data)
            except RecursionError:
                pass
        return self.text(raw)

    def text(self, raw: bytes) -> str | None:
        """A body as masked text (undecodable bytes replaced), None when empty."""
        if not raw:
            return None
        return self.mask.text(raw.decode("utf-8", "replace"))


def make_view(cfg: AuthConfig | None, show_secrets: bool) -> BodyView:
    """The body view of a listen run (see make_masker); its ``mask`` is what the stream lines use too."""
    return BodyView(make_masker(cfg, show_secrets))
