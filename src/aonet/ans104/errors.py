"""One exception type per broken rule of ANS-104, all under ANS104Error (a ValueError)."""


class ANS104Error(ValueError):
    """A data item or bundle breaks ANS-104; the message names the rule."""


class TruncatedError(ANS104Error):
    """The bytes end before a field the header promised."""


class SignatureTypeError(ANS104Error):
    """The signature type is not one ANS-104 defines (or this node cannot verify)."""


class PresenceByteError(ANS104Error):
    """A target/anchor presence byte is neither 0 nor 1."""


class TagError(ANS104Error):
    """The tag block is malformed: count or length mismatch, bad Avro, or a limit exceeded."""


class SignatureError(ANS104Error):
    """The signature does not verify against the owner key and the signed fields."""


class BundleError(ANS104Error):
    """A bundle's header does not describe its items (sizes, ids, count)."""
