"""Garbage thrown at every unit of a running devnet: always a 4xx with a JSON `error`, never a 5xx,
and the units keep serving afterwards. (The contract: bad input never crashes, hangs or 500s.)"""
from __future__ import annotations

import os
import random

import httpx
import pytest


GARBAGE_BODIES = [b"", b"garbage", b"\x00" * 10, b"\x01\x00" + os.urandom(2000), b"{\"Id\": 1}", b"[]", b"null",
                  b"{" * 5000, "ü".encode() * 100]
FAKE_ID = "A" * 43


def requests_for(unit: str) -> list[tuple[str, str, dict]]:
    """(method, path, kwargs) cases that are wrong in some way for that unit."""
    common = [("GET", "/no/such/route/at/all", {}), ("PATCH", "/", {}), ("GET", "/%ff%fe", {}),
              ("GET", "/" + "x" * 5000, {})]
    posts = [("POST", "/", {"content": b, "headers": {"content-type": "application/octet-stream"}})
             for b in GARBAGE_BODIES]
    if unit == "su":
        return common + posts + [
            ("GET", f"/{FAKE_ID}", {"params": {"process-id": FAKE_ID}}),
            ("GET", f"/{FAKE_ID}", {"params": {"from": "abc", "limit": "-5"}}),
            ("GET", f"/processes/{FAKE_ID}", {}), ("GET", f"/{FAKE_ID}/latest", {}),
            ("POST", "/", {"params": {"process-id": FAKE_ID, "assign": "short"}}),
            ("POST", "/", {"params": {"process-id": FAKE_ID}}),
        ]
    if unit == "cu":
        return common + [
            ("GET", f"/result/{FAKE_ID}", {"params": {"process-id": FAKE_ID}}),
            ("GET", f"/result/{FAKE_ID}", {}),
            ("GET", f"/results/{FAKE_ID}", {"params": {"limit": "lots", "sort": "SIDEWAYS"}}),
            ("GET", f"/state/{FAKE_ID}", {}), ("GET", f"/cron/{FAKE_ID}", {"params": {"limit": "x"}}),
            ("POST", "/dry-run", {"params": {"process-id": FAKE_ID}, "content": b"{not json"}),
            ("POST", "/dry-run", {"content": b"{}"}),
            ("POST", "/dry-run", {"params": {"process-id": FAKE_ID}, "json": {"Tags": "nope"}}),
        ]
    if unit == "mu":
        return common + posts + [
            ("POST", "/", {"params": {"process-id": FAKE_ID}}),
            ("POST", f"/monitor/{FAKE_ID}", {"content": b"junk"}),
        ]
    return common + [  # gateway
        ("POST", "/graphql", {"content": b"{not json"}), ("POST", "/graphql", {"json": {"query": "{ nonsense"}}),
        ("POST", "/graphql", {"json": {"query": 5}}), ("GET", f"/raw/{FAKE_ID}", {}),
        ("GET", f"/tx/{FAKE_ID}/status", {}), ("POST", "/tx/arweave", {"content": b"garbage"}),
        ("GET", f"/{FAKE_ID}", {}),
    ]


@pytest.mark.parametrize("unit", ["su", "cu", "mu", "gateway"])
def test_garbage_gets_a_json_4xx(devnet, unit):
    base = getattr(devnet, f"{unit}_url")
    with httpx.Client(base_url=base, timeout=20) as http:
        for method, path, kwargs in requests_for(unit):
            r = http.request(method, path, **kwargs)
            where = f"{unit} {method} {path[:60]} {str(kwargs)[:80]}"
            assert 400 <= r.status_code < 500, f"{where}: {r.status_code} {r.text[:200]}"
            body = r.json()
            assert isinstance(body.get("error"), str) and body["error"], where
        assert http.get("/").status_code == 200  # still serving


def test_random_bytes_to_every_post_route_never_500(devnet):
    rng = random.Random(1234)
    targets = [(devnet.su_url, "/"), (devnet.mu_url, "/"), (devnet.gateway_url, "/tx/arweave"),
               (devnet.gateway_url, "/graphql"), (devnet.cu_url, f"/dry-run?process-id={FAKE_ID}")]
    with httpx.Client(timeout=20) as http:
        for _ in range(60):
            base, path = rng.choice(targets)
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000)))
            r = http.post(base + path, content=body, headers={"content-type": "application/octet-stream"})
            assert r.status_code < 500, f"{base}{path}: {r.status_code} {r.text[:200]}"
