"""The blocking client: performs the core's effects with httpx.Client and time.sleep."""
from __future__ import annotations

import time
from typing import Any, Iterable

import httpx

from . import core
from .base import from_httpx, resolve_endpoints, resolve_wallet, to_httpx, unreachable
from .core import Endpoints, Flow, Request, Sleep, TagsLike
from .trace import Trace
from .verify import ScheduleCheck
from .types import ProcessInfo, Result, ResultsPage, Scheduled, SchedulePage, Sent


def run_flow(flow: Flow, http: httpx.Client, sleep=time.sleep) -> Any:
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
            sleep(effect.seconds)
        elif isinstance(effect, Request):
            try:
                reply = from_httpx(http.request(effect.method, effect.url, **to_httpx(effect)))
            except httpx.HTTPError as exc:
                error = unreachable(effect, exc)
        else:  # pragma: no cover - a bug in core
            raise TypeError(f"flow yielded {effect!r}")


class Client:
    """An aoconnect-shaped connection to one MU, CU and (optionally) SU and gateway."""

    def __init__(self, endpoints: Endpoints, wallet=None, *, timeout: float = 60.0,
                 http: httpx.Client | None = None):
        self.endpoints = endpoints
        self.wallet = resolve_wallet(wallet)
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=True)

    def run(self, flow: Flow) -> Any:
        return run_flow(flow, self.http)

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- aoconnect ----------------------------------------------------------------------------
    def spawn(self, module: str, scheduler: str | None = None, tags: TagsLike = None, data: bytes | str = "",
              check_module: bool = True) -> str:
        return self.run(core.spawn(self.endpoints, self.wallet, module, scheduler, tags, data, check_module))

    def message(self, process: str, data: bytes | str = "", tags: TagsLike = None,
                anchor: str | bytes | None = None) -> str:
        return self.run(core.message(self.endpoints, self.wallet, process, data, tags, anchor))

    def result(self, message: str, process: str) -> Result:
        return self.run(core.result(self.endpoints, message, process))

    def results(self, process: str, from_: str | None = None, to: str | None = None, sort: str = "ASC",
                limit: int | None = None) -> ResultsPage:
        return self.run(core.results(self.endpoints, process, from_, to, sort, limit))

    def dryrun(self, process: str, data: bytes | str | None = None, tags: TagsLike = None,
               anchor: str | None = None, owner: str | None = None, to: str | None = None, **extra: Any) -> Result:
        return self.run(core.dryrun(self.endpoints, process, data, tags, anchor, owner, to, **extra))

    def monitor(self, process: str) -> str:
        return self.run(core.monitor(self.endpoints, self.wallet, process))

    def unmonitor(self, process: str) -> str:
        return self.run(core.unmonitor(self.endpoints, self.wallet, process))

    def assign(self, process: str, message: str, exclude: Iterable[str] | None = None,
               base_layer: bool = False) -> str:
        return self.run(core.assign(self.endpoints, process, message, exclude, base_layer))

    # ---- beyond aoconnect ---------------------------------------------------------------------
    def send(self, process: str, data: bytes | str = "", tags: TagsLike = None, *, action: str | None = None,
             anchor: str | bytes | None = None, cascade: bool = False, timeout: float = 30.0) -> Sent:
        """message() + result(), and with cascade=True also wait until the MU delivered everything."""
        return self.run(core.send(self.endpoints, self.wallet, process, data, tags, action, anchor, cascade,
                                  timeout))

    def trace(self, message: str) -> Trace:
        return self.run(core.trace(self.endpoints, message))

    def wait_for_cascade(self, message: str, timeout: float = 30.0) -> Trace:
        return self.run(core.wait_for_cascade(self.endpoints, message, timeout))

    def process(self, process: str) -> ProcessInfo:
        return self.run(core.process_info(self.endpoints, process))

    def latest(self, process: str) -> Scheduled:
        return self.run(core.latest(self.endpoints, process))

    def scheduled(self, message: str, process: str) -> Scheduled:
        return self.run(core.scheduled(self.endpoints, message, process))

    def schedule(self, process: str, from_: str | int | None = None, to: str | int | None = None,
                 limit: int | None = None, *, from_nonce: int | None = None,
                 show_anchor: bool = False) -> SchedulePage:
        return self.run(core.schedule(self.endpoints, process, from_, to, limit, from_nonce=from_nonce,
                                          show_anchor=show_anchor))

    def check_chain(self, process: str) -> ScheduleCheck:
        """Verify the SU's hash chain and signatures from here, trusting nothing the SU computed."""
        return self.run(core.check_chain(self.endpoints, process))

    def scheduler_address(self) -> str:
        return self.run(core.su_info(self.endpoints))["address"]

    def cu_info(self) -> dict:
        return self.run(core.cu_info(self.endpoints))


def connect(mu_url: str | None = None, cu_url: str | None = None, su_url: str | None = None,
            gateway_url: str | None = None, wallet=None, *, timeout: float = 60.0,
            http: httpx.Client | None = None) -> Client:
    """Like aoconnect's connect(): URLs default to the MU_URL/CU_URL/SU_URL/GATEWAY_URL environment."""
    return Client(resolve_endpoints(mu_url, cu_url, su_url, gateway_url), wallet, timeout=timeout, http=http)
