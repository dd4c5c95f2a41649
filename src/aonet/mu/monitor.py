"""Cron monitors: poll the CU's `/cron/{pid}` for monitored processes and crank their outboxes.

The list of monitored processes and each one's cursor live in the MU's queue database, so monitors
survive restarts. Each cron result is enqueued together with the cursor that follows it (one
transaction), so a crash never skips a cron result nor delivers one twice.
"""
from __future__ import annotations

import asyncio
import logging

import httpx

from . import crank
from .crank import Context
from .locate import Locator
from .queue import TaskQueue
from .worker import plan_to_task

log = logging.getLogger("aonet.mu.monitor")


class Monitor:
    def __init__(self, queue: TaskQueue, locator: Locator, http: httpx.AsyncClient, *, cu_url: str,
                 interval: float = 10.0, page: int = 50, on_enqueue=None):
        self.queue, self.locator, self.http = queue, locator, http
        self.cu_url = cu_url.rstrip("/")
        self.interval, self.page = interval, page
        self.on_enqueue = on_enqueue or (lambda: None)
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="aonet-mu-monitor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def add(self, pid: str) -> bool:
        """Start monitoring `pid` from its latest evaluated result (the CU's first cursor)."""
        cursor = None
        try:
            r = await self.http.get(f"{self.cu_url}/results/{pid}", params={"sort": "DESC", "limit": "1"})
            if r.status_code == 200:
                edges = r.json().get("edges") or []
                cursor = edges[0]["cursor"] if edges else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            cursor = None
        created = self.queue.add_monitor(pid, cursor)
        self._wake.set()
        return created

    def remove(self, pid: str) -> bool:
        return self.queue.remove_monitor(pid)

    async def poll(self, pid: str, cursor: str | None) -> int:
        """One round for one process; returns the number of cron results taken."""
        params = {"limit": str(self.page)}
        if cursor:
            params["from"] = cursor
        r = await self.http.get(f"{self.cu_url}/cron/{pid}", params=params, timeout=120)
        if r.status_code != 200:
            raise RuntimeError(f"CU /cron/{pid} answered {r.status_code}: {r.text[:200]}")
        edges = r.json().get("edges") or []
        if not edges:
            return 0
        info = await self.locator.process(pid)
        module = info.module if info else None
        scheduler = info.scheduler if info else None
        for edge in edges:
            cur = edge.get("cursor")
            ctx = Context(pid, module, scheduler, f"cron:{pid}:{cur}", None)
            tasks = [plan_to_task(p, f"cron:{pid}", None) for p in crank.plan_result(edge.get("node") or {}, ctx)]
            if pid not in self.queue.monitors():   # removed meanwhile
                break
            self.queue.add(tasks, monitor_cursor=(pid, cur))
        self.on_enqueue()
        return len(edges)

    async def poll_all(self) -> None:
        for pid, cursor in self.queue.monitors().items():
            try:
                while await self.poll(pid, cursor) >= self.page:
                    cursor = self.queue.monitors().get(pid)
            except Exception as exc:  # noqa: BLE001 - one process's failure must not stop the others
                log.info("cron poll of %s failed: %s", pid, exc)

    async def _loop(self) -> None:
        while True:
            await self.poll_all()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
