"""The details pane: what happened to the selected exchange (a header with its timing against the deadline),
then tabs: its problems first, the reply, the request, and the last replay's result.

Every string shown is masked (the Masker the app was given) and escaped (``printable``) and reaches a widget
as a ``rich.text.Text``, never as markup. JSON bodies are a tree that opens lazily, so a large body costs
only the nodes looked at.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane, Tree
from textual.widgets.tree import TreeNode

from vapi_dev.exchange import Exchange, Headers
from vapi_dev.output.lines import (
    call_style,
    detail_lines,
    human_bytes,
    latency_style,
    printable,
    printable_data,
    status_style,
)
from vapi_dev.redact import Masker
from vapi_dev.ui.bars import TextBar

TEXT_SHOWN = 64 * 1024  # characters of a body that is not JSON
CHILDREN_SHOWN = 200  # entries of one object or array opened at once
OPENED_AT_ONCE = 150  # nodes a body's tree adds when shown (three levels open, at most this many)
STRING_SHOWN = 500  # characters of one string in the tree
BAR_WIDTH = 20
TABS = ("problems", "reply", "request", "replay")


def deadline_bar(ex: Exchange) -> Text:
    """``took 812 ms of 7.5 s ▕████░░░░▏`` coloured like the stream's latency (red past the deadline)."""
    ms = ex.duration_ms
    if ms is None:
        return Text("still waiting for the app", style="yellow")
    deadline = ex.deadline_s or 0.0
    ratio = ms / 1000.0 / deadline if deadline else 0.0
    filled = min(BAR_WIDTH, round(ratio * BAR_WIDTH))
    bar = Text(f"took {ms:.0f} ms of {deadline:g} s ")
    bar.append("▕" + "█" * filled + "░" * (BAR_WIDTH - filled) + "▏", style=latency_style(ex) or "green")
    bar.append(f" {ratio:.0%}" + (" past the deadline" if ratio >= 1 else ""))
    return bar


def header_text(ex: Exchange, mask: Masker) -> Text:
    t = Text(printable(ex.message_type or "plain HTTP"), style="bold")
    if ex.reply_needed:
        t.append(" ↩ Vapi waits for the reply")
    t.append("  call ")
    t.append(printable(ex.call_id or "—"), style=call_style(ex.call_id))
    t.append(f"  {printable(ex.id)}\n", style="dim")
    status = str(ex.status) if ex.status is not None else (ex.error_kind or "—")
    t.append(f"status {printable(status)}", style=status_style(ex))
    if ex.first_byte is not None:
        t.append(f"  first byte {ex.first_byte * 1000 - ex.started * 1000:.0f} ms")
    t.append("  ")
    t.append_text(deadline_bar(ex))
    t.append("\n")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ex.received_at))
    t.append(f"{when}  {printable(ex.method)} {printable(mask.text(ex.target))}")
    t.append(f" → {printable(mask.text(ex.forward_url) or '—')}")
    if ex.auth is not None:
        t.append(f"  auth {printable(ex.auth.method)} ")
        t.append("ok" if ex.auth.ok else "FAILED", style="green" if ex.auth.ok else "bold red")
    if ex.fallback:
        t.append("  vapi-dev answered (fallback)", style="bold yellow")
    return t


def problems_text(ex: Exchange, mask: Masker) -> Text:
    lines = detail_lines(ex, mask)
    if not lines:
        return Text("no problems: the reply meets the contract in time" if ex.message_type else "no problems")
    out = Text()
    for i, (line, style) in enumerate(lines):
        out.append(("\n" if i else "") + line, style=style)
    for p in ex.problems:
        out.append(f"\n  [{printable(p.code)}]", style="dim")
    return out


def headers_text(title: str, headers: Headers, mask: Masker, note: str = "") -> Text:
    t = Text(title, style="bold")
    if note:
        t.append(f"  {note}", style="yellow")
    for k, v in mask.headers(headers):
        t.append(f"\n{printable(k)}: ", style="dim bold")
        t.append(printable(v, None), style="dim")
    return t


def _scalar(value: Any) -> Text:
    if isinstance(value, str):
        return Text(printable(repr_str(value), STRING_SHOWN), style="green")
    if isinstance(value, bool) or value is None:
        return Text("null" if value is None else str(value).lower(), style="magenta")
    return Text(printable(str(value)), style="cyan")


def repr_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(key: str | None, value: Any) -> Text:
    t = Text()
    if key is not None:
        t.append(printable(key, STRING_SHOWN), style="bold")
        t.append(": ")
    if isinstance(value, dict):
        t.append(f"{{{len(value)}}}", style="dim")
    elif isinstance(value, list):
        t.append(f"[{len(value)}]", style="dim")
    else:
        t.append_text(_scalar(value))
    return t


class BodyTree(Tree[Any]):
    """A JSON value as a tree; an object or array gets its children when it is first opened."""

    # The rest of its tab, scrolling itself: a body of another length then needs no new layout.
    DEFAULT_CSS = "BodyTree { height: 1fr; min-height: 4; padding: 0; background: $surface; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("body", style="bold"), id=id)
        self.show_root = False
        self.guide_depth = 2
        self._budget = 0  # nodes still to add before the rest waits to be opened

    def load(self, data: Any) -> None:
        """Show ``data`` (its first two levels open) in place of what was shown; None: nothing."""
        self.reset(Text("body", style="bold"))
        if data is None:
            return
        self._budget = OPENED_AT_ONCE
        self._fill(self.root, data, depth=3)
        self.root.expand()

    def _fill(self, node: TreeNode[Any], value: Any, depth: int) -> None:
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        for key, child in items[:CHILDREN_SHOWN]:
            self._budget -= 1
            if isinstance(child, (dict, list)) and child:
                sub = node.add(_label(str(key), child), data=child)
                if depth > 1 and self._budget > 0:
                    self._fill(sub, child, depth - 1)
                    sub.expand()
            else:
                node.add_leaf(_label(str(key), child))
        if len(items) > CHILDREN_SHOWN:
            node.add_leaf(Text(f"… {len(items) - CHILDREN_SHOWN} more", style="dim"))
        node.data = None  # filled: opening it again adds nothing

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        node = event.node
        if node.data is not None and not node.children:
            self._budget = CHILDREN_SHOWN
            self._fill(node, node.data, depth=1)


def body_view(raw: bytes, truncated: bool, size: int, mask: Masker) -> tuple[Any, Text | None]:
    """(JSON data for the tree, None) or (None, the body as escaped text); masked."""
    if not raw:
        return None, Text("(empty body)", style="dim")
    view, is_json = mask.body(raw)
    if is_json and isinstance(view, (dict, list)) and not truncated:
        return printable_data(view), None
    text = str(view)
    note = ""
    if truncated:
        note = f"(only the first {human_bytes(len(raw))} of {human_bytes(size)} kept)\n"
    if len(text) > TEXT_SHOWN:
        note += f"(the first {TEXT_SHOWN} characters of {len(text)})\n"
        text = text[:TEXT_SHOWN]
    out = Text(note, style="yellow")
    out.append("\n".join(printable(line, None) for line in text.split("\n")))  # line breaks kept, the rest escaped
    return None, out


class Details(Vertical):
    """The details of one exchange. ``show`` fills the tab shown at once and the others when they are opened
    (moving through the list costs one tab's content); the widgets are kept and refilled, never remounted."""

    DEFAULT_CSS = """
    Details { height: 1fr; }
    Details #head { height: 3; padding: 0 1; background: $panel; }
    Details TabbedContent { height: 1fr; }
    Details TabPane { padding: 0 1; }
    Details VerticalScroll { height: 1fr; }
    Details .body-text { height: auto; }
    """

    def __init__(self, mask: Masker, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mask = mask
        self.exchange: Exchange | None = None
        self.replay_for: str | None = None  # the exchange the Replay tab's content is about
        self._stale: set[str] = set()

    def compose(self) -> ComposeResult:
        yield TextBar(Text("no exchange yet — waiting for events", style="dim"), id="head")
        with TabbedContent(initial="reply"):
            for name in TABS:
                with TabPane(name.capitalize(), id=name), VerticalScroll(id=f"{name}-scroll"):
                    yield Static(id=f"{name}-meta")
                    if name in ("reply", "request"):
                        yield BodyTree(id=f"{name}-tree")
                        yield Static(id=f"{name}-text", classes="body-text")

    def on_mount(self) -> None:
        self._meta("replay", Text("r replays the selected exchange to the app; e edits its body first"))

    def show(self, ex: Exchange | None) -> None:
        self.exchange = ex
        head = self.query_one("#head", TextBar)
        tabs = self.query_one(TabbedContent)
        head.set(Text("no exchange selected", style="dim") if ex is None else header_text(ex, self.mask))
        count = len(detail_lines(ex, self.mask)) if ex is not None else 0
        label = f"Problems ({count})" if count else "Problems"
        tab = tabs.get_tab("problems")
        if tab.label.plain != label:  # a new label is a new layout: only when it changes
            tab.label = Text(label)
        self._stale = {"problems", "reply", "request"}
        if ex is None or self.replay_for != ex.id:
            self.replay_for = None
            self._meta("replay", Text("r replays the selected exchange to the app; e edits its body first"))
        if count and tabs.active != "replay":
            tabs.active = "problems"  # problems first
        elif not count and tabs.active == "problems":
            tabs.active = "reply"
        self._fill(tabs.active)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._fill(str(event.pane.id))

    def _fill(self, name: str) -> None:
        if name not in self._stale:
            return
        self._stale.discard(name)
        ex, m = self.exchange, self.mask
        if ex is None:
            self._meta(name, Text(""))
            if name in ("reply", "request"):
                self._body(name, None, Text(""))
            return
        if name == "problems":
            self._meta(name, problems_text(ex, m))
        elif name == "reply":
            if ex.status is None and not ex.response_body:
                self._meta(name, Text(printable(m.text(ex.error or "no reply yet"), None)))
                self._body(name, None, Text(""))
            else:
                title = f"reply {ex.status if ex.status is not None else '—'}"
                self._meta(name, headers_text(title, ex.response_headers, m))
                self._body(name, *body_view(ex.response_body, ex.response_truncated, ex.response_bytes, m))
        elif name == "request":
            self._meta(name, headers_text(f"{printable(ex.method)} {printable(m.text(ex.target))}", ex.headers, m))
            self._body(name, *body_view(ex.body, ex.request_truncated, ex.request_bytes, m))

    def _meta(self, name: str, text: Text) -> None:
        self.query_one(f"#{name}-meta", Static).update(text)

    def _body(self, name: str, data: Any, text: Text | None) -> None:
        tree = self.query_one(f"#{name}-tree", BodyTree)
        static = self.query_one(f"#{name}-text", Static)
        tree.load(data)  # None: an empty tree
        if tree.display != (data is not None):  # (a new layout: only when the kind of body changes)
            tree.display = data is not None
        if static.display != (text is not None):
            static.display = text is not None
        if text is not None:
            static.update(text)

    def show_replay(self, exchange_id: str, text: Text) -> None:
        self.replay_for = exchange_id
        self._meta("replay", text)
        self.query_one(TabbedContent).active = "replay"

    @property
    def active(self) -> str:
        return str(self.query_one(TabbedContent).active)

    def switch(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
