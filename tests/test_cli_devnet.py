"""The `aonet` command and shell end to end on a real devnet (devnet.json written by the node)."""
from __future__ import annotations

import io
import json
import threading
import time

import pytest
from rich.console import Console

from aonet.cli import main

pytest.importorskip("aonet.cu.app", reason="the CU's HTTP app is not in this tree yet")

from fixtures_devnet import devnet_config, pingpong_wasm, seed, unit_wallets  # noqa: F401,E402


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
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from aonet.cli.args import build_parser
    from aonet.cli.context import Context
    from aonet.cli.shell import run_shell

    code, out, err = run(capsys, *d, "spawn", "--lua")
    pid = out.strip()
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    args = build_parser().parse_args([*d, "shell", pid, "--poll", "0.2"])

    def wait_for(text, timeout=30):
        deadline = time.monotonic() + timeout
        while text not in buf.getvalue():
            assert time.monotonic() < deadline, f"{text!r} not in {buf.getvalue()!r}"
            time.sleep(0.05)

    with create_pipe_input() as inp:
        done = []
        t = threading.Thread(target=lambda: done.append(run_shell(Context(args), input=inp, output=DummyOutput(),
                                                                  console=console)))
        t.start()
        inp.send_text("function add(a, b)\r  return a + b\rend\r")
        inp.send_text("return add(40, 2)\r")
        wait_for("42")
        inp.send_text("Handlers.add('ping', 'Ping', function(m) print('incoming ping') end)\r")
        inp.send_text("Send({Target = ao.id, Action = 'Ping'})\r")
        wait_for("incoming ping")          # arrived by the MU, shown by the poller
        inp.send_text(".bogus\r")
        wait_for("unknown command")
        inp.send_text(".exit\r")
        t.join(30)
    assert done == [0]
    text = buf.getvalue()
    assert [line.strip() for line in text.splitlines()].count("42") == 1 and "new result" in text
    assert (devnet.config.path / "shell_history").read_text().count("return add(40, 2)") == 1
