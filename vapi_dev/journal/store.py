"""The exchange journal: a bounded SQLite store of every exchange, written beside the forward path."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vapi_dev.config import data_file
from vapi_dev.errors import VapiDevError
from vapi_dev.exchange import AuthResult, Exchange, Headers, Problem, parse_json
from vapi_dev.redact import MASK, HeaderRedactor, secret_forms  # the forms of a value the Masker looks for
from vapi_dev.vapi.messages import normalise_type, raw_type

DEFAULT_KEEP = 10_000
SCHEMA_VERSION = 2  # v2: request_bytes, request_truncated, masked_* (a v1 file gains them in place, see _migrate)
EVICT_TO = 0.9  # over max_size, the oldest rows go until the journal is back to this share of it
SIZE_CHECKS = 32  # the used size is measured after about max_size / SIZE_CHECKS bytes written, not every row
ROW_OVERHEAD = 512  # bytes a row costs beside its bodies and headers (columns, index entries), for eviction
CHUNK_BYTES = 8 * 1024 * 1024  # one transaction writes at most about this much: the WAL stays small
WAL_LIMIT = 64 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL, received_at REAL NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    query TEXT NOT NULL, headers TEXT NOT NULL, masked_headers TEXT NOT NULL, body BLOB NOT NULL,
    message_type TEXT, call_id TEXT, reply_needed INTEGER NOT NULL, deadline_s REAL NOT NULL,
    forward_url TEXT NOT NULL, status INTEGER, response_headers TEXT NOT NULL,
    response_body BLOB NOT NULL, response_bytes INTEGER NOT NULL, response_truncated INTEGER NOT NULL,
    streamed INTEGER NOT NULL, duration_ms REAL, first_byte_ms REAL, error TEXT, error_kind TEXT,
    fallback INTEGER NOT NULL, auth TEXT, problems TEXT NOT NULL,
    request_bytes INTEGER NOT NULL DEFAULT -1, request_truncated INTEGER NOT NULL DEFAULT 0,
    masked_path TEXT, masked_query TEXT, masked_body BLOB, masked_forward_url TEXT, masked_response_body BLOB
);
CREATE INDEX IF NOT EXISTS exchanges_call ON exchanges(call_id);
CREATE INDEX IF NOT EXISTS exchanges_id ON exchanges(id);
"""
_COLUMNS = (
    "id",
    "received_at",
    "method",
    "path",
    "query",
    "headers",
    "masked_headers",
    "body",
    "message_type",
    "call_id",
    "reply_needed",
    "deadline_s",
    "forward_url",
    "status",
    "response_headers",
    "response_body",
    "response_bytes",
    "response_truncated",
    "streamed",
    "duration_ms",
    "first_byte_ms",
    "error",
    "error_kind",
    "fallback",
    "auth",
    "problems",
    "request_bytes",
    "request_truncated",
    "masked_path",
    "masked_query",
    "masked_body",
    "masked_forward_url",
    "masked_response_body",
)
# Columns added since v1, as ALTER TABLE adds them to an older file (a v1 file, or a v2 one written before the
# masked_* columns). request_bytes -1: the body's length (a v1 row holds its whole body), which is what
# Exchange makes of -1; masked_* NULL: nothing to mask, the displays read the raw column.
_ADDED_COLUMNS = (
    ("request_bytes", "INTEGER NOT NULL DEFAULT -1"),
    ("request_truncated", "INTEGER NOT NULL DEFAULT 0"),
    ("masked_path", "TEXT"),
    ("masked_query", "TEXT"),
    ("masked_body", "BLOB"),
    ("masked_forward_url", "TEXT"),
    ("masked_response_body", "BLOB"),
)
# The display commands (events, show, export) read these in place of the raw columns when they are not NULL:
# they run later, without the secret values listen was given, and the raw columns keep the exact bytes replay
# sends. Only configured secret values are masked here; the name rules are applied when the rows are shown.
_MASKED = {
    "path": "masked_path",
    "query": "masked_query",
    "body": "masked_body",
    "forward_url": "masked_forward_url",
    "response_body": "masked_response_body",
}


class JournalError(VapiDevError):
    """The journal cannot be opened or written; ``message`` is one sentence saying what to do."""


class JournalMissing(JournalError):
    """There is no journal file yet (nothing has been recorded)."""


def default_journal_path() -> Path:
    """``$VAPI_DEV_HOME/journal.sqlite3``, else the platform's user data directory."""
    return data_file("journal.sqlite3")


class _Scrubber:
    """Replaces the configured secret values, in every form redact.py looks for (as is, JSON-escaped,
    URL-encoded; longest first), by MASK in text and in bytes. Built once per configuration (_scrubber)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.forms = secret_forms(secrets)
        self.raw = tuple(f.encode() for f in self.forms)
        self.longest = max(map(len, self.raw), default=0)

    def text(self, text: str) -> str | None:
        """``text`` masked, or None when no value occurs in it (the common case: one ``in`` per form)."""
        if not self.forms or not any(f in text for f in self.forms):
            return None
        for f in self.forms:
            text = text.replace(f, MASK)
        return text

    def body(self, body: bytes, stored: bytes) -> bytes | None:
        """A masked copy of ``body`` holding what ``stored`` (the kept part of it) holds, or None when no value
        occurs there. A value that starts in the kept part is found whole, so no piece of it is kept either."""
        if not self.raw or not stored:
            return None
        end = len(stored) + self.longest - 1 if len(stored) < len(body) else len(body)
        if not any(body.find(f, 0, end) >= 0 for f in self.raw):
            return None
        masked = bytes(body[:end])
        for f in self.raw:
            masked = masked.replace(f, _MASK_BYTES)
        return masked[: len(stored)] if len(stored) < len(body) else masked


_MASK_BYTES = MASK.encode()


@functools.lru_cache(maxsize=8)
def _redactor(secrets: tuple[str, ...], names: tuple[str, ...]) -> HeaderRedactor:
    return HeaderRedactor(secrets, names)


@functools.lru_cache(maxsize=8)
def _scrubber(secrets: tuple[str, ...]) -> _Scrubber:
    return _Scrubber(secrets)


def _masked(redactor: HeaderRedactor, headers: Headers) -> tuple[Headers, list[str]]:
    """(masked headers, lower-cased names that were masked) — replay drops those and signs again."""
    out = redactor(headers)
    if out is headers:
        return headers, []
    return out, sorted({k.lower() for (k, new), (_, old) in zip(out, headers, strict=True) if new != old})


_NO_PROBLEMS = json.dumps([])
_encode = json.JSONEncoder().encode  # the C encoder, without json.dumps' argument handling


def _cut(body: bytes, limit: int | None) -> bytes:
    return body if limit is None or len(body) <= limit else body[:limit]


def _row(ex: Exchange, redactor: HeaderRedactor, scrub: _Scrubber, limit: int | None) -> tuple[Any, ...]:
    """The row of one exchange, each body cut to ``limit`` bytes (None: whole), with masked copies of what
    holds a configured secret value (see _MASKED)."""
    headers, masked = _masked(redactor, ex.headers)
    resp_headers = redactor(ex.response_headers)
    first_byte = None if ex.first_byte is None else (ex.first_byte - ex.started) * 1000.0
    # A request refused by --enforce-auth came from someone without the credentials: its headers and size
    # are what tell the story, its body is anyone's data and is not kept.
    body = b"" if ex.error_kind == "auth" else _cut(ex.body, limit)
    reply = _cut(ex.response_body, limit)
    return (
        ex.id,
        ex.received_at,
        ex.method,
        ex.path,
        ex.query,
        _encode(headers),
        _encode(masked) if masked else _NO_PROBLEMS,
        bytes(body),
        raw_type(ex),  # as sent; normalised again when read
        ex.call_id,
        int(ex.reply_needed),
        ex.deadline_s,
        ex.forward_url,
        ex.status,
        _encode(resp_headers),
        bytes(reply),
        ex.response_bytes,
        int(ex.response_truncated or len(reply) < len(ex.response_body)),
        int(ex.streamed),
        ex.duration_ms,
        first_byte,
        ex.error,
        ex.error_kind,
        int(ex.fallback),
        _encode(ex.auth.to_json()) if ex.auth else None,
        _encode([p.to_json() for p in ex.problems]) if ex.problems else _NO_PROBLEMS,
        ex.request_bytes,
        int(ex.request_truncated or len(body) < len(ex.body)),
        scrub.text(ex.path),
        scrub.text(ex.query),
        scrub.body(ex.body, body),
        scrub.text(ex.forward_url),
        scrub.body(ex.response_body, reply),
    )


_LARGE = tuple(
    _COLUMNS.index(c)
    for c in ("body", "response_body", "headers", "response_headers", "masked_body", "masked_response_body")
)
# What _evict counts of a row, in SQL; length() of a BLOB reads the record header only, not the body's pages.
_SIZE_SQL = (
    "length(body) + length(response_body) + length(headers) + length(response_headers)"
    " + ifnull(length(masked_body), 0) + ifnull(length(masked_response_body), 0)"
)


def _stored_bytes(row: tuple[Any, ...]) -> int:
    """About what a row takes on disk: its bodies (masked copies too) and headers, plus the rest (as _evict
    counts it)."""
    return sum(len(row[i]) for i in _LARGE if row[i] is not None) + ROW_OVERHEAD


def exchange_from_row(row: sqlite3.Row, masked: bool = False) -> Exchange:
    """Rebuild an Exchange (with ``masked``, the masked copies in place of the raw columns that have one);
    monotonic times become offsets from 0 so durations still work."""
    col = {k: (row[m] if masked and row[m] is not None else row[k]) for k, m in _MASKED.items()}
    body = bytes(col["body"])
    truncated = bool(row["request_truncated"])
    payload = None if truncated else parse_json(body)  # a cut body is not JSON: no need to scan it
    auth = json.loads(row["auth"]) if row["auth"] else None
    return Exchange(
        id=row["id"],
        received_at=row["received_at"],
        started=0.0,
        method=row["method"],
        path=col["path"],
        query=col["query"],
        headers=[(k, v) for k, v in json.loads(row["headers"])],
        body=body,
        payload=payload,
        request_bytes=row["request_bytes"],  # -1 (a v1 row): the body's length
        request_truncated=truncated,
        message_type=normalise_type(row["message_type"]) if row["message_type"] else None,  # rows of old journals
        call_id=row["call_id"],
        reply_needed=bool(row["reply_needed"]),
        deadline_s=row["deadline_s"],
        forward_url=col["forward_url"],
        status=row["status"],
        response_headers=[(k, v) for k, v in json.loads(row["response_headers"])],
        response_body=bytes(col["response_body"]),
        response_bytes=row["response_bytes"],
        response_truncated=bool(row["response_truncated"]),
        streamed=bool(row["streamed"]),
        first_byte=None if row["first_byte_ms"] is None else row["first_byte_ms"] / 1000.0,
        finished=None if row["duration_ms"] is None else row["duration_ms"] / 1000.0,
        error=row["error"],
        error_kind=row["error_kind"],
        fallback=bool(row["fallback"]),
        auth=AuthResult(auth["method"], bool(auth["ok"]), auth.get("reason", "")) if auth else None,
        problems=[Problem(p["level"], p["code"], p["message"]) for p in json.loads(row["problems"])],
    )


class Journal:
    """A SQLite file of exchanges (WAL, mode 0600) keeping the newest ``keep`` rows.

    A listener also bounds the disk: each body is stored up to ``body_limit`` bytes (None: whole; the
    real size and that it was cut are recorded), and past ``max_size`` bytes in all the oldest rows go.
    One connection, guarded by a lock, shared by the writer thread and readers.

    Readers get the raw rows (what replay sends); with ``masked`` (the flag, or the readers' argument) the
    copies with the configured secret values masked, for display (see _MASKED).
    """

    def __init__(
        self,
        path: Path | None = None,
        keep: int = DEFAULT_KEEP,
        *,
        create: bool = True,
        body_limit: int | None = None,
        max_size: int | None = None,
        masked: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self.masked = masked
        self.keep = max(1, keep)
        self.body_limit = None if body_limit is None else max(0, body_limit)
        self.max_size = max_size if max_size is not None and max_size > 0 else None
        self._check_every = max(4096, (self.max_size or 0) // SIZE_CHECKS)
        self._chunk = min(CHUNK_BYTES, self._check_every) if self.max_size else CHUNK_BYTES
        self._since_check = self._check_every  # the first write measures: the file may be over already
        self._lock = threading.Lock()
        if not self.path.exists():
            if not create:
                raise JournalMissing(f"no journal at {self.path} yet — run `vapi-dev listen` first.")
            self._create_file()
        elif self.path.is_dir():
            raise JournalError(f"{self.path} is a directory, not a journal file; pass --journal FILE.")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
        except sqlite3.Error as exc:
            raise JournalError(
                f"cannot open the journal {self.path} ({exc}); pass --journal with another path."
            ) from exc
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise JournalError(
                    f"{self.path} was written by another vapi-dev version (schema {version}); "
                    "move it away or pass --journal with another path."
                )
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self._db.execute("SELECT seq FROM exchanges LIMIT 1").fetchall()
            if create:  # a listener is about to write: find damaged pages now, not halfway through a call
                verdict = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if verdict != "ok":
                    detail = "; ".join(line for line in str(verdict).splitlines() if not line.startswith("***"))
                    raise sqlite3.DatabaseError(f"integrity check: {detail}")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(
                f"{self.path} is not a vapi-dev journal or is damaged ({exc}); "
                "move it away or pass --journal with another path."
            ) from exc
        self._restrict_permissions()

    def _migrate(self) -> None:
        """Bring a v1 file (or an early v2 one) to v2 in place: ALTER TABLE adds the missing columns without
        rewriting rows."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(exchanges)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in have:
                self._db.execute(f"ALTER TABLE exchanges ADD COLUMN {name} {decl}")

    def _create_file(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal {self.path} ({exc.strerror}); pass --journal or set VAPI_DEV_HOME."
            ) from exc

    def _restrict_permissions(self) -> None:
        # SQLite gives -wal/-shm the main file's mode; chmod anyway in case they pre-existed.
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            with contextlib.suppress(OSError):
                if p.exists() and p.stat().st_mode & 0o077:
                    p.chmod(0o600)

    # -- writing ----------------------------------------------------------------------------------

    def append(self, exchanges: Iterable[Exchange], secrets: Sequence[str] = (), names: Sequence[str] = ()) -> int:
        """Write a batch, then drop rows beyond ``keep`` (and the oldest beyond ``max_size``); returns rows written.

        ``secrets`` are secret values and ``names`` extra secret header names (from AuthConfig),
        masked in stored headers. The request body is stored untouched (up to ``body_limit``): replay
        needs its exact bytes; where a secret value occurs in a body, the path, query or forward URL, a
        masked copy is stored beside it for the display commands (NULL when there is none). A large batch
        is written in several transactions (CHUNK_BYTES, or less with a small ``max_size``), the used size
        measured between them: the file stays near its bound.
        """
        redactor = _redactor(tuple(secrets), tuple(names))
        scrub = _scrubber(tuple(secrets))
        rows = [_row(ex, redactor, scrub, self.body_limit) for ex in exchanges]
        if not rows:
            return 0
        insert = f"INSERT INTO exchanges ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})"
        try:
            with self._lock:
                chunk: list[tuple[Any, ...]] = []
                size = 0
                for i, row in enumerate(rows):
                    chunk.append(row)
                    size += _stored_bytes(row)
                    if size >= self._chunk or i == len(rows) - 1:
                        with self._db:
                            self._db.executemany(insert, chunk)
                            self._db.execute(
                                "DELETE FROM exchanges WHERE seq <= (SELECT MAX(seq) FROM exchanges) - ?",
                                (self.keep,),
                            )
                        self._since_check += size
                        chunk, size = [], 0
                        if self.max_size is not None and self._since_check >= self._check_every:
                            self._since_check = 0
                            self._evict(self.max_size)
        except sqlite3.Error as exc:
            raise JournalError(
                f"cannot write to the journal {self.path} ({exc}); exchanges are not recorded until it can "
                "write again, forwarding goes on — free disk space, or restart with --journal PATH on "
                "another disk, or with --no-journal."
            ) from exc
        return len(rows)

    def used_bytes(self) -> int:
        """Bytes the rows take (pages in use; freed pages are reused before the file grows)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._db.execute("PRAGMA page_size").fetchone()[0])

    def _evict(self, max_size: int) -> None:
        """Over ``max_size``: drop the oldest rows until about EVICT_TO of it is used (the newest row stays)."""
        for _ in range(4):  # the estimate below is close; a second pass catches what it missed
            used = self.used_bytes()
            if used <= max_size:
                return
            excess = used - int(max_size * EVICT_TO)
            freed, last = 0, None
            sizes = self._db.execute(
                f"SELECT seq, {_SIZE_SQL} FROM exchanges WHERE seq < (SELECT MAX(seq) FROM exchanges) ORDER BY seq"
            )
            for seq, size in sizes:
                freed += size + ROW_OVERHEAD
                last = seq
                if freed >= excess:
                    break
            sizes.close()
            if last is None:
                return
            with self._db:
                self._db.execute("DELETE FROM exchanges WHERE seq <= ?", (last,))

    # -- reading ----------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any], masked: bool | None) -> list[Exchange]:
        try:
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path} ({exc}).") from exc
        on = self.masked if masked is None else masked
        return [exchange_from_row(r, on) for r in rows]

    def recent(
        self, limit: int = 50, call_id: str | None = None, type: str | None = None, *, masked: bool | None = None
    ) -> list[Exchange]:
        """The newest ``limit`` exchanges (optionally of one call / type), oldest first; ``masked`` (None: the
        journal's flag) reads the masked copies."""
        where: list[str] = []
        args: list[Any] = []
        if call_id:
            where.append("call_id = ?")
            args.append(call_id)
        if type:  # 'transcript' also finds 'transcript[transcriptType="final"]'; a bracketed type only itself
            if "[" in type:
                where.append("message_type = ?")
                args.append(type)
            else:
                where.append("(message_type = ? OR substr(message_type, 1, ?) = ?)")
                args.extend([type, len(type) + 1, type + "["])
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        sql = f"SELECT * FROM exchanges {cond} ORDER BY seq DESC LIMIT ?"
        rows = self._query(sql, [*args, max(0, limit)], masked)
        return rows[::-1]

    def get(self, key: str, *, masked: bool | None = None) -> Exchange | None:
        """One exchange by id (the newest with that id), ``last``, or journal row number."""
        if key == "last":
            rows = self._query("SELECT * FROM exchanges ORDER BY seq DESC LIMIT 1", [], masked)
        elif key.isdigit():
            rows = self._query("SELECT * FROM exchanges WHERE seq = ?", [int(key)], masked)
        else:
            rows = self._query("SELECT * FROM exchanges WHERE id = ? ORDER BY seq DESC LIMIT 1", [key], masked)
        return rows[0] if rows else None

    def _exists(self, column: str, value: str) -> bool:
        try:
            with self._lock:
                return (
                    self._db.execute(f"SELECT 1 FROM exchanges WHERE {column} = ? LIMIT 1", (value,)).fetchone()
                    is not None
                )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path} ({exc}).") from exc

    def _distinct(self, column: str, prefix: str, limit: int) -> list[str]:
        sql = (
            f"SELECT {column} FROM exchanges WHERE substr({column}, 1, ?) = ? GROUP BY {column}"
            f" ORDER BY MAX(seq) DESC LIMIT ?"
        )
        try:
            with self._lock:
                return [r[0] for r in self._db.execute(sql, (len(prefix), prefix, max(0, limit))).fetchall()]
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path} ({exc}).") from exc

    def ids_with_prefix(self, prefix: str, limit: int = 11) -> list[str]:
        """The distinct exchange ids starting with ``prefix`` (newest first, at most ``limit``); an exact id
        is the only one returned."""
        if not prefix:
            return []
        return [prefix] if self._exists("id", prefix) else self._distinct("id", prefix, limit)

    def calls_with_prefix(self, prefix: str, limit: int = 11) -> list[str]:
        """The distinct call ids starting with ``prefix`` (newest first, at most ``limit``); an exact call id
        is the only one returned."""
        if not prefix:
            return []
        return [prefix] if self._exists("call_id", prefix) else self._distinct("call_id", prefix, limit)

    def masked_header_names(self, exchange_id: str) -> list[str]:
        """The lower-cased names of the request headers stored masked in the newest exchange ``exchange_id``
        (what replay must sign again or leave out)."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT masked_headers FROM exchanges WHERE id = ? ORDER BY seq DESC LIMIT 1", (exchange_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path} ({exc}).") from exc
        return [str(n) for n in json.loads(row[0])] if row else []

    def by_call(self, call_id: str, *, masked: bool | None = None) -> list[Exchange]:
        """Every stored exchange of one call, oldest first."""
        return self._query("SELECT * FROM exchanges WHERE call_id = ? ORDER BY seq", [call_id], masked)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
