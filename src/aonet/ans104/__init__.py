"""ANS-104 data items: codec, deep hash, signers, bundles (pure: no I/O)."""
from .bundle import read_bundle, write_bundle
from .dataitem import DataItem, create, parse, signing_message
from .deephash import deep_hash
from .errors import (ANS104Error, BundleError, PresenceByteError, SignatureError, SignatureTypeError, TagError,
                     TruncatedError)
from .signers import (ARWEAVE, ED25519, ETHEREUM, SIG_CONFIG, SOLANA, ArweaveSigner, Ed25519Signer, EthereumSigner,
                      Signer, ethereum_address, owner_address, verify_signature)
from .tags import Tag, decode_tags, encode_tags

__all__ = ["ARWEAVE", "ED25519", "ETHEREUM", "SOLANA", "SIG_CONFIG", "ANS104Error", "ArweaveSigner", "BundleError",
           "DataItem", "Ed25519Signer", "EthereumSigner", "PresenceByteError", "SignatureError", "SignatureTypeError",
           "Signer", "Tag", "TagError", "TruncatedError", "create", "decode_tags", "deep_hash", "encode_tags",
           "ethereum_address", "owner_address", "parse", "read_bundle", "signing_message", "verify_signature",
           "write_bundle"]
