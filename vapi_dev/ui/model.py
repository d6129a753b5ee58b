"""The exchanges the inspector holds (newest last, bounded) and the filtered view the list shows.

Memory is bounded twice: at most ``max_rows`` exchanges and about ``max_bytes`` of bodies; past either, the
oldest are dropped (in chunks, so a flood costs one shift of the lists per chunk, not per exchange). Older
ones stay in the journal (`vapi-dev events`, `show`).
"""

from __future__ import annotations

from collections.abc import Iterable

from vapi_dev.exchange import Exchange
from vapi_dev.redact import Masker
from vapi_dev.ui.filters import Filter

MAX_ROWS = 20_000  # twice the journal's default --keep
MAX_BYTES = 256 * 1024 * 1024  # request and reply bodies held in all
DROP_CHUNK = 0.05  # share of max_rows dropped at once when over


def _size(ex: Exchange) -> int:
    return len(ex.body) + len(ex.response_body) + 512


class Rows:
    """All exchanges (``all``, oldest first) and the positions of those the filter lets through (``shown``).

    An exchange seen again (a Pending one, now Finished; the same row read twice) replaces the one held.
    """

    def __init__(self, mask: Masker, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> None:
        self.mask = mask
        self.max_rows = max(1, max_rows)
        self.max_bytes = max_bytes
        self.all: list[Exchange] = []
        self.shown: list[Exchange] = []
        self.filter = Filter()
        self.dropped = 0  # how many were let go to stay within the bounds
        self._by_id: dict[str, Exchange] = {}
        self._bytes = 0
        self.version = 0  # grows on every change: caches (rendered lines) key on (version, …)

    def __len__(self) -> int:
        return len(self.all)

    def get(self, exchange_id: str) -> Exchange | None:
        return self._by_id.get(exchange_id)

    def add(self, exchanges: Iterable[Exchange]) -> tuple[int, bool]:
        """Append new exchanges, update the known ones; (how many were appended to ``shown``, whether a
        shown one changed in place or went)."""
        appended, changed = 0, False
        for ex in exchanges:
            old = self._by_id.get(ex.id)
            if old is not None:
                changed |= self._replace(old, ex)
                continue
            self._by_id[ex.id] = ex
            self.all.append(ex)
            self._bytes += _size(ex)
            if self.filter.matches(ex, self.mask):
                self.shown.append(ex)
                appended += 1
        if len(self.all) > self.max_rows or self._bytes > self.max_bytes:
            changed |= self._trim()
        self.version += 1
        return appended, changed

    def add_older(self, exchanges: list[Exchange]) -> int:
        """Put exchanges from before the oldest held in front (the journal's backlog); returns how many of
        them are shown. Never beyond the bounds: the backlog fills what room is left."""
        room = min(self.max_rows - len(self.all), len(exchanges))
        fresh = [ex for ex in exchanges[len(exchanges) - room :] if ex.id not in self._by_id] if room > 0 else []
        for ex in fresh:
            self._by_id[ex.id] = ex
            self._bytes += _size(ex)
        self.all[:0] = fresh
        front = [ex for ex in fresh if self.filter.matches(ex, self.mask)]
        self.shown[:0] = front
        self.version += 1
        return len(front)

    def _replace(self, old: Exchange, new: Exchange) -> bool:
        self._by_id[new.id] = new
        self._bytes += _size(new) - _size(old)
        i = _index(self.all, old)
        if i is not None:
            self.all[i] = new
        j = _index(self.shown, old)
        keep = self.filter.matches(new, self.mask)
        if j is not None:
            if keep:
                self.shown[j] = new
            else:
                del self.shown[j]
            return True
        if keep:  # it matches now (finished with a problem, say): shown in its place
            self.refilter()
            return True
        return False

    def _trim(self) -> bool:
        chunk = max(1, int(self.max_rows * DROP_CHUNK))
        drop = min(len(self.all) - self.max_rows + chunk, len(self.all) - 1) if len(self.all) > self.max_rows else 0
        left = self._bytes - sum(_size(ex) for ex in self.all[:drop])
        while left > self.max_bytes and drop < len(self.all) - 1:  # the newest always stays
            left -= _size(self.all[drop])
            drop += 1
        if drop <= 0:
            return False
        gone = self.all[:drop]
        del self.all[:drop]
        for ex in gone:
            self._by_id.pop(ex.id, None)
            self._bytes -= _size(ex)
        self.dropped += drop
        ids = {ex.id for ex in gone}
        before = len(self.shown)
        cut = 0
        while cut < len(self.shown) and self.shown[cut].id in ids:
            cut += 1
        del self.shown[:cut]
        return len(self.shown) != before

    def set_filter(self, flt: Filter) -> None:
        self.filter = flt
        self.refilter()

    def refilter(self) -> None:
        flt = self.filter
        self.shown = list(self.all) if not flt.active else [ex for ex in self.all if flt.matches(ex, self.mask)]
        self.version += 1

    def clear(self) -> None:
        self.all, self.shown, self._by_id, self._bytes = [], [], {}, 0
        self.version += 1


def _index(items: list[Exchange], ex: Exchange) -> int | None:
    """Where ``ex`` is in ``items``, looked for from the end (what changes is nearly always recent)."""
    for i in range(len(items) - 1, -1, -1):
        if items[i] is ex:
            return i
    return None
