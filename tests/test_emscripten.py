"""aonet's emscripten host against AO's own loader (@permaweb/ao-loader in Node), message for message.

The module is a Lua 5.3 process built at test time with Debian's emscripten (tests/modules/emlua),
cached under $AONET_CACHE/emlua. For `wasm32-unknown-emscripten2` the memory bytes and GasUsed must
match too, not just the results.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aonet.vm.base import Limits, LimitError, VMError
from aonet.vm.dirty import DirtyTracker
from aonet.vm.emscripten import EmscriptenRuntime, js_stringify
from aonet.vm.image import PagedImage

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "js" / "aoloader_run.cjs"
LOADER = ROOT / "node_modules" / "@permaweb" / "ao-loader"
FORMAT = "wasm32-unknown-emscripten2"

PID, OWNER, MOD = "process-1", "owner-1", "module-1"
ENV = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [{"name": "Name", "value": "emlua"}]},
       "Module": {"Id": MOD, "Owner": "mod-owner", "Tags": []}}

HANDLERS = r"""
Count = 0
Handlers.add("inc", Handlers.utils.hasMatchingTag("Action", "Inc"), function(m)
  Count = Count + 1
  print("count " .. Count)
end)
Handlers.add("ping", Handlers.utils.hasMatchingTag("Action", "Ping"), function(m)
  ao.send({Target = m.From, Data = "pong " .. m.Data, Action = "Pong"})
end)
Handlers.add("spawn", Handlers.utils.hasMatchingTag("Action", "Spawn"), function(m)
  ao.spawn("module-2", {Data = "child of " .. ao.id, Name = "kid"})
end)
Handlers.add("assign", Handlers.utils.hasMatchingTag("Action", "Assign"), function(m)
  ao.assign({Processes = {"p-2", "p-3"}, Message = "msg-9"})
end)
Handlers.add("fail", Handlers.utils.hasMatchingTag("Action", "Fail"), function(m)
  Count = Count + 1000
  error("failing on purpose")
end)
Handlers.add("big", Handlers.utils.hasMatchingTag("Action", "Big"), function(m)
  Big = string.rep("x", 8 * 1024 * 1024)
  print(#Big)
end)
Handlers.add("date", Handlers.utils.hasMatchingTag("Action", "Date"), function(m)
  print(os.date("!%Y-%m-%d %H:%M:%S %A %j", 1700000000))
end)
return "ready"
"""


def _msg(n: int, action: str | None = None, data: str = "", tags=(), **extra) -> dict:
    all_tags = ([{"name": "Action", "value": action}] if action else []) + list(tags)
    msg = {"Id": f"msg-{n}", "Owner": OWNER, "From": OWNER, "Target": PID, "Tags": all_tags, "Data": data,
           "Timestamp": 1_700_000_000_000 + n, "Block-Height": str(1000 + n), "Cron": False}
    msg.update(extra)
    return msg


SEQUENCE = [
    _msg(0, tags=[{"name": "Type", "value": "Process"}, {"name": "Module", "value": MOD}], Module=MOD),
    _msg(1, "Eval", HANDLERS),
    _msg(2, "Inc"),
    _msg(3, "Ping", "héllo ✓ 𝄞"),
    _msg(4, "Spawn"),
    _msg(5, "Assign"),
    _msg(6, "Fail"),
    _msg(7, "Inc"),
    _msg(8, "Eval", "Count"),
    _msg(9, "Date"),
    _msg(10, "Big"),
    _msg(11, "Eval", "#Big + Count"),
    _msg(12, "Eval", "local t = {} for i = 1, 2000 do t[i] = i * 1.5 end return #t"),
]


def _need_tools() -> None:
    if shutil.which("node") is None or not LOADER.exists():
        pytest.skip("node or @permaweb/ao-loader missing (make install)")
    if shutil.which("emcc") is None:
        pytest.skip("emcc missing (make install installs Debian's emscripten)")


def _load_builder():
    spec = importlib.util.spec_from_file_location("emlua_build", ROOT / "tests" / "modules" / "emlua" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def emlua() -> bytes:
    _need_tools()
    return _load_builder().build().read_bytes()


@pytest.fixture(scope="session")
def module_path(emlua) -> str:
    return str(_load_builder().build())


def run_loader(path: str, fmt: str, messages, *, options: dict | None = None, mode: str = "memory",
               program: str | None = None, expect_ok: bool = True):
    """The loader's answers (tests/js/aoloader_run.cjs, TZ=UTC; Node's memory64 flag for wasm64): one
    dict per message. expect_ok=False returns the finished process (for refusals)."""
    req = {"module": path, "format": fmt, "options": options or {}, "mode": mode,
           "messages": [[m, e] for m, e in messages], "program": program}
    node = ["node", "--experimental-wasm-memory64"] if fmt.startswith("wasm64") else ["node"]
    proc = subprocess.run([*node, str(RUNNER)], input=json.dumps(req), capture_output=True, text=True,
                          env={**os.environ, "TZ": "UTC"}, timeout=300, cwd=ROOT)
    if not expect_ok:
        return proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def reference(module_path: str, messages: list[tuple[dict, dict]], options: dict | None = None,
              mode: str = "memory", program: str | None = None) -> list[dict]:
    return run_loader(module_path, FORMAT, messages, options=options, mode=mode, program=program)


def result_is_loaders(res, r: dict, i: int) -> None:
    """One aonet Result against the loader's answer for the same message."""
    assert res.error == r.get("Error"), i
    assert res.output == r.get("Output"), i
    assert res.messages == r.get("Messages"), i
    assert res.spawns == r.get("Spawns"), i
    assert res.assignments == r.get("Assignments"), i
    assert res.gas_used == r["GasUsed"], i


def runtime(**kw) -> EmscriptenRuntime:
    return EmscriptenRuntime(program=str(RUNNER), **kw)


def _norm(v):
    return v if v is not None else None


def run_aonet(module: bytes, messages, limits: Limits = Limits()) -> list[dict]:
    inst = runtime().instantiate(module, limits, format=FORMAT)
    out = []
    for msg, env in messages:
        r = inst.handle(msg, env)
        out.append({"result": r, "memory": {"length": inst.memory_size(), "sha256": inst.memory_hash()}})
    return out


def test_module_imports_only_what_the_loader_provides(emlua):
    """A module ao-loader cannot link would make every other comparison meaningless."""
    import re
    import wasmtime
    src = (LOADER / "dist" / "index.cjs").read_text()
    start = src.index("src/formats/emscripten2.cjs")
    block = src[src.index("var asmLibraryArg = {", start):]
    block = block[:block.index("};")]
    provided = set(re.findall(r'"([^"]+)":', block))
    module = wasmtime.Module(wasmtime.Engine(), emlua)
    missing = [f"{i.module}.{i.name}" for i in module.imports if i.module != "metering" and i.name not in provided]
    assert missing == []
    assert any(i.module == "metering" and i.name == "usegas" for i in module.imports)


def test_same_results_memory_and_gas_as_ao_loader(emlua, module_path):
    messages = [(m, ENV) for m in SEQUENCE]
    ref = reference(module_path, messages)
    ours = run_aonet(emlua, messages)
    assert len(ref) == len(ours) == len(SEQUENCE)
    for i, (r, o) in enumerate(zip(ref, ours)):
        res = o["result"]
        assert "thrown" not in r, (i, r)
        result_is_loaders(res, r, i)
        assert o["memory"] == r["memory"], i
    # the sequence did what it says
    assert ours[2]["result"].output["data"] == "count 1"
    assert ours[3]["result"].messages[0]["Data"] == "pong héllo ✓ 𝄞"
    assert ours[4]["result"].spawns and ours[5]["result"].assignments[0]["Processes"] == ["p-2", "p-3"]
    assert "failing on purpose" in ours[6]["result"].error
    assert ours[7]["result"].output["data"] == "count 2"          # the failed message left no trace
    assert ours[9]["result"].output["data"] == "2023-11-14 22:13:20 Tuesday 318"
    assert ours[10]["memory"]["length"] > 6291456                    # the heap grew like the glue grows it


def test_out_of_gas_matches_loader(emlua, module_path):
    messages = [(SEQUENCE[0], ENV), (SEQUENCE[1], ENV), (_msg(20, "Eval", "while true do end"), ENV),
                (_msg(21, "Inc"), ENV)]
    opts = {"computeLimit": 2_000_000_000}
    ref = reference(module_path, messages, opts)
    ours = run_aonet(emlua, messages, Limits(compute=2_000_000_000))
    assert ref[2] == {"thrown": "out of gas!", "memory": ref[1]["memory"]}
    assert ours[2]["result"].error == "out of gas!"
    assert ours[2]["memory"] == ref[2]["memory"]
    assert ours[3]["result"].output["data"] == "count 1"
    assert ours[3]["result"].gas_used == ref[3]["GasUsed"]
    assert ours[3]["memory"] == ref[3]["memory"]


def images_match_loader(inst, messages, ref) -> list:
    """restore(image) + handle + snapshot_image() per message, as AO's CU drives its loader; every
    result and image must be the loader's. Returns the images."""
    image = inst.snapshot_image()
    images = []
    for i, ((msg, env), r) in enumerate(zip(messages, ref)):
        inst.restore(image)
        res = inst.handle(msg, env)
        image = inst.snapshot_image()
        images.append(image)
        assert (res.output, res.gas_used) == (r.get("Output"), r["GasUsed"]), i
        assert (len(image), image.sha256()) == (r["memory"]["length"], r["memory"]["sha256"]), i
    return images


def fresh_instance_continues(fresh, message, r) -> None:
    """An instance made from an earlier image handles the next message as the loader did."""
    again = fresh.handle(*message)
    assert (again.output, again.gas_used) == (r.get("Output"), r["GasUsed"])
    assert hashlib.sha256(fresh.snapshot()).hexdigest() == r["memory"]["sha256"]


@pytest.mark.parametrize("tracking", [True, False], ids=["dirty-tracking", "full-copies"])
def test_memory_passed_per_message_matches_loader(emlua, module_path, tracking):
    """restore(image) + handle + snapshot_image() per message, as AO's CU drives its loader: every
    image is the loader's Memory, stays so after later messages, and consecutive ones share pages."""
    messages = [(m, ENV) for m in SEQUENCE]
    ref = reference(module_path, messages)
    inst = runtime(dirty_tracking=tracking).instantiate(emlua, format=FORMAT)
    images = images_match_loader(inst, messages, ref)
    for image, r in zip(images, ref):                       # old images never change
        assert hashlib.sha256(bytes(image)).hexdigest() == r["memory"]["sha256"]
    assert bytes(images[-1]) == inst.snapshot()
    tracked = tracking and DirtyTracker.open() is not None
    if tracked:
        a, b = images[7], images[8]                         # Inc then Eval: a few pages written
        shared = sum(p is q for p, q in zip(a.pages, b.pages))
        assert shared > 0.9 * len(a.pages)
    # the image before the last one (same size: only the differing pages are written back)
    inst.restore(images[-2])
    assert inst.memory_hash() == images[-2].sha256() == inst.snapshot_image().sha256()
    if tracked:
        assert inst.snapshot_image() is images[-2]         # adopted as it is: no copy
    again = inst.handle(*messages[-1])
    assert (again.output, again.gas_used) == (ref[-1].get("Output"), ref[-1]["GasUsed"])
    assert inst.memory_hash() == ref[-1]["memory"]["sha256"]
    # an older, smaller image = a fresh instance restored from its bytes
    inst.restore(images[3])
    fresh = runtime().instantiate(emlua, image=bytes(images[3]), format=FORMAT)
    assert inst.memory_hash() == fresh.memory_hash() == images[3].sha256()
    ra, rb = inst.handle(_msg(50, "Inc"), ENV), fresh.handle(_msg(50, "Inc"), ENV)
    assert ra.output["data"] == rb.output["data"] == "count 2"
    assert inst.memory_hash() == fresh.memory_hash()
    # a PagedImage from bytes and one from another instance are accepted too
    other = runtime().instantiate(emlua, image=PagedImage.from_bytes(bytes(images[5])), format=FORMAT)
    inst.restore(other.snapshot_image())
    assert inst.memory_hash() == images[5].sha256()


def test_snapshot_restore_continues_in_a_new_instance(emlua):
    rt = runtime()
    a = rt.instantiate(emlua, format=FORMAT)
    for m in SEQUENCE[:3]:
        a.handle(m, ENV)
    image = a.snapshot()
    b = rt.instantiate(emlua, image=image, format=FORMAT)
    ra, rb = a.handle(_msg(30, "Inc"), ENV), b.handle(_msg(30, "Inc"), ENV)
    assert ra.output["data"] == rb.output["data"] == "count 2"
    assert ra.gas_used == rb.gas_used and a.memory_hash() == b.memory_hash()


def test_memory_limit_makes_allocation_fail_cleanly(emlua):
    inst = runtime().instantiate(emlua, Limits(memory=8 << 20), format=FORMAT)
    for m in SEQUENCE[:3]:
        inst.handle(m, ENV)
    r = inst.handle(_msg(40, "Big"), ENV)
    assert r.error is not None and "memory" in r.error
    assert inst.memory_size() <= 8 << 20
    assert inst.handle(_msg(41, "Inc"), ENV).output["data"] == "count 2"


def test_bad_modules_and_formats_are_typed_errors(emlua):
    rt = runtime()
    with pytest.raises(VMError):
        rt.instantiate(b"not wasm", format=FORMAT)
    with pytest.raises(VMError, match="wasm32-unknown-emscripten-metering is not supported"):
        rt.instantiate(emlua, format="wasm32-unknown-emscripten-metering")
    # this emscripten2-era module under the newer glues: refused as the loader refuses to link it
    # (tests/test_emscripten3.py runs both formats with modules built for them)
    with pytest.raises(VMError, match="env.getTempRet0"):
        rt.instantiate(emlua, format="wasm32-unknown-emscripten3")
    with pytest.raises(VMError, match="env.abort"):
        rt.instantiate(emlua, format="wasm32-unknown-emscripten4")
    inst = rt.instantiate(emlua, format=FORMAT)
    with pytest.raises(VMError, match="bytes or a PagedImage"):
        inst.restore("not an image")
    with pytest.raises(VMError, match="unknown module format"):
        rt.instantiate(emlua, format="wasm32-nope")
    with pytest.raises(LimitError):
        rt.instantiate(emlua, Limits(memory=1 << 20), format=FORMAT)
    with pytest.raises(VMError):
        rt.instantiate(emlua, image=b"\0" * 100, format=FORMAT)


def test_js_stringify_matches_json_stringify():
    obj = {"a": 1.0, "b": [1.5, float("nan")], "c": "é\n\u2028", "d": None, "e": True}
    text = js_stringify(obj)
    proc = subprocess.run(["node", "-e", "process.stdout.write(JSON.stringify({a:1,b:[1.5,NaN],c:'é\\n\\u2028',d:null,e:true}))"],
                          capture_output=True, text=True) if shutil.which("node") else None
    if proc is None:
        pytest.skip("node missing")
    assert text == proc.stdout
    assert hashlib.sha256(text.encode()).hexdigest() == hashlib.sha256(proc.stdout.encode()).hexdigest()
