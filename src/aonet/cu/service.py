"""The CU as an asyncio service: the API's operations, request coalescing, and the worker pool.

`ComputeUnit` answers what the HTTP routes ask (result, results, cron, dry-run, state). It resolves
the process (SU) and its module (a `ModuleSource`), checks limits, then hands evaluation to a
backend that owns the live instances:
- `InlineBackend`: one `Engine` in this OS process, run in one thread (tests, small devnets).
- `PoolBackend`: N worker processes (the GIL would serialise evaluation otherwise), each holding an
  `Engine`. A process id is pinned to a worker on first use — the worker with the fewest requests
  in flight — and stays there while it lives, so its live instance is reused; a worker busy with a
  runaway message therefore does not hold up processes pinned elsewhere. A worker that dies is
  restarted; its processes resume from their checkpoints.
Concurrent requests for one process coalesce on a per-process lock: the second finds the work done.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import anyio.to_thread

from .core import ModuleMeta, ProcessMeta, UnitLimits, map_node, process_limits
from .cron import CronError, CronSchedule
from .engine import Engine, EngineConfig, NeedModule, Target
from .errors import BadRequest, CUError, InvalidProcess, NotFound
from .sources import ModuleSource, SUClient
from .storage import CUStorage

log = logging.getLogger("aonet.cu")
DB_NAME = "cu.sqlite"
SLOT_HINTS = 10_000             # (process, message id) -> nonce entries kept from an in-process SU


# ---- backends ------------------------------------------------------------------------------------
_ERRORS = {cls.__name__: cls for cls in CUError.__subclasses__()}
_ERRORS["CUError"] = CUError
_ERRORS["NeedModule"] = NeedModule


def _err_tuple(exc: BaseException) -> tuple[str, str, int]:
    if isinstance(exc, CUError):
        return type(exc).__name__, str(exc), exc.status
    log.exception("CU worker failure")
    return "CUError", f"{type(exc).__name__}: {exc}", 500


def _raise(err: tuple[str, str, int]):
    name, message, status = err
    raise _ERRORS.get(name, CUError)(message, status)


class InlineBackend:
    """One engine, one thread: calls are serialised by a lock."""

    def __init__(self, cfg: EngineConfig):
        self.engine = Engine(cfg)
        self._lock = threading.Lock()
        self.workers = 1

    def _call_sync(self, method: str, args: tuple):
        with self._lock:
            return getattr(self.engine, method)(*args)

    async def call(self, process_id: str | None, method: str, *args):
        return await anyio.to_thread.run_sync(self._call_sync, method, args)

    async def broadcast(self, method: str, *args) -> list:
        return [await self.call(None, method, *args)]

    def close(self) -> None:
        with self._lock:
            self.engine.close()


def _worker_main(conn, cfg: EngineConfig) -> None:
    engine = Engine(cfg)
    try:
        while True:
            try:
                req = conn.recv()
            except EOFError:
                break
            if req is None:
                break
            method, args = req
            try:
                conn.send(("ok", getattr(engine, method)(*args)))
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
                conn.send(("err", _err_tuple(exc)))
    finally:
        try:
            engine.close()
        finally:
            try:
                conn.send(("closed", None))
            except (OSError, EOFError):
                pass


class _Worker:
    def __init__(self, index: int, cfg: EngineConfig, ctx):
        self.index, self.cfg, self.ctx = index, cfg, ctx
        self.lock = threading.Lock()
        self.inflight = 0
        self.pinned: set[str] = set()
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker_main, args=(child, self.cfg), name=f"aonet-cu-worker-{self.index}",
                                     daemon=True)
        self.proc.start()
        child.close()
        self.modules: set[str] = set()

    def call_sync(self, method: str, args: tuple):
        with self.lock:
            try:
                self.conn.send((method, args))
                status, value = self.conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = self.proc.exitcode
                log.error("CU worker %d died (exit %s); restarting", self.index, code)
                try:
                    self.proc.kill()
                except Exception:  # noqa: BLE001
                    pass
                self._start()
                raise CUError(f"evaluation worker died (exit {code}): {exc}") from None
        if status == "err":
            _raise(value)
        return value

    def stop(self) -> None:
        with self.lock:
            try:
                self.conn.send(None)
                if self.conn.poll(60):
                    self.conn.recv()
            except (EOFError, OSError):
                pass
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()


class PoolBackend:
    """`workers` engine processes; process ids pinned to the least-busy worker on first use."""

    def __init__(self, cfg: EngineConfig, workers: int = 2):
        ctx = mp.get_context("spawn")
        self._workers = [_Worker(i, cfg, ctx) for i in range(max(1, workers))]
        self._pins: dict[str, _Worker] = {}
        self.workers = len(self._workers)

    def worker_for(self, process_id: str) -> _Worker:
        w = self._pins.get(process_id)
        if w is None:
            w = min(self._workers, key=lambda x: (x.inflight, len(x.pinned), x.index))
            w.pinned.add(process_id)
            self._pins[process_id] = w
        return w

    async def call(self, process_id: str | None, method: str, *args):
        w = self.worker_for(process_id) if process_id else self._workers[0]
        w.inflight += 1
        try:
            return await anyio.to_thread.run_sync(w.call_sync, method, args)
        finally:
            w.inflight -= 1

    async def broadcast(self, method: str, *args) -> list:
        return [await anyio.to_thread.run_sync(w.call_sync, method, args) for w in self._workers]

    def close(self) -> None:
        for w in self._workers:
            w.stop()


# ---- the /result LRU ---------------------------------------------------------------------------
class ResultLRU:
    """Recent `/result` answers by (process, message), as AO's CU keeps one. Results never change once
    stored (evaluation is deterministic), so entries need no invalidation; callers must not mutate them."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str]) -> dict | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: tuple[str, str], value: dict) -> None:
        if self.max_entries <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# ---- cursors ---------------------------------------------------------------------------------
def encode_cursor(timestamp: int, ordinate: int, cron: str, sort: str) -> str:
    """AO's /results cursor: base64(JSON{timestamp, ordinate, cron, sort})."""
    obj = {"timestamp": timestamp, "ordinate": str(ordinate), "cron": cron or None, "sort": sort}
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_cursor(text: str, sort: str) -> tuple[int, int, str]:
    """A cursor from encode_cursor, or a bare timestamp (AO accepts both)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        ts = int(text)
        # a bare timestamp is a boundary *between* results: before every result at ts (DESC: after)
        return (ts, -1, "") if sort == "ASC" else (ts, 1 << 62, "\uffff")
    try:
        obj = json.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=False).decode())
        return int(obj["timestamp"]), int(obj.get("ordinate") or 0), obj.get("cron") or ""
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BadRequest(f"invalid cursor {text[:60]!r}") from None


def _edges(rows, sort: str) -> list[dict]:
    return [{"cursor": encode_cursor(k[0], k[1], k[2], sort), "node": _node(r)} for k, r in rows]


def _node(result: dict) -> dict:
    return {k: result[k] for k in ("Messages", "Assignments", "Spawns", "Output", "Error", "GasUsed") if k in result}


# ---- the service -------------------------------------------------------------------------------
class ComputeUnit:
    """The CU's operations. `await cu.start()` before use, `await cu.close()` after."""

    def __init__(self, *, data_dir: str | os.PathLike, su_url: str, modules: ModuleSource, wallet=None,
                 workers: int = 0, unit_limits: UnitLimits | None = None, engine_options: Mapping | None = None,
                 runtimes: Any = "aonet.cu.engine:default_runtimes", item_source: ModuleSource | None = None,
                 result_cache_size: int = 10_000, su_client: SUClient | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.su = su_client if su_client is not None else SUClient(su_url)
        self.modules = modules
        self.wallet = wallet
        self.unit_limits = unit_limits or UnitLimits()
        self.cfg = EngineConfig(db_path=str(self.data_dir / DB_NAME), su_url=su_url,
                                items=item_source if item_source is not None else modules,
                                unit_limits=self.unit_limits, runtimes=runtimes, su_client=su_client,
                                **dict(engine_options or {}))
        self.storage = CUStorage(self.cfg.db_path)
        self.workers = workers
        self.backend: InlineBackend | PoolBackend | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._meta: dict[str, tuple[ProcessMeta, ModuleMeta]] = {}
        self._bytes: dict[str, bytes] = {}
        self._formats: tuple[str, ...] | None = None
        self.started_at = time.time()
        self.metrics = {"requests": 0, "evaluations": 0, "errors": 0, "coalesced": 0}
        self.result_cache = ResultLRU(result_cache_size)
        self._slots: OrderedDict[tuple[str, str], int] = OrderedDict()    # (process, id) -> nonce, told by the SU
        self._computing: dict[tuple[str, str], asyncio.Future] = {}       # /result work in flight

    async def start(self) -> "ComputeUnit":
        if self.backend is None:
            if self.workers > 0:
                self.backend = await anyio.to_thread.run_sync(PoolBackend, self.cfg, self.workers)
            else:
                self.backend = await anyio.to_thread.run_sync(InlineBackend, self.cfg)
        return self

    async def close(self) -> None:
        if self.backend is not None:
            backend, self.backend = self.backend, None
            await anyio.to_thread.run_sync(backend.close)
        self.storage.close()
        self.su.close()

    async def checkpoint_all(self) -> int:
        return sum(await self.backend.broadcast("checkpoint_all"))

    # ---- process resolution ---------------------------------------------------------------
    def _lock(self, pid: str) -> asyncio.Lock:
        lock = self._locks.get(pid)
        if lock is None:
            lock = self._locks[pid] = asyncio.Lock()
        return lock

    async def process(self, pid: str) -> tuple[ProcessMeta, ModuleMeta]:
        got = self._meta.get(pid)
        if got is not None:
            return got
        obj = await anyio.to_thread.run_sync(self.su.process, pid)
        meta = ProcessMeta.from_su_json(obj)
        if meta.id != pid:
            raise NotFound(f"process {pid} not found (SU answered {meta.id})")
        item = await anyio.to_thread.run_sync(self.modules.get, meta.module_id)
        module = ModuleMeta(item.id, item.owner, item.tags)
        try:
            CronSchedule.from_tags(meta.tags, meta.block_height, meta.timestamp)
        except CronError as exc:
            raise InvalidProcess(f"process {pid}: {exc}") from None
        process_limits(meta.tags, module, self.unit_limits, pid)          # 413 before any work
        self._bytes[module.id] = item.data
        self._meta[pid] = (meta, module)
        return meta, module

    async def _engine(self, pid: str, method: str, target: Target, *extra):
        meta, module = await self.process(pid)
        args = (meta, module, target, *extra)        # frozen dataclasses: they pickle to workers as is
        try:
            return await self.backend.call(pid, method, *args)
        except NeedModule:
            await self.backend.call(pid, "add_module", module.id, self._bytes[module.id])
            return await self.backend.call(pid, method, *args)

    async def evaluate(self, pid: str, target: Target):
        async with self._lock(pid):
            self.metrics["evaluations"] += 1
            return await self._engine(pid, "evaluate", target)

    # ---- slots an SU in this OS process tells us of ----------------------------------------
    def note_slot(self, process_id: str, message_id: str, nonce: int, assignment_id: str | None = None) -> None:
        """Remember where a message was scheduled, so `/result` needs no SU round trip to find it.

        Called by an SU sharing this OS process right after it commits a slot (aonet.links). Slots
        never change once committed, so a remembered one is never stale; unknown ones are asked for."""
        for key in ((process_id, message_id), (process_id, assignment_id)):
            if key[1]:
                self._slots[key] = nonce
        while len(self._slots) > SLOT_HINTS:
            self._slots.popitem(last=False)

    # ---- the API --------------------------------------------------------------------------
    async def result(self, message_id: str, pid: str) -> dict:
        """`GET /result/{id}?process-id=`: evaluate up to the message and return its result.

        Concurrent requests for one result (the MU's crank and the client that sent the message)
        share one computation."""
        key = (pid, message_id)
        found = self.result_cache.get(key)
        if found is not None:
            return found
        found = self.storage.get_result(pid, message_id)
        if found is not None:
            self.result_cache.put(key, found)
            return found
        work = self._computing.get(key)
        if work is None:
            work = self._computing[key] = asyncio.ensure_future(self._compute_result(message_id, pid))
            work.add_done_callback(lambda w: (self._computing.pop(key, None),
                                              None if w.cancelled() else w.exception()))
        else:
            self.metrics["coalesced"] += 1
        return await asyncio.shield(work)

    async def _compute_result(self, message_id: str, pid: str) -> dict:
        key = (pid, message_id)
        await self.process(pid)
        nonce = 0 if message_id == pid else self._slots.get(key)
        if nonce is None:
            node = await anyio.to_thread.run_sync(self.su.message, message_id, pid)
            s = map_node(node, pid) if isinstance(node, Mapping) and node.get("assignment") else None
            if s is None:
                raise NotFound(f"message {message_id} not found on process {pid}")
            nonce = s.nonce
        lock = self._lock(pid)
        if lock.locked():
            self.metrics["coalesced"] += 1
        async with lock:
            found = self.storage.get_result(pid, message_id)
            if found is None:
                self.metrics["evaluations"] += 1
                await self._engine(pid, "evaluate", Target(nonce=nonce))
                found = self.storage.get_result(pid, message_id)
        if found is None:
            raise NotFound(f"message {message_id} of process {pid} has no result (a duplicate that was skipped?)")
        self.result_cache.put(key, found)
        return found

    async def results(self, pid: str, *, from_: str | None = None, to: str | None = None, sort: str = "ASC",
                      limit: int = 25, cron_only: bool = False) -> dict:
        sort = (sort or "ASC").upper()
        if sort not in ("ASC", "DESC"):
            raise BadRequest("sort must be ASC or DESC")
        after = decode_cursor(from_, sort) if from_ else None
        upto = None
        if to:
            upto = decode_cursor(to, sort)
            if to.strip().lstrip("-").isdigit():       # a bare timestamp `to` is inclusive of that ms
                ts = int(to)
                upto = (ts, 1 << 62, "\uffff") if sort == "ASC" else (ts, -1, "")
        rows, more = self.storage.page_results(pid, after=after, upto=upto, sort=sort, limit=limit,
                                               cron_only=cron_only)
        return {"pageInfo": {"hasNextPage": more}, "edges": _edges(rows, sort)}

    async def cron(self, pid: str, *, from_: str | None = None, to: str | None = None, limit: int = 500) -> dict:
        """`GET /cron/{pid}`: evaluate to `to` (a timestamp or cursor) or now, then page cron results."""
        await self.process(pid)
        to_ts = decode_cursor(to, "ASC")[0] if to else None
        await self.evaluate(pid, Target(timestamp=to_ts))
        return await self.results(pid, from_=from_, to=to, sort="ASC", limit=limit, cron_only=True)

    async def dry_run(self, pid: str, body: Mapping, to_message: str | None = None) -> dict:
        await self.process(pid)
        target = Target()
        if to_message:
            node = await anyio.to_thread.run_sync(self.su.message, to_message, pid)
            target = Target(nonce=map_node(node, pid).nonce)
        async with self._lock(pid):
            return await self._engine(pid, "dry_run", target, dict(body))

    async def state(self, pid: str, to_ts: int | None = None) -> tuple[bytes, dict]:
        await self.process(pid)
        async with self._lock(pid):
            return await self._engine(pid, "state", Target(timestamp=to_ts))
