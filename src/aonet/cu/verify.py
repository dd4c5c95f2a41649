"""Verification: recompute a process from its log in a fresh CU and compare with a running CU.

`verify_process(pid, su_url=..., cu_url=..., modules=...)` picks a time T (`to`, else the SU's
clock), asks the running CU for its memory at T (`GET {cu}/state/{pid}?to=T`, signature checked),
evaluates the process from genesis to T in a throw-away CU (fresh database, no checkpoints), then
compares the sha256 of both memory images and every result both list before T
(`GET {cu}/results/{pid}?to=T-1`). Wire it to `aonet verify <pid>`.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from .service import ComputeUnit
from .signing import verify_result_signature
from .sources import ModuleSource


@dataclass
class VerifyReport:
    process_id: str
    timestamp: int
    memory_sha256_remote: str
    memory_sha256_local: str
    results_compared: int
    mismatches: list[str] = field(default_factory=list)
    signer: str | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.memory_sha256_local == self.memory_sha256_remote


def _fetch_remote(cu_url: str, pid: str, to: int) -> tuple[bytes, dict, list[tuple[str, dict]], str]:
    with httpx.Client(base_url=cu_url.rstrip("/"), timeout=600) as http:
        r = http.get(f"/state/{pid}", params={"to": str(to)})
        if r.status_code != 200:
            raise RuntimeError(f"CU /state answered {r.status_code}: {r.text[:200]}")
        signer = verify_result_signature(r.content, r.headers, r.request.url.raw_path.decode())
        ts = to - 1
        results: list[tuple[str, dict]] = []
        cursor = None
        while True:
            params = {"limit": "1000", "to": str(ts)}
            if cursor:
                params["from"] = cursor
            page = http.get(f"/results/{pid}", params=params)
            page.raise_for_status()
            body = page.json()
            for e in body["edges"]:
                results.append((e["cursor"], e["node"]))
            if not body["pageInfo"]["hasNextPage"] or not body["edges"]:
                break
            cursor = body["edges"][-1]["cursor"]
        return r.content, dict(r.headers), results, signer


async def _recompute(pid: str, su_url: str, modules: ModuleSource, ts: int, runtimes: Any, workdir: str):
    cu = ComputeUnit(data_dir=workdir, su_url=su_url, modules=modules, workers=0, runtimes=runtimes,
                     engine_options={"checkpoint_every": 1 << 60, "checkpoint_seconds": float("inf")})
    await cu.start()
    try:
        memory, headers = await cu.state(pid, ts)
        local = await cu.results(pid, to=str(ts - 1), limit=1 << 30)
        return memory, headers, [(e["cursor"], e["node"]) for e in local["edges"]]
    finally:
        await cu.close()


def verify_process(pid: str, *, su_url: str, cu_url: str, modules: ModuleSource,
                   runtimes: Any = "aonet.cu.engine:default_runtimes", to: int | None = None) -> VerifyReport:
    """Recompute `pid` from genesis and compare with the CU at `cu_url` (see module docstring)."""
    if to is None:
        from .sources import SUClient
        su = SUClient(su_url)
        try:
            to = su.timestamp()[0]
        finally:
            su.close()
    ts = to
    remote_mem, headers, remote_results, signer = _fetch_remote(cu_url, pid, ts)
    with tempfile.TemporaryDirectory(prefix="aonet-verify-") as tmp:
        local_mem, _, local_results = anyio.run(_recompute, pid, su_url, modules, ts, runtimes, tmp)
    rep = VerifyReport(pid, ts, hashlib.sha256(remote_mem).hexdigest(), hashlib.sha256(local_mem).hexdigest(),
                       len(remote_results), signer=signer)
    if rep.memory_sha256_local != rep.memory_sha256_remote:
        rep.mismatches.append(f"memory sha256 differs: remote {rep.memory_sha256_remote}, "
                              f"recomputed {rep.memory_sha256_local}")
    local = dict(local_results)
    for cursor, node in remote_results:
        mine = local.get(cursor)
        if mine is None:
            rep.mismatches.append(f"result {cursor} missing from the recomputation")
        elif json.dumps(mine, sort_keys=True) != json.dumps(node, sort_keys=True):
            rep.mismatches.append(f"result {cursor} differs")
    if len(local_results) != len(remote_results):
        rep.mismatches.append(f"{len(local_results)} results recomputed, remote lists {len(remote_results)}")
    return rep
