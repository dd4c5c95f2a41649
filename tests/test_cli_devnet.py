"""The `aonet` command and shell end to end on a real devnet (devnet.json written by the node)."""
from __future__ import annotations

import json

import pytest

from aonet.cli import main

pytest.importorskip("aonet.cu.app", reason="the CU's HTTP app is not in this tree yet")

from shell_driver import driven_shell
from fixtures_devnet import devnet_config, seed  # noqa: E402


@pytest.fixture(scope="module")
def devnet(tmp_path_factory, pingpong_wasm, unit_wallets):  # noqa: F811
    """The shared devnet recipe plus the Lua module (aos-style processes)."""
    from aonet.node import start_background
    data_dir = seed(tmp_path_factory.mktemp("devnet"), unit_wallets)
    net = start_background(devnet_config(data_dir, pingpong_wasm, modules=("lua",), monitor_interval=0.5))
    yield net
    net.stop()


@pytest.fixture(scope="module")
def d(devnet):
    return ["--data-dir", str(devnet.config.path)]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_spawn_load_send_result_results_dryrun_inspect(capsys, d, tmp_path):
    lib = tmp_path / "lib.lua"
    lib.write_text("Greeting = 'hi'\nHandlers.add('hello', 'Hello', function(m) print(Greeting .. ' ' .. m.Data) end)\n")
    code, out, err = run(capsys, *d, "spawn", "--lua", "--name", "cli", "--load", str(lib))
    assert code == 0, err
    pid = out.strip()
    assert len(pid) == 43
    code, out, err = run(capsys, *d, "send", pid, "--action", "Eval", "--data", "return Greeting")
    assert code == 0, err
    assert out.strip() == "hi"
    mid = err.split("message ")[1].split()[0]
    code, out, _ = run(capsys, *d, "result", mid, "--process", pid)
    assert (code, out.strip()) == (0, "hi")
    code, out, _ = run(capsys, *d, "--json", "result", mid, "--process", pid)
    assert json.loads(out)["Output"]["data"] == "hi"
    code, out, _ = run(capsys, *d, "send", pid, "--action", "Hello", "--data", "there", "--cascade")
    assert code == 0 and "hi there" in out
    code, out, _ = run(capsys, *d, "--json", "results", pid, "--limit", "2")
    assert code == 0 and len(json.loads(out)["edges"]) == 2
    code, out, _ = run(capsys, *d, "dryrun", pid, "--action", "Eval", "--data", "return 6 * 7")
    assert (code, out.strip()) == (0, "42")
    code, out, err = run(capsys, *d, "send", pid, "--action", "Eval", "--data", "error('bad')")
    assert code == 1 and "bad" in out
    code, out, _ = run(capsys, *d, "inspect", pid)
    assert code == 0 and pid in out and "MU trace" in out
    code, out, _ = run(capsys, *d, "verify-chain", pid)
    assert code == 0 and "OK" in out
    code, out, err = run(capsys, *d, "--json", "verify", pid)
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["results_compared"] >= 4, (out, err)
    assert report["memory_sha256_local"] == report["memory_sha256_remote"]


def test_shell_evaluates_and_shows_incoming_results(d, devnet, capsys):
    code, out, err = run(capsys, *d, "spawn", "--lua")
    pid = out.strip()
    with driven_shell([*d, "shell", pid, "--poll", "0.2"], width=200) as sh:
        sh.send("function add(a, b)\r  return a + b\rend\r")
        sh.send("return add(40, 2)\r")
        sh.wait_for("42")
        sh.send("Handlers.add('ping', 'Ping', function(m) print('incoming ping') end)\r")
        sh.send("Send({Target = ao.id, Action = 'Ping'})\r")
        sh.wait_for("incoming ping")          # arrived by the MU, shown by the poller
        sh.send(".bogus\r")
        sh.wait_for("unknown command")
    assert sh.lines().count("42") == 1 and "new result" in sh.text()
    assert (devnet.config.path / "shell_history").read_text().count("return add(40, 2)") == 1
