"""The Arweave-gateway surface a local AO network needs (PROTOCOL.md §7), over the aonet store.

Routes: `POST /graphql`, `GET /raw/{id}`, `GET|HEAD /{id}` (data, tags also as headers),
`GET /info` and `GET /` (network info with `height`), `GET /tx/{id}/status`, `GET /tx/{id}`,
and the uploader `POST /tx/arweave` (and `POST /tx`) taking one raw ANS-104 data item.
Errors are `{"error": "<text>"}` with a 4xx status; nothing a client sends can crash the unit.
"""
from __future__ import annotations

import asyncio
import json
import re

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..http import JSON_ERRORS, json_error

from ..ans104 import ANS104Error, parse
from ..blocks import BlockClock, now_ms
from ..encoding import b64url_encode
from ..store.base import Store
from .graphql import GraphQLService

ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers HTTP itself owns: a tag with one of these names is not copied into the response headers.
RESERVED_HEADERS = {"content-length", "content-type", "transfer-encoding", "connection", "date", "server",
                    "content-encoding", "keep-alive", "host"}
DEVNET_FINALITY = 50   # a devnet block is final at once: report this many extra confirmations
MAX_UPLOAD = 10 * 1024 * 1024


def _tag_headers(item) -> dict[str, str]:
    """Tags as response headers (the 2026 MU reads a process's tags this way); unsendable ones skipped."""
    out: dict[str, str] = {}
    for t in item.tags:
        if t.name.lower() in RESERVED_HEADERS or not HEADER_NAME_RE.match(t.name) or t.name in out:
            continue
        try:
            t.value.encode("latin-1")
        except UnicodeEncodeError:
            continue
        if "\r" in t.value or "\n" in t.value:
            continue
        out[t.name] = t.value
    return out


def _gql_error(message: str) -> JSONResponse:
    """A GraphQL error as GraphQL clients read it (`errors`) and as aonet's units answer (`error`)."""
    return JSONResponse({"error": message, "errors": [{"message": message}]}, status_code=400)


def create_gateway_app(store: Store, clock: BlockClock | None = None, *, network: str = "aonet.devnet") -> Starlette:
    """A Starlette app serving the gateway routes from `store`."""
    clock = clock or BlockClock()
    gql = GraphQLService(store, clock)

    def info() -> dict:
        h = clock.current_height()
        return {"network": network, "version": 5, "release": 1, "height": h, "current": clock.block_id(h),
                "blocks": h + 1, "peers": 0, "queue_length": 0, "node_state_latency": 0}

    async def root(request: Request) -> Response:
        return JSONResponse(info())

    async def graphql(request: Request) -> Response:
        if request.method == "GET":
            q = request.query_params.get("query")
            try:
                variables = json.loads(request.query_params.get("variables") or "null")
            except ValueError:
                return _gql_error("variables is not JSON")
            body = {"query": q, "variables": variables}
        else:
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _gql_error("request body is not JSON")
            if not isinstance(body, dict):
                return _gql_error("request body must be a JSON object")
        out = gql.run(body.get("query"), body.get("variables"), body.get("operationName"))
        if "data" not in out:
            return _gql_error("; ".join(e.get("message", "") for e in out.get("errors", [])) or "bad query")
        return JSONResponse(out)

    def _lookup(tx_id: str):
        if not ID_RE.match(tx_id):
            return None
        return store.get_item(tx_id)

    async def raw(request: Request) -> Response:
        rec = _lookup(request.path_params["id"])
        if rec is None:
            return json_error(404, "Not Found")
        item = rec.item()
        return Response(item.data, media_type=item.tag("Content-Type") or "application/octet-stream")

    async def data(request: Request) -> Response:
        rec = _lookup(request.path_params["id"])
        if rec is None:
            return json_error(404, "Not Found")
        item = rec.item()
        headers = _tag_headers(item)
        headers.update({"X-Arweave-Id": rec.id, "X-Arweave-Owner": rec.owner,
                        "X-Arweave-Block-Height": str(rec.height)})
        if rec.target:
            headers["X-Arweave-Target"] = rec.target
        media = item.tag("Content-Type") or "application/octet-stream"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(item.data))
            return Response(b"", media_type=media, headers=headers)
        return Response(item.data, media_type=media, headers=headers)

    async def status(request: Request) -> Response:
        rec = _lookup(request.path_params["id"])
        if rec is None:
            return json_error(404, "Not Found.")
        h = clock.current_height()
        return JSONResponse({"block_height": rec.height, "block_indep_hash": clock.block_id(rec.height),
                             "number_of_confirmations": max(0, h - rec.height) + 1 + DEVNET_FINALITY})

    async def tx(request: Request) -> Response:
        rec = _lookup(request.path_params["id"])
        if rec is None:
            return json_error(404, "Not Found.")
        item = rec.item()
        return JSONResponse({"format": 2, "id": rec.id, "last_tx": b64url_encode(item.anchor or b""),
                             "owner": b64url_encode(item.owner), "tags": [
                                 {"name": b64url_encode(t.name.encode()), "value": b64url_encode(t.value.encode())}
                                 for t in item.tags],
                             "target": rec.target, "quantity": "0", "data_size": str(len(item.data)),
                             "data_root": "", "reward": "0", "signature": b64url_encode(item.signature)})

    async def upload(request: Request) -> Response:
        body = await request.body()
        if not body:
            return json_error(400, "upload needs a raw ANS-104 data item as the request body")
        if len(body) > MAX_UPLOAD:
            return json_error(413, f"data item is larger than {MAX_UPLOAD} bytes")
        try:
            item = parse(body, verify=True)
        except ANS104Error as exc:
            return json_error(400, f"invalid data item: {exc}")
        rec = store.get_item(item.id)
        if rec is None:
            rec = await asyncio.to_thread(store.put_item, item)
        return JSONResponse({"id": rec.id, "timestamp": rec.timestamp, "block": rec.height, "owner": rec.owner,
                             "version": "1.0.0", "public": b64url_encode(item.owner),
                             "signature": b64url_encode(item.signature), "deadlineHeight": rec.height + 200,
                             "winc": "0", "dataCaches": [], "fastFinalityIndexes": []})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "timestamp": now_ms()})

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/info", root, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/raw/{id}", raw, methods=["GET"]),
        Route("/tx/arweave", upload, methods=["POST"]),
        Route("/tx", upload, methods=["POST"]),
        Route("/tx/{id}/status", status, methods=["GET"]),
        Route("/tx/{id}", tx, methods=["GET"]),
        Route("/{id}", data, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes, exception_handlers=JSON_ERRORS)
    app.state.store = store
    app.state.clock = clock
    app.state.graphql = gql
    return app
