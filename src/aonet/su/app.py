"""The SU's HTTP API (PROTOCOL.md §3) as a Starlette app: a thin shell over `SchedulerService`.

Every refusal is a 4xx `{"error": "<what is wrong>"}`; a 200 on `POST /` is sent only after the
assignment (and the item) are committed to the log.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..blocks import BlockClock, format_height, now_ms
from ..store.base import Store, StoreConflict, StoreError
from . import core, formats
from .core import BadRequest, ItemTooLarge, NotFound, ScheduleError
from .service import SchedulerService
from .verify import verify_chain

log = logging.getLogger("aonet.su")

DEFAULT_MAX_ITEM_SIZE = 10 * 1024 * 1024
MAX_PAGE = 10_000


class _Json(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def _error(status: int, message: str) -> Response:
    return _Json({"error": message}, status_code=status)


def _int_param(request: Request, name: str, *, minimum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {raw[:40]!r}") from None
    if minimum is not None and value < minimum:
        raise BadRequest(f"query parameter {name} must be at least {minimum}, got {value}")
    return value


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.scheduled = Counter("aonet_su_assignments", "assignments committed", ["kind"], registry=self.registry)
        self.reposts = Counter("aonet_su_reposts", "items posted again (idempotent answer)", registry=self.registry)
        self.rejected = Counter("aonet_su_rejected", "requests refused", ["status"], registry=self.registry)
        self.latency = Histogram("aonet_su_schedule_seconds", "from accepted item to durable assignment",
                                 buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5),
                                 registry=self.registry)
        self.batches = Gauge("aonet_su_store_batches", "group commits so far", registry=self.registry)
        self.writes = Gauge("aonet_su_store_writes", "writes committed so far", registry=self.registry)
        self.store_stats = {
            key: Gauge(f"aonet_su_store_{key}", help_, registry=self.registry)
            for key, help_ in (("prebuilt", "slots built ahead of their transaction and used as built"),
                               ("rebuilt", "slots built ahead on a wrong head and rebuilt in the transaction"),
                               ("write_seconds", "time the log's writer spent in transactions (incl. COMMIT)"),
                               ("commit_seconds", "time spent in COMMIT (incl. fsync)"))}


def create_su_app(store: Store | Callable[[], Store], wallet, *, url: str,
                  max_item_size: int = DEFAULT_MAX_ITEM_SIZE, block_clock: BlockClock | None = None,
                  clock: Callable[[], int] = now_ms, close_store: bool = True,
                  publish_location: bool = True) -> Starlette:
    """The SU as an ASGI app.

    `store`: an open Store, or a factory called at start-up (then always closed at shutdown).
    `wallet`: any aonet Wallet (Ed25519 recommended: see docs/su.md). `url`: this SU's public base
    URL, published in its Scheduler-Location record at start-up.
    """
    block_clock = block_clock or BlockClock()
    metrics = _Metrics()
    holder: dict = {}

    def service() -> SchedulerService:
        return holder["service"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        owned = callable(store) and not isinstance(store, Store)
        st = store() if owned else store
        svc = SchedulerService(st, wallet, block_clock=block_clock, clock=clock)
        by_kind = (metrics.scheduled.labels("process").inc, metrics.scheduled.labels("message").inc)
        observe = metrics.latency.observe
        svc.on_scheduled = lambda a, dt: (by_kind[a.nonce != 0](), observe(dt))
        holder["service"] = svc
        app.state.service = svc
        try:
            if publish_location:
                svc.publish_location(url)
            log.info("SU %s ready at %s", svc.address, url)
            yield
        finally:
            holder.pop("service", None)
            if owned or close_store:
                st.close()

    async def handle(fn, request: Request) -> Response:
        try:
            return await fn(request)
        except ScheduleError as exc:
            metrics.rejected.labels(str(exc.status)).inc()
            return _error(exc.status, str(exc))
        except StoreConflict as exc:
            metrics.rejected.labels("409").inc()
            return _error(409, f"conflict in the log: {exc}")
        except StoreError as exc:
            metrics.rejected.labels("503").inc()
            return _error(503, f"the log is unavailable: {exc}")

    # ---- POST / ----------------------------------------------------------------------------
    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequest(f"Content-Length {declared[:40]!r} is not a number") from None
            if size > max_item_size:
                raise ItemTooLarge(f"item of {size} bytes is over the {max_item_size}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_item_size:
                raise ItemTooLarge(f"item is over the {max_item_size}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def post_root(request: Request) -> Response:
        q = request.query_params
        svc = service()
        if "assign" in q or "process-id" in q:
            pid, target = q.get("process-id"), q.get("assign")
            if not pid or not target:
                raise BadRequest("an assignment needs both process-id and assign query parameters")
            done = await svc.assign(pid, target, core.parse_exclude(q.get("exclude")))
            result_id = done.assignment.id
        else:
            item = core.parse_item(await read_body(request))
            done = await svc.schedule_item(item)
            result_id = item.id
        if not done.created:
            metrics.reposts.inc()
        return _Json({"timestamp": clock(), "id": result_id})

    # ---- reads -----------------------------------------------------------------------------
    async def get_root(request: Request) -> Response:
        return _Json({"timestamp": str(clock()), "address": service().address})

    async def get_timestamp(request: Request) -> Response:
        now = clock()
        return _Json({"timestamp": str(now), "block_height": format_height(block_clock.height_at(now))})

    async def get_health(request: Request) -> Response:
        service()
        return Response(b"", status_code=200)

    async def get_metrics(request: Request) -> Response:
        stats = getattr(service().store, "stats", None)
        if stats:
            metrics.batches.set(stats["batches"])
            metrics.writes.set(stats["writes"])
            for key, gauge in metrics.store_stats.items():
                if key in stats:
                    gauge.set(stats[key])
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def get_process(request: Request) -> Response:
        pid = request.path_params["id"]
        proc = service().store.get_process(pid)
        if proc is None:
            raise NotFound(f"process {pid} is not scheduled by this SU")
        return _Json(formats.process_json(proc, show_anchor=_flag(request, "show-anchor")))

    async def get_latest(request: Request) -> Response:
        pid = request.path_params["pid"]
        latest = service().store.latest_assignment(pid)
        if latest is None:
            raise NotFound(f"process {pid} is not scheduled by this SU")
        return _Json(formats.node_json(latest, show_anchor=_flag(request, "show-anchor")))

    async def get_verify(request: Request) -> Response:
        pid = request.path_params["pid"]
        svc = service()
        report = verify_chain(svc.store, pid, signer_address=svc.address)
        if report.count == 0 and svc.store.get_process(pid) is None:
            raise NotFound(f"process {pid} is not scheduled by this SU")
        return _Json({"process_id": pid, "ok": report.ok, "count": report.count, "last_nonce": report.last_nonce,
                      "last_hash_chain": report.last_hash_chain, "errors": report.errors})

    async def get_id(request: Request) -> Response:
        tx_id = request.path_params["id"]
        svc = service()
        q = request.query_params
        pid = q.get("process-id") or None
        show = _flag(request, "show-anchor")
        if (pid is None or pid == tx_id) and svc.store.get_process(tx_id) is not None:
            from_nonce = _int_param(request, "from-nonce", minimum=-1)
            to_nonce = _int_param(request, "to-nonce", minimum=0)
            limit = _int_param(request, "limit", minimum=1) or 100
            edges, more = svc.page(tx_id, from_timestamp=_int_param(request, "from"),
                                   to_timestamp=_int_param(request, "to"), from_nonce=from_nonce,
                                   to_nonce=to_nonce, limit=min(limit, MAX_PAGE))
            by_nonce = from_nonce is not None or to_nonce is not None
            return _Json(formats.page_json(edges, more, by_nonce=by_nonce, show_anchor=show))
        found = svc.store.find_assignment(tx_id, pid)
        if found is None:
            where = f" on process {pid}" if pid else ""
            raise NotFound(f"no message, assignment or process {tx_id}{where} on this SU")
        return _Json(formats.node_json(found, show_anchor=show))

    async def fast_post(scope, receive, send) -> None:
        """POST / with no query string on raw ASGI: the hot path, no Request/Response/middleware."""
        try:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    try:
                        declared = int(value)
                    except ValueError:
                        raise BadRequest(f"Content-Length {value[:40]!r} is not a number") from None
                    if declared > max_item_size:
                        raise ItemTooLarge(f"item of {declared} bytes is over the {max_item_size}-byte limit")
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            if message.get("more_body", False):
                chunks, size = [body], len(body)
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return              # client went away before sending the whole item
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > max_item_size:
                        raise ItemTooLarge(f"item is over the {max_item_size}-byte limit")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                body = b"".join(chunks)
            elif len(body) > max_item_size:
                raise ItemTooLarge(f"item is over the {max_item_size}-byte limit")
            item = core.parse_item(body)
            done = await service().schedule_item(item)
            if not done.created:
                metrics.reposts.inc()
            status, payload = 200, b'{"timestamp":%d,"id":"%s"}' % (clock(), item.id.encode())
        except ScheduleError as exc:
            status, text = exc.status, str(exc)
        except StoreConflict as exc:
            status, text = 409, f"conflict in the log: {exc}"
        except StoreError as exc:
            status, text = 503, f"the log is unavailable: {exc}"
        if status != 200:
            metrics.rejected.labels(str(status)).inc()
            payload = json.dumps({"error": text}, separators=(",", ":"), ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(payload))]})
        await send({"type": "http.response.body", "body": payload})

    def route(path: str, fn, methods=("GET",)) -> Route:
        async def endpoint(request: Request) -> Response:
            return await handle(fn, request)
        endpoint.__name__ = fn.__name__
        return Route(path, endpoint, methods=list(methods))

    routes = [
        route("/", get_root),
        route("/", post_root, ("POST",)),
        route("/timestamp", get_timestamp),
        route("/health", get_health),
        route("/metrics", get_metrics),
        route("/processes/{id}", get_process),
        route("/{pid}/latest", get_latest),
        route("/{pid}/verify", get_verify),
        route("/{id}", get_id),
    ]

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")

    app = _SUApp(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.fast_post = fast_post
    app.state.metrics = metrics
    app.state.url = url
    app.state.clock = clock
    app.state.started = time.time()
    return app


class _SUApp(Starlette):
    """Starlette, except that `POST /` without a query goes straight to the raw-ASGI hot path."""

    fast_post = None

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/"
                and not scope["query_string"] and self.fast_post is not None):
            try:
                return await self.fast_post(scope, receive, send)
            except Exception:
                log.exception("unexpected error on POST /")
                body = b'{"error":"internal error"}'
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", b"%d" % len(body))]})
                await send({"type": "http.response.body", "body": body})
                return
        await super().__call__(scope, receive, send)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")
