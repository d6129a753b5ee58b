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
