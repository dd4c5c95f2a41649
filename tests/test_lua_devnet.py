"""Lua processes wired into the devnet, end to end.

One real `aonet up` (a subprocess, as a person would run it) serves every test here:
- it publishes the Lua module (the exact bytes of `aonet.vm.lua.lua_module()`), listed in devnet.json;
- `aonet spawn --lua`, `aonet spawn --lua --load examples/ping.lua`, `aonet send` and `aonet shell` work
  against it, reading only devnet.json;
- AO's own client (aoconnect, tests/js/aoconnect_lua.mjs): Eval `return 1 + 41` gives 42, and a
  handler's `msg.reply({Data = "pong"})` reaches the sender (a wallet: via the gateway; a process: via
  the MU, resuming its `Receive`);
- the token blueprint: Transfer -> Debit-Notice / Credit-Notice delivered by the MU to other processes,
  and dropped by a process whose Authority does not name the MU;
- the same log in two fresh CUs gives the same memory hash as the devnet's CU (`verify_process`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aonet.cli import main
from aonet.client import connect
from aonet.config import DevnetConfig, config_path
from aonet.vm.lua import BLUEPRINTS, lua_module
from aonet.wallet import Wallet

from shell_driver import driven_shell
from fixtures_devnet import aonet_up, seed

ROOT = Path(__file__).resolve().parent.parent
PING = ROOT / "examples" / "ping.lua"
TOKEN = BLUEPRINTS / "token.lua"
AOCONNECT_SCRIPT = ROOT / "tests" / "js" / "aoconnect_lua.mjs"

# records every Credit-Notice / Debit-Notice a process gets
NOTICES = """
Notices = Notices or {}
Handlers.add("notices", function(m) return m.Action == "Credit-Notice" or m.Action == "Debit-Notice" end,
  function(m)
    table.insert(Notices, {Action = m.Action, Quantity = m.Quantity, From = m.From, Sender = m.Sender,
                           Recipient = m.Recipient, Memo = m.Tags["X-Memo"], Signer = m.Owner})
  end)
return "recording notices"
"""


@dataclass
class Up:
    """The running `aonet up`: its data directory, devnet.json and what it printed."""
    data_dir: Path
    config: DevnetConfig
    banner: str
    proc: subprocess.Popen

    @property
    def args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]

    def client(self):
        c = self.config
        return connect(mu_url=c.mu_url, cu_url=c.cu_url, su_url=c.su_url, gateway_url=c.gateway_url,
                       wallet=c.wallet)


@pytest.fixture(scope="module")
def up(tmp_path_factory, unit_wallets):  # noqa: F811
    lua_module()     # build (or find) the module in this process's cache first, shared with other tests
    data_dir = seed(tmp_path_factory.mktemp("aonet-up"), unit_wallets)
    with aonet_up(data_dir, "lua") as (proc, banner):
        yield Up(data_dir, DevnetConfig.load(config_path(data_dir)), banner, proc)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def eval_text(ao, pid: str, code: str) -> str:
    res = ao.send(pid, code, action="Eval")
    assert res.result.ok, res.result.error
    return res.result.text


# ---- `aonet up` ----------------------------------------------------------------------------------
def test_up_publishes_the_lua_module(up):
    mid = up.config.modules["lua"]
    assert f"module lua      {mid}" in up.banner and up.config.mu_address in up.banner
    assert Path(up.config.wallet).is_absolute() and Path(up.config.wallet).exists()
    gw = up.config.gateway_url
    assert httpx.get(f"{gw}/raw/{mid}", timeout=30).content == lua_module()
    q = '{ transaction(id: "%s") { tags { name value } } }' % mid
    tags = {t["name"]: t["value"] for t in
            httpx.post(f"{gw}/graphql", json={"query": q}, timeout=30).json()["data"]["transaction"]["tags"]}
    assert tags["Type"] == "Module" and tags["Module-Format"] == "wasm32-wasi-ao1"
    assert tags["Input-Encoding"] == tags["Output-Encoding"] == "JSON-1"


def test_up_refuses_an_unknown_module(tmp_path, capsys):
    code, out, err = run(capsys, "up", "--port", "0", "--modules", "lua,cobol", "--data-dir", str(tmp_path))
    assert code == 2 and "unknown module cobol" in err
    assert not (tmp_path / "devnet.json").exists()


# ---- the CLI -------------------------------------------------------------------------------------
def test_spawn_lua_with_the_ping_example(up, capsys):
    code, out, err = run(capsys, *up.args, "spawn", "--lua", "--name", "pinger", "--load", str(PING))
    assert code == 0, err
    a = out.strip()
    assert "ping loaded" in err
    with up.client() as ao:
        tags = {t.name: t.value for t in ao.process(a).tags}
        assert tags["Authority"] == up.config.mu_address and tags["Module"] == up.config.modules["lua"]
        assert tags["Name"] == "pinger"
    me = Wallet.load(up.config.wallet).address

    # a wallet pings: the reply is addressed to it
    code, out, err = run(capsys, *up.args, "--json", "send", a, "--action", "Ping", "--cascade")
    assert code == 0, err
    sent = json.loads(out)
    [reply] = sent["result"]["Messages"]
    assert reply["Target"] == me and reply["Data"] == "pong"
    assert {"name": "Action", "value": "Pong"} in reply["Tags"]
    assert len(sent["trace"]["edges"]) >= 2          # the result, then the reply stored on the gateway

    # a process pings: the MU carries the Ping to A and the Pong back to B, whose handler prints
    code, out, err = run(capsys, *up.args, "spawn", "--lua", "--load", str(PING))
    assert code == 0, err
    b = out.strip()
    code, out, err = run(capsys, *up.args, "send", b, "--action", "Eval", "--data", f"ping('{a}')", "--cascade")
    assert code == 0, err
    code, out, err = run(capsys, *up.args, "send", b, "--action", "Eval", "--data", "return Pongs")
    assert (code, out.strip()) == (0, "1")
    code, out, err = run(capsys, *up.args, "--json", "results", b, "--limit", "5")
    texts = [e["node"]["Output"].get("data") for e in json.loads(out)["edges"] if e["node"]["Output"]]
    assert f"pong from {a} (1 so far)" in texts

    # a plain `spawn --lua` is an empty process that evaluates code
    code, out, err = run(capsys, *up.args, "spawn", "--lua")
    assert code == 0, err
    code, out, err = run(capsys, *up.args, "send", out.strip(), "--action", "Eval", "--data", "return 1 + 41")
    assert (code, out.strip()) == (0, "42")


def test_shell_on_a_lua_process(up, capsys):
    code, out, err = run(capsys, *up.args, "spawn", "--lua")
    assert code == 0, err
    pid = out.strip()
    with driven_shell([*up.args, "shell", pid, "--poll", "0.2"]) as sh:
        sh.send("return 1 + 41\r")
        sh.wait_for("42")
        sh.send(f".load {PING}\r")
        sh.wait_for("ping loaded")
        sh.send("ping(ao.id)\r")                            # the MU carries the Ping, then the Pong
        sh.wait_for(f"pong from {pid} (1 so far)")           # shown by the poller when it arrives
    assert sh.lines().count("42") == 1


# ---- AO's own client -----------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("node") is None or not (ROOT / "node_modules" / "@permaweb" / "aoconnect").exists(),
                    reason="needs node and npm's @permaweb/aoconnect (make install)")
def test_aoconnect_eval_and_reply(up):
    c = up.config
    env = {**os.environ, "MU_URL": c.mu_url, "CU_URL": c.cu_url, "GATEWAY_URL": c.gateway_url,
           "MODULE": c.modules["lua"], "SCHEDULER": c.scheduler, "AUTHORITY": c.mu_address, "WALLET": c.wallet}
    p = subprocess.run(["node", str(AOCONNECT_SCRIPT)], env=env, capture_output=True, text=True, timeout=240,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "failed" not in out, json.dumps(out, indent=1)
    me, a, b = out["me"], out["spawnA"], out["spawnB"]
    assert me == Wallet.load(c.wallet).address
    assert out["eval"]["Output"]["data"] == "42" and "Error" not in out["eval"]
    assert out["dryrunEval"]["Output"]["data"] == "42"
    assert "Error" not in out["addHandler"]
    # to a wallet: in the result, then stored on the gateway by the MU
    [reply] = out["pingResult"]["Messages"]
    assert (reply["Target"], reply["Data"]) == (me, "pong")
    stored = out["walletReply"]
    assert stored is not None and stored["recipient"] == me and stored["data"] == "pong"
    assert {"name": "From-Process", "value": a} in stored["tags"]
    # to a process: B's Receive resumed with A's reply
    [ping] = out["sendFromB"]["Messages"]
    assert ping["Target"] == a and {"name": "Action", "value": "Ping"} in ping["Tags"]
    assert out["replyAtB"]["Output"]["data"] == f"pong from {a}"
    assert len(out["resultsA"]["edges"]) >= 5          # boot, Eval, Eval, Ping (wallet), Ping (from B)
    with up.client() as ao:                             # the spawn carried the Authority tag we gave
        assert {t.name: t.value for t in ao.process(b).tags}["Authority"] == c.mu_address


# ---- the token blueprint through the MU ----------------------------------------------------------
@dataclass
class TokenRun:
    token: str
    a: str
    b: str
    stranger: str


@pytest.fixture(scope="module")
def token_run(up) -> TokenRun:
    """A token (spawned with `aonet spawn --lua --load token.lua`) and three holder processes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):   # capsys is per test
        code = main([*up.args, "spawn", "--lua", "--name", "token", "--load", str(TOKEN)])
    assert code == 0 and "token loaded: Points Coin (PNTS)" in err.getvalue(), err.getvalue()
    token = out.getvalue().strip()
    lua, mu = up.config.modules["lua"], up.config.mu_address
    with up.client() as ao:
        a = ao.spawn(lua, tags={"Authority": mu, "Name": "holder-a"})
        b = ao.spawn(lua, tags={"Authority": mu, "Name": "holder-b"})
        # trusts some other forwarder only: what the MU pushes is dropped
        stranger = ao.spawn(lua, tags={"Authority": Wallet.load(up.config.wallet).address, "Name": "stranger"})
        for pid in (a, b, stranger):
            assert eval_text(ao, pid, NOTICES) == "recording notices"
        minted = ao.send(token, "", action="Mint", tags={"Quantity": "1000"})
        assert minted.result.messages[0].data == "\x1b[90mSuccessfully minted \x1b[34m1000\x1b[0m"
        first = ao.send(token, "", action="Transfer", tags={"Recipient": a, "Quantity": "300"}, cascade=True)
        assert not first.trace.failed
        # A spends from its own balance: a message from a process, pushed to the token by the MU
        second = ao.send(a, f"Send({{Target = '{token}', Action = 'Transfer', Recipient = '{b}', "
                            f"Quantity = '120', ['X-Memo'] = 'rent'}})", action="Eval", cascade=True)
        assert not second.trace.failed
        third = ao.send(token, "", action="Transfer", tags={"Recipient": stranger, "Quantity": "5"}, cascade=True)
        assert not third.trace.failed
    return TokenRun(token, a, b, stranger)


def test_token_transfers_deliver_notices_through_the_mu(up, token_run):
    t = token_run
    mu = up.config.mu_address
    with up.client() as ao:
        notices = {pid: json.loads(eval_text(ao, pid, "return json.encode(Notices)")) for pid in (t.a, t.b)}
        # every notice was pushed by the MU (its signature) on behalf of the token process
        assert notices[t.a] == [
            {"Action": "Credit-Notice", "Quantity": "300", "From": t.token, "Sender": ao.wallet.address,
             "Signer": mu},
            {"Action": "Debit-Notice", "Quantity": "120", "From": t.token, "Recipient": t.b, "Memo": "rent",
             "Signer": mu}]
        assert notices[t.b] == [
            {"Action": "Credit-Notice", "Quantity": "120", "From": t.token, "Sender": t.a, "Memo": "rent",
             "Signer": mu}]
        # handled notices are not kept in the Inbox
        assert eval_text(ao, t.b, "return #Inbox") == "0"
        balances = json.loads(ao.dryrun(t.token, tags={"Action": "Balances"}).messages[0].data)
        assert (balances[ao.wallet.address], balances[t.a], balances[t.b], balances[t.stranger]) == \
            ("695", "180", "120", "5")
        # the stranger's process got its Credit-Notice but did not trust the MU's push
        assert eval_text(ao, t.stranger, "return #Notices") == "0"
        texts = [edge.result.text or "" for edge in ao.results(t.stranger, sort="DESC", limit=5)]
        assert any(text.startswith("Message is not trusted") for text in texts), texts


# ---- two fresh CUs agree -------------------------------------------------------------------------
def test_same_log_two_fresh_cus_same_memory(up, token_run, tmp_path):
    import uvicorn

    from aonet.cu.app import create_cu_app
    from aonet.cu.sources import GatewayModuleSource, SUClient
    from aonet.cu.verify import verify_process
    from aonet.node import free_ports

    c = up.config
    su = SUClient(c.su_url)
    try:
        to = su.timestamp()[0]
    finally:
        su.close()
    modules = GatewayModuleSource(c.gateway_url)
    port = free_ports("127.0.0.1", 1)[0]
    app = create_cu_app(data_dir=str(tmp_path / "cu2"), su_url=c.su_url, modules=GatewayModuleSource(c.gateway_url),
                        wallet=Wallet.generate("ed25519"), gateway_url=c.gateway_url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    second_cu = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the second CU did not start"
            time.sleep(0.05)
        for pid in (token_run.token, token_run.a, token_run.b):
            # the devnet's CU (it evaluated the cascades as they happened) against a fresh recomputation,
            # then a second fresh CU (over HTTP) against another fresh recomputation, all at one time T
            live = verify_process(pid, su_url=c.su_url, cu_url=c.cu_url, modules=modules, to=to)
            fresh = verify_process(pid, su_url=c.su_url, cu_url=second_cu, modules=modules, to=to)
            assert live.ok, live.mismatches
            assert fresh.ok, fresh.mismatches
            assert live.memory_sha256_remote == fresh.memory_sha256_remote == fresh.memory_sha256_local
            assert live.results_compared >= 3 and live.results_compared == fresh.results_compared
    finally:
        server.should_exit = True
        thread.join(10)
        modules.close()
