"""The interactive inspector (Textual): `vapi-dev ui` and `listen --ui`."""
