"""The gateway surface over a real SQLite store: GraphQL shapes AO's clients send, /raw, /{id}, uploads."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from aonet.blocks import BlockClock
from aonet.gateway import create_gateway_app
from aonet.protocol import build_message, build_module, build_scheduler_location
from aonet.store import SQLiteStore
from aonet.wallet import Wallet


@pytest.fixture(scope="module")
def wallets():
    return Wallet.generate("arweave"), Wallet.generate("ed25519")


@pytest.fixture()
def env(tmp_path):
    store = SQLiteStore(tmp_path / "g.sqlite", synchronous="NORMAL")
    clock = BlockClock()
    client = TestClient(create_gateway_app(store, clock))
    yield store, clock, client
    client.close()
    store.close()


def gql(client, query, variables=None):
    r = client.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


def test_upload_then_read_back(env, wallets):
    store, clock, client = env
    w, _ = wallets
    item = build_module(w, b"\0asm\1\0\0\0", tags=[("Name", "m")])
    r = client.post("/tx/arweave", content=item.raw, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json()["id"] == item.id
    assert client.post("/tx/arweave", content=item.raw).json()["id"] == item.id      # idempotent
    assert client.get(f"/raw/{item.id}").content == b"\0asm\1\0\0\0"
    r = client.get(f"/{item.id}")
    assert r.content == b"\0asm\1\0\0\0"
    assert r.headers["Type"] == "Module" and r.headers["Module-Format"] == "wasm32-wasi-ao1"
    h = client.head(f"/{item.id}")
    assert h.status_code == 200 and h.headers["Name"] == "m"
    st = client.get(f"/tx/{item.id}/status").json()
    assert st["block_height"] == store.get_item(item.id).height and st["number_of_confirmations"] >= 1
    assert client.get("/raw/" + "A" * 43).status_code == 404
    assert client.get("/tx/" + "A" * 43 + "/status").status_code == 404
    assert client.get("/notanid").status_code == 404


def test_upload_rejects_bad_items(env, wallets):
    _, _, client = env
    w, _ = wallets
    raw = bytearray(build_message(w, "A" * 43, data="hi").raw)
    raw[-1] ^= 1
    r = client.post("/tx/arweave", content=bytes(raw))
    assert r.status_code == 400 and "invalid data item" in r.json()["error"]
    assert client.post("/tx/arweave", content=b"\x01\x00garbage").status_code == 400
    assert client.post("/tx/arweave", content=b"").status_code == 400


def test_info_and_root_report_height(env):
    _, clock, client = env
    info = client.get("/info").json()
    assert abs(info["height"] - clock.current_height()) <= 1
    assert client.get("/").json()["height"] == info["height"] or abs(client.get("/").json()["height"] - info["height"]) <= 1


def test_graphql_aoconnect_module_query(env, wallets):
    """The query aoconnect's spawn sends to verify a module's tags."""
    store, clock, client = env
    w, _ = wallets
    mod = build_module(w, b"\0asm\1\0\0\0")
    store.put_item(mod)
    q = ("query GetTransactions ($transactionIds: [ID!]!) { transactions(ids: $transactionIds) "
         "{ edges { node { owner { address } tags { name value } block { id height timestamp } } } } }")
    data = gql(client, q, {"transactionIds": [mod.id]})
    node = data["transactions"]["edges"][0]["node"]
    assert node["owner"]["address"] == w.address
    assert {"name": "Type", "value": "Module"} in node["tags"]
    b = clock.block(store.get_item(mod.id).height)
    assert node["block"] == {"id": b.id, "height": b.height, "timestamp": b.timestamp}


def test_graphql_scheduler_location_lookup(env, wallets):
    """scheduler-utils: newest Scheduler-Location owned by an address (HEIGHT_DESC, first: 1)."""
    store, _, client = env
    w, other = wallets
    old = build_scheduler_location(w, "http://127.0.0.1:1")
    new = build_scheduler_location(w, "http://127.0.0.1:2")
    store.put_item(old, height=10)
    store.put_item(new, height=11)
    store.put_item(build_scheduler_location(other, "http://elsewhere"), height=12)
    q = """query GetSchedulerLocation ($owner: String!) {
      transactions (owners: [$owner], tags: [{ name: "Data-Protocol", values: ["ao"] },
                    { name: "Type", values: ["Scheduler-Location"] }], sort: HEIGHT_DESC, first: 1)
      { pageInfo { hasNextPage } edges { cursor node { id anchor signature recipient owner { address key }
        tags { name value } } } } }"""
    data = gql(client, q, {"owner": w.address})["transactions"]
    assert len(data["edges"]) == 1 and data["pageInfo"]["hasNextPage"] is True
    node = data["edges"][0]["node"]
    assert node["id"] == new.id and {"name": "Url", "value": "http://127.0.0.1:2"} in node["tags"]
    assert node["recipient"] == "" and node["anchor"] == ""


def test_graphql_pagination_and_sort(env, wallets):
    store, _, client = env
    w, _ = wallets
    ids = []
    for i in range(5):
        m = build_message(w, "C" * 42 + "A", data=str(i), tags=[("N", str(i))])
        store.put_item(m, height=100 + i)
        ids.append(m.id)
    q = """query ($after: String) { transactions(recipients: ["%s"], first: 2, after: $after, sort: HEIGHT_ASC)
           { pageInfo { hasNextPage } edges { cursor node { id recipient data { size } } } } }""" % ("C" * 42 + "A")
    seen, after = [], None
    while True:
        page = gql(client, q, {"after": after})["transactions"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["edges"][-1]["cursor"]
    assert seen == ids
    desc = gql(client, '{ transactions(tags: [{name: "N", values: ["1", "3"]}]) { edges { node { id } } } }')
    assert [e["node"]["id"] for e in desc["transactions"]["edges"]] == [ids[3], ids[1]]
    ranged = gql(client, '{ transactions(recipients: ["%s"], block: {min: 101, max: 102}, first: 10) '
                 '{ edges { node { id block { height } } } } }' % ("C" * 42 + "A"))
    assert [e["node"]["block"]["height"] for e in ranged["transactions"]["edges"]] == [102, 101]


def test_graphql_blocks(env):
    _, clock, client = env
    h = clock.current_height()
    data = gql(client, '{ blocks(height: {min: %d}, first: 3, sort: HEIGHT_ASC) '
               '{ pageInfo { hasNextPage } edges { cursor node { id height timestamp } } } }' % (h - 5))
    edges = data["blocks"]["edges"]
    assert [e["node"]["height"] for e in edges] == [h - 5, h - 4, h - 3]
    assert edges[0]["node"]["id"] == clock.block_id(h - 5)
    assert edges[0]["node"]["timestamp"] == clock.start_ms(h - 5) // 1000
    assert data["blocks"]["pageInfo"]["hasNextPage"] is True


def test_graphql_errors_are_clear(env):
    _, _, client = env
    r = client.post("/graphql", json={"query": "{ nonsense }"})
    assert r.status_code == 400 and "nonsense" in r.json()["errors"][0]["message"]
    r = client.post("/graphql", content=b"not json")
    assert r.status_code == 400
    r = client.post("/graphql", json={"query": '{ transactions(after: "@@@") { edges { cursor } } }'})
    assert "errors" in r.json()
