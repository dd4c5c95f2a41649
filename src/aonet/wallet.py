"""Wallets: key files and addresses. Arweave JWK (RSA-4096), Ethereum (hex secp256k1), Ed25519 (OKP JWK).

A Wallet is a signer with a file format: `Wallet.generate()`, `Wallet.load(path)`, `wallet.save(path)`,
`wallet.address`, and `wallet.sign_item(...)` to build signed ANS-104 data items.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from .ans104 import (ARWEAVE, ED25519, ETHEREUM, ArweaveSigner, DataItem, Ed25519Signer, EthereumSigner,
                     owner_address)
from .encoding import b64url_decode, b64url_encode

KINDS = ("arweave", "ethereum", "ed25519")


class WalletError(ValueError):
    """A key file that cannot be read as any supported wallet."""


def _b64int(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


def _intb64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Wallet:
    def __init__(self, signer: ArweaveSigner | EthereumSigner | Ed25519Signer):
        self.signer = signer

    # ---- identity -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return {ARWEAVE: "arweave", ETHEREUM: "ethereum", ED25519: "ed25519"}[self.signer.signature_type]

    @property
    def signature_type(self) -> int:
        return self.signer.signature_type

    @property
    def owner(self) -> bytes:
        return self.signer.owner

    @property
    def address(self) -> str:
        return owner_address(self.signer.signature_type, self.signer.owner)

    def __repr__(self) -> str:
        return f"Wallet({self.kind}, {self.address})"

    # ---- signing --------------------------------------------------------------------------
    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(message)

    def sign_item(self, data: bytes | str = b"", *, target: bytes | str | None = None,
                  anchor: bytes | str | None = None, tags: Iterable = ()) -> DataItem:
        return DataItem.create(self.signer, data, target=target, anchor=anchor, tags=tags)

    # ---- creation and files ---------------------------------------------------------------
    @classmethod
    def generate(cls, kind: str = "arweave") -> "Wallet":
        if kind == "arweave":
            return cls(ArweaveSigner(rsa.generate_private_key(public_exponent=65537, key_size=4096)))
        if kind == "ethereum":
            while True:
                key = secrets.token_bytes(32)
                try:
                    return cls(EthereumSigner(key))
                except ValueError:  # astronomically unlikely out-of-range scalar
                    continue
        if kind == "ed25519":
            return cls(Ed25519Signer(secrets.token_bytes(32)))
        raise WalletError(f"unknown wallet kind {kind!r}; choose one of {', '.join(KINDS)}")

    def to_json(self) -> dict:
        s = self.signer
        if isinstance(s, ArweaveSigner):
            priv = s.key.private_numbers()
            pub = priv.public_numbers
            return {"kty": "RSA", "e": _intb64(pub.e), "n": b64url_encode(s.owner), "d": _intb64(priv.d),
                    "p": _intb64(priv.p), "q": _intb64(priv.q), "dp": _intb64(priv.dmp1),
                    "dq": _intb64(priv.dmq1), "qi": _intb64(priv.iqmp)}
        if isinstance(s, EthereumSigner):
            return {"kty": "EC", "crv": "secp256k1", "d": b64url_encode(s.key.secret),
                    "x": b64url_encode(s.owner[1:33]), "y": b64url_encode(s.owner[33:])}
        from cryptography.hazmat.primitives import serialization as ser
        seed = s.key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
        return {"kty": "OKP", "crv": "Ed25519", "d": b64url_encode(seed), "x": b64url_encode(s.owner)}

    @classmethod
    def from_json(cls, jwk: dict) -> "Wallet":
        try:
            kty = jwk.get("kty")
            if kty == "RSA":
                n, e = _b64int(jwk["n"]), _b64int(jwk["e"])
                p, q, d = _b64int(jwk["p"]), _b64int(jwk["q"]), _b64int(jwk["d"])
                pub = rsa.RSAPublicNumbers(e, n)
                priv = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                             rsa.rsa_crt_iqmp(p, q), pub)
                return cls(ArweaveSigner(priv.private_key()))
            if kty == "EC" and jwk.get("crv") == "secp256k1":
                return cls(EthereumSigner(b64url_decode(jwk["d"])))
            if kty == "OKP" and jwk.get("crv") == "Ed25519":
                return cls(Ed25519Signer(b64url_decode(jwk["d"])))
        except (KeyError, ValueError, TypeError) as exc:
            raise WalletError(f"invalid {kty} key: {exc}") from exc
        raise WalletError(f"unsupported key type {jwk.get('kty')!r} (want RSA, EC secp256k1 or OKP Ed25519)")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Wallet":
        """Read a JWK file, or a file holding a 64-hex-digit Ethereum private key."""
        text = Path(path).read_text().strip()
        if text.startswith("{"):
            try:
                return cls.from_json(json.loads(text))
            except json.JSONDecodeError as exc:
                raise WalletError(f"{path}: not valid JSON: {exc}") from exc
        hexkey = text[2:] if text.startswith("0x") else text
        try:
            raw = bytes.fromhex(hexkey)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise WalletError(f"{path}: neither a JWK nor a 32-byte hex Ethereum private key")
        return cls(EthereumSigner(raw))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the key as JSON, readable by the owner only."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_json(), fh)
        return path
