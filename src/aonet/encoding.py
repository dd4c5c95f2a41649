"""base64url without padding: how every id, key and signature travels in AO."""
from __future__ import annotations

import base64
import binascii


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ValueError on anything else."""
    if not isinstance(text, str):
        raise ValueError("base64url value must be a string")
    s = text.strip()
    if any(c in s for c in "+/"):
        raise ValueError(f"not base64url: {text[:60]!r}")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {text[:60]!r}") from exc


def id_bytes(tx_id: str) -> bytes:
    """The 32 raw bytes of a 43-character Arweave id; ValueError if it is not one."""
    raw = b64url_decode(tx_id) if isinstance(tx_id, str) and len(tx_id) == 43 else b""
    if len(raw) != 32:
        raise ValueError(f"not a 43-character base64url id: {str(tx_id)[:60]!r}")
    return raw
