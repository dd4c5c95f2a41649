"""Re-check a process's schedule end to end: nonces, hash chain, tags and signatures.

`verify_chain(store, process_id)` reads every assignment in nonce order and recomputes what the SU
should have written; it never trusts the stored decoded columns over the signed item.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ans104 import ANS104Error, parse
from ..blocks import format_height
from ..store.base import Store
from .core import Head, first_hash_chain, next_hash_chain


@dataclass
class ChainReport:
    process_id: str
    count: int = 0
    last_nonce: int | None = None
    last_hash_chain: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.count > 0

    def summary(self) -> str:
        state = "OK" if self.ok else f"FAILED ({len(self.errors)} errors)"
        return f"{self.process_id}: {self.count} assignments, last nonce {self.last_nonce}: {state}"


def verify_chain(store: Store, process_id: str, *, signer_address: str | None = None,
                 max_errors: int = 100) -> ChainReport:
    """Nonces 0..n without gap or duplicate, each Hash-Chain derived from the previous slot, each
    Assignment item's signature valid (and owned by `signer_address` when given), tags consistent
    with the stored columns, timestamps non-decreasing."""
    report = ChainReport(process_id)

    def fail(msg: str) -> bool:
        report.errors.append(msg)
        return len(report.errors) >= max_errors

    if store.get_process(process_id) is None:
        fail(f"process {process_id} is not in the log")
        return report
    prev: Head | None = None
    for a in store.iter_assignments(process_id):
        report.count += 1
        expected_nonce = 0 if prev is None else prev.nonce + 1
        if a.nonce != expected_nonce:
            if fail(f"nonce {a.nonce} follows {None if prev is None else prev.nonce}: expected {expected_nonce}"):
                break
        want_chain = first_hash_chain(process_id) if prev is None else next_hash_chain(prev.assignment_id,
                                                                                         prev.hash_chain)
        try:
            item = parse(a.raw)
        except ANS104Error as exc:
            if fail(f"nonce {a.nonce}: stored assignment does not parse: {exc}"):
                break
            prev = Head.of(a)
            continue
        tags = {t.name: t.value for t in item.tags}
        checks = [
            (item.id == a.id, f"id {item.id} != stored id {a.id}"),
            (item.verify(), "signature does not verify"),
            (signer_address is None or item.owner_address == signer_address,
             f"signed by {item.owner_address}, not the SU {signer_address}"),
            (tags.get("Process") == process_id, f"Process tag {tags.get('Process')!r}"),
            (tags.get("Nonce") == str(a.nonce), f"Nonce tag {tags.get('Nonce')!r} != {a.nonce}"),
            (tags.get("Epoch") == "0", f"Epoch tag {tags.get('Epoch')!r}"),
            (tags.get("Hash-Chain") == want_chain, f"Hash-Chain {tags.get('Hash-Chain')!r}, expected {want_chain}"),
            (a.hash_chain == want_chain, "stored hash chain differs from the recomputed one"),
            (tags.get("Timestamp") == str(a.timestamp), f"Timestamp tag {tags.get('Timestamp')!r}"),
            (tags.get("Block-Height") == format_height(a.block_height), "Block-Height tag"),
            (tags.get("Type") == "Assignment", f"Type tag {tags.get('Type')!r}"),
            (prev is None or a.timestamp >= prev.timestamp, "timestamp goes backwards"),
            ((tags.get("Message") is None) == (a.nonce == 0), "Message tag presence"),
            (a.nonce == 0 or tags.get("Message") == a.message_id, "Message tag != stored message id"),
        ]
        stop = False
        for good, msg in checks:
            if not good and fail(f"nonce {a.nonce} ({a.id}): {msg}"):
                stop = True
                break
        if stop:
            break
        prev = Head(process_id, a.nonce, item.id, tags.get("Hash-Chain") or a.hash_chain, a.timestamp)
    if report.count == 0:
        fail(f"process {process_id} has no assignments")
    if prev is not None:
        report.last_nonce, report.last_hash_chain = prev.nonce, prev.hash_chain
    return report
