"""Where a process lives: pid -> (Module, Scheduler, SU URL), found through the gateway.

A process's `Scheduler` tag names the SU wallet; that wallet's newest `Scheduler-Location` item
(GraphQL, HEIGHT_DESC, first: 1) holds the SU's `Url`. Processes never move, so pid lookups are cached
for good; locations are cached for their `Time-To-Live`. When the gateway does not know a pid, the
known SUs are asked (`GET /processes/{pid}`), so a process is found even before its item reaches
the gateway. A pid that no one knows is not a process (a wallet, or a plain item).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from ..protocol import tag_value

Q_ITEM = """query ($ids: [ID!]) { transactions(ids: $ids, first: 1) { edges { node { id owner { address }
  tags { name value } } } } }"""
Q_LOCATION = """query ($owner: String!) { transactions(owners: [$owner], tags: [{name: "Data-Protocol", values: ["ao"]},
  {name: "Type", values: ["Scheduler-Location"]}], sort: HEIGHT_DESC, first: 1) { edges { node { id
  tags { name value } } } } }"""


class LocateError(RuntimeError):
    """The network could not be asked (gateway or SU down): retry later, unlike `None` answers."""


@dataclass(frozen=True)
class ProcessInfo:
    id: str
    module: str | None
    scheduler: str | None
    su_url: str


class Locator:
    def __init__(self, http: httpx.AsyncClient, gateway_url: str, *, su_urls: tuple[str, ...] = ()):
        self.http = http
        self.gateway_url = gateway_url.rstrip("/")
        self.su_urls = tuple(u.rstrip("/") for u in su_urls)
        self._procs: dict[str, ProcessInfo] = {}
        self._locations: dict[str, tuple[str, float]] = {}

    def remember(self, info: ProcessInfo) -> None:
        self._procs[info.id] = info

    async def _graphql(self, query: str, variables: dict) -> dict:
        try:
            r = await self.http.post(f"{self.gateway_url}/graphql", json={"query": query, "variables": variables})
        except httpx.HTTPError as exc:
            raise LocateError(f"gateway {self.gateway_url} unreachable: {exc}") from exc
        if r.status_code != 200:
            raise LocateError(f"gateway GraphQL answered {r.status_code}: {r.text[:200]}")
        body = r.json()
        if body.get("errors"):
            raise LocateError(f"gateway GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]

    async def scheduler_url(self, address: str) -> str:
        """The Url of the newest Scheduler-Location owned by `address`."""
        hit = self._locations.get(address)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        edges = (await self._graphql(Q_LOCATION, {"owner": address}))["transactions"]["edges"]
        if not edges:
            raise LocateError(f"no Scheduler-Location published by {address}")
        tags = edges[0]["node"]["tags"]
        url = tag_value(tags, "Url")
        if not url:
            raise LocateError(f"Scheduler-Location {edges[0]['node']['id']} has no Url tag")
        try:
            ttl = int(tag_value(tags, "Time-To-Live", "3600000")) / 1000
        except ValueError:
            ttl = 3600.0
        self._locations[address] = (url.rstrip("/"), time.monotonic() + max(1.0, ttl))
        return url.rstrip("/")

    async def process(self, pid: str) -> ProcessInfo | None:
        """The process `pid`, or None when `pid` is not a process this network knows."""
        hit = self._procs.get(pid)
        if hit:
            return hit
        edges = (await self._graphql(Q_ITEM, {"ids": [pid]}))["transactions"]["edges"]
        tags = edges[0]["node"]["tags"] if edges else None
        if tags is not None:
            if (tag_value(tags, "Type") or tag_value(tags, "type")) != "Process":
                return None
            scheduler = tag_value(tags, "Scheduler")
            if not scheduler:
                return None
            info = ProcessInfo(pid, tag_value(tags, "Module"), scheduler, await self.scheduler_url(scheduler))
            self._procs[pid] = info
            return info
        for su in self.su_urls:   # not on the gateway (yet): ask the SUs we know
            try:
                r = await self.http.get(f"{su}/processes/{pid}")
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                body = r.json()
                ptags = body.get("tags") or []
                info = ProcessInfo(pid, tag_value(ptags, "Module"), tag_value(ptags, "Scheduler"), su)
                self._procs[pid] = info
                return info
        return None
