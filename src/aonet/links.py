"""In-process links between devnet units that share one OS process.

When the SU, CU and MU run in one process (the default `aonet up`), a request from one to another
over loopback HTTP costs more than the work it asks for (a uvicorn request, JSON both ways, a thread
hop, a second signature check of an item the caller has just verified). These adapters do the same
operations as the HTTP routes, on the unit's service object, with the same answers and the same
errors. Nothing else changes: every HTTP route still serves clients and units in other processes.

- `LocalSUClient`: what the CU reads from the SU (process, message, schedule pages, clock), straight
  from the `SchedulerService` and its store, in the SU's JSON shapes (aonet.su.formats). It pickles
  as a plain HTTP `SUClient`, so CU worker processes keep using HTTP.
- `LocalSU`: the MU's pushes (`POST /` of an item, `POST /?process-id=&assign=`).
- `LocalCU`: the MU's result pulls (`GET /result/{id}?process-id=`), unsigned (the MU trusts its CU).
- `tell_cu_of_slots`: the SU tells the CU of every slot it commits, so the CU's `/result` finds a
  new message's nonce without asking the SU (`GET /{id}?process-id=`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .ans104 import DataItem
from .cu.errors import CUError, NotFound, UpstreamError
from .cu.sources import SUClient
from .mu.worker import PermanentError, TaskError
from .store.base import StoreConflict, StoreError
from .su import formats
from .su.app import DEFAULT_MAX_ITEM_SIZE, MAX_PAGE
from .su.core import ScheduleError


# ---- the CU reading an SU of this process -----------------------------------------------------
class LocalSUClient(SUClient):
    """`SUClient` answered by a `SchedulerService` in this process (same shapes as its HTTP routes)."""

    def __init__(self, service, url: str):
        super().__init__(url)
        self.service = service
        self._known: set[str] = set()          # processes seen (they are never removed)

    def __reduce__(self):
        return SUClient, (self.url,)          # another process reaches the SU over HTTP

    def _read(self, what: str, fn: Callable, *args) -> Any:
        try:
            return fn(*args)
        except CUError:
            raise
        except Exception as exc:  # noqa: BLE001 - as the HTTP route's 5xx: an upstream failure
            raise UpstreamError(f"{what}: the SU failed: {type(exc).__name__}: {exc}") from None

    def process(self, process_id: str) -> dict:
        what = f"process {process_id}"
        rec = self._read(what, self.service.store.get_process, process_id)
        if rec is None:
            raise NotFound(f"{what}: not found")
        return self._read(what, formats.process_json, rec)

    def message(self, message_id: str, process_id: str) -> dict:
        what = f"message {message_id} of process {process_id}"
        found = self._read(what, self.service.store.find_assignment, message_id, process_id)
        if found is None:
            raise NotFound(f"{what}: not found")
        return self._read(what, formats.node_json, found)

    def page(self, process_id: str, *, from_nonce: int | None = None, to_nonce: int | None = None,
             from_ts: int | None = None, to_ts: int | None = None, limit: int = 1000) -> dict:
        return _schedule_page(self, process_id, from_nonce, to_nonce, from_ts, to_ts, limit)

    def timestamp(self) -> tuple[int, int]:
        now = self.service.clock()
        return now, self.service.block_clock.height_at(now)

    def _page_reader(self, process_id: str) -> "_LocalPageReader":
        return _LocalPageReader(self, process_id)


def _schedule_page(client: LocalSUClient, process_id: str, from_nonce: int | None, to_nonce: int | None,
                   from_ts: int | None, to_ts: int | None, limit: int) -> dict:
    """What `GET /{process}?from-nonce=&to-nonce=&from=&to=&limit=` answers (su.app.get_id)."""
    what = f"schedule of process {process_id}"
    svc = client.service
    if process_id not in client._known:
        if client._read(what, svc.store.get_process, process_id) is None:
            raise NotFound(f"{what}: not found")
        client._known.add(process_id)
    edges, more = client._read(what, lambda: svc.page(process_id, from_timestamp=from_ts, to_timestamp=to_ts,
                                                      from_nonce=from_nonce, to_nonce=to_nonce,
                                                      limit=min(max(1, limit), MAX_PAGE)))
    by_nonce = from_nonce is not None or to_nonce is not None
    return client._read(what, lambda: formats.page_json(edges, more, by_nonce=by_nonce))


class _LocalPageReader:
    """A `PageReader` that renders the page when it is received (nothing runs ahead in-process)."""

    def __init__(self, client: LocalSUClient, process_id: str):
        self.client, self.process_id = client, process_id
        self._asked: tuple | None = None

    def send(self, after_nonce: int, to_nonce: int | None, to_ts: int | None, limit: int) -> None:
        self._asked = (after_nonce, to_nonce, to_ts, limit)

    def receive(self) -> dict:
        if self._asked is None:
            raise RuntimeError("LocalPageReader: nothing was asked")
        (after, to_nonce, to_ts, limit), self._asked = self._asked, None
        return _schedule_page(self.client, self.process_id, after, to_nonce, None, to_ts, limit)

    def abandon(self) -> None:
        self._asked = None


# ---- the MU pushing to an SU of this process --------------------------------------------------
def _refused(status: int, text: str) -> Exception:
    """The error the MU's HTTP push raises for this SU status (4xx but 429: for good; else retry)."""
    if 400 <= status < 500 and status != 429:
        return PermanentError(text)
    return TaskError(text)


class LocalSU:
    """The MU's side of `POST /` and `POST /?process-id=&assign=` on a `SchedulerService` here.

    The item is the MU's own parsed object: the MU verified a user's item before pushing it and
    signed its crank items itself, so the SU's second signature check is left out."""

    def __init__(self, service, max_item_size: int = DEFAULT_MAX_ITEM_SIZE):
        self.service = service
        self.max_item_size = max_item_size

    async def push(self, item: DataItem) -> dict:
        if len(item.raw) > self.max_item_size:
            raise PermanentError(f"SU refused {item.id}: 413 item is over the {self.max_item_size}-byte limit")
        try:
            await self.service.schedule_item(item)
        except ScheduleError as exc:
            raise _refused(exc.status, f"SU refused {item.id}: {exc.status} {exc}") from None
        except StoreConflict as exc:
            raise PermanentError(f"SU refused {item.id}: 409 conflict in the log: {exc}") from None
        except StoreError as exc:
            raise TaskError(f"SU answered 503: the log is unavailable: {exc}") from None
        return {"timestamp": self.service.clock(), "id": item.id}

    async def assign(self, pid: str, message: str, exclude: Sequence[str] | str | None = None,
                     base_layer: bool = False) -> str:
        if isinstance(exclude, str):
            exclude = [v for v in exclude.split(",") if v]
        try:
            done = await self.service.assign(pid, message, tuple(exclude or ()))
        except ScheduleError as exc:
            raise _refused(exc.status, f"SU refused assignment of {message} to {pid}: {exc.status} {exc}") from None
        except StoreConflict as exc:
            raise PermanentError(f"SU refused assignment of {message} to {pid}: 409 {exc}") from None
        except StoreError as exc:
            raise TaskError(f"SU answered 503: the log is unavailable: {exc}") from None
        return done.assignment.id


# ---- the MU pulling results from a CU of this process -----------------------------------------
class LocalCU:
    """The MU's side of `GET /result/{id}?process-id=` on a `ComputeUnit` here."""

    def __init__(self, cu):
        self.cu = cu

    async def result(self, message_id: str, pid: str) -> dict:
        try:
            return await self.cu.result(message_id, pid)      # shared with the CU's cache: read only
        except CUError as exc:
            raise TaskError(f"CU /result/{message_id} answered {exc.status}: {exc}") from None


# ---- the SU telling the CU of new slots --------------------------------------------------------
def tell_cu_of_slots(service, cu) -> None:
    """Chain onto the SU's commit hook: every committed slot becomes a hint in the CU."""
    before = service.on_scheduled

    def on_scheduled(assignment, seconds: float) -> None:
        if before is not None:
            before(assignment, seconds)
        cu.note_slot(assignment.process_id, assignment.message_id, assignment.nonce, assignment.id)

    service.on_scheduled = on_scheduled


__all__ = ["LocalCU", "LocalSU", "LocalSUClient", "tell_cu_of_slots"]
