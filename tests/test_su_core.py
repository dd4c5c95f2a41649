"""The SU's pure core: validation, the chain rule, assignment items, dedup hashes."""
import base64
import hashlib

import pytest

from aonet.ans104 import parse
from aonet.encoding import b64url_decode
from aonet.protocol import build_message, build_process
from aonet.su import core
from aonet.wallet import Wallet

SU = Wallet.generate("ed25519")
USER = Wallet.generate("ethereum")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_chain_rule_matches_protocol():
    pid = "oQi9XQrnQB6k2jIDZmgfZb7x2xN27cBFAiWrmTYdg-E"
    assert core.first_hash_chain(pid) == b64(hashlib.sha256(b64url_decode(pid)).digest())
    s0 = core.next_slot(None, pid, 1000, 7)
    assert (s0.nonce, s0.epoch, s0.timestamp, s0.block_height) == (0, 0, 1000, 7)
    a0 = core.build_assignment(SU, s0, None)
    s1 = core.next_slot(core.Head.of(a0), pid, 999, 7)           # clock went back: timestamp stays
    assert s1.nonce == 1 and s1.timestamp == 1000
    assert s1.hash_chain == b64(hashlib.sha256(b64url_decode(a0.id) + b64url_decode(s0.hash_chain)).digest())


def test_assignment_item_tags_in_ao_order_and_signed():
    pid = build_process(USER, "M" * 43, SU.address).id
    slot = core.Slot(pid, 5, core.first_hash_chain(pid), 1711676638471, 1393008)
    rec = core.build_assignment(SU, slot, "x" * 43, exclude=["Data", "Tags"])
    item = parse(rec.raw, verify=True)
    assert item.id == rec.id and item.owner_address == SU.address
    assert item.target is None and item.data == b"" and len(item.anchor) == 32
    assert [(t.name, t.value) for t in item.tags] == [
        ("Process", pid), ("Epoch", "0"), ("Nonce", "5"), ("Hash-Chain", slot.hash_chain),
        ("Block-Height", "000001393008"), ("Timestamp", "1711676638471"), ("Data-Protocol", "ao"),
        ("Type", "Assignment"), ("Variant", "ao.TN.1"), ("Message", "x" * 43), ("Exclude", "Data"),
        ("Exclude", "Tags")]
    own = parse(core.build_assignment(SU, slot, None).raw)
    assert "Message" not in [t.name for t in own.tags]


@pytest.mark.parametrize("kind", ["ed25519", "ethereum", "arweave"])
def test_every_wallet_kind_signs_assignments(kind):
    wallet = SU if kind == "ed25519" else Wallet.generate(kind)
    rec = core.build_assignment(wallet, core.next_slot(None, "A" * 43, 1, 1), None)
    assert parse(rec.raw, verify=True).owner_address == wallet.address


def test_classify_rules():
    proc = build_process(USER, "M" * 43, SU.address)
    assert core.classify(proc, SU.address) == "Process"
    assert core.classify(build_message(USER, proc.id), SU.address) == "Message"
    with pytest.raises(core.WrongScheduler, match="names Scheduler"):
        core.classify(build_process(USER, "M" * 43, "other"), SU.address)
    with pytest.raises(core.MissingTag, match="no Module"):
        core.classify(USER.sign_item(" ", tags=[("Data-Protocol", "ao"), ("Type", "Process"),
                                                 ("Scheduler", SU.address)]), SU.address)
    with pytest.raises(core.NotAOItem, match="Data-Protocol"):
        core.classify(USER.sign_item("x", tags=[("Type", "Message")]), SU.address)
    with pytest.raises(core.NotAOItem, match="Module"):
        core.classify(USER.sign_item("x", tags=[("Data-Protocol", "ao"), ("Type", "Module")]), SU.address)
    with pytest.raises(core.NotAOItem, match="no target"):
        core.classify(USER.sign_item("x", tags=[("Data-Protocol", "ao"), ("Type", "Message")]), SU.address)
    with pytest.raises(core.NotAOItem, match=r"\+link"):
        core.classify(build_message(USER, proc.id, tags=[("Data+link", "x")]), SU.address)
    lower = USER.sign_item("x", target=proc.id, tags=[("data-protocol", "ao"), ("type", "Message")])
    assert core.classify(lower, SU.address) == "Message"


def test_parse_item_errors_name_the_cause():
    with pytest.raises(core.InvalidItem, match="empty body"):
        core.parse_item(b"")
    with pytest.raises(core.InvalidItem, match="not a valid ANS-104"):
        core.parse_item(b"\x01\x00garbage")
    raw = bytearray(build_message(USER, "A" * 43, data="hello").raw)
    raw[-1] ^= 1
    with pytest.raises(core.InvalidItem, match="invalid signature"):
        core.parse_item(bytes(raw))


def test_pushed_dedup_hash_ignores_signer_and_pushed_for():
    mu1, mu2 = Wallet.generate("ed25519"), Wallet.generate("ethereum")
    tags = [("From-Process", "P" * 43), ("Action", "Hi")]
    a = build_message(mu1, "A" * 43, data="d", tags=[*tags, ("Pushed-For", "X" * 43)], anchor="0" * 32)
    b = build_message(mu2, "A" * 43, data="d", tags=[("Action", "Hi"), ("From-Process", "P" * 43)], anchor="0" * 32)
    c = build_message(mu1, "A" * 43, data="other", tags=tags, anchor="0" * 32)
    assert core.pushed_dedup_hash(a) == core.pushed_dedup_hash(b) != core.pushed_dedup_hash(c)
    assert core.pushed_dedup_hash(build_message(USER, "A" * 43)) is None


@pytest.mark.parametrize("kind", ["ed25519", "ethereum", "arweave"])
def test_fastcrypto_agrees_with_reference(kind):
    from aonet.ans104.dataitem import signing_message
    from aonet.su import fastcrypto
    user = SU if kind == "ed25519" else Wallet.generate(kind)
    items = [build_message(user, "A" * 43, data="x" * n, anchor="0" * 32 if n % 2 else None,
                           tags=[("Action", "T" * n)]) for n in (0, 1, 33, 70, 3000)]
    for item in items:
        args = (item.signature_type, item.owner, item.target, item.anchor, item.tag_bytes, item.data)
        assert fastcrypto.signing_message(*args) == signing_message(*args)
        assert fastcrypto.verify_item(item) and item.verify()
        for flip in (len(item.raw) - 1, 2):                      # data byte, signature byte
            bad = bytearray(item.raw)
            bad[flip] ^= 1
            bad_item = parse(bytes(bad))
            assert fastcrypto.verify_item(bad_item) is False is bad_item.verify()
    signer = fastcrypto.FastSigner(user)
    msg = items[0].signing_message()
    if kind != "arweave":                                         # RSA-PSS is randomized
        assert signer.sign(msg) == user.sign(msg)
    rec = core.build_assignment(signer, core.next_slot(None, "A" * 43, 1, 1), None)
    assert parse(rec.raw, verify=True).id == rec.id


@pytest.mark.parametrize("message_id", [None, "m" * 43])
def test_fast_assignment_tag_bytes_equal_the_generic_encoding(message_id):
    from aonet.ans104 import encode_tags
    for nonce, ts, height in ((1, 1, 0), (123456789, 1711676638471, 1393008), (10 ** 30, 2 ** 62, 10 ** 12 - 1)):
        slot = core.Slot("P" * 43, nonce, "h" * 43, ts, height)
        count, raw = core._assignment_tag_bytes(slot, message_id)
        tags = core.assignment_tags(slot, message_id)
        assert (count, raw) == (len(tags), encode_tags(tags))
    rec = core.build_assignment(SU, core.Slot("P" * 43, 3, "h" * 43, 5, 6), message_id)
    item = parse(rec.raw, verify=True)
    assert [(t.name, t.value) for t in item.tags] == [tuple(t) for t in core.assignment_tags(
        core.Slot("P" * 43, 3, "h" * 43, 5, 6), message_id)]


def test_anchors_are_random_and_distinct():
    anchors = {parse(core.build_assignment(SU, core.next_slot(None, "A" * 43, 1, 1), None).raw).anchor
               for _ in range(300)}                      # more than one 4 KiB pool of anchors
    assert len(anchors) == 300 and all(len(a) == 32 for a in anchors)
