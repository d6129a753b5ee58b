"""`vapi-dev test`: recorded exchanges and samples sent to an app and checked (runner, expectations, reports)."""
