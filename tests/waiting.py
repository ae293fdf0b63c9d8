"""Polling for what a background thread or another process does, with a deadline."""

import time


def wait_for(predicate, timeout: float = 10.0):
    """The first truthy value of predicate(), checked every 50 ms; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
