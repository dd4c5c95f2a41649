"""The SU's hot-path cryptography: same answers as `DataItem.verify` / `Wallet.sign`, less CPU.

Verifying each posted item and signing its assignment are most of an SU's CPU per message, so:
- The deep hash every data item signs starts with `[b"dataitem", b"1", <sig type>, <owner>]`; its
  accumulator is cached per owner (an SU sees few distinct signers), and the blob hashes of the
  constant pieces (empty target/anchor/data, 32-byte fields) are precomputed: ~11 SHA-384 calls
  instead of 33.
- Ed25519 (and Solana) signatures are checked with libsodium (PyNaCl), about twice as fast as
  OpenSSL here; a signature libsodium refuses is re-checked with the reference verifier, so the
  accepted set is exactly `ans104.verify_signature`'s (libsodium is the stricter of the two).
- RSA public-key objects are cached per owner (building one costs about as much as a verify).
- An Ed25519 SU wallet signs through libsodium (deterministic Ed25519: the same bytes as OpenSSL).
"""
from __future__ import annotations

import hashlib
from typing import Callable

from ..ans104 import DataItem
from ..ans104.signers import ARWEAVE, ED25519, SOLANA, _PSS_VERIFY, verify_signature

try:                                   # optional at import: without PyNaCl we use OpenSSL throughout
    import nacl.bindings as _sodium
    from nacl.exceptions import BadSignatureError as _BadSignature
except ImportError:                    # pragma: no cover - PyNaCl is a declared dependency
    _sodium = None

_sha384 = hashlib.sha384
_MAX_CACHE = 4096


def _blob_tag(n: int) -> bytes:
    return _sha384(b"blob" + str(n).encode()).digest()


_TAG_32 = _blob_tag(32)
_EMPTY_BLOB = _sha384(_blob_tag(0) + _sha384(b"").digest()).digest()
_LIST_8 = _sha384(b"list8").digest()
_prefix_cache: dict[tuple[int, bytes], bytes] = {}
_tag_cache: dict[int, bytes] = {}


def _blob(data: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return _EMPTY_BLOB
    tag = _TAG_32 if n == 32 else _tag_cache.get(n)
    if tag is None:
        if len(_tag_cache) > _MAX_CACHE:
            _tag_cache.clear()
        tag = _tag_cache[n] = _blob_tag(n)
    return _sha384(tag + _sha384(data).digest()).digest()


def _prefix(signature_type: int, owner: bytes) -> bytes:
    """The deep-hash accumulator after the first four of a data item's eight fields."""
    key = (signature_type, owner)
    acc = _prefix_cache.get(key)
    if acc is None:
        acc = _LIST_8
        for chunk in (b"dataitem", b"1", str(signature_type).encode(), owner):
            acc = _sha384(acc + _blob(chunk)).digest()
        if len(_prefix_cache) > _MAX_CACHE:
            _prefix_cache.clear()
        _prefix_cache[key] = acc
    return acc


def signing_message(signature_type: int, owner: bytes, target: bytes | None, anchor: bytes | None,
                    tag_bytes: bytes, data: bytes) -> bytes:
    """`ans104.signing_message`, with the constant parts cached."""
    acc = _prefix(signature_type, owner)
    for chunk in (target or b"", anchor or b"", tag_bytes, data):
        acc = _sha384(acc + _blob(chunk)).digest()
    return acc


_rsa_keys: dict[bytes, object] = {}


def _rsa_verify(owner: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = _rsa_keys.get(owner)
    if key is None:
        try:
            key = rsa.RSAPublicNumbers(65537, int.from_bytes(owner, "big")).public_key()
        except ValueError:
            return False
        if len(_rsa_keys) > _MAX_CACHE:
            _rsa_keys.clear()
        _rsa_keys[owner] = key
    try:
        key.verify(signature, message, _PSS_VERIFY, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_item(item: DataItem) -> bool:
    """True when the item's signature verifies under its owner (exactly `item.verify()`)."""
    st, owner, sig = item.signature_type, item.owner, item.signature
    message = signing_message(st, owner, item.target, item.anchor, item.tag_bytes, item.data)
    if _sodium is not None and st in (ED25519, SOLANA):
        signed = message if st == ED25519 else message.hex().encode()
        try:
            _sodium.crypto_sign_open(sig + signed, owner)
            return True
        except (_BadSignature, ValueError, TypeError):
            pass                        # libsodium is stricter: let the reference verifier decide
    elif st == ARWEAVE:
        return _rsa_verify(owner, message, sig)
    return verify_signature(st, owner, message, sig)


class FastSigner:
    """`signature_type`, `owner`, `sign(message)` of a wallet; libsodium signs for an Ed25519 one."""

    def __init__(self, wallet):
        self.signature_type: int = wallet.signature_type
        self.owner: bytes = wallet.owner
        self.sign: Callable[[bytes], bytes] = wallet.sign
        key = getattr(getattr(wallet, "signer", None), "key", None)
        if _sodium is not None and self.signature_type == ED25519 and hasattr(key, "private_bytes"):
            from cryptography.hazmat.primitives import serialization as ser
            seed = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
            public, secret = _sodium.crypto_sign_seed_keypair(seed)
            if public == self.owner:
                crypto_sign = _sodium.crypto_sign
                self.sign = lambda message: crypto_sign(message, secret)[:64]
