"""The SU's HTTP API (PROTOCOL.md §3) through Starlette's TestClient: shapes, pagination, errors."""
import re

import pytest

from aonet.protocol import build_message, build_module, build_process
from aonet.su import verify_chain
from aonet.wallet import Wallet

USER = Wallet.generate("ethereum")


def spawn(client, **kw):
    p = build_process(USER, "M" * 43, client.wallet.address, **kw)
    r = client.post("/", content=p.raw)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == p.id and isinstance(r.json()["timestamp"], int)
    return p


def send(client, pid, data="hi", **kw):
    m = build_message(USER, pid, data=data, **kw)
    r = client.post("/", content=m.raw)
    assert r.status_code == 200, r.text
    return m


def test_info_routes(su_client):
    c = su_client
    assert c.get("/").json()["address"] == c.wallet.address
    assert re.fullmatch(r"\d+", c.get("/").json()["timestamp"])
    ts = c.get("/timestamp").json()
    assert re.fullmatch(r"\d{12}", ts["block_height"]) and re.fullmatch(r"\d+", ts["timestamp"])
    assert c.get("/health").status_code == 200
    metrics = c.get("/metrics")
    assert metrics.status_code == 200 and "aonet_su_assignments" in metrics.text


def test_scheduler_location_published(su_client):
    page = su_client.store.query_items(owners=[su_client.wallet.address], tags=[("Type", ["Scheduler-Location"])])
    assert len(page.items) == 1
    item = page.items[0].item()
    assert item.tag("Url") == "http://testserver" and item.tag("Time-To-Live") and item.data == b"1984"


def test_schedule_page_shape_and_chain(su_client):
    c = su_client
    p = spawn(c)
    msgs = [send(c, p.id, data=f"m{i}") for i in range(4)]
    body = c.get(f"/{p.id}", params={"process-id": p.id}).json()
    assert body["page_info"] == {"has_next_page": False}
    edges = body["edges"]
    assert [e["node"]["message"]["id"] for e in edges] == [p.id] + [m.id for m in msgs]
    first = edges[0]["node"]
    assert set(first) == {"message", "assignment"}
    assert set(first["message"]) == {"id", "owner", "data", "tags", "signature", "anchor", "target"}
    assert first["message"]["owner"]["address"] == USER.address
    a = edges[1]["node"]["assignment"]
    assert set(a) == {"id", "owner", "tags", "signature", "anchor", "target"} and a["target"] == ""
    tags = {t["name"]: t["value"] for t in a["tags"]}
    assert tags["Nonce"] == "1" and tags["Message"] == msgs[0].id and tags["Process"] == p.id
    assert edges[1]["cursor"] == tags["Timestamp"]
    assert edges[1]["node"]["message"]["data"] == "m0" and edges[1]["node"]["message"]["target"] == p.id
    assert verify_chain(c.store, p.id, signer_address=c.wallet.address).ok


def test_pagination(su_client):
    c = su_client
    p = spawn(c)
    msgs = [send(c, p.id, data=str(i)) for i in range(7)]
    # by nonce: from exclusive, to inclusive
    page = c.get(f"/{p.id}", params={"from-nonce": "-1", "limit": "3"}).json()
    assert [e["cursor"] for e in page["edges"]] == ["0", "1", "2"] and page["page_info"]["has_next_page"]
    page = c.get(f"/{p.id}", params={"from-nonce": "2", "to-nonce": "5"}).json()
    assert [e["cursor"] for e in page["edges"]] == ["3", "4", "5"] and not page["page_info"]["has_next_page"]
    # by timestamp: walking cursors never skips or repeats an item, even with equal timestamps
    seen, cursor = [], None
    for _ in range(20):
        params = {"limit": "2", "process-id": p.id, **({"from": cursor} if cursor else {})}
        page = c.get(f"/{p.id}", params=params).json()
        seen += [e["node"]["message"]["id"] for e in page["edges"]]
        if not page["page_info"]["has_next_page"]:
            break
        cursor = page["edges"][-1]["cursor"]
    assert seen == [p.id] + [m.id for m in msgs]
    last_ts = int(c.get(f"/{p.id}/latest").json()["assignment"]["tags"][5]["value"])
    assert c.get(f"/{p.id}", params={"from": str(last_ts)}).json()["edges"] == []
    assert len(c.get(f"/{p.id}", params={"to": str(last_ts)}).json()["edges"]) == 8


def test_message_process_latest_lookups(su_client):
    c = su_client
    p = spawn(c, tags=[("Name", "lookup")])
    m = send(c, p.id)
    node = c.get(f"/{m.id}", params={"process-id": p.id}).json()
    assert node["message"]["id"] == m.id and node["assignment"]["tags"][2] == {"name": "Nonce", "value": "1"}
    by_assignment = c.get(f"/{node['assignment']['id']}", params={"process-id": p.id}).json()
    assert by_assignment["message"]["id"] == m.id
    assert c.get(f"/{m.id}").json()["message"]["id"] == m.id              # process-id optional
    assert c.get(f"/{p.id}/latest").json()["assignment"]["id"] == node["assignment"]["id"]
    proc = c.get(f"/processes/{p.id}").json()
    assert proc["process_id"] == p.id and re.fullmatch(r"\d{12}", proc["block"])
    assert isinstance(proc["timestamp"], int) and proc["owner"]["address"] == USER.address
    assert {"name": "Name", "value": "lookup"} in proc["tags"]
    assert set(proc) == {"process_id", "block", "owner", "tags", "timestamp", "data", "anchor", "signature",
                         "target"}
    for path in (f"/processes/{'A' * 43}", f"/{'A' * 43}/latest", f"/{'A' * 43}", f"/{m.id}?process-id={'B' * 43}"):
        r = c.get(path)
        assert r.status_code == 404 and "error" in r.json()
    assert c.get(f"/{p.id}/verify").json()["ok"] is True


def test_anchor_shown_as_text_or_base64(su_client):
    c = su_client
    p = spawn(c)
    m = send(c, p.id, anchor="0" * 32)
    assert c.get(f"/{m.id}").json()["message"]["anchor"] == "0" * 32
    assert c.get(f"/{m.id}?show-anchor=1").json()["message"]["anchor"] == "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA"


def test_repost_is_idempotent(su_client):
    c = su_client
    p = spawn(c)
    m = send(c, p.id)
    assert c.post("/", content=m.raw).json()["id"] == m.id
    assert c.post("/", content=p.raw).status_code == 200
    edges = c.get(f"/{p.id}").json()["edges"]
    assert len(edges) == 2


def test_assign_existing_item(su_client):
    c = su_client
    p1, p2 = spawn(c, tags=[("Name", "1")]), spawn(c, tags=[("Name", "2")])
    m = send(c, p1.id)
    r = c.post("/", params={"process-id": p2.id, "assign": m.id, "exclude": "Data,Tags"})
    assert r.status_code == 200, r.text
    aid = r.json()["id"]
    assert c.post("/", params={"process-id": p2.id, "assign": m.id}).json()["id"] == aid   # idempotent
    node = c.get(f"/{p2.id}").json()["edges"][1]["node"]
    assert node["message"] is None and node["assignment"]["id"] == aid
    tags = [(t["name"], t["value"]) for t in node["assignment"]["tags"]]
    assert tags[-3:] == [("Message", m.id), ("Exclude", "Data"), ("Exclude", "Tags")]
    module = build_module(USER, b"\0asm")
    c.store.put_item(module)
    assert c.post("/", params={"process-id": p2.id, "assign": module.id}).status_code == 200
    assert verify_chain(c.store, p2.id).ok


def _err(r, status, pattern):
    assert r.status_code == status, r.text
    assert re.search(pattern, r.json()["error"]), r.json()


@pytest.mark.parametrize("kind", ["arweave", "ed25519", "ethereum"])
def test_accepts_items_signed_by_any_wallet_kind(su_client, kind):
    user = Wallet.generate(kind)
    p = build_process(user, "M" * 43, su_client.wallet.address)
    assert su_client.post("/", content=p.raw).status_code == 200
    assert su_client.post("/", content=build_message(user, p.id).raw).status_code == 200


def test_bad_items(su_client):
    c = su_client
    p = spawn(c)
    _err(c.post("/", content=b""), 400, "empty body")
    _err(c.post("/", content=b"\x00\x01 garbage bytes"), 400, "not a valid ANS-104")
    bad_sig = bytearray(build_message(USER, p.id, data="x").raw)
    bad_sig[-1] ^= 0xFF
    _err(c.post("/", content=bytes(bad_sig)), 400, "invalid signature")
    _err(c.post("/", content=USER.sign_item("x", tags=[("Type", "Message")]).raw), 400, "not an AO item")
    no_module = USER.sign_item(" ", tags=[("Data-Protocol", "ao"), ("Type", "Process"),
                                          ("Scheduler", c.wallet.address)])
    _err(c.post("/", content=no_module.raw), 400, "no Module tag")
    no_sched = USER.sign_item(" ", tags=[("Data-Protocol", "ao"), ("Type", "Process"), ("Module", "M" * 43)])
    _err(c.post("/", content=no_sched.raw), 400, "no Scheduler tag")
    _err(c.post("/", content=build_process(USER, "M" * 43, "someone-else").raw), 400, "names Scheduler")
    _err(c.post("/", content=build_message(USER, "A" * 43).raw), 404, "not scheduled by this SU")
    pushed = build_message(USER, p.id, tags=[("From-Process", "F" * 43), ("Pushed-For", "X" * 43)])
    assert c.post("/", content=pushed.raw).status_code == 200
    again = build_message(Wallet.generate("ed25519"), p.id, tags=[("From-Process", "F" * 43)])
    _err(c.post("/", content=again.raw), 409, "duplicates message")
    # nothing partial was written
    assert len(c.get(f"/{p.id}").json()["edges"]) == 2


def test_size_limit(tmp_path, su_wallet):
    from starlette.testclient import TestClient

    from aonet.store import SQLiteStore
    from aonet.su import create_su_app
    store = SQLiteStore(tmp_path / "s.sqlite")
    with TestClient(create_su_app(store, su_wallet, url="http://t", max_item_size=2000)) as c:
        p = build_process(USER, "M" * 43, su_wallet.address)
        assert c.post("/", content=p.raw).status_code == 200
        big = build_message(USER, p.id, data="x" * 3000)
        _err(c.post("/", content=big.raw), 413, "over the 2000-byte limit")

        def chunks():
            yield big.raw[:1000]
            yield big.raw[1000:]
        _err(c.post("/", content=chunks()), 413, "over the 2000-byte limit")   # no Content-Length
        _err(c.post("/", content=b"x", headers={"content-length": "abc"}), 400, "Content-Length")
        assert len(c.get(f"/{p.id}").json()["edges"]) == 1


def test_bad_query_params(su_client):
    c = su_client
    p = spawn(c)
    for params, pattern in [({"from": "abc"}, "from must be an integer"), ({"limit": "x"}, "limit must be"),
                            ({"limit": "0"}, "limit must be at least 1"), ({"to": "1.5"}, "to must be"),
                            ({"from-nonce": "-5"}, "from-nonce must be at least -1"),
                            ({"to-nonce": "z"}, "to-nonce must be")]:
        _err(c.get(f"/{p.id}", params=params), 400, pattern)
    _err(c.post("/", params={"process-id": p.id}), 400, "both process-id and assign")
    _err(c.post("/", params={"process-id": p.id, "assign": "short"}), 400, "43-character")
    _err(c.post("/", params={"process-id": "bad", "assign": "A" * 43}), 400, "43-character")
    _err(c.post("/", params={"process-id": p.id, "assign": "A" * 43}), 404, "not in this SU's store")
    _err(c.post("/", params={"process-id": "B" * 43, "assign": p.id}), 404, "not scheduled")
    slot0 = c.get(f"/{p.id}/latest").json()["assignment"]["id"]
    _err(c.post("/", params={"process-id": p.id, "assign": slot0}), 400, "is an Assignment")
    assert len(c.get(f"/{p.id}").json()["edges"]) == 1                   # nothing written
    _err(c.put("/"), 405, "Method Not Allowed")
    _err(c.get("/a/b/c"), 404, "Not Found")
