"""``--snapshot --update``: the recorded replies of a fixture rewritten in place, after a deliberate change.

Only the ``reply`` of each exchange that was run is replaced (status, duration, body, masked as export masks
it); every other key of the file is kept. The file is written whole beside itself and renamed over the old
one, so a crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vapi_dev.journal.fixtures import encode_body, masked_body
from vapi_dev.testing.load import FixtureError

if TYPE_CHECKING:
    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import FileCases
    from vapi_dev.testing.run import Outcome


def _reply(old: Any, ex_status: int | None, ms: float | None, body: bytes, mask: Masker) -> tuple[dict[str, Any], bool]:
    reply = dict(old) if isinstance(old, dict) else {}
    for key in ("body_json", "body_base64"):
        reply.pop(key, None)
    encoded = masked_body(body, mask, "body") if mask.enabled else encode_body(body, "body")
    reply.update({"status": ex_status, "duration_ms": None if ms is None else round(ms, 3), "error": None})
    reply.update(encoded)
    return reply, encoded != encode_body(body, "body")


def write_atomically(path: os.PathLike[str], text: str) -> None:
    """``text`` as the whole new content of ``path`` (its mode kept), written beside it and renamed over it;
    through a symlink, the file it points to is rewritten (renaming over the link would replace the link)."""
    target = os.path.realpath(path)
    mode = os.stat(target).st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target) or ".", prefix=".vapi-dev-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def update_file(fc: FileCases, outcomes: Sequence[Outcome], mask: Masker) -> int:
    """Rewrite the recorded replies of ``fc`` that changed; how many. FixtureError when it cannot."""
    changed = [o for o in outcomes if o.snapshot_changed and o.exchange is not None]
    if not changed:
        return 0
    if fc.kind != "fixture":
        raise FixtureError(
            f"{fc.source}: a {'show --json record' if fc.kind == 'show' else 'bare payload'} keeps no reply to "
            "update; export the call as a fixture (`vapi-dev export`) to snapshot it."
        )
    try:
        data = json.loads(fc.path.read_bytes())
        items = data["exchanges"]
        masked = False
        for o in changed:
            ex = o.exchange
            assert ex is not None
            item = items[o.case.index]
            item["reply"], was_masked = _reply(item.get("reply"), ex.status, ex.duration_ms, ex.response_body, mask)
            masked = masked or was_masked
        if masked and not data.get("masked"):
            data["masked"] = True
        write_atomically(fc.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise FixtureError(f"cannot update {fc.source} ({exc.strerror}).") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise FixtureError(f"cannot update {fc.source}: it changed while the tests ran.") from None
    return len(changed)
