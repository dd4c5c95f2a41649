"""A module in AO's own format (`wasm32-unknown-emscripten2`) published from a file and run by the devnet.

The emlua process (Lua 5.3 + aonet's process library, built by tests/modules/emlua with Debian's
emscripten and metered with AO's pass) goes through the real devnet:
- `aonet module publish FILE --format ...` uploads it; `aonet spawn --module ID` spawns it;
- messages go through the MU (SDK `send`), results come from the CU;
- the messages the CU evaluated (the SU's schedule, mapped exactly as the CU maps it) are replayed
  through @permaweb/ao-loader: every Output, Messages, Spawns, Assignments, Error and GasUsed the CU
  returned is the loader's, and the CU's memory (`/state`) is the loader's byte for byte;
- a message that errors leaves the state as before; stopping the devnet checkpoints the process,
  and a restarted CU continues from that memory image;
- a module published with a format the CU does not run gives a 4xx JSON error naming the format;
- the emscripten3 and emscripten4 (Asyncify) builds go through the same checks.
"""
from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from aonet.cli import main
from aonet.client import UnitError, connect
from aonet.cu.core import ModuleMeta, ProcessMeta, build_env, map_node
from aonet.cu.service import DB_NAME
from aonet.cu.sources import StoreModuleSource, SUClient
from aonet.cu.storage import CUStorage

from test_emscripten import FORMAT, HANDLERS, emlua, module_path, run_loader  # noqa: F401
from test_emscripten3 import FORMATS as NEWER_FORMATS, newer  # noqa: F401
from test_emscripten_metering import W32 as METERING_FORMAT, modules as unmetered  # noqa: F401

pytest.importorskip("aonet.cu.app", reason="the CU's HTTP app is not in this tree yet")

COMPUTE = 9_000_000_000_000
PROGRAM = "./this.program"          # argv[0] of the CU's emscripten host (the glue's default)


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def client(net):
    return connect(mu_url=net.mu_url, cu_url=net.cu_url, su_url=net.su_url, gateway_url=net.gateway_url,
                   wallet=net.wallet_path)


def state_sha(net, pid: str) -> str:
    r = httpx.get(f"{net.cu_url}/state/{pid}", timeout=120)
    assert r.status_code == 200, r.text
    return hashlib.sha256(r.content).hexdigest()


def evaluated_messages(net, pid: str) -> list[tuple[str | None, dict, dict]]:
    """(message id, msg, env) in the order the CU evaluates them, built with the CU's own mapping."""
    su = SUClient(net.su_url)
    meta = ProcessMeta.from_su_json(su.process(pid))
    item = StoreModuleSource(net.store).get(meta.module_id)
    env = build_env(meta, ModuleMeta(item.id, item.owner, item.tags))
    out = []
    for node in su.nodes(pid, after_nonce=-1, prefetch=False):
        s = map_node(node, pid)
        assert s.is_process or s.nonce > 0            # no synthetic pre-aop-6 process message here
        out.append((s.message_id, s.msg, env))
    return out


def assert_cu_is_ao_loader(net, pid: str, module_path: str, fmt: str = FORMAT) -> None:  # noqa: F811
    """Every stored CU result and the CU's memory equal ao-loader's on the same messages."""
    msgs = evaluated_messages(net, pid)
    ref = run_loader(module_path, fmt, [(m, e) for _, m, e in msgs], options={"computeLimit": COMPUTE},
                     program=PROGRAM)
    assert len(ref) == len(msgs)
    with client(net) as ao:
        for (mid, _, _), r in zip(msgs, ref):
            assert "thrown" not in r, r
            got = ao.result(mid, pid).raw
            for key in ("Output", "Messages", "Spawns", "Assignments", "Error", "GasUsed"):
                assert got.get(key) == r.get(key), (mid, key, got.get(key), r.get(key))
    assert state_sha(net, pid) == ref[-1]["memory"]["sha256"]


def publish(capsys, net, path: str, *args: str) -> dict:
    """`aonet --json module publish PATH ARGS` on the devnet (512 MiB, COMPUTE): {module, format}."""
    code, out, err = cli(capsys, "--data-dir", str(net.config.path), "--json", "module", "publish", path,
                         "--memory-limit", "512-mb", "--compute-limit", str(COMPUTE), *args)
    assert code == 0, err
    return json.loads(out)


def test_publish_spawn_send_restart_unsupported(make_devnet, module_path, capsys, tmp_path):  # noqa: F811
    data_dir = tmp_path / "net"
    net = make_devnet(data_dir, modules=())
    d = ["--data-dir", str(net.config.path)]

    # publish from the file and spawn, both with the CLI
    published = publish(capsys, net, module_path, "--format", FORMAT, "--tag", "Name=emlua")
    mod = published["module"]
    assert published["format"] == FORMAT and len(mod) == 43
    code, out, err = cli(capsys, *d, "spawn", "--module", mod, "--name", "em")
    assert code == 0, err
    pid = out.strip()

    with client(net) as ao:
        assert ao.send(pid, HANDLERS, action="Eval").result.output["data"] == "ready"
        assert ao.send(pid, "", action="Inc").result.text == "count 1"
        pong = ao.send(pid, "hi", action="Ping").result
        assert pong.raw["Messages"][0]["Data"] == "pong hi"
        failed = ao.send(pid, "", action="Fail").result         # Count + 1000, then error()
        assert not failed.ok and "failing on purpose" in str(failed.error)
        assert ao.send(pid, "", action="Inc").result.text == "count 2"   # the failed message left no trace
        spawn = ao.send(pid, "", action="Spawn").result
        assert spawn.raw["Spawns"] and spawn.raw["Spawns"][0]["Data"] == f"child of {pid}"
    assert_cu_is_ao_loader(net, pid, module_path)
    before = state_sha(net, pid)
    net.stop()

    # stopping checkpointed the process: its memory image is the state the CU served
    storage = CUStorage(data_dir / "cu" / DB_NAME)
    try:
        ck = storage.latest_checkpoint(pid, mod)
        assert ck is not None
        assert hashlib.sha256(storage.load_memory(ck.blob)).hexdigest() == before
    finally:
        storage.close()

    # a restarted devnet (a fresh CU) continues from the checkpoint
    net = make_devnet(data_dir, modules=())
    assert state_sha(net, pid) == before
    with client(net) as ao:
        assert ao.send(pid, "", action="Inc").result.text == "count 3"
        assert ao.send(pid, "return Count", action="Eval").result.text == "3"
    assert_cu_is_ao_loader(net, pid, module_path)

    # a format this CU does not run (the oldest glue): the result is a 422 JSON error naming it, never a 500
    code, out, err = cli(capsys, "--data-dir", str(net.config.path), "module", "publish", module_path,
                         "--format", "wasm32-unknown-emscripten")
    assert code == 0, err
    bad = out.strip()
    with client(net) as ao:
        bad_pid = ao.spawn(bad)
        with pytest.raises(UnitError) as info:
            ao.send(bad_pid, "", action="Inc")
        assert info.value.unit == "cu" and info.value.status == 422
        assert "('wasm32-unknown-emscripten';" in info.value.error     # the format, named exactly
        mid = ao.message(bad_pid, "", [("Action", "Inc")])
    r = httpx.get(f"{net.cu_url}/result/{mid}", params={"process-id": bad_pid}, timeout=60)
    assert r.status_code == 422 and "('wasm32-unknown-emscripten';" in r.json()["error"]


@pytest.mark.parametrize("fmt", NEWER_FORMATS)
def test_newer_formats_through_the_devnet(make_devnet, newer, capsys, tmp_path, fmt):  # noqa: F811
    """emscripten3 and emscripten4 (Asyncify) processes served by the CU: every result and the memory
    are ao-loader's, a failed message leaves no trace, and a restarted CU continues from its checkpoint."""
    _, path = newer[fmt]
    data_dir = tmp_path / "net"
    net = make_devnet(data_dir, modules=())
    mod = publish(capsys, net, path, "--format", fmt)["module"]
    ao_loader_round_trip(make_devnet, data_dir, net, mod, path, fmt, asyncify=fmt.endswith("4"))


def ao_loader_round_trip(make_devnet, data_dir, net, module_id: str, path, fmt: str, *, asyncify: bool = False):
    """Spawn `module_id`, send the Lua scenario through the MU, compare the CU with ao-loader, restart
    the devnet on `data_dir` and check that the CU continues from its checkpoint (memory unchanged)."""
    with client(net) as ao:
        pid = ao.spawn(module_id)
        assert ao.send(pid, HANDLERS, action="Eval").result.output["data"] == "ready"
        assert ao.send(pid, "", action="Inc").result.text == "count 1"
        assert ao.send(pid, "hi", action="Ping").result.raw["Messages"][0]["Data"] == "pong hi"
        assert not ao.send(pid, "", action="Fail").result.ok
        assert ao.send(pid, "", action="Inc").result.text == "count 2"
        if asyncify:                                               # an Asyncify unwind/rewind in the CU
            assert ao.send(pid, 'return drive_open("/data/x")', action="Eval").result.text == "0"
    assert_cu_is_ao_loader(net, pid, path, fmt)
    before = state_sha(net, pid)
    net.stop()
    net = make_devnet(data_dir, modules=())
    assert state_sha(net, pid) == before
    with client(net) as ao:
        assert ao.send(pid, "", action="Inc").result.text == "count 3"
    assert_cu_is_ao_loader(net, pid, path, fmt)


def test_metering_format_through_the_devnet(make_devnet, unmetered, capsys, tmp_path):  # noqa: F811
    """An unmetered module published without --format is detected as wasm32-unknown-emscripten-metering;
    the CU meters it as the loader does: every result, GasUsed and the memory are ao-loader's."""
    _, path = unmetered[METERING_FORMAT]
    net = make_devnet(tmp_path / "net", modules=())
    published = publish(capsys, net, path)
    assert published["format"] == METERING_FORMAT
    with client(net) as ao:
        pid = ao.spawn(published["module"])
        assert ao.send(pid, HANDLERS, action="Eval").result.output["data"] == "ready"
        assert ao.send(pid, "", action="Inc").result.text == "count 1"
        assert not ao.send(pid, "", action="Fail").result.ok
        assert ao.send(pid, 'return drive_open("/data/x")', action="Eval").result.text == "0"
        assert ao.send(pid, "", action="Inc").result.text == "count 2"
    assert_cu_is_ao_loader(net, pid, path, METERING_FORMAT)


def test_publish_bad_input_is_a_clear_error(emlua, capsys, tmp_path):  # noqa: F811
    """Mistakes are reported before anything is uploaded (the gateway here is unreachable)."""
    from aonet.wallet import Wallet
    wallet = Wallet.generate("ed25519").save(tmp_path / "w.json")
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(emlua)
    base = ["--gateway", "http://127.0.0.1:9", "--wallet", str(wallet), "--data-dir", str(tmp_path)]
    code, _, err = cli(capsys, *base, "module", "publish", str(tmp_path / "missing.wasm"))
    assert code == 1 and "cannot read" in err
    code, _, err = cli(capsys, *base, "module", "publish", str(wasm), "--format", "wasm32-wasi-ao1")
    assert code == 1 and "does not fit" in err
    code, _, err = cli(capsys, *base, "module", "publish", str(wasm), "--format", "wasm32-nope")
    assert code == 1 and "unknown Module-Format" in err
    code, _, err = cli(capsys, *base, "module", "publish", str(wasm))
    assert code == 1 and "upload to" in err                  # detected emscripten2, then no gateway
    with pytest.raises(SystemExit) as exc:
        main([*base, "module", "publish", str(wasm), "--memory-limit", "lots"])
    assert exc.value.code == 2
    code, _, err = cli(capsys, "--data-dir", str(tmp_path), "--wallet", str(wallet), "module", "publish", str(wasm))
    assert code == 1 and "no gateway" in err
