"""vapi-dev: receive Vapi server-URL events locally, forward them to your app, show them live."""

__version__ = "0.1.0"
