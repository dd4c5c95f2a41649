"""The crank's shell: runs queued tasks against the SU, CU and gateway over HTTP.

Task kinds and their stages (each stage is saved before it is acted on):
- `result`  {message, process, pushed_for}: GET CU /result -> plan (crank.py) -> complete + children.
- `message` {target, tags, data, anchor, assign_to, pushed_for}: locate target ->
    not a process: sign, upload to the gateway, done ("stored");
    a process: sign (item saved) -> push to its SU -> GET CU /result -> complete + children.
- `spawn`   {parent, tags, data, anchor, notice_tags, pushed_for}: sign (saved) -> push to the SU of
    its Scheduler -> complete with children: the `Spawned` notice to the parent and the new
    process's own result (its boot outbox).
- `assign`  {process, message}: POST SU /?process-id=&assign= -> pull the result -> children.
A re-push after a crash sends the very same signed bytes; the SU answers with the original slot.
Pushes to the same target are made one at a time, in queue order; other targets run in parallel.
Once its push is in, a task lets the next one to its target start while it pulls its result, and
completes (enqueues its children) only after the task before it, so a target's results still
enqueue their outboxes in push order.
An SU or CU in this OS process is called directly (`local_sus`, `local_cu`: aonet.links), with the
same answers and errors as over HTTP.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from ..ans104 import DataItem, parse
from . import crank
from .crank import Context, OutboxError, Plan, PushAssignment, PushMessage, PushSpawn
from .locate import LocateError, Locator, ProcessInfo
from .queue import FAILED, NewTask, Task, TaskQueue

log = logging.getLogger("aonet.mu")


class TaskError(RuntimeError):
    """A stage failed in a way worth retrying (unit down, busy, 5xx)."""


class PermanentError(RuntimeError):
    """A stage can never succeed (the SU rejects the item): the task fails without retries."""


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _bytes(s: str) -> bytes:
    return s.encode("latin-1")


def plan_to_task(plan: Plan, root: str | None, pushed_for: str | None) -> NewTask:
    """A crank plan as a queue row (JSON payload; bytes as latin-1 text)."""
    if isinstance(plan, PushMessage):
        return NewTask(plan.key, "message", {"target": plan.target, "tags": plan.tags, "data": _text(plan.data),
                                             "anchor": plan.anchor, "assign_to": list(plan.assign_to),
                                             "pushed_for": pushed_for}, target=plan.target, root=root)
    if isinstance(plan, PushSpawn):
        return NewTask(plan.key, "spawn", {"parent": plan.parent, "tags": plan.tags, "data": _text(plan.data),
                                           "anchor": plan.anchor, "notice_tags": plan.notice_tags,
                                           "pushed_for": pushed_for}, target=f"spawn:{plan.parent}", root=root)
    if isinstance(plan, PushAssignment):
        return NewTask(plan.key, "assign", {"process": plan.process, "message": plan.message,
                                            "pushed_for": pushed_for}, target=plan.process, root=root)
    assert isinstance(plan, OutboxError)
    return NewTask(plan.key, "error", {"what": plan.what, "index": plan.index, "entry": _jsonable(plan.entry)},
                   root=root, state=FAILED, error=plan.reason)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)


class Crank:
    """Runs the queue: `start()`, `kick()` after enqueueing, `stop()`."""

    def __init__(self, queue: TaskQueue, wallet, locator: Locator, http: httpx.AsyncClient, *, cu_url: str,
                 gateway_url: str, concurrency: int = 32, result_timeout: float = 120.0,
                 local_sus: Mapping[str, Any] | None = None, local_cu: Any = None):
        self.queue, self.wallet, self.locator, self.http = queue, wallet, locator, http
        self.cu_url = cu_url.rstrip("/")
        self.local_sus = {u.rstrip("/"): su for u, su in (local_sus or {}).items()}   # SU URL -> links.LocalSU
        self.local_cu = local_cu                                                        # links.LocalCU
        self.gateway_url = gateway_url.rstrip("/")
        self.concurrency = concurrency
        self.result_timeout = result_timeout
        self._inflight: dict[str, asyncio.Task] = {}
        self._busy: set[str] = set()
        self._tails: dict[str, asyncio.Future] = {}    # busy key -> the last released task's completion
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._stopping = False
        self.delivered = 0          # items pushed since start (throughput counter)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="aonet-mu-crank")

    def kick(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._loop_task:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def idle(self) -> bool:
        return not self._inflight and not self.queue.ready(limit=1)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            room = self.concurrency - len(self._inflight)
            if room > 0:
                for t in self.queue.ready(limit=room * 4, skip=self._inflight, skip_targets=self._busy):
                    if len(self._inflight) >= self.concurrency:
                        break
                    busy_key = t.target or t.key
                    if busy_key in self._busy:
                        continue
                    self._busy.add(busy_key)
                    t.extra["busy"] = busy_key
                    self._inflight[t.key] = asyncio.create_task(self._guard(t, busy_key))
            due = self.queue.next_due()
            timeout = 1.0 if due is None else max(0.005, min(1.0, due - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _guard(self, task: Task, busy_key: str) -> None:
        try:
            await self.run(task)
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            log.warning("task %s failed for good: %s", task.key, exc)
            self.queue.fail(task.key, str(exc), permanent=True)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
            retry = self.queue.fail(task.key, f"{type(exc).__name__}: {exc}")
            log.info("task %s failed (%s); %s", task.key, exc, "will retry" if retry else "gave up")
        finally:
            self._inflight.pop(task.key, None)
            if task.extra.pop("busy", None) is not None:
                self._busy.discard(busy_key)
            tail = task.extra.pop("tail", None)
            if tail is not None:
                key, _, mine = tail
                if not mine.done():
                    mine.set_result(None)
                if self._tails.get(key) is mine:
                    del self._tails[key]
            self._wake.set()

    def _release(self, task: Task) -> None:
        """The push is in: the next task to this target may start; this one completes after the last."""
        key = task.extra.pop("busy", None)
        if key is None:
            return
        self._busy.discard(key)
        mine = asyncio.get_running_loop().create_future()
        task.extra["tail"] = (key, self._tails.get(key), mine)
        self._tails[key] = mine
        self._wake.set()

    async def _complete(self, task: Task, children: list[NewTask]) -> None:
        """Complete with children, after the task released before this one (order of enqueueing)."""
        tail = task.extra.get("tail")
        if tail is not None and tail[1] is not None:
            await asyncio.shield(tail[1])       # our cancellation must not cancel the one before
        self.queue.complete(task.key, children)

    # ---- task kinds ------------------------------------------------------------------------
    async def run(self, task: Task) -> None:
        handler = {"result": self._result, "message": self._message, "spawn": self._spawn,
                   "assign": self._assign}.get(task.kind)
        if handler is None:
            raise PermanentError(f"unknown task kind {task.kind!r}")
        await handler(task)

    async def _process(self, pid: str) -> ProcessInfo:
        info = await self.locator.process(pid)
        if info is None:
            raise TaskError(f"{pid} is not a known process")
        return info

    async def _result_children(self, task: Task, message_id: str, info: ProcessInfo,
                               pushed_for: str | None) -> list[NewTask]:
        result = await self.fetch_result(message_id, info.id)
        ctx = Context(info.id, info.module, info.scheduler, message_id, pushed_for)
        root = task.root or pushed_for or message_id
        return [plan_to_task(p, root, pushed_for) for p in crank.plan_result(result, ctx)]

    async def _result(self, task: Task) -> None:
        p = task.payload
        info = await self._process(p["process"])
        self._release(task)
        children = await self._result_children(task, p["message"], info, p.get("pushed_for"))
        await self._complete(task, children)

    async def _sign(self, task: Task, *, target: str | None, tags, data: str, anchor: str | None) -> DataItem:
        """Sign once: the item is saved with the task, so a retry re-sends identical bytes.

        An RSA signature (Arweave key, ~1.5 ms) is made in a thread: it releases the GIL, so the loop
        serves requests and other tasks sign meanwhile. Ed25519 (~50 µs) is cheaper than the hop."""
        if task.item:
            return parse(task.item)
        sign = functools.partial(self.wallet.sign_item, _bytes(data), target=target, anchor=anchor,
                                 tags=[tuple(t) for t in tags])
        item = await asyncio.to_thread(sign) if self.wallet.signature_type == 1 else sign()
        task.item = item.raw
        task.item_id = item.id
        self.queue.save_stage(task.key, "signed", item=item.raw, item_id=item.id)
        return item

    async def _message(self, task: Task) -> None:
        p = task.payload
        try:
            item = await self._sign(task, target=p["target"], tags=p["tags"], data=p["data"], anchor=p.get("anchor"))
        except ValueError as exc:   # tags over ANS-104 limits, bad target
            raise PermanentError(f"cannot build the data item: {exc}") from exc
        info = await self.locator.process(p["target"])
        if info is None:
            await self.upload(item)
            self.queue.complete(task.key, stage="stored")
            self.delivered += 1
            return
        if task.stage in ("start", "signed"):
            await self.push(info.su_url, item)
            task.stage = "pushed"
            self.queue.save_stage(task.key, "pushed")
            self.delivered += 1
        self._release(task)
        children = await self._result_children(task, item.id, info, p.get("pushed_for"))
        root = task.root
        for j, pid in enumerate(p.get("assign_to") or []):
            children.append(NewTask(f"{item.id}:as{j}", "assign", {"process": pid, "message": item.id,
                                                                   "pushed_for": p.get("pushed_for")},
                                    target=pid, root=root))
        await self._complete(task, children)

    async def _spawn(self, task: Task) -> None:
        p = task.payload
        try:
            item = await self._sign(task, target=None, tags=p["tags"], data=p["data"], anchor=p.get("anchor"))
        except ValueError as exc:
            raise PermanentError(f"cannot build the process item: {exc}") from exc
        scheduler = item.tag("Scheduler")
        su = await self.locator.scheduler_url(scheduler)
        if task.stage in ("start", "signed"):
            await self.push(su, item)
            self.queue.save_stage(task.key, "pushed")
            self.delivered += 1
        self.locator.remember(ProcessInfo(item.id, item.tag("Module"), scheduler, su))
        root = task.root
        notice = crank.spawned_notice_tags([tuple(t) for t in p["notice_tags"]], item.id)
        children = [
            NewTask(f"{item.id}:spawned", "message", {"target": p["parent"], "tags": notice, "data": " ",
                                                      "anchor": p.get("anchor"), "assign_to": [],
                                                      "pushed_for": p.get("pushed_for")},
                    target=p["parent"], root=root),
            NewTask(f"result:{item.id}", "result", {"message": item.id, "process": item.id,
                                                    "pushed_for": p.get("pushed_for")}, target=item.id, root=root),
        ]
        self.queue.complete(task.key, children)

    async def _assign(self, task: Task) -> None:
        p = task.payload
        info = await self._process(p["process"])
        if task.stage in ("start", "signed"):
            aid = await self.assign(info.su_url, info.id, p["message"], p.get("exclude"), p.get("base_layer", False))
            self.queue.save_stage(task.key, "pushed", item_id=aid)
            self.delivered += 1
        self._release(task)
        children = await self._result_children(task, p["message"], info, p.get("pushed_for"))
        await self._complete(task, children)

    # ---- HTTP to the other units -------------------------------------------------------------
    async def push(self, su_url: str, item: DataItem) -> dict:
        """POST a raw item to an SU (following its router's redirects)."""
        local = self.local_sus.get(su_url.rstrip("/"))
        if local is not None:
            return await local.push(item)
        url = su_url
        for _ in range(4):
            try:
                r = await self.http.post(url + "/", content=item.raw,
                                         headers={"Content-Type": "application/octet-stream"})
            except httpx.HTTPError as exc:
                raise TaskError(f"SU {url} unreachable: {exc}") from exc
            if r.status_code in (307, 308) and r.headers.get("location"):
                url = r.headers["location"].split("?")[0].rstrip("/")
                continue
            if r.status_code == 200:
                return r.json()
            if 400 <= r.status_code < 500 and r.status_code != 429:
                raise PermanentError(f"SU refused {item.id}: {r.status_code} {r.text[:300]}")
            raise TaskError(f"SU answered {r.status_code}: {r.text[:200]}")
        raise TaskError(f"SU redirected too often for {item.id}")

    async def assign(self, su_url: str, pid: str, message: str, exclude=None, base_layer: bool = False) -> str:
        local = self.local_sus.get(su_url.rstrip("/"))
        if local is not None:
            return await local.assign(pid, message, exclude, base_layer)
        q = f"process-id={quote(pid)}&assign={quote(message)}"
        if base_layer:
            q += "&base-layer"
        if exclude:
            q += "&exclude=" + quote(",".join(exclude) if isinstance(exclude, list) else str(exclude))
        try:
            r = await self.http.post(f"{su_url}/?{q}")
        except httpx.HTTPError as exc:
            raise TaskError(f"SU {su_url} unreachable: {exc}") from exc
        if r.status_code == 200:
            return r.json().get("id")
        if 400 <= r.status_code < 500 and r.status_code != 429:
            raise PermanentError(f"SU refused assignment of {message} to {pid}: {r.status_code} {r.text[:300]}")
        raise TaskError(f"SU answered {r.status_code}: {r.text[:200]}")

    async def upload(self, item: DataItem) -> None:
        try:
            r = await self.http.post(f"{self.gateway_url}/tx/arweave", content=item.raw,
                                     headers={"Content-Type": "application/octet-stream"})
        except httpx.HTTPError as exc:
            raise TaskError(f"gateway unreachable: {exc}") from exc
        if r.status_code >= 300:
            raise TaskError(f"gateway upload answered {r.status_code}: {r.text[:200]}")

    async def fetch_result(self, message_id: str, pid: str) -> dict:
        if self.local_cu is not None:
            return await asyncio.wait_for(self.local_cu.result(message_id, pid), self.result_timeout)
        try:
            r = await self.http.get(f"{self.cu_url}/result/{message_id}",
                                    params={"process-id": pid, "no-busy": "1"}, timeout=self.result_timeout)
        except httpx.HTTPError as exc:
            raise TaskError(f"CU unreachable: {exc}") from exc
        if r.status_code != 200:
            raise TaskError(f"CU /result/{message_id} answered {r.status_code}: {r.text[:200]}")
        return r.json()


__all__ = ["Crank", "LocateError", "PermanentError", "TaskError", "plan_to_task"]
