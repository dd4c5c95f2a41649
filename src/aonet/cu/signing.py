"""Signed responses: every result the CU serves carries its wallet's signature (see docs/cu.md).

The CU signs `deepHash(["aonet-cu-response", "1", <request target>, <body>])` with its wallet, the
same signers and deep hash as ANS-104 items, and sends in response headers:

    X-Aonet-Address         the CU's address (what GET / reports)
    X-Aonet-Owner           base64url public key
    X-Aonet-Signature-Type  ANS-104 signature type (1 Arweave, 2 Ed25519, 3 Ethereum)
    X-Aonet-Signature       base64url signature
    X-Aonet-Target          the request target that was signed: path + "?" + raw query (or just path)

Binding the request target means a signed result for one message cannot be passed off as the
result of another. A client checks with `verify_result_signature(body, headers, target)`.
"""
from __future__ import annotations

from typing import Mapping

from ..ans104 import deep_hash, owner_address, verify_signature
from ..encoding import b64url_decode, b64url_encode

DOMAIN = b"aonet-cu-response"
VERSION = b"1"
H_ADDRESS, H_OWNER, H_TYPE, H_SIG, H_TARGET = ("X-Aonet-Address", "X-Aonet-Owner", "X-Aonet-Signature-Type",
                                              "X-Aonet-Signature", "X-Aonet-Target")


class ResultSignatureError(ValueError):
    """A response's signature is missing, malformed, for another target, or does not verify."""


def signing_message(target: str, body: bytes) -> bytes:
    return deep_hash([DOMAIN, VERSION, target.encode("utf-8"), bytes(body)])


def sign_response(wallet, target: str, body: bytes) -> dict[str, str]:
    """The headers that sign `body` as the answer to `target`."""
    sig = wallet.sign(signing_message(target, body))
    return {H_ADDRESS: wallet.address, H_OWNER: b64url_encode(wallet.owner), H_TYPE: str(wallet.signature_type),
            H_SIG: b64url_encode(sig), H_TARGET: target}


def _header(headers: Mapping, name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    raise ResultSignatureError(f"response has no {name} header")


def verify_result_signature(body: bytes, headers: Mapping, target: str | None = None, *,
                            expected_address: str | None = None) -> str:
    """Check a CU response; returns the signing CU's address.

    `target` is the request target you sent (path + "?" + query); when given it must equal the
    signed one. `expected_address` pins the CU (e.g. the address its `GET /` reported).
    """
    signed_target = _header(headers, H_TARGET)
    if target is not None and target != signed_target:
        raise ResultSignatureError(f"the response was signed for {signed_target!r}, not {target!r}")
    try:
        sig_type = int(_header(headers, H_TYPE))
        owner = b64url_decode(_header(headers, H_OWNER))
        sig = b64url_decode(_header(headers, H_SIG))
    except ValueError as exc:
        raise ResultSignatureError(f"malformed signature headers: {exc}") from None
    address = _header(headers, H_ADDRESS)
    try:
        derived = owner_address(sig_type, owner)
    except Exception as exc:  # noqa: BLE001 - an unknown type is a bad signature
        raise ResultSignatureError(f"unusable signer: {exc}") from None
    if derived != address:
        raise ResultSignatureError(f"X-Aonet-Address {address} does not belong to the key that signed")
    if expected_address is not None and address != expected_address:
        raise ResultSignatureError(f"signed by {address}, expected {expected_address}")
    try:
        ok = verify_signature(sig_type, owner, signing_message(signed_target, body), sig)
    except Exception:  # noqa: BLE001
        ok = False
    if not ok:
        raise ResultSignatureError("the CU signature does not verify over this body")
    return address
