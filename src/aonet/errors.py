"""The one base for errors a unit answers over HTTP: each carries its status, the message is the text.

Pure (no web framework): unit cores raise these; `aonet.http.JSON_ERRORS` turns any of them into
`{"error": "<message>"}` with that status, so no unit needs its own mapping.
"""
from __future__ import annotations


class StatusError(Exception):
    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self)
