"""The MU's HTTP API (PROTOCOL.md §4) and the service that owns its queue, crank and monitors.

`POST /` verifies a data item, hands it to the SU of its process durably (the SU has it before we
answer 202), then the crank delivers the cascade in the background. `POST /?process-id=&assign=`
forwards an assignment. `POST|DELETE /monitor/{pid}` manages cron monitors.
`GET /?debug=true&message=ID` shows the cascade the message caused, from the queue's own rows.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Mapping

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import StatusError
from ..http import JSON_ERRORS, json_error

from ..ans104 import ANS104Error, parse
from ..protocol import is_ao_item, item_type
from .locate import LocateError, Locator, ProcessInfo
from .monitor import Monitor
from .queue import NewTask, TaskQueue
from .worker import Crank, PermanentError, TaskError

log = logging.getLogger("aonet.mu")
MAX_BODY = 10 * 1024 * 1024


class MUError(StatusError):
    """A request the MU refuses (or cannot carry out), with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message, status)


class MessengerUnit:
    """The MU as an object: `await start()`, `submit(raw)`, `assign(...)`, `await stop()`."""

    def __init__(self, wallet, *, data_dir: str | Path, cu_url: str, gateway_url: str, su_urls: tuple[str, ...] = (),
                 concurrency: int = 32, monitor_interval: float = 10.0, retry_base: float = 0.25,
                 max_retries: int = 10, queue_path: str | Path | None = None,
                 local_sus: Mapping[str, Any] | None = None, local_cu: Any = None):
        """`local_sus` (SU URL -> aonet.links.LocalSU) and `local_cu` (aonet.links.LocalCU): units in
        this OS process, called directly instead of over HTTP (the node wires them)."""
        self.wallet = wallet
        self.address = wallet.address
        self.cu_url, self.gateway_url = cu_url.rstrip("/"), gateway_url.rstrip("/")
        path = Path(queue_path) if queue_path else Path(data_dir) / "mu.sqlite"
        self.queue = TaskQueue(path, retry_base=retry_base, max_retries=max_retries)
        self.su_urls = su_urls
        self.concurrency, self.monitor_interval = concurrency, monitor_interval
        self.local_sus, self.local_cu = dict(local_sus or {}), local_cu
        self.http: httpx.AsyncClient | None = None
        self.crank: Crank | None = None
        self.monitor: Monitor | None = None

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits, follow_redirects=False)
        self.locator = Locator(self.http, self.gateway_url, su_urls=self.su_urls)
        self.crank = Crank(self.queue, self.wallet, self.locator, self.http, cu_url=self.cu_url,
                           gateway_url=self.gateway_url, concurrency=self.concurrency,
                           local_sus=self.local_sus, local_cu=self.local_cu)
        self.monitor = Monitor(self.queue, self.locator, self.http, cu_url=self.cu_url,
                               interval=self.monitor_interval, on_enqueue=self.crank.kick)
        self.crank.start()
        self.monitor.start()

    async def stop(self) -> None:
        if self.monitor:
            await self.monitor.stop()
        if self.crank:
            await self.crank.stop()
        if self.http:
            await self.http.aclose()
        self.queue.close()

    # ---- operations ------------------------------------------------------------------------
    async def submit(self, raw: bytes) -> dict:
        """Verify, forward to the SU, queue the crank; the 202 body."""
        try:
            item = parse(raw, verify=True)
        except ANS104Error as exc:
            raise MUError(400, f"invalid data item: {exc}") from exc
        if not is_ao_item(item):
            raise MUError(400, "data item needs the tag Data-Protocol: ao")
        kind = item_type(item)
        if kind not in ("Process", "Message"):
            raise MUError(400, f"data item Type must be Process or Message, not {kind!r}")
        key = f"result:{item.id}"
        if self.queue.get(key) is not None:    # a re-posted identical item: already handled
            return {"message": "Processing DataItem", "id": item.id}
        try:
            if kind == "Process":
                scheduler = item.tag("Scheduler")
                if not scheduler or not item.tag("Module"):
                    raise MUError(400, "a Process needs Module and Scheduler tags")
                su = await self.locator.scheduler_url(scheduler)
                await self.crank.push(su, item)
                self.locator.remember(ProcessInfo(item.id, item.tag("Module"), scheduler, su))
                pid = item.id
            else:
                pid = item.target_id
                if not pid:
                    raise MUError(400, "a Message needs a target (the process id)")
                info = await self.locator.process(pid)
                if info is None:   # not a process: keep it on the gateway, nothing to crank
                    await self.crank.upload(item)
                    return {"message": "Processing DataItem", "id": item.id}
                await self.crank.push(info.su_url, item)
        except LocateError as exc:
            raise MUError(400, str(exc)) from exc
        except PermanentError as exc:
            raise MUError(400, str(exc)) from exc
        except TaskError as exc:
            raise MUError(502, str(exc)) from exc
        self.queue.add([NewTask(key, "result", {"message": item.id, "process": pid, "pushed_for": item.id},
                                target=pid, root=item.id, item_id=item.id)])
        self.crank.kick()
        out = {"message": "Processing DataItem", "id": item.id}
        if kind == "Process":
            out["processId"] = item.id
        return out

    async def assign(self, pid: str, message: str, *, exclude: str | None = None, base_layer: bool = False) -> dict:
        try:
            info = await self.locator.process(pid)
        except LocateError as exc:
            raise MUError(400, str(exc)) from exc
        if info is None:
            raise MUError(400, f"{pid} is not a known process")
        try:
            aid = await self.crank.assign(info.su_url, pid, message, exclude.split(",") if exclude else None,
                                          base_layer)
        except PermanentError as exc:
            raise MUError(400, str(exc)) from exc
        except TaskError as exc:
            raise MUError(502, str(exc)) from exc
        self.queue.add([NewTask(f"result:{aid}", "result", {"message": message, "process": pid,
                                                             "pushed_for": aid},
                                target=pid, root=aid, item_id=aid)])
        self.crank.kick()
        return {"message": "Processing Assignment", "id": aid}

    def trace(self, message_id: str) -> dict:
        rows = self.queue.trace(message_id)
        return {"pageInfo": {"hasNextPage": False},
                "edges": [{"cursor": str(t.seq), "node": t.to_json()} for t in rows]}


def trace_table(trace: dict) -> str:
    """The trace as a fixed-width text table (GET /?debug=true&message=ID&format=text)."""
    lines = [f"{'kind':8} {'state':8} {'stage':8} {'target':44} {'id':44} error"]
    for e in trace["edges"]:
        n = e["node"]
        lines.append(f"{n['kind']:8} {n['state']:8} {n['stage']:8} {(n['target'] or '-'):44} {(n['id'] or '-'):44} "
                     f"{n['error'] or ''}")
    return "\n".join(lines) + "\n"


def create_mu_app(mu: MessengerUnit, *, manage_lifecycle: bool = True) -> Starlette:
    """The HTTP face of `mu`; with manage_lifecycle the app's lifespan starts and stops it."""

    async def root_get(request: Request) -> Response:
        q = request.query_params
        if q.get("debug") == "true":
            mid = q.get("message") or q.get("assign") or q.get("spawn") or q.get("process")
            if not mid:
                return json_error(400, "debug needs message=, assign=, spawn= or process=")
            tr = mu.trace(mid)
            if q.get("format") == "text":
                return PlainTextResponse(trace_table(tr))
            return JSONResponse(tr)
        return PlainTextResponse("ao messenger unit")

    async def root_post(request: Request) -> Response:
        q = request.query_params
        pid, assign = q.get("process-id"), q.get("assign")
        try:
            if pid or assign:
                if not (pid and assign):
                    return json_error(400, "assign needs both process-id and assign")
                out = await mu.assign(pid, assign, exclude=q.get("exclude"), base_layer="base-layer" in q)
                return JSONResponse(out, status_code=202)
            body = await request.body()
            if not body:
                return json_error(400, "POST / needs a raw ANS-104 data item (Content-Type: application/octet-stream)")
            if len(body) > MAX_BODY:
                return json_error(413, "data item larger than 10 MiB")
            return JSONResponse(await mu.submit(body), status_code=202)
        except MUError as exc:
            return json_error(exc.status, str(exc))

    async def monitor(request: Request) -> Response:
        pid = request.path_params["pid"]
        if request.method == "DELETE":
            mu.monitor.remove(pid)
            return PlainTextResponse("Process deleted")
        try:
            known = await mu.locator.process(pid)
        except (LocateError, httpx.HTTPError) as exc:
            return json_error(502, f"cannot locate process {pid}: {exc}")
        if known is None:
            return json_error(404, f"{pid} is not a process this network knows")
        await mu.monitor.add(pid)
        return PlainTextResponse("Monitoring process")

    async def health(request: Request) -> Response:
        return JSONResponse({"address": mu.address, "tasks": mu.queue.counts(), "monitors": len(mu.queue.monitors())})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await mu.start()
        try:
            yield
        finally:
            await mu.stop()

    app = Starlette(routes=[
        Route("/", root_get, methods=["GET"]),
        Route("/", root_post, methods=["POST"]),
        Route("/monitor/{pid}", monitor, methods=["POST", "DELETE"]),
        Route("/health", health, methods=["GET"]),
    ], lifespan=lifespan if manage_lifecycle else None, exception_handlers=JSON_ERRORS)
    app.state.mu = mu
    return app


__all__ = ["MUError", "MessengerUnit", "create_mu_app", "trace_table"]
