"""Python processes wired into the devnet, end to end, through a real `aonet up` subprocess.

- `aonet up --modules python` publishes the Python module (the bytes of `python_module()`);
- `aonet spawn --python` and `aonet spawn --python --load examples/ping.py` work against it; a wallet's
  Ping gets its reply, an Eval of `1 + 41` gives 42;
- one Python process awaits another's reply (`await send(...).receive()`), both legs carried by the MU;
- `aonet shell` speaks Python: multi-line input, `.load`, and a result that arrives later;
- a fresh CU recomputing the log gets the same memory as the devnet's CU (`verify_process`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from aonet.cli import main
from aonet.config import DevnetConfig, config_path
from aonet.vm.python import python_module
from aonet.wallet import Wallet

from shell_driver import driven_shell
from fixtures_devnet import aonet_up, seed

ROOT = Path(__file__).resolve().parent.parent
PING = ROOT / "examples" / "ping.py"


class Up:
    """A running `aonet up`: its data directory, devnet.json, and the banner it printed."""

    def __init__(self, data_dir: Path, banner: str):
        self.data_dir = data_dir
        self.config = DevnetConfig.load(config_path(data_dir))
        self.banner = banner
        self.me = Wallet.load(self.config.wallet).address

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run `aonet --data-dir D ARGV...` in this process; (exit code, stdout, stderr)."""
        import contextlib
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--data-dir", str(self.data_dir), *argv])
        return code, out.getvalue(), err.getvalue()

    def spawn(self, *argv: str) -> str:
        code, out, err = self.cli("spawn", "--python", *argv)
        assert code == 0, err
        return out.strip()

    def eval(self, pid: str, code: str, *more: str) -> str:
        rc, out, err = self.cli("send", pid, "--action", "Eval", "--data", code, *more)
        assert rc == 0, out + err
        return out.strip()

    def results(self, pid: str, limit: int = 10) -> list[dict]:
        """The newest results of `pid`, newest first (the CU's JSON)."""
        code, out, err = self.cli("--json", "results", pid, "--limit", str(limit))
        assert code == 0, err
        return [e["node"] for e in json.loads(out)["edges"]]


@pytest.fixture(scope="module")
def up(tmp_path_factory, unit_wallets):  # noqa: F811
    python_module()          # build (or find) the module in the shared cache before the subprocess needs it
    data_dir = seed(tmp_path_factory.mktemp("aonet-up-python"), unit_wallets)
    with aonet_up(data_dir, "python") as (_proc, banner):
        yield Up(data_dir, banner)


@pytest.fixture(scope="module")
def pingers(up) -> tuple[str, str]:
    """Two processes running examples/ping.py, spawned with `aonet spawn --python --load`."""
    return up.spawn("--name", "pinger-a", "--load", str(PING)), up.spawn("--load", str(PING))


# ---- `aonet up` ----------------------------------------------------------------------------------
def test_up_publishes_the_python_module(up):
    mid = up.config.modules["python"]
    assert set(up.config.modules) == {"python"}
    assert f"module python   {mid}" in up.banner
    gw = up.config.gateway_url
    assert httpx.get(f"{gw}/raw/{mid}", timeout=30).content == python_module()
    q = '{ transaction(id: "%s") { tags { name value } } }' % mid
    tags = {t["name"]: t["value"] for t in
            httpx.post(f"{gw}/graphql", json={"query": q}, timeout=30).json()["data"]["transaction"]["tags"]}
    assert (tags["Type"], tags["Module-Format"], tags["Runtime"]) == ("Module", "wasm32-wasi-ao1", "CPython-3.11")


# ---- the CLI -------------------------------------------------------------------------------------
def test_spawn_python_evaluates_python(up):
    pid = up.spawn()
    assert up.eval(pid, "1 + 41") == "42"
    assert up.eval(pid, "import sys\nsys.version_info[:2]") == "(3, 11)"
    code, out, err = up.cli("send", pid, "--action", "Eval", "--data", "1 / 0")
    assert code == 1 and "ZeroDivisionError" in out + err


def test_spawn_python_load_example_replies_to_a_wallet(up, pingers):
    a, _ = pingers
    with httpx.Client(base_url=up.config.su_url, timeout=30) as su:
        info = su.get(f"/processes/{a}").json()
    tags = {t["name"]: t["value"] for t in info["tags"]}
    assert tags["Module"] == up.config.modules["python"] and tags["Authority"] == up.config.mu_address
    assert tags["Name"] == "pinger-a"
    code, out, err = up.cli("--json", "send", a, "--action", "Ping", "--cascade")
    assert code == 0, err
    [reply] = json.loads(out)["result"]["Messages"]
    assert (reply["Target"], reply["Data"]) == (up.me, "pong")
    assert {"name": "Action", "value": "Pong"} in reply["Tags"]


def test_a_process_awaits_another_through_the_mu(up, pingers):
    a, b = pingers
    # A's `ask` handler sends B a Ping and sleeps in `await ...receive()`; the MU carries the Ping to B,
    # B's Pong back to A, which wakes the handler, and A's answer to the wallet (stored on the gateway)
    code, out, err = up.cli("--json", "send", a, "--action", "Ask", "--tag", f"Peer={b}", "--cascade")
    assert code == 0, err
    sent = json.loads(out)
    [ping] = sent["result"]["Messages"]
    assert ping["Target"] == b and {"name": "Action", "value": "Ping"} in ping["Tags"]
    newest = up.results(a, limit=3)
    answers = [m for r in newest for m in r["Messages"] if {"name": "Action", "value": "Asked"} in m["Tags"]]
    assert [(m["Target"], m["Data"]) for m in answers] == [(up.me, f"{b} said pong")]
    pong_at_b = [m for r in up.results(b, limit=3) for m in r["Messages"]]
    assert [(m["Target"], m["Data"]) for m in pong_at_b] == [(a, "pong")]
    # the other way round, without await: B pings A, A's Pong runs B's on_pong handler
    up.eval(b, f"ping({a!r})", "--cascade")
    assert up.eval(b, "pongs") == "1"
    assert f"pong from {a} (1 so far)" in [r["Output"].strip() for r in up.results(b, limit=3)]


def test_shell_speaks_python(up):
    pid = up.spawn()
    with driven_shell(["--data-dir", str(up.data_dir), "shell", pid, "--poll", "0.2"]) as sh:
        sh.wait_for("(python)")
        sh.send("1 + 41\r")
        sh.wait_for("42")
        # a block: Enter after `:` opens a line, an empty line ends the block (as in Python's REPL)
        sh.send("def double(x):\r    y = 2 * x\r    return y\r\r")
        sh.send("double(21) + 1\r")
        sh.wait_for("43")
        sh.send(f".load {PING}\r")
        sh.send("ping(ao.process.id)\r")                   # the MU carries the Ping, then the Pong
        sh.wait_for(f"pong from {pid} (1 so far)")           # shown by the poller when it arrives
    assert sh.lines().count("42") == 1 and sh.lines().count("43") == 1


def test_python_token_mint_by_owner_and_notice_through_the_mu(up, pingers):
    a, _ = pingers
    token = up.spawn("--data", "from ao.blueprints import token\n")     # the program is the Process Data
    code, out, err = up.cli("--json", "send", token, "--action", "Mint", "--tag", "Quantity=1000")
    assert code == 0, err
    [minted] = json.loads(out)["result"]["Messages"]
    assert minted["Target"] == up.me and "Successfully minted" in minted["Data"]
    code, out, err = up.cli("send", token, "--action", "Transfer", "--tag", f"Recipient={a}",
                            "--tag", "Quantity=300", "--tag", "X-Memo=rent", "--cascade")
    assert code == 0, err
    # ping.py has no handler for it: the Credit-Notice the MU pushed waits in A's inbox
    notice = "m = ao.inbox[-1]\nm.Action, m.From, m.Sender, m.Quantity, m['X-Memo']"
    assert up.eval(a, notice) == repr(("Credit-Notice", token, up.me, "300", "rent"))
    assert up.eval(token, "token.balances[%r], token.balances[%r]" % (up.me, a)) == "('700', '300')"


# ---- two CUs agree -------------------------------------------------------------------------------
def test_a_fresh_cu_computes_the_same_memory(up, pingers):
    from aonet.cu.sources import GatewayModuleSource, SUClient
    from aonet.cu.verify import verify_process

    c = up.config
    su = SUClient(c.su_url)
    try:
        to = su.timestamp()[0]
    finally:
        su.close()
    modules = GatewayModuleSource(c.gateway_url)
    try:
        for pid in pingers:
            report = verify_process(pid, su_url=c.su_url, cu_url=c.cu_url, modules=modules, to=to)
            assert report.ok, report.mismatches
            assert report.memory_sha256_remote == report.memory_sha256_local
            assert report.results_compared >= 3
    finally:
        modules.close()
