"""End to end on real units over loopback: the MU cranks cascades through a real SU and CU.

Ping-pong 1,000 rounds deep, fan-out to 100, spawns, cron through the monitor, messages to wallets,
malformed outboxes, and a SIGKILL of the MU mid-cascade (nothing lost, nothing delivered twice).
"""
from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time

import httpx
import pytest

from aonet.node import free_ports
from aonet.protocol import build_message
from aonet.wallet import Wallet
from fixtures_devnet import mu_post as post, spawn_pingpong as spawn

HTTP = httpx.Client(timeout=60)


@pytest.fixture(scope="module")
def user():
    return Wallet.generate("ed25519")


def send(net, w, pid, action, data=" ", **tags) -> str:
    m = build_message(w, pid, data=data, anchor=secrets.token_hex(16),
                      tags=[("Action", action), *[(k.replace("_", "-"), str(v)) for k, v in tags.items()]])
    post(net.mu_url, m)
    return m.id


def counters(net, pid) -> dict:
    r = HTTP.post(f"{net.cu_url}/dry-run", params={"process-id": pid},
                  json={"Id": "1234", "Owner": "1234", "Target": pid, "Data": "1234", "Anchor": "0",
                        "Tags": [{"name": "Action", "value": "Count"}, {"name": "Data-Protocol", "value": "ao"},
                                 {"name": "Type", "value": "Message"}, {"name": "Variant", "value": "ao.TN.1"}]})
    assert r.status_code == 200, r.text
    return r.json()["Output"]


def wait_for(pred, timeout=120.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def mu_tasks(url) -> dict:
    return HTTP.get(f"{url}/health").json()["tasks"]


def wait_idle(url, timeout=180.0):
    """Until the MU has nothing pending (checked twice, a moment apart)."""
    def idle():
        return mu_tasks(url).get("pending", 0) == 0
    wait_for(idle, timeout, "MU queue to drain")
    time.sleep(0.2)
    wait_for(idle, timeout, "MU queue to drain")


def schedule(net, pid) -> list[dict]:
    r = HTTP.get(f"{net.su_url}/{pid}", params={"process-id": pid, "limit": "10000"})
    assert r.status_code == 200, r.text
    return [e["node"] for e in r.json()["edges"]]


def tag(node_part, name):
    for t in node_part["tags"]:
        if t["name"] == name:
            return t["value"]
    return None


def test_pingpong_1000_rounds(devnet, user):
    a, b = spawn(devnet, user), spawn(devnet, user)
    start = send(devnet, user, a, "Start", Peer=b, Rounds=1000)
    wait_for(lambda: counters(devnet, a)["pings"] + counters(devnet, b)["pings"] >= 1000, 300, "1000 pings")
    wait_idle(devnet.mu_url)
    assert counters(devnet, a)["pings"] == 500 and counters(devnet, b)["pings"] == 500
    # exactly once on the log: A holds process + Start + 500 pings, B process + 500 pings
    sa, sb = schedule(devnet, a), schedule(devnet, b)
    assert len(sa) == 502 and len(sb) == 501
    ping = sb[1]["message"]
    assert tag(ping, "From-Process") == a and tag(ping, "Pushed-For") == start
    assert tag(ping, "Type") == "Message" and tag(ping, "Data-Protocol") == "ao"
    assert tag(ping, "From-Module") == devnet.modules["pingpong"]
    assert ping["owner"]["address"] == devnet.mu_address          # signed by the MU wallet
    trace = HTTP.get(devnet.mu_url, params={"debug": "true", "message": start}).json()
    nodes = [e["node"] for e in trace["edges"]]
    assert len(nodes) == 1001 and all(n["state"] == "done" for n in nodes)


def test_fan_out_to_100(devnet, user):
    sinks = [spawn(devnet, user) for _ in range(10)]
    fan = spawn(devnet, user)
    mid = send(devnet, user, fan, "Fan", data=",".join(sinks), N=100)
    wait_for(lambda: sum(counters(devnet, s)["hits"] for s in sinks) >= 100, 120, "100 hits")
    wait_idle(devnet.mu_url)
    assert [counters(devnet, s)["hits"] for s in sinks] == [10] * 10
    assert sum(len(schedule(devnet, s)) - 1 for s in sinks) == 100
    trace = HTTP.get(devnet.mu_url, params={"debug": "true", "message": mid}).json()
    kinds = [e["node"]["kind"] for e in trace["edges"]]
    assert kinds.count("message") == 100


def test_spawns_and_spawned_notices(devnet, user):
    parent = spawn(devnet, user)
    mid = send(devnet, user, parent, "Spawn", Module=devnet.modules["pingpong"], N=3)
    wait_for(lambda: counters(devnet, parent)["spawned"] == 3, 60, "3 Spawned notices")
    wait_idle(devnet.mu_url)
    trace = [e["node"] for e in HTTP.get(devnet.mu_url, params={"debug": "true", "message": mid}).json()["edges"]]
    kids = [n["id"] for n in trace if n["kind"] == "spawn"]
    assert len(kids) == 3 and all(n["state"] == "done" for n in trace)
    for kid in kids:
        proc = HTTP.get(f"{devnet.su_url}/processes/{kid}").json()
        assert tag(proc, "Type") == "Process" and tag(proc, "From-Process") == parent
        assert tag(proc, "Scheduler") == devnet.scheduler and tag(proc, "Pushed-For") == mid
        assert counters(devnet, kid)["pings"] == 0          # the child runs
    notices = [n["message"] for n in schedule(devnet, parent)[2:]]
    assert sorted(tag(m, "Process") for m in notices) == sorted(kids)
    assert all(tag(m, "Action") == "Spawned" for m in notices)


def test_cron_through_monitor(devnet, user):
    sink = spawn(devnet, user)
    ticker = spawn(devnet, user, tags=[("Cron-Interval", "1-second"), ("Cron-Tag-Action", "Tick"),
                                       ("Cron-Tag-Sink", sink)])
    send(devnet, user, ticker, "Count")     # gives the CU a first result to start the cursor from
    wait_idle(devnet.mu_url)
    w = Wallet.generate("ed25519")
    r = HTTP.post(f"{devnet.mu_url}/monitor/{ticker}", content=build_message(w, ticker).raw)
    assert r.status_code == 200 and r.text == "Monitoring process"
    wait_for(lambda: counters(devnet, sink)["hits"] >= 2, 60, "two Tocks from cron ticks")
    r = HTTP.delete(f"{devnet.mu_url}/monitor/{ticker}")
    assert r.status_code == 200 and r.text == "Process deleted"
    wait_idle(devnet.mu_url)
    # every cron result's outbox reached the sink once: ticks so far == Tocks delivered
    hits = counters(devnet, sink)["hits"]
    tocks = [m for m in (n["message"] for n in schedule(devnet, sink)[1:]) if tag(m, "Action") == "Tock"]
    assert len(tocks) == hits and sorted(int(tag(m, "Tick")) for m in tocks) == list(range(1, hits + 1))


def test_message_to_wallet_is_stored_and_bad_tags_recorded(devnet, user):
    pid = spawn(devnet, user)
    wallet = Wallet.generate("ed25519").address
    mid = send(devnet, user, pid, "Store", To=wallet)
    bad = send(devnet, user, pid, "BadTags")
    wait_idle(devnet.mu_url)
    q = '{ transactions(recipients: ["%s"]) { edges { node { id owner { address } tags { name value } } } } }' % wallet
    edges = HTTP.post(f"{devnet.gateway_url}/graphql", json={"query": q}).json()["data"]["transactions"]["edges"]
    assert len(edges) == 1 and edges[0]["node"]["owner"]["address"] == devnet.mu_address
    assert {"name": "From-Process", "value": pid} in edges[0]["node"]["tags"]
    stored = [e["node"] for e in HTTP.get(devnet.mu_url, params={"debug": "true", "message": mid}).json()["edges"]]
    assert [n["stage"] for n in stored if n["kind"] == "message"] == ["stored"]
    trace = [e["node"] for e in HTTP.get(devnet.mu_url, params={"debug": "true", "message": bad}).json()["edges"]]
    errors = [n for n in trace if n["kind"] == "error"]
    assert len(errors) == 1 and "non-string" in errors[0]["error"] and errors[0]["state"] == "failed"
    text = HTTP.get(devnet.mu_url, params={"debug": "true", "message": bad, "format": "text"}).text
    assert "non-string" in text


def test_mu_rejects_bad_input_and_is_idempotent(devnet, user):
    r = HTTP.post(devnet.mu_url, content=b"\x01\x00junk")
    assert r.status_code == 400 and "invalid data item" in r.json()["error"]
    item = user.sign_item(b"x", tags=[("Data-Protocol", "ao"), ("Type", "Checkpoint")])
    assert HTTP.post(devnet.mu_url, content=item.raw).status_code == 400
    assert HTTP.post(devnet.mu_url, params={"process-id": "x"}).status_code == 400
    assert HTTP.get(devnet.mu_url).text == "ao messenger unit"
    pid = spawn(devnet, user)
    m = build_message(user, pid, tags=[("Action", "Hit")])
    post(devnet.mu_url, m)
    post(devnet.mu_url, m)              # the same item again: recognised, scheduled once
    wait_idle(devnet.mu_url)
    assert counters(devnet, pid)["hits"] == 1 and len(schedule(devnet, pid)) == 2


def test_assign_through_mu(devnet, user):
    a, b = spawn(devnet, user), spawn(devnet, user)
    m = send(devnet, user, a, "Hit")
    r = HTTP.post(devnet.mu_url, params={"process-id": b, "assign": m})
    assert r.status_code == 202 and r.json()["message"] == "Processing Assignment"
    wait_for(lambda: counters(devnet, b)["hits"] == 1, 60, "assigned Hit evaluated on b")
    assert counters(devnet, a)["hits"] == 1


# ---- crash: SIGKILL the MU mid-cascade, restart, nothing lost nor doubled ------------------------
def start_mu(data_dir, port, net) -> subprocess.Popen:
    argv = [sys.executable, "-m", "aonet.node", "unit", "mu", "--data-dir", str(data_dir), "--port", str(port),
            "--gateway-url", net.gateway_url, "--cu-url", net.cu_url, "--su-url", net.su_url,
            "--monitor-interval", "0.2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    return proc


def test_sigkill_mu_mid_cascade(make_devnet, tmp_path, user):
    net = make_devnet(units=("gateway", "su", "cu"))
    mu_dir = tmp_path / "mu"
    mu_dir.mkdir()
    (mu_dir / "wallets").mkdir()
    import shutil
    shutil.copy(net.config.path / "wallets" / "mu.json", mu_dir / "wallets" / "mu.json")
    port = free_ports("127.0.0.1", 1)[0]
    mu_url = f"http://127.0.0.1:{port}"
    net.urls["mu"] = mu_url
    proc = start_mu(mu_dir, port, net)
    try:
        a, b = spawn(net, user), spawn(net, user)
        sinks = [spawn(net, user) for _ in range(5)]
        fan = spawn(net, user)
        send(net, user, a, "Start", Peer=b, Rounds=300)
        send(net, user, fan, "Fan", data=",".join(sinks), N=100)
        wait_for(lambda: counters(net, a)["pings"] + counters(net, b)["pings"] >= 60, 120, "cascade under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = counters(net, a)["pings"] + counters(net, b)["pings"]
        assert before < 300, "the cascade finished before the kill; make it longer"
        time.sleep(0.5)
        proc = start_mu(mu_dir, port, net)
        wait_for(lambda: counters(net, a)["pings"] + counters(net, b)["pings"] >= 300, 300, "300 pings after restart")
        wait_for(lambda: sum(counters(net, s)["hits"] for s in sinks) >= 100, 120, "100 hits after restart")
        wait_idle(mu_url)
        assert counters(net, a)["pings"] == 150 and counters(net, b)["pings"] == 150
        assert [counters(net, s)["hits"] for s in sinks] == [20] * 5
        assert len(schedule(net, a)) == 152 and len(schedule(net, b)) == 151
        assert all(len(schedule(net, s)) == 21 for s in sinks)
        assert mu_tasks(mu_url).get("failed", 0) == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


