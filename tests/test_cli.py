"""The `aonet` command: wallets, argument grammar, one-line errors, the shell's input handling, and the
commands that need only an SU, run against a real one on loopback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aonet.cli import main
from aonet.cli.args import build_parser, parse_args
from aonet.cli.lineedit import guess_lang, is_complete
from aonet.config import DevnetConfig, config_path
from aonet.wallet import Wallet
from fixtures_su import free_port

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- wallets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ed25519", "ethereum", "arweave"])
def test_wallet_new_and_address(tmp_path, capsys, kind):
    code, out, _ = run(capsys, "--data-dir", str(tmp_path), "wallet", "new", "--kind", kind)
    assert code == 0
    path = tmp_path / "wallet.json"
    w = Wallet.load(path)
    assert w.kind == kind and out.split()[0] == w.address
    assert path.stat().st_mode & 0o777 == 0o600
    code, out, _ = run(capsys, "wallet", "address", str(path))
    assert (code, out.strip()) == (0, w.address)
    code, out, _ = run(capsys, "wallet", "address", "--data-dir", str(tmp_path))   # default location
    assert (code, out.strip()) == (0, w.address)


def test_wallet_new_refuses_to_overwrite(tmp_path, capsys):
    out_path = tmp_path / "k" / "me.json"
    assert run(capsys, "wallet", "new", "-k", "ed25519", "--out", str(out_path))[0] == 0
    first = Wallet.load(out_path).address
    code, out, err = run(capsys, "wallet", "new", "-k", "ed25519", "--out", str(out_path))
    assert code == 1 and "already exists" in err and err.count("\n") == 1
    assert Wallet.load(out_path).address == first
    assert run(capsys, "wallet", "new", "-k", "ed25519", "--out", str(out_path), "--force")[0] == 0
    assert Wallet.load(out_path).address != first


def test_wallet_new_to_stdout(capsys):
    code, out, _ = run(capsys, "wallet", "new", "--kind", "ethereum", "--out", "-")
    assert code == 0 and Wallet.from_json(json.loads(out)).kind == "ethereum"


def test_wallet_address_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "wallet", "address")
    assert code == 1 and "aonet wallet new" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kty": "RSA"}')
    code, _, err = run(capsys, "wallet", "address", str(bad))
    assert code == 1 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "wallet", "address", str(tmp_path / "missing.json"))
    assert code == 1 and "not found" in err


# ---- argument grammar ----------------------------------------------------------------------------
def test_parser_accepts_the_documented_forms():
    p = build_parser()
    a = p.parse_args(["spawn", "--lua", "--tag", "Name=x=y", "-t", "Empty=", "--cron", "10-seconds",
                      "--cron-tag", "Action=Tick", "--load", "a.lua", "--load", "b.lua"])
    assert a.lua and a.tag == [("Name", "x=y"), ("Empty", "")] and a.cron == "10-seconds"
    assert a.cron_tag == [("Action", "Tick")] and a.load == ["a.lua", "b.lua"]
    a = p.parse_args(["send", "PID", "--action", "Eval", "--data", "1+1", "--wallet", "w.json", "--json"])
    assert (a.process, a.action, a.data, a.wallet, a.json) == ("PID", "Eval", "1+1", "w.json", True)
    a = p.parse_args(["--mu", "http://m", "results", "PID", "--limit", "3", "--sort", "asc"])
    assert a.mu == "http://m" and a.limit == 3
    assert p.parse_args(["result", "MID", "--process", "PID"]).process == "PID"
    assert p.parse_args(["--data-dir", "/x", "up", "--separate"]).separate


def test_ids_starting_with_a_dash_are_values():
    pid, mid = "-oM8CYgbqsRcpI3tE_cpGM3kgDlamnYjSGA4nptPao0", "-" + "x" * 42
    tid = "-tpPKgr7gzA-wgoQZ39RagcbObFWwqK329LKEPi2oc8"   # starts like the short option -t (--tag)
    p = build_parser()
    assert parse_args(p, ["shell", pid, "--poll", "0.5"]).process == pid
    a = parse_args(p, ["result", mid, "--process", pid])
    assert (a.message, a.process) == (mid, pid)
    assert parse_args(p, ["spawn", "--module", pid]).module == pid
    assert parse_args(p, ["send", pid, "-a", "Eval"]).process == pid
    a = parse_args(p, ["send", tid, "-a", "Eval", "-t", "K=V", "--data", tid])
    assert (a.process, a.tag, a.data) == (tid, [("K", "V")], tid)
    with pytest.raises(SystemExit):
        parse_args(p, ["send", "-short"])          # not an id: still an (unknown) option


@pytest.mark.parametrize("argv, needle", [
    (["spawn", "--tag", "novalue"], "NAME=VALUE"),
    (["spawn", "--cron", "often"], "10-seconds"),
    (["spawn", "--cron", "0-seconds"], "10-seconds"),
    (["spawn", "--lua", "--python"], "not allowed"),
    (["results", "PID", "--limit", "0"], ">= 1"),
    (["result", "MID"], "--process"),
    (["wallet", "new", "--kind", "rsa"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_a_message(capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_no_units_known_is_one_clear_line(tmp_path, capsys, monkeypatch):
    for var in ("MU_URL", "CU_URL", "SU_URL", "GATEWAY_URL"):
        monkeypatch.delenv(var, raising=False)
    Wallet.generate("ed25519").save(tmp_path / "wallet.json")
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "send", "P" * 43, "--data", "x")
    assert code == 1 and "aonet up" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "spawn", "--lua", "--mu", "http://127.0.0.1:1")
    assert code == 1 and "no 'lua' module" in err


def test_unreachable_unit_is_one_clear_line(tmp_path, capsys):
    Wallet.generate("ed25519").save(tmp_path / "wallet.json")
    port = free_port()
    code, _, err = run(capsys, "--data-dir", str(tmp_path), "--su", f"http://127.0.0.1:{port}", "inspect", "P" * 43)
    assert code == 1 and "not reachable" in err and "Traceback" not in err


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name("aonet")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aonet.cli"]
    r = subprocess.run([*cmd, "--data-dir", str(tmp_path), "wallet", "address"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("aonet ")


# ---- config file -----------------------------------------------------------------------------------
def test_devnet_config_roundtrip(tmp_path):
    cfg = DevnetConfig(mu_url="http://127.0.0.1:1", modules={"lua": "L" * 43}, extra={"pids": [1]})
    path = cfg.save(config_path(tmp_path))
    back = DevnetConfig.load(path)
    assert back == cfg and back.module("lua") == "L" * 43
    assert json.loads(path.read_text())["version"] == 1
    from aonet.config import ConfigFileError
    with pytest.raises(ConfigFileError, match="python"):
        back.module("python")
    path.write_text('{"mu_url": 5}')
    with pytest.raises(ConfigFileError, match="mu_url"):
        DevnetConfig.load(path)
    with pytest.raises(ConfigFileError, match="aonet up"):
        DevnetConfig.load(tmp_path / "none.json")


# ---- CLI against a real SU ---------------------------------------------------------------------------
@pytest.fixture
def devdir(tmp_path, su_thread, su_wallet):
    """A data dir whose devnet.json names the SU (also as MU: it takes the same signed POST /)."""
    w = Wallet.generate("ed25519")
    w.save(tmp_path / "wallet.json")
    DevnetConfig(mu_url=su_thread.url, su_url=su_thread.url, scheduler=su_wallet.address,
                 mu_address="A" * 43, modules={"lua": "L" * 43, "python": "Y" * 43}).save(config_path(tmp_path))
    return tmp_path


def test_spawn_send_inspect_verify_chain_through_the_su(devdir, capsys, su_thread, tmp_path):
    d = ["--data-dir", str(devdir)]
    code, out, err = run(capsys, *d, "spawn", "--python", "--name", "calc", "--tag", "X=1")
    assert code == 0, err
    pid = out.strip()
    from aonet.client import connect
    with connect(su_url=su_thread.url) as ao:
        info = ao.process(pid)
    assert info.module == "Y" * 43 and info.tag("Name") == "calc" and info.tag("X") == "1"
    assert info.tag("Authority") == "A" * 43                     # the MU is trusted, from devnet.json
    data = tmp_path / "payload.txt"
    data.write_text("from a file")
    code, out, err = run(capsys, *d, "send", pid, "--action", "Ping", "--data", f"@{data}", "--no-wait")
    assert code == 0, err
    mid = out.strip()
    code, out, err = run(capsys, *d, "--json", "inspect", pid)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["process"]["process_id"] == pid and shown["latest"]["message"]["id"] == mid
    assert shown["latest"]["message"]["data"] == "from a file"
    code, out, err = run(capsys, *d, "inspect", pid)
    assert code == 0 and pid in out and "calc" in out
    code, out, err = run(capsys, *d, "verify-chain", pid)
    assert code == 0 and "OK" in out and "2 assignments" in out
    code, out, err = run(capsys, *d, "send", pid, "--data", "@/nonexistent/file")
    assert code == 1 and "cannot read" in err


def test_spawn_cron_tags(devdir, capsys, su_thread):
    code, out, err = run(capsys, "--data-dir", str(devdir), "spawn", "--module", "Q" * 43, "--cron", "5-seconds",
                         "--cron-tag", "Action=Tick")
    # the SU has no /monitor route: the process is spawned, then asking for the monitor fails loudly
    pid = out.strip()
    from aonet.client import connect
    with connect(su_url=su_thread.url) as ao:
        info = ao.process(pid)
    assert info.tag("Cron-Interval") == "5-seconds" and info.tag("Cron-Tag-Action") == "Tick"
    assert code == 1 and "MU said 40" in err and len(err.strip().splitlines()) == 1


# ---- shell input handling ----------------------------------------------------------------------------
def test_is_complete_lua_and_python():
    assert is_complete("1 + 1") and is_complete("") and is_complete(".load x.lua")
    for text in ("function f()", "for i=1,3 do", "x = {", "if a then", "x = [[long", "--[[ open comment",
                 "s = 'unclosed", "repeat x = x + 1"):
        assert not is_complete(text), text
    for text in ("function f() return 1 end", "for i=1,3 do print(i) end", 'x = "end"', "-- function",
                 "if a then b() elseif c then d() else e() end", "repeat x = x + 1 until x > 3",
                 "t = { [1] = 'a', [[long ]] }", "x = [==[ ]] end ]==]"):
        assert is_complete(text), text
    assert not is_complete("def f():", "python") and not is_complete("def f():\n    return 1", "python")
    assert is_complete("def f():\n    return 1\n", "python") and is_complete("print(1)", "python")
    assert not is_complete("x = (1,", "python") and not is_complete('s = """abc', "python")
    assert not is_complete("x = 1 + \\", "python")
    assert guess_lang(None, "Y" * 43, {"python": "Y" * 43}) == "python"
    assert guess_lang({"Name": "x"}, "Z", {"lua": "L"}) == "lua"


class _LangOnly:
    lang = "lua"


def test_prompt_submits_only_complete_input(tmp_path):
    """Real prompt_toolkit key handling: Enter inside an open block adds a line, Alt-Enter always does."""
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from aonet.cli.shell import make_prompt

    history = tmp_path / "hist"
    with create_pipe_input() as inp:
        session = make_prompt(_LangOnly(), history, input=inp, output=DummyOutput())
        inp.send_text("function f()\r  return 1\rend\r")
        assert session.prompt("> ") == "function f()\n  return 1\nend"
        inp.send_text("x = 1\x1b\ry = 2\r")          # Esc-Enter = newline even though complete
        assert session.prompt("> ") == "x = 1\ny = 2"
        inp.send_text("print('hi')\r")
        assert session.prompt("> ") == "print('hi')"
    lines = history.read_text()
    assert "+function f()" in lines and "+print('hi')" in lines
