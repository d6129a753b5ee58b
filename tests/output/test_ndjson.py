"""The NDJSON sink: one line per exchange, every field of the record."""

from __future__ import annotations

import io
import json

from tests.support.exchanges import EXCHANGE_FIELDS, make_exchange
from vapi_dev.exchange import Finished
from vapi_dev.output.ndjson import NdjsonSink
from vapi_dev.vapi.samples import TOOL_CALL_ID


async def test_ndjson_sink_writes_every_exchange() -> None:
    buf = io.StringIO()
    sink = NdjsonSink(buf)
    reply = {"results": [{"toolCallId": TOOL_CALL_ID, "result": "Sunny"}]}
    for _ in range(300):
        sink.emit(Finished(make_exchange("tool-calls", reply, call_id="call_9f3a2b", took_s=0.0123)))
    await sink.aclose()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 300
    rec = json.loads(lines[0])
    assert set(rec) >= EXCHANGE_FIELDS and rec["duration_ms"] == 12.3


async def test_records_are_masked_without_bodies_too() -> None:
    """--json without -v: the run's Masker (``mask=``) still masks the query, target URL and summary."""
    from vapi_dev.redact import MASK, Masker

    secret = "configured-secret-1"
    payload = {
        "message": {
            "type": "tool-calls",
            "toolCallList": [{"id": "t1", "function": {"name": "f", "arguments": {"apiKey": "k-1", "q": secret}}}],
        }
    }
    ex = make_exchange(
        "tool-calls", payload=payload, query=f"token=t-1&s={secret}", forward_url=f"http://app.invalid/?s={secret}"
    )
    buf = io.StringIO()
    sink = NdjsonSink(buf, mask=Masker([secret]))
    sink.emit(Finished(ex))
    await sink.aclose()
    rec = json.loads(buf.getvalue())
    assert rec["query"] == f"token={MASK}&s={MASK}" and rec["forward_url"] == f"http://app.invalid/?s={MASK}"
    assert rec["summary"] == f"f(apiKey={MASK}, q={MASK})" and "request_body" not in rec
    for leak in (secret, "k-1", "t-1"):
        assert leak not in buf.getvalue()
