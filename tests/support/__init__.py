"""Helpers shared by the tests (conftest.py files hold only fixtures and import from here).

apps        the fake developer app (aiohttp) and a way to serve any aiohttp app on a free port
background  a developer app and a vapi-dev listener on a background event loop (for CliRunner tests)
cli         the real `vapi-dev` CLI in a subprocess
cli_runner  the journal commands in-process through typer's CliRunner
exchanges   an Exchange factory built on the sample payloads
http_client one ``post()`` for "send this body, give me the reply"
listener    an in-process listener and the sink that records its events
net         free ports and bounded waits on a condition
ngrok       installing the fake ngrok agent (tests/fakes/fake_ngrok.py) and watching its processes
raw_http    apps and callers written byte by byte over raw sockets
"""
