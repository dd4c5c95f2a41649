"""The asyncio client: performs the core's effects with httpx.AsyncClient and asyncio.sleep."""
from __future__ import annotations

import asyncio
from typing import Any, Iterable

import httpx

from . import core
from .base import from_httpx, resolve_endpoints, resolve_wallet, to_httpx, unreachable
from .core import Endpoints, Flow, Request, Sleep, TagsLike
from .trace import Trace
from .verify import ScheduleCheck
from .types import ProcessInfo, Result, ResultsPage, Scheduled, SchedulePage, Sent


async def run_flow(flow: Flow, http: httpx.AsyncClient) -> Any:
    """Drive a core flow to its return value; transport failures are thrown into the flow."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            return stop.value
        reply, error = None, None
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
        elif isinstance(effect, Request):
            try:
                reply = from_httpx(await http.request(effect.method, effect.url, **to_httpx(effect)))
            except httpx.HTTPError as exc:
                error = unreachable(effect, exc)
        else:  # pragma: no cover - a bug in core
            raise TypeError(f"flow yielded {effect!r}")


class AsyncClient:
    """The awaitable twin of `Client`: same methods, same arguments, same results."""

    def __init__(self, endpoints: Endpoints, wallet=None, *, timeout: float = 60.0,
                 http: httpx.AsyncClient | None = None):
        self.endpoints = endpoints
        self.wallet = resolve_wallet(wallet)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def run(self, flow: Flow) -> Any:
        return await run_flow(flow, self.http)

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # ---- aoconnect ----------------------------------------------------------------------------
    async def spawn(self, module: str, scheduler: str | None = None, tags: TagsLike = None,
                    data: bytes | str = "", check_module: bool = True) -> str:
        return await self.run(core.spawn(self.endpoints, self.wallet, module, scheduler, tags, data, check_module))

    async def message(self, process: str, data: bytes | str = "", tags: TagsLike = None,
                      anchor: str | bytes | None = None) -> str:
        return await self.run(core.message(self.endpoints, self.wallet, process, data, tags, anchor))

    async def result(self, message: str, process: str) -> Result:
        return await self.run(core.result(self.endpoints, message, process))

    async def results(self, process: str, from_: str | None = None, to: str | None = None, sort: str = "ASC",
                      limit: int | None = None) -> ResultsPage:
        return await self.run(core.results(self.endpoints, process, from_, to, sort, limit))

    async def dryrun(self, process: str, data: bytes | str | None = None, tags: TagsLike = None,
                     anchor: str | None = None, owner: str | None = None, to: str | None = None,
                     **extra: Any) -> Result:
        return await self.run(core.dryrun(self.endpoints, process, data, tags, anchor, owner, to, **extra))

    async def monitor(self, process: str) -> str:
        return await self.run(core.monitor(self.endpoints, self.wallet, process))

    async def unmonitor(self, process: str) -> str:
        return await self.run(core.unmonitor(self.endpoints, self.wallet, process))

    async def assign(self, process: str, message: str, exclude: Iterable[str] | None = None,
                     base_layer: bool = False) -> str:
        return await self.run(core.assign(self.endpoints, process, message, exclude, base_layer))

    # ---- beyond aoconnect ---------------------------------------------------------------------
    async def send(self, process: str, data: bytes | str = "", tags: TagsLike = None, *,
                   action: str | None = None, anchor: str | bytes | None = None, cascade: bool = False,
                   timeout: float = 30.0) -> Sent:
        return await self.run(core.send(self.endpoints, self.wallet, process, data, tags, action, anchor,
                                        cascade, timeout))

    async def trace(self, message: str) -> Trace:
        return await self.run(core.trace(self.endpoints, message))

    async def wait_for_cascade(self, message: str, timeout: float = 30.0) -> Trace:
        return await self.run(core.wait_for_cascade(self.endpoints, message, timeout))

    async def process(self, process: str) -> ProcessInfo:
        return await self.run(core.process_info(self.endpoints, process))

    async def latest(self, process: str) -> Scheduled:
        return await self.run(core.latest(self.endpoints, process))

    async def scheduled(self, message: str, process: str) -> Scheduled:
        return await self.run(core.scheduled(self.endpoints, message, process))

    async def schedule(self, process: str, from_: str | int | None = None, to: str | int | None = None,
                       limit: int | None = None, *, from_nonce: int | None = None,
                 show_anchor: bool = False) -> SchedulePage:
        return await self.run(core.schedule(self.endpoints, process, from_, to, limit, from_nonce=from_nonce,
                                          show_anchor=show_anchor))

    async def check_chain(self, process: str) -> ScheduleCheck:
        """Verify the SU's hash chain and signatures from here, trusting nothing the SU computed."""
        return await self.run(core.check_chain(self.endpoints, process))

    async def scheduler_address(self) -> str:
        return (await self.run(core.su_info(self.endpoints)))["address"]

    async def cu_info(self) -> dict:
        return await self.run(core.cu_info(self.endpoints))


def connect_async(mu_url: str | None = None, cu_url: str | None = None, su_url: str | None = None,
                  gateway_url: str | None = None, wallet=None, *, timeout: float = 60.0,
                  http: httpx.AsyncClient | None = None) -> AsyncClient:
    """connect() for asyncio: `async with connect_async(...) as ao: await ao.message(...)`."""
    return AsyncClient(resolve_endpoints(mu_url, cu_url, su_url, gateway_url), wallet, timeout=timeout, http=http)
