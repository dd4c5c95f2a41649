"""The CU's HTTP API (PROTOCOL.md §5), a thin Starlette shell over `ComputeUnit`.

Errors are `{"error": "<message>"}` with the status of the `CUError` (404 unknown process or
message, 400 malformed request, 413 limits, 422 unsupported module, 502 upstream). Every response
that carries results (/result, /results, /cron, /dry-run, /state) is signed by the CU wallet in
headers (signing.py, docs/cu.md).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, Mapping

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..http import JSON_ERRORS, json_error

from ..wallet import Wallet
from .core import UnitLimits
from .errors import BadRequest, CUError
from .service import ComputeUnit
from .signing import sign_response
from .sources import GatewayModuleSource, ModuleSource

log = logging.getLogger("aonet.cu")
MAX_LIMIT = 1000
MAX_DRY_RUN_BODY = 10 << 20
ED25519 = 2                    # ANS-104 signature type
INLINE_SIGN_BYTES = 64 << 10   # Ed25519 responses up to this size are signed on the loop (deep hash ~0.1 ms)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _int(request: Request, name: str, default: int | None = None, *, lo: int | None = None,
         hi: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {raw[:40]!r}") from None
    if lo is not None and v < lo:
        raise BadRequest(f"query parameter {name} must be >= {lo}")
    return min(v, hi) if hi is not None else v


def create_cu_app(*, data_dir: str | os.PathLike | None = None, su_url: str | None = None, wallet: Wallet | None = None,
                  modules: ModuleSource | None = None, gateway_url: str | None = None, workers: int = 0,
                  unit_limits: UnitLimits | None = None, engine_options: Mapping | None = None,
                  runtimes: Any = "aonet.cu.engine:default_runtimes", cu: ComputeUnit | None = None) -> Starlette:
    """A Starlette app serving the CU.

    Give either a ready `cu` (its wallet signs) or the parts: `data_dir`, `su_url`, `wallet`, and a
    module source (`modules`, or `gateway_url` for a `GatewayModuleSource`). `workers=0` evaluates in
    this process; N>0 starts N worker processes. The unit starts on app startup and checkpoints every
    live process on shutdown.
    """
    if cu is None:
        if data_dir is None or su_url is None:
            raise ValueError("create_cu_app needs data_dir and su_url (or a ComputeUnit)")
        if modules is None:
            if gateway_url is None:
                raise ValueError("create_cu_app needs a module source: modules=... or gateway_url=...")
            modules = GatewayModuleSource(gateway_url)
        cu = ComputeUnit(data_dir=data_dir, su_url=su_url, modules=modules, wallet=wallet, workers=workers,
                         unit_limits=unit_limits, engine_options=engine_options, runtimes=runtimes)
    if cu.wallet is None:
        cu.wallet = Wallet.generate("ed25519")
    wallet = cu.wallet

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await cu.start()
        try:
            yield
        finally:
            await cu.close()

    async def signed(request: Request, body: bytes, media_type: str = "application/json",
                     headers: Mapping[str, str] | None = None) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if wallet.signature_type == ED25519 and len(body) <= INLINE_SIGN_BYTES:
            sig = sign_response(wallet, target, body)      # ~50 µs: less than the hop to a thread
        else:
            sig = await anyio.to_thread.run_sync(sign_response, wallet, target, body)
        return Response(body, media_type=media_type, headers={**(headers or {}), **sig})

    async def handle(fn, request: Request) -> Response:
        cu.metrics["requests"] += 1
        try:
            return await fn(request)
        except CUError as exc:
            if exc.status >= 500:
                cu.metrics["errors"] += 1
                log.warning("CU %s %s: %s", request.method, request.url.path, exc)
            return json_error(exc.status, str(exc))

    def pid_param(request: Request) -> str:
        pid = request.query_params.get("process-id")
        if not pid:
            raise BadRequest("the process-id query parameter is required")
        return pid

    async def root(request: Request) -> Response:
        return JSONResponse({"address": wallet.address, "timestamp": int(time.time() * 1000)})

    async def health(request: Request) -> Response:
        return Response(status_code=200)

    async def result(request: Request) -> Response:
        res = await cu.result(request.path_params["id"], pid_param(request))
        res = {k: v for k, v in res.items() if k != "Memory"}
        return await signed(request, _json_bytes(res))

    async def results(request: Request) -> Response:
        q = request.query_params
        page = await cu.results(request.path_params["pid"], from_=q.get("from") or None, to=q.get("to") or None,
                                sort=q.get("sort") or "ASC", limit=_int(request, "limit", 25, lo=1, hi=MAX_LIMIT))
        return await signed(request, _json_bytes(page))

    async def cron(request: Request) -> Response:
        q = request.query_params
        page = await cu.cron(request.path_params["pid"], from_=q.get("from") or None, to=q.get("to") or None,
                             limit=_int(request, "limit", 500, lo=1, hi=MAX_LIMIT))
        return await signed(request, _json_bytes(page))

    async def dry_run(request: Request) -> Response:
        pid = pid_param(request)
        raw = await request.body()
        if len(raw) > MAX_DRY_RUN_BODY:
            raise BadRequest("dry-run body too large")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise BadRequest("dry-run body must be JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("dry-run body must be a JSON object")
        res = await cu.dry_run(pid, body, request.query_params.get("to") or None)
        return await signed(request, _json_bytes({k: v for k, v in res.items() if k != "Memory"}))

    async def state(request: Request) -> Response:
        memory, headers = await cu.state(request.path_params["pid"], _int(request, "to"))
        return await signed(request, memory, "application/octet-stream", headers)

    async def metrics(request: Request) -> Response:
        lines = [f"aonet_cu_{k}_total {v}" for k, v in cu.metrics.items()]
        lines.append(f"aonet_cu_uptime_seconds {time.time() - cu.started_at:.0f}")
        lines.append(f"aonet_cu_workers {cu.backend.workers if cu.backend else 0}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    def route(path: str, fn, methods=("GET",)) -> Route:
        async def endpoint(request: Request) -> Response:
            return await handle(fn, request)
        return Route(path, endpoint, methods=list(methods))

    routes = [route("/", root), route("/health", health), route("/metrics", metrics),
              route("/result/{id}", result), route("/results/{pid}", results), route("/cron/{pid}", cron),
              route("/dry-run", dry_run, ("POST",)), route("/state/{pid}", state)]

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("CU internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={**JSON_ERRORS, Exception: server_error})
    app.state.cu = cu
    return app
