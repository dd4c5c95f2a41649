"""The SDK's exceptions: one base class, one subclass per way a call can fail.

A unit that answers with an error keeps its JSON (`{"error": "..."}`) on the exception, so callers can
show exactly what the MU, SU, CU or gateway said.
"""
from __future__ import annotations

from typing import Any


class AoError(Exception):
    """Anything the aonet SDK raises."""


class ConfigError(AoError, ValueError):
    """The client lacks what a call needs: a unit URL, a wallet, a scheduler address."""


class UnitUnreachable(AoError, ConnectionError):
    """No HTTP answer from a unit (refused, reset, DNS, timeout)."""

    def __init__(self, unit: str, url: str, reason: str):
        self.unit, self.url, self.reason = unit, url, reason
        super().__init__(f"{unit.upper()} at {url} is unreachable: {reason}")


class UnitError(AoError):
    """A unit answered with a non-success status; `.error` is its own message, `.body` its JSON."""

    def __init__(self, unit: str, method: str, url: str, status: int, error: str, body: Any = None):
        self.unit, self.method, self.url, self.status, self.error, self.body = unit, method, url, status, error, body
        super().__init__(f"{unit.upper()} {method} {url} -> {status}: {error}")


class RateLimited(UnitError):
    """HTTP 429: the unit asks the caller to slow down (the CU limits dry-runs per IP)."""


class ProtocolError(AoError):
    """A unit answered 2xx with a body that does not have the shape the protocol promises."""


class CascadeTimeout(AoError, TimeoutError):
    """The cascade of a message was still running when the wait gave up; `.trace` is the last view."""

    def __init__(self, message_id: str, timeout: float, trace: Any = None):
        self.message_id, self.timeout, self.trace = message_id, timeout, trace
        super().__init__(f"cascade of {message_id} not finished after {timeout:g} s")
