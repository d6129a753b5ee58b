"""Allows `python -m vapi_dev`."""

from vapi_dev.cli import main

main()
