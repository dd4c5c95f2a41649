"""The SDK's pure core: every call is a *flow*, a generator that yields effects and returns a value.

Theory of operation (sans-I/O, like h11): a flow never touches a socket or a clock. It yields
`Request` (answered with a `Response`) or `Sleep` (answered with None) and finally returns the typed
value. `aonet.client.sync` and `aonet.client.aio` are the two thin drivers that perform the effects
with httpx.Client / httpx.AsyncClient, so both variants share every rule written here.
Rules kept here: the URL, query and body of every AO call (PROTOCOL.md §3-§5, §7), how a unit's error
becomes an exception, and how results are parsed into types.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable, Mapping, Union

from .. import protocol
from ..ans104 import Tag
from ..ans104.tags import normalize_tags
from .errors import AoError, CascadeTimeout, ConfigError, ProtocolError, RateLimited, UnitError
from .types import ProcessInfo, Result, ResultsPage, Scheduled, SchedulePage, Sent
from .trace import Trace

DRYRUN_PLACEHOLDER = "1234"   # aoconnect's Id/Owner/Data filler for dry-runs


@dataclass(frozen=True)
class Request:
    unit: str                      # "mu" | "su" | "cu" | "gateway": named in errors
    method: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    json: Any = None


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Sleep:
    seconds: float


Effect = Union[Request, Sleep]
Flow = Generator[Effect, Any, Any]
TagsLike = Union[Iterable, Mapping[str, str], None]


@dataclass(frozen=True)
class Endpoints:
    """Where the units answer. Only the ones a call needs must be set."""
    mu_url: str | None = None
    cu_url: str | None = None
    su_url: str | None = None
    gateway_url: str | None = None

    def need(self, unit: str) -> str:
        url = getattr(self, f"{unit}_url")
        if not url:
            raise ConfigError(f"this call needs the {unit.upper()} URL: pass {unit}_url= to connect()")
        return url.rstrip("/")


# ---- helpers ---------------------------------------------------------------------------------------
def norm_tags(tags: TagsLike) -> tuple[Tag, ...]:
    """Tags as a list of Tag/(name, value)/{name, value}, or a {name: value} mapping."""
    if tags is None:
        return ()
    if isinstance(tags, Mapping):
        tags = list(tags.items())
    try:
        return normalize_tags(tags)
    except (TypeError, ValueError) as exc:
        raise AoError(f"bad tags: {exc}") from exc


def _error_text(resp: Response) -> tuple[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text.strip()[:500] or f"HTTP {resp.status}"), None
    if isinstance(body, Mapping):
        err = body.get("error", body.get("message"))
        return (err if isinstance(err, str) else json.dumps(err if err is not None else body)), body
    return json.dumps(body)[:500], body


def check(req: Request, resp: Response, ok: tuple[int, ...] = (200, 201, 202)) -> Response:
    """Raise UnitError (RateLimited for 429) unless the status is one of `ok`."""
    if resp.status in ok:
        return resp
    error, body = _error_text(resp)
    cls = RateLimited if resp.status == 429 else UnitError
    raise cls(req.unit, req.method, resp.url or req.url, resp.status, error, body)


def json_of(req: Request, resp: Response) -> Any:
    try:
        return check(req, resp).json()
    except ValueError as exc:
        raise ProtocolError(f"{req.unit.upper()} {req.method} {req.url}: answer is not JSON: {resp.text[:200]!r}") \
            from exc


def call_json(req: Request) -> Flow:
    resp = yield req
    return json_of(req, resp)


# ---- SU ----------------------------------------------------------------------------------------------
def su_info(ep: Endpoints) -> Flow:
    """`GET {su}/`: the SU's wallet address (the Scheduler tag value) and clock."""
    obj = yield from call_json(Request("su", "GET", ep.need("su") + "/"))
    if not isinstance(obj, Mapping) or not isinstance(obj.get("address"), str):
        raise ProtocolError(f"SU GET /: no 'address' in {obj!r}")
    return dict(obj)


def process_info(ep: Endpoints, process: str) -> Flow:
    obj = yield from call_json(Request("su", "GET", f"{ep.need('su')}/processes/{process}"))
    return ProcessInfo.from_json(obj)


def latest(ep: Endpoints, process: str) -> Flow:
    obj = yield from call_json(Request("su", "GET", f"{ep.need('su')}/{process}/latest",
                                       params={"process-id": process}))
    return Scheduled.from_json(obj)


def scheduled(ep: Endpoints, message: str, process: str) -> Flow:
    obj = yield from call_json(Request("su", "GET", f"{ep.need('su')}/{message}", params={"process-id": process}))
    return Scheduled.from_json(obj)


def schedule(ep: Endpoints, process: str, from_: str | int | None = None, to: str | int | None = None,
             limit: int | None = None, *, from_nonce: int | None = None, show_anchor: bool = False) -> Flow:
    """One page of the process's schedule; cursors are timestamps, or nonces with `from_nonce`."""
    params = {"process-id": process}
    if show_anchor:
        params["show-anchor"] = "1"
    for k, v in (("from", from_), ("to", to), ("limit", limit), ("from-nonce", from_nonce)):
        if v is not None:
            params[k] = str(v)
    obj = yield from call_json(Request("su", "GET", f"{ep.need('su')}/{process}", params=params))
    return SchedulePage.from_json(obj)


def check_chain(ep: Endpoints, process: str, page_size: int = 500) -> Flow:
    """Read the whole schedule (by nonce, anchors as bytes) and check it client-side (client.verify)."""
    from .verify import check_schedule
    info = yield from process_info(ep, process)
    nodes: list[Scheduled] = []
    cursor = -1
    while True:
        page = yield from schedule(ep, process, limit=page_size, from_nonce=cursor, show_anchor=True)
        nodes += list(page)
        if not page.has_next_page or not page.edges:
            break
        cursor = int(page.last_cursor)
    return check_schedule(process, info.scheduler, nodes)


# ---- MU ----------------------------------------------------------------------------------------------
def _post_item(ep: Endpoints, item, params: Mapping[str, str] | None = None) -> Flow:
    req = Request("mu", "POST", ep.need("mu") + "/", params=params or {},
                  headers={"Content-Type": "application/octet-stream"}, content=item.to_bytes())
    return (yield from call_json(req))


def _need_wallet(wallet):
    if wallet is None:
        raise ConfigError("this call signs a data item: pass wallet= to connect()")
    return wallet


def message(ep: Endpoints, wallet, process: str, data: bytes | str = "", tags: TagsLike = None,
            anchor: str | bytes | None = None) -> Flow:
    """Sign a Message to `process` and hand it to the MU; returns the message id (as aoconnect)."""
    try:
        item = protocol.build_message(_need_wallet(wallet), process, data=data, tags=norm_tags(tags), anchor=anchor)
    except (ValueError, TypeError) as exc:
        raise exc if isinstance(exc, AoError) else AoError(f"cannot build the message: {exc}") from exc
    yield from _post_item(ep, item)
    return item.id


def module_tags(ep: Endpoints, module: str) -> Flow:
    """The tags of a module, read through the gateway's GraphQL (as aoconnect's spawn checks them)."""
    query = ("query GetTransactions($transactionIds:[ID!]!){transactions(ids:$transactionIds)"
             "{edges{node{owner{address} tags{name value} block{id height timestamp}}}}}")
    obj = yield from call_json(Request("gateway", "POST", ep.need("gateway") + "/graphql",
                                       json={"query": query, "variables": {"transactionIds": [module]}}))
    try:
        edges = obj["data"]["transactions"]["edges"]
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"gateway GraphQL answer has no data.transactions.edges: {obj!r:.200}") from exc
    if not edges:
        raise AoError(f"module {module} not found on the gateway")
    return {t["name"]: t["value"] for t in edges[0]["node"].get("tags") or []}


MODULE_REQUIRED = {"Data-Protocol": "ao", "Type": "Module"}
MODULE_PRESENT = ("Module-Format", "Input-Encoding", "Output-Encoding")


def spawn(ep: Endpoints, wallet, module: str, scheduler: str | None = None, tags: TagsLike = None,
          data: bytes | str = "", check_module: bool = True) -> Flow:
    """Sign a Process item and hand it to the MU; returns the new process id.

    Without `scheduler`, the SU at su_url is asked for its address. With a gateway URL the module's
    tags are checked first, as aoconnect does.
    """
    _need_wallet(wallet)
    if not scheduler:
        if not ep.su_url:
            raise ConfigError("spawn needs scheduler= (an SU wallet address) or su_url= to ask the SU for it")
        scheduler = (yield from su_info(ep))["address"]
    if check_module and ep.gateway_url:
        mtags = yield from module_tags(ep, module)
        bad = [k for k, v in MODULE_REQUIRED.items() if mtags.get(k) != v] + \
              [k for k in MODULE_PRESENT if k not in mtags]
        if bad:
            raise AoError(f"{module} is not an AO module (missing or wrong tags: {', '.join(bad)})")
    try:
        item = protocol.build_process(wallet, module, scheduler, data=data, tags=norm_tags(tags))
    except (ValueError, TypeError) as exc:
        raise exc if isinstance(exc, AoError) else AoError(f"cannot build the process: {exc}") from exc
    obj = yield from _post_item(ep, item)
    pid = obj.get("processId") if isinstance(obj, Mapping) else None
    return pid if isinstance(pid, str) and pid else item.id


def _monitor_item(wallet, process: str):
    return _need_wallet(wallet).sign_item(" ", target=process)


def monitor(ep: Endpoints, wallet, process: str) -> Flow:
    """Ask the MU to run the process's crons and deliver their outboxes; returns the MU's text."""
    req = Request("mu", "POST", f"{ep.need('mu')}/monitor/{process}",
                  headers={"Content-Type": "application/octet-stream"},
                  content=_monitor_item(wallet, process).to_bytes())
    resp = yield req
    return check(req, resp).text


def unmonitor(ep: Endpoints, wallet, process: str) -> Flow:
    req = Request("mu", "DELETE", f"{ep.need('mu')}/monitor/{process}",
                  headers={"Content-Type": "application/octet-stream"},
                  content=_monitor_item(wallet, process).to_bytes())
    resp = yield req
    return check(req, resp).text


def assign(ep: Endpoints, process: str, message: str, exclude: Iterable[str] | None = None,
           base_layer: bool = False) -> Flow:
    """Assign an existing message/transaction to `process` through the MU; returns the assignment id."""
    params = {"process-id": process, "assign": message}
    if base_layer:
        params["base-layer"] = "true"
    if exclude:
        params["exclude"] = ",".join(exclude)
    obj = yield from call_json(Request("mu", "POST", ep.need("mu") + "/", params=params))
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
        raise ProtocolError(f"MU assign: no 'id' in {obj!r}")
    return obj["id"]


def trace(ep: Endpoints, message: str) -> Flow:
    """`GET {mu}/?debug=true&message=ID`: the MU's view of the cascade the message caused."""
    obj = yield from call_json(Request("mu", "GET", ep.need("mu") + "/",
                                       params={"debug": "true", "message": message}))
    return Trace.from_json(message, obj)


def wait_for_cascade(ep: Endpoints, message: str, timeout: float = 30.0, interval: float = 0.1,
                     clock: Callable[[], float] = time.monotonic) -> Flow:
    """Poll the MU's trace until every message, spawn and assignment the message caused is delivered.

    Returns the final Trace; raises CascadeTimeout (carrying the last Trace) after `timeout` seconds.
    The poll interval grows to at most 1 s so that long cascades do not hammer the MU.
    """
    deadline = clock() + timeout
    last: Trace | None = None
    while True:
        try:
            last = yield from trace(ep, message)
        except UnitError as exc:
            if exc.status != 404:     # the MU may not have recorded the message yet
                raise
        if last is not None and last.done:
            if last.failed:
                raise AoError(f"cascade of {message} failed: {last.failure}")
            return last
        if clock() >= deadline:
            raise CascadeTimeout(message, timeout, last)
        yield Sleep(min(interval, max(deadline - clock(), 0)))
        interval = min(interval * 1.5, 1.0)


# ---- CU ----------------------------------------------------------------------------------------------
def result(ep: Endpoints, message: str, process: str) -> Flow:
    obj = yield from call_json(Request("cu", "GET", f"{ep.need('cu')}/result/{message}",
                                       params={"process-id": process}))
    return Result.from_json(obj)


def results(ep: Endpoints, process: str, from_: str | None = None, to: str | None = None,
            sort: str = "ASC", limit: int | None = None) -> Flow:
    if sort.upper() not in ("ASC", "DESC"):
        raise AoError(f"sort must be ASC or DESC, not {sort!r}")
    params = {"sort": sort.upper()}
    for k, v in (("from", from_), ("to", to), ("limit", limit)):
        if v is not None:
            params[k] = str(v)
    obj = yield from call_json(Request("cu", "GET", f"{ep.need('cu')}/results/{process}", params=params))
    return ResultsPage.from_json(obj)


def dryrun_body(process: str, data: bytes | str | None, tags: TagsLike, anchor: str | None,
                owner: str | None, extra: Mapping[str, Any]) -> dict:
    """The JSON aoconnect sends to `/dry-run`: an unsigned message with the protocol tags appended."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    body: dict[str, Any] = {"Id": DRYRUN_PLACEHOLDER, "Owner": owner or DRYRUN_PLACEHOLDER, **extra}
    body.update({"Target": process, "Data": data or DRYRUN_PLACEHOLDER,
                 "Tags": [t.to_json() for t in norm_tags(tags)] +
                         [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Message"},
                          {"name": "Variant", "value": protocol.VARIANT}],
                 "Anchor": anchor or "0"})
    return body


def dryrun(ep: Endpoints, process: str, data: bytes | str | None = None, tags: TagsLike = None,
           anchor: str | None = None, owner: str | None = None, to: str | None = None,
           **extra: Any) -> Flow:
    """Evaluate an unsigned message on top of the process's latest state without persisting it."""
    params = {"process-id": process}
    if to:
        params["to"] = to
    obj = yield from call_json(Request("cu", "POST", f"{ep.need('cu')}/dry-run", params=params,
                                       json=dryrun_body(process, data, tags, anchor, owner, extra)))
    return Result.from_json(obj)


def send(ep: Endpoints, wallet, process: str, data: bytes | str = "", tags: TagsLike = None,
         action: str | None = None, anchor: str | bytes | None = None, cascade: bool = False,
         timeout: float = 30.0) -> Flow:
    """message() then result(); with cascade=True, also wait for the MU to deliver the whole cascade."""
    all_tags = norm_tags(tags)
    if action is not None:
        all_tags = (Tag("Action", action), *[t for t in all_tags if t.name != "Action"])
    mid = yield from message(ep, wallet, process, data, all_tags, anchor)
    res = yield from result(ep, mid, process)
    tr = (yield from wait_for_cascade(ep, mid, timeout)) if cascade else None
    return Sent(mid, process, res, tr)


def cu_info(ep: Endpoints) -> Flow:
    return (yield from call_json(Request("cu", "GET", ep.need("cu") + "/")))


def mu_info(ep: Endpoints) -> Flow:
    req = Request("mu", "GET", ep.need("mu") + "/")
    resp = yield req
    return check(req, resp).text
