"""The evaluator: live instances of processes, advanced lazily through their schedule.

One `Engine` lives in one OS process (the CU's worker, or the CU itself with workers=0) and owns the
processes routed to it. For each it keeps a *live* instance and the `Position` it stands at; a
request names a target (a scheduled nonce, or a timestamp: "now" for the latest state) and the
engine reads the SU from its position, checks the hash chain, interleaves the cron ticks
(cron.py), evaluates, stores results and takes checkpoints by policy.

Theory of operation:
- Start point: the live instance if it is not past the target; else the newest checkpoint not past
  it; else a cold start (fresh instance at the origin, nonce -1). A target behind the live position
  (historic /state, dry-run `to`) is served from a scratch instance that is never cached or saved.
- A failed message (Error, trap, out of fuel or memory) is recorded as an errored result; the
  runtime leaves the memory as it was before the message, so the position moves on and any later
  checkpoint still holds a state produced only by successful messages.
- Checkpoint policy: every `checkpoint_every` messages or `checkpoint_seconds` of compute, on
  eviction (LRU by count and total memory) and on close. Results are flushed before a checkpoint.
- Cron ticks of the current gap are regenerated from the gap's left boundary after a restore and
  those at or before the position are skipped; their order is a pure function of the log.
"""
from __future__ import annotations

import importlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from ..vm.base import Instance, LimitError, Limits, Result, Runtime, VMError
from .core import (ChainState, ModuleMeta, ProcessMeta, Scheduled, UnitLimits, build_env, check_module,
                   dry_run_message, hydrate, map_node, process_limits, synthetic_process_message)
from .cron import CronError, CronSchedule
from .errors import BadRequest, CUError, InvalidProcess, LimitExceeded, NotFound, Unsupported
from .sources import BlockSource, ClockBlockSource, ModuleSource, SUClient, default_cache_dir
from .storage import CUStorage, Position, ResultRow

log = logging.getLogger("aonet.cu")


class NeedModule(CUError):
    """The engine has not seen this module's bytes yet; the caller sends them with the request."""
    status = 500


def default_runtimes(cache_dir: str | None = None) -> dict[str, Runtime]:
    """Module-Format -> runtime, for every runtime this installation can build (`cache_dir`: the root
    of the compiled-module caches, default $AONET_CACHE)."""
    from ..vm.emscripten import EmscriptenRuntime
    from ..vm.wasm import WasmRuntime
    base = cache_dir or default_cache_dir()
    out: dict[str, Runtime] = {}
    # AO's own formats (emscripten2/3/4 and wasm64-unknown-emscripten-draft_2024_02_15,
    # vm/emscripten_profile.py): a separate engine (no fuel), so a separate compile cache; other AO
    # formats are not registered, so they get a 422 naming the format
    for rt in (WasmRuntime(base + "/wasmtime"), EmscriptenRuntime(base + "/wasmtime-emscripten")):
        out.update({fmt: rt for fmt in rt.formats})   # one instance serves all of its formats
    return out


def load_runtimes(spec: str | Callable[[], Mapping[str, Runtime]] | Mapping[str, Runtime] | None) -> dict[str, Runtime]:
    """`"module:function"`, a callable, or a mapping -> a format->runtime dict."""
    if spec is None:
        return default_runtimes()
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str):
        mod, _, fn = spec.partition(":")
        spec = getattr(importlib.import_module(mod), fn)
    return dict(spec())


@dataclass
class EngineConfig:
    """Everything an engine needs; picklable so a worker process can rebuild the engine."""
    db_path: str
    su_url: str
    items: ModuleSource | None = None                  # hydrates `assign`ed items (message: null)
    blocks: BlockSource = field(default_factory=ClockBlockSource)
    unit_limits: UnitLimits = field(default_factory=UnitLimits)
    runtimes: Any = "aonet.cu.engine:default_runtimes"  # see load_runtimes
    checkpoint_every: int = 5000                       # messages
    checkpoint_seconds: float = 5.0                    # seconds of compute
    keep_checkpoints: int = 4                          # per process
    max_live: int = 64                                 # live instances
    max_live_bytes: int = 4 << 30                      # total linear memory of live instances
    verify_chain: bool = True
    page_size: int = 1000                              # SU page (nodes per request)
    prefetch: bool = True                              # SU renders page k+1 while page k is evaluated
    result_batch: int = 1000
    # an SU reader to use instead of HTTP to su_url (an SU in this OS process: aonet.links.LocalSUClient;
    # it pickles as an HTTP SUClient, so worker processes use HTTP)
    su_client: Any = None


@dataclass(frozen=True)
class Target:
    """How far to evaluate: through scheduled `nonce`, or everything up to `timestamp` (crons too)."""
    nonce: int | None = None
    timestamp: int | None = None

    def passed_by(self, pos: Position) -> bool:
        """Whether a process at `pos` has already evaluated beyond this target."""
        if self.nonce is not None:
            return pos.nonce > self.nonce or (pos.nonce == self.nonce and pos.cron != "")
        if self.timestamp is None:          # "now": nothing is past it
            return False
        return pos.timestamp > self.timestamp


@dataclass
class Live:
    meta: ProcessMeta
    module: ModuleMeta
    env: dict
    limits: Limits
    instance: Instance
    pos: Position
    chain: ChainState
    crons: CronSchedule
    evaluated: int = 0
    since_checkpoint: int = 0
    compute_since_checkpoint: float = 0.0
    memory_size: int = 0
    scratch: bool = False


@dataclass
class EvalSummary:
    process_id: str
    position: dict
    evaluated: int
    errors: int
    seconds: float


class Engine:
    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.storage = CUStorage(cfg.db_path, single_connection=True)     # calls are serialised
        self.su = cfg.su_client if cfg.su_client is not None else SUClient(cfg.su_url)
        self.runtimes = load_runtimes(cfg.runtimes)
        self.modules: dict[str, bytes] = {}
        self.live: OrderedDict[str, Live] = OrderedDict()
        self._pending: list[ResultRow] = []
        self._pending_ids: dict[tuple[str, str], int] = {}   # (process, message) -> nonce, of _pending
        self.stats = {"evaluated": 0, "errors": 0, "checkpoints": 0, "cold_starts": 0, "restores": 0,
                      "evictions": 0, "checkpoint_ms": 0.0}

    # ---- public ------------------------------------------------------------------------------
    def add_module(self, module_id: str, data: bytes) -> None:
        self.modules[module_id] = data

    def evaluate(self, process: Mapping, module: Mapping, target: Target) -> EvalSummary:
        """Bring the process to `target` (storing results); returns where it stands."""
        t0 = time.perf_counter()
        live = self._live_for(process, module, target)
        before, errs = live.evaluated, self.stats["errors"]
        self._advance(live, target)
        return EvalSummary(live.meta.id, vars(live.pos).copy(), live.evaluated - before,
                           self.stats["errors"] - errs, time.perf_counter() - t0)

    def dry_run(self, process: Mapping, module: Mapping, target: Target, body: Mapping) -> dict:
        live = self._live_for(process, module, target)
        self._advance(live, target)
        try:
            msg = dry_run_message(body, live.meta.id, live.pos.timestamp, live.pos.block_height)
        except ValueError as exc:
            raise BadRequest(f"malformed dry-run message: {exc}") from None
        image = live.instance.snapshot()
        try:
            result = live.instance.handle(msg, live.env)
        finally:
            live.instance.restore(image)
        return result.to_json()

    def state(self, process: Mapping, module: Mapping, target: Target) -> tuple[bytes, dict]:
        live = self._live_for(process, module, target)
        self._advance(live, target)
        p = live.pos
        return live.instance.snapshot(), {"Last-Timestamp": str(p.timestamp), "Last-Ordinate": str(p.ordinate),
                                          "Last-Block-Height": str(p.block_height), "Last-Nonce": str(p.nonce),
                                          "Last-Cron": p.cron}

    def checkpoint_all(self) -> int:
        n = 0
        for live in list(self.live.values()):
            if live.since_checkpoint:
                self._checkpoint(live)
                n += 1
        self._flush()
        return n

    def forget(self, process_id: str) -> None:
        """Drop a live instance without saving (tests, or a process whose module changed)."""
        self.live.pop(process_id, None)

    def close(self) -> None:
        try:
            self.checkpoint_all()
        finally:
            self.storage.close()
            self.su.close()

    # ---- loading -----------------------------------------------------------------------------
    def _live_for(self, process: Mapping, module: Mapping, target: Target) -> Live:
        meta = ProcessMeta(**process) if not isinstance(process, ProcessMeta) else process
        mod = ModuleMeta(**module) if not isinstance(module, ModuleMeta) else module
        live = self.live.get(meta.id)
        if live is not None and live.module.id != mod.id:
            self.live.pop(meta.id)
            live = None
        if live is not None and not target.passed_by(live.pos):
            self.live.move_to_end(meta.id)
            return live
        if live is not None:        # behind the live position: a scratch instance
            return self._load(meta, mod, target, scratch=True)
        live = self._load(meta, mod, target, scratch=False)
        self.live[meta.id] = live
        self._evict()
        return live

    def _load(self, meta: ProcessMeta, mod: ModuleMeta, target: Target, scratch: bool) -> Live:
        limits = process_limits(meta.tags, mod, self.cfg.unit_limits, meta.id)
        fmt = check_module(mod, self.runtimes)
        try:
            crons = CronSchedule.from_tags(meta.tags, meta.block_height, meta.timestamp)
        except CronError as exc:
            raise InvalidProcess(f"process {meta.id}: {exc}") from None
        data = self.modules.get(mod.id)
        if data is None:
            raise NeedModule(mod.id)
        runtime = self.runtimes[fmt]
        ck = self.storage.latest_checkpoint(meta.id, mod.id, max_nonce=target.nonce, max_timestamp=target.timestamp)
        if ck is not None and target.passed_by(ck.position):
            ck = None
        try:
            if ck is not None:
                inst = runtime.instantiate(data, limits, image=self.storage.load_memory(ck.blob), format=fmt)
                pos = ck.position
                evaluated = ck.evaluated
                self.stats["restores"] += 1
            else:
                inst = runtime.instantiate(data, limits, format=fmt)
                pos = Position(nonce=-1, timestamp=meta.timestamp, block_height=meta.block_height,
                               left_timestamp=meta.timestamp, left_height=meta.block_height)
                evaluated = 0
                self.stats["cold_starts"] += 1
        except LimitError as exc:
            raise LimitExceeded(f"process {meta.id}: {exc}") from None
        except VMError as exc:
            raise Unsupported(f"module {mod.id} cannot be loaded: {exc}") from None
        live = Live(meta, mod, build_env(meta, mod), limits, inst, pos,
                    ChainState(pos.nonce, pos.assignment_id, pos.hash_chain), crons, evaluated=evaluated,
                    scratch=scratch)
        live.memory_size = _memory_size(inst)
        return live

    def _evict(self) -> None:
        while len(self.live) > 1 and (len(self.live) > self.cfg.max_live or
                                      sum(lv.memory_size for lv in self.live.values()) > self.cfg.max_live_bytes):
            pid, live = self.live.popitem(last=False)
            if live.since_checkpoint:
                self._flush()
                self._checkpoint(live)
            self.stats["evictions"] += 1

    # ---- evaluation --------------------------------------------------------------------------
    def _advance(self, live: Live, target: Target) -> None:
        pid = live.meta.id
        to_ts = target.timestamp
        if target.nonce is None and to_ts is None:
            to_ts, _ = self.su.timestamp()
        try:
            if target.nonce is None or live.pos.nonce < target.nonce:
                nodes = self.su.nodes(pid, after_nonce=live.pos.nonce, to_nonce=target.nonce, to_ts=to_ts,
                                      limit=self.cfg.page_size, prefetch=self.cfg.prefetch)
                try:
                    for node in nodes:
                        s = map_node(node, pid)
                        live.chain.check(s, pid, self.cfg.verify_chain)
                        self._crons_until(live, s.timestamp)
                        self._scheduled(live, s)
                finally:
                    nodes.close()
            if target.nonce is None and live.crons and CronSchedule.tail_needed(live.pos.left_timestamp, to_ts):
                self._crons_until(live, to_ts)
        finally:
            if not live.scratch:
                self._flush()

    def _crons_until(self, live: Live, right_ts: int) -> None:
        """Evaluate the ticks of the current gap that come before `right_ts` and after the position."""
        if not live.crons:
            return
        p = live.pos
        blocks = ()
        if live.crons.has_block_crons and right_ts > p.left_timestamp:
            blocks = self.cfg.blocks.blocks(p.left_timestamp, right_ts)
        skipping = p.cron != ""
        for tick in live.crons.between(p.left_timestamp, p.left_height, p.ordinate, right_ts, blocks):
            if skipping:
                if tick.timestamp == p.timestamp and tick.cron == p.cron:
                    skipping = False
                continue
            msg = tick.message(live.meta.id, live.meta.owner)
            res = self._handle(live, msg)
            live.pos = replace(live.pos, timestamp=tick.timestamp, ordinate=tick.ordinate, cron=tick.cron,
                               block_height=tick.block_height)
            self._record(live, ResultRow(live.meta.id, None, None, tick.timestamp, tick.ordinate, tick.cron,
                                         tick.block_height, res.error is not None, res.to_json()))

    def _scheduled(self, live: Live, s: Scheduled) -> None:
        pid = live.meta.id
        if s.nonce == 0 and not s.is_process and live.pos.nonce < 0:
            # pre-aop-6 schedule: the process itself is evaluated first, its result not saved
            self._handle(live, synthetic_process_message(live.meta))
        if s.is_assignment:
            self._hydrate(s)
        skip = False
        if (s.is_assignment or s.pushed) and not live.scratch:
            skip = self._evaluated_before(pid, s.message_id, s.nonce)
        new_pos = Position(nonce=s.nonce, timestamp=s.timestamp, ordinate=s.nonce, cron="",
                           block_height=s.block_height, assignment_id=s.assignment_id, hash_chain=s.hash_chain,
                           left_timestamp=s.timestamp, left_height=s.block_height)
        if skip:
            log.info("process %s: message %s already evaluated; skipping nonce %d", pid, s.message_id, s.nonce)
            live.pos = new_pos
            return
        res = self._handle(live, s.msg)
        live.pos = new_pos
        self._record(live, ResultRow(pid, s.message_id, s.nonce, s.timestamp, s.nonce, "", s.block_height,
                                     res.error is not None, res.to_json()))

    def _evaluated_before(self, pid: str, message_id: str, nonce: int) -> bool:
        """A duplicate (pushed twice, or assigned after it was scheduled): in the unflushed batch or stored."""
        seen = self._pending_ids.get((pid, message_id))
        if seen is not None and seen < nonce:
            return True
        return self.storage.evaluated_before(pid, message_id, nonce)

    def _hydrate(self, s: Scheduled) -> None:
        if self.cfg.items is None:
            raise NotFound(f"message {s.message_id} is assigned but this CU has no item source to read it from")
        item = self.cfg.items.get(s.message_id)
        hydrate(s, owner=item.owner, tags=item.tags, data=item.data.decode("utf-8", "replace"), anchor=item.anchor,
                signature=item.signature, recipient=item.target)

    def _handle(self, live: Live, msg: dict) -> Result:
        t0 = time.perf_counter()
        try:
            res = live.instance.handle(msg, live.env)
        except VMError as exc:
            # the instance is unusable: reload it from the last good state on the next request
            self.live.pop(live.meta.id, None)
            raise Unsupported(f"process {live.meta.id}: runtime failure: {exc}") from None
        dt = time.perf_counter() - t0
        live.evaluated += 1
        live.since_checkpoint += 1
        live.compute_since_checkpoint += dt
        self.stats["evaluated"] += 1
        if res.error is not None:
            self.stats["errors"] += 1
        return res

    def _record(self, live: Live, row: ResultRow) -> None:
        if live.scratch:
            return
        self._pending.append(row)
        if row.message_id is not None:
            self._pending_ids.setdefault((row.process_id, row.message_id), row.nonce)
        if len(self._pending) >= self.cfg.result_batch:
            self._flush()
        if (live.since_checkpoint >= self.cfg.checkpoint_every
                or live.compute_since_checkpoint >= self.cfg.checkpoint_seconds):
            self._flush()
            self._checkpoint(live)

    def _flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            self._pending_ids = {}
            self.storage.put_results(rows)

    def _checkpoint(self, live: Live) -> None:
        if live.scratch:
            return
        t0 = time.perf_counter()
        image = live.instance.snapshot()
        self.storage.save_checkpoint(live.meta.id, live.module.id, live.pos, image, live.evaluated,
                                     keep=self.cfg.keep_checkpoints)
        live.since_checkpoint = 0
        live.compute_since_checkpoint = 0.0
        live.memory_size = len(image)
        self.stats["checkpoints"] += 1
        self.stats["checkpoint_ms"] += (time.perf_counter() - t0) * 1000


def _memory_size(inst) -> int:
    fn = getattr(inst, "memory_size", None)
    try:
        return int(fn()) if callable(fn) else 0
    except Exception:  # noqa: BLE001 - a size is only a hint for eviction
        return 0
