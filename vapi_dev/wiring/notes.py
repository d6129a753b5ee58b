"""What wiring knows about a Vapi resource, and where Vapi will really send its events (precedence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vapi_dev.exchange import Notice
from vapi_dev.vapi.api import Kind
from vapi_dev.wiring.state import label


@dataclass(frozen=True)
class Resource:
    """A resource as read from the API."""

    kind: Kind
    id: str
    data: Mapping[str, Any]

    @property
    def name(self) -> str | None:
        n = self.data.get("name") or (self.data.get("function") or {}).get("name") or self.data.get("number")
        return str(n) if n else None

    @property
    def label(self) -> str:
        return label(self.kind, self.id, self.name)

    @property
    def server_url(self) -> str | None:
        server = self.data.get("server")
        url = server.get("url") if isinstance(server, dict) else None
        url = url or self.data.get("serverUrl")  # legacy flat field
        return url if isinstance(url, str) and url else None


def org_instructions(public_url: str | None = None) -> str:
    where = public_url or "the public URL"
    return (
        "the organisation's server URL has no public API: to send events there, set Dashboard → "
        f"Settings → Organization → Server URL to {where} by hand, and put the old value back afterwards"
    )


def tools_of(assistant: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(inline model.tools[], model.toolIds[]) of an assistant."""
    model = assistant.get("model")
    if not isinstance(model, dict):
        return [], []
    inline = [t for t in model.get("tools") or [] if isinstance(t, dict)]
    ids = [t for t in model.get("toolIds") or [] if isinstance(t, str)]
    return inline, ids


def precedence_notes(
    resources: Sequence[Resource], related: Mapping[tuple[str, str], Mapping[str, Any]] | None = None
) -> list[str]:
    """Where Vapi will really send events (tool > assistant > phone number > org), when that is not
    the wired URL. ``related`` holds tools and assistants read by id that were not wired themselves."""
    related = related or {}
    wired = {(r.kind, r.id) for r in resources}
    notes: list[str] = []
    for r in resources:
        if r.kind == "assistant":
            inline, tool_ids = tools_of(r.data)
            for spec in inline:
                url = Resource("tool", "", spec).server_url
                if url:
                    name = Resource("tool", "", spec).name or "inline tool"
                    notes.append(
                        f"{r.label}: tool-calls for its inline tool {name!r} go to that tool's own server "
                        f"URL {url}, not to the tunnel; clear it in the assistant's model.tools to use the tunnel"
                    )
            for tid in tool_ids:
                if ("tool", tid) in wired or ("tool", tid) not in related:
                    continue
                tool = Resource("tool", tid, related[("tool", tid)])
                if tool.server_url:
                    notes.append(
                        f"{r.label}: tool-calls for {tool.label} go to that tool's own server URL "
                        f"{tool.server_url}, not to the tunnel; add --tool {tid} to wire it too"
                    )
        elif r.kind == "phone-number":
            aid = r.data.get("assistantId")
            if isinstance(aid, str) and aid and ("assistant", aid) not in wired:
                data = related.get(("assistant", aid))
                asst = Resource("assistant", aid, data or {})
                if asst.server_url:
                    notes.append(
                        f"{r.label}: calls use {asst.label}, whose own server URL {asst.server_url} gets "
                        f"the events, not the phone number's; add --assistant {aid} to wire it too"
                    )
            elif not aid and not r.data.get("squadId") and not r.data.get("workflowId"):
                notes.append(f"{r.label} has no assistant: assistant-request goes to the tunnel")
    if not any(r.kind in ("assistant", "phone-number") for r in resources):
        notes.append(
            "only tools are wired: every other event goes to the assistant's, phone number's or "
            "organisation's server URL; " + org_instructions()
        )
    return notes


class OrgHint:
    """``--org``: the organisation's server URL cannot be changed through the API, so say how to do it
    by hand with the current public URL (again whenever it changes), and remind to put it back on stop."""

    def __init__(self, path: str, notice: Callable[[Notice], None]) -> None:
        self.path = path
        self.notice = notice

    async def on_public_url(self, public_url: str) -> None:
        url = public_url.rstrip("/") + ("/" + self.path.lstrip("/") if self.path.strip("/") else "")
        self.notice(Notice("warning", org_instructions(url)))

    async def on_stop(self) -> None:
        self.notice(
            Notice(
                "warning",
                "remember to put the organisation's server URL back in the Vapi dashboard "
                "(Settings → Organization → Server URL)",
            )
        )
