"""Vapi itself: its message types and reply contracts, credentials, samples and the REST API client."""

# Here rather than in api.py, which imports aiohttp: it is the default of `listen --vapi-api-url`, which
# every `--help` evaluates.
DEFAULT_API_URL = "https://api.vapi.ai"
