"""The CU's typed errors: each carries the HTTP status AO's CU answers with, so the shell maps them 1:1."""
from __future__ import annotations

from ..errors import StatusError


class CUError(StatusError):
    """Base: an error the CU reports as `{"error": "<message>"}` with `status`."""


class NotFound(CUError):
    """Unknown process or message (404)."""
    status = 404


class BadRequest(CUError):
    """Malformed request: bad query, bad dry-run body, bad cursor (400)."""
    status = 400


class LimitExceeded(CUError):
    """Memory-Limit / Compute-Limit over (or missing against) this unit's maxima (413, as AO)."""
    status = 413


class Unsupported(CUError):
    """Module-Format / encodings / extensions this unit cannot run (422, as AO)."""
    status = 422


class UpstreamError(CUError):
    """The SU or gateway could not be read, or answered something unusable (502)."""
    status = 502


class ChainError(CUError):
    """The SU's schedule breaks the hash chain or the nonce sequence: refuse to evaluate it (502)."""
    status = 502


class InvalidProcess(CUError):
    """The process item is not an AO process (missing Module, bad Cron-Interval...) (400)."""
    status = 400
