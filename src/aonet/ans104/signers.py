"""The signature schemes ANS-104 data items use, behind one small interface.

A signer holds a private key and signs the 48-byte deep hash of an item; `verify_signature` checks
any supported type from the owner bytes alone. Type numbers are arbundles' SIG_CONFIG.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import coincurve
from Crypto.Hash import keccak
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from ..encoding import b64url_encode
from .errors import SignatureTypeError

ARWEAVE, ED25519, ETHEREUM, SOLANA = 1, 2, 3, 4


@dataclass(frozen=True)
class SigConfig:
    name: str
    signature_length: int
    owner_length: int


SIG_CONFIG: dict[int, SigConfig] = {
    ARWEAVE: SigConfig("arweave", 512, 512),
    ED25519: SigConfig("ed25519", 64, 32),
    ETHEREUM: SigConfig("ethereum", 65, 65),
    SOLANA: SigConfig("solana", 64, 32),
}

_PSS_SIGN = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
_PSS_VERIFY = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


def sig_config(signature_type: int) -> SigConfig:
    try:
        return SIG_CONFIG[signature_type]
    except KeyError:
        raise SignatureTypeError(f"signature type {signature_type} is not supported "
                                 f"(known: {sorted(SIG_CONFIG)})") from None


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def _eip191(message: bytes) -> bytes:
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def ethereum_address(public_key: bytes) -> str:
    """EIP-55 checksummed address of an uncompressed (65-byte) secp256k1 public key."""
    raw = keccak256(public_key[1:])[-20:].hex()
    check = keccak256(raw.encode()).hex()
    return "0x" + "".join(c.upper() if int(check[i], 16) >= 8 else c for i, c in enumerate(raw))


def owner_address(signature_type: int, owner: bytes) -> str:
    """AO's address for an owner key: EIP-55 for Ethereum, base64url(sha256(key)) otherwise."""
    if signature_type == ETHEREUM:
        return ethereum_address(owner)
    return b64url_encode(hashlib.sha256(owner).digest())


def verify_signature(signature_type: int, owner: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` over the deep-hash `message` verifies under `owner`."""
    sig_config(signature_type)
    try:
        if signature_type == ARWEAVE:
            key = rsa.RSAPublicNumbers(65537, int.from_bytes(owner, "big")).public_key()
            key.verify(signature, message, _PSS_VERIFY, hashes.SHA256())
            return True
        if signature_type == ETHEREUM:
            if signature[64] not in (27, 28):
                return False
            sig = signature[:64] + bytes([signature[64] - 27])
            recovered = coincurve.PublicKey.from_signature_and_message(sig, _eip191(message), hasher=None)
            return recovered.format(compressed=False) == owner
        if signature_type == ED25519:
            ed25519.Ed25519PublicKey.from_public_bytes(owner).verify(signature, message)
            return True
        if signature_type == SOLANA:
            ed25519.Ed25519PublicKey.from_public_bytes(owner).verify(signature, message.hex().encode())
            return True
    except (InvalidSignature, ValueError, TypeError, Exception):  # malformed keys are a failed check
        return False
    return False


class Signer(Protocol):
    signature_type: int
    owner: bytes            # public key bytes as they go in the item's owner field

    def sign(self, message: bytes) -> bytes: ...


class ArweaveSigner:
    """RSA-PSS/SHA-256 with a 4096-bit key (maximum salt length, as arbundles' node signer)."""
    signature_type = ARWEAVE

    def __init__(self, key: rsa.RSAPrivateKey):
        if key.key_size != 4096:
            raise ValueError(f"Arweave keys are RSA-4096, got {key.key_size} bits")
        self.key = key
        self.owner = key.public_key().public_numbers().n.to_bytes(512, "big")

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, _PSS_SIGN, hashes.SHA256())


class EthereumSigner:
    """secp256k1, EIP-191 personal_sign of the deep hash; r|s|v with v in {27, 28}."""
    signature_type = ETHEREUM

    def __init__(self, private_key: bytes):
        self.key = coincurve.PrivateKey(private_key)
        self.owner = self.key.public_key.format(compressed=False)

    def sign(self, message: bytes) -> bytes:
        sig = self.key.sign_recoverable(_eip191(message), hasher=None)
        return sig[:64] + bytes([sig[64] + 27])


class Ed25519Signer:
    """Ed25519 over the 48-byte deep hash (type 2)."""
    signature_type = ED25519

    def __init__(self, seed: bytes):
        self.key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        from cryptography.hazmat.primitives import serialization as s
        self.owner = self.key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)
