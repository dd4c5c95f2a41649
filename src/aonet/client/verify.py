"""Check a process's schedule from the outside: what a client can prove from the SU's JSON alone.

Pure: `check_schedule(process_id, scheduler, nodes)` takes the `{message, assignment}` nodes in
nonce order (read with `show-anchor=1`, so anchors come back as base64url bytes) and re-derives
every assignment item: its id, its signature by the scheduler's key, Nonce 0..n without gaps, the
Hash-Chain from the previous slot, the Process and Message tags. Message items are checked too
(id and signature) when their data came back as exact text.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

from ..ans104 import SIG_CONFIG, ANS104Error, DataItem, Tag, encode_tags
from ..ans104.signers import owner_address
from ..encoding import b64url_decode, b64url_encode
from .types import ItemView, Scheduled


@dataclass
class ScheduleCheck:
    process_id: str
    count: int = 0
    last_nonce: int | None = None
    messages_checked: int = 0
    messages_unchecked: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count > 0 and not self.errors


def item_from_view(view: ItemView, data: bytes) -> DataItem:
    """Rebuild the signed item from the SU's JSON (anchor must be base64url: `show-anchor=1`)."""
    if view.signature is None or view.owner.key is None:
        raise ANS104Error("no signature or owner key in the JSON")
    sig, owner = b64url_decode(view.signature), b64url_decode(view.owner.key)
    types = [t for t, c in SIG_CONFIG.items() if c.signature_length == len(sig) and c.owner_length == len(owner)]
    if not types:
        raise ANS104Error(f"no signature type has a {len(sig)}-byte signature and {len(owner)}-byte owner")
    target = b64url_decode(view.target) if view.target else None
    anchor = b64url_decode(view.anchor) if view.anchor else None
    tag_bytes = encode_tags(view.tags) if view.tags else b""
    items = [DataItem(t, sig, owner, target, anchor, tuple(Tag(*x) for x in view.tags), data, tag_bytes)
             for t in types]
    # ed25519 and solana share key and signature sizes; the type is part of what was signed
    return next((i for i in items if len(items) == 1 or i.verify()), items[0])


def check_schedule(process_id: str, scheduler: str | None, nodes: Iterable[Scheduled],
                   max_errors: int = 50) -> ScheduleCheck:
    from ..su.core import first_hash_chain, next_hash_chain   # the SU's own rule, imported on use
    report = ScheduleCheck(process_id)
    prev_id: str | None = None
    prev_chain: str | None = None
    for node in nodes:
        if len(report.errors) >= max_errors:
            break
        a = node.assignment
        nonce = node.nonce
        expected = 0 if report.last_nonce is None else report.last_nonce + 1
        where = f"nonce {nonce}"
        report.count += 1
        if nonce != expected:
            report.errors.append(f"{where}: expected nonce {expected}")
        try:
            item = item_from_view(a, b"")
        except (ANS104Error, ValueError) as exc:
            report.errors.append(f"{where}: assignment cannot be rebuilt: {exc}")
            report.last_nonce = nonce
            continue
        want_chain = first_hash_chain(process_id) if prev_id is None else next_hash_chain(prev_id, prev_chain)
        signer = owner_address(item.signature_type, item.owner)
        checks = [
            (item.id == a.id, f"id {a.id} is not SHA-256 of its signature ({item.id})"),
            (item.verify(), "assignment signature does not verify"),
            (scheduler is None or signer == scheduler, f"signed by {signer}, not the scheduler {scheduler}"),
            (a.tag("Process") == process_id, f"Process tag {a.tag('Process')!r}"),
            (a.tag("Hash-Chain") == want_chain, f"Hash-Chain {a.tag('Hash-Chain')!r}, expected {want_chain}"),
            ((a.tag("Message") is None) == (nonce == 0), "Message tag presence"),
            (node.message is None or nonce == 0 or a.tag("Message") == node.message.id,
             f"Message tag {a.tag('Message')!r} is not the message {node.message.id if node.message else ''}"),
        ]
        report.errors += [f"{where}: {msg}" for good, msg in checks if not good]
        if node.message is not None:
            _check_message(node.message, where, report)
        prev_id, prev_chain, report.last_nonce = a.id, a.tag("Hash-Chain") or want_chain, nonce
    if report.count == 0:
        report.errors.append(f"process {process_id} has no assignments")
    return report


def _check_message(m: ItemView, where: str, report: ScheduleCheck) -> None:
    if not isinstance(m.data, str) or "\ufffd" in m.data:
        report.messages_unchecked += 1        # binary data: the JSON text is not the signed bytes
        return
    try:
        item = item_from_view(m, m.data.encode())
    except (ANS104Error, ValueError) as exc:
        report.errors.append(f"{where}: message {m.id} cannot be rebuilt: {exc}")
        return
    if b64url_encode(hashlib.sha256(item.signature).digest()) != m.id:
        report.errors.append(f"{where}: message id {m.id} is not SHA-256 of its signature")
    elif not item.verify():
        report.errors.append(f"{where}: message {m.id} signature does not verify")
    else:
        report.messages_checked += 1
