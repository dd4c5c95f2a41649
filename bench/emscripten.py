"""aonet's emscripten host vs @permaweb/ao-loader on the same module and messages (messages/s).

Ways of running a process:
  memory   - the memory image goes in and out with every message, as AO's CU uses the loader
             (loader: handle(Memory, msg, env) -> Memory, a fresh copy of the whole memory;
             aonet: restore(image), handle, image = snapshot_image(): an immutable PagedImage of the
             whole memory that shares unwritten pages with the previous one (dirty pages from the
             kernel, vm/dirty.py); every image stays valid, bytes(image) is the memory)
  bytes    - the same with snapshot() -> bytes (a full copy per message, like the loader's Memory)
  instance - the state stays in the instance (aonet: handle; loader: handle(null, msg, env))
The loader runs "bytes" like "memory" (its Memory is always a full copy).
Module: the emlua test process (Lua 5.3 + aonet's process library, built with Debian's emscripten into
the cache for the chosen format: wasm32-unknown-emscripten2 (default), ...3 or ...4, or
wasm64-unknown-emscripten-draft_2024_02_15 (tests/modules/emlua64; the loader runs under Node's
--experimental-wasm-memory64); for the *-metering formats the unmetered build of emscripten4 / wasm64,
which both sides meter at load.
Messages: Inc, Ping (a reply in the outbox), Eval.
usage: .venv/bin/python bench/emscripten.py [--repeat N] [--format wasm32-unknown-emscripten3]
       .venv/bin/python bench/emscripten.py --format wasm64-unknown-emscripten-draft_2024_02_15
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from aonet.vm.base import Limits  # noqa: E402
from aonet.vm.dirty import DirtyTracker  # noqa: E402
from aonet.vm.emscripten import EmscriptenRuntime  # noqa: E402
from test_emscripten import ENV, RUNNER, SEQUENCE, _msg  # noqa: E402

FORMAT = "wasm32-unknown-emscripten2"
WASM64 = "wasm64-unknown-emscripten-draft_2024_02_15"


# the *-metering formats: the unmetered build of the glue they run on (the loader and aonet meter it at load)
METERING = {"wasm32-unknown-emscripten-metering": "wasm32-unknown-emscripten4",
            "wasm64-unknown-emscripten-draft_2024_10_16-metering": WASM64}


def build() -> Path:
    base = METERING.get(FORMAT, FORMAT)
    meter = FORMAT not in METERING
    if base == WASM64:
        spec = importlib.util.spec_from_file_location("emlua64_build", ROOT / "tests" / "modules" / "emlua64" / "build.py")
    else:
        spec = importlib.util.spec_from_file_location("emlua_build", ROOT / "tests" / "modules" / "emlua" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build(meter=meter) if base == WASM64 else mod.build(fmt=base, meter=meter)


def workload() -> tuple[list, list]:
    setup = [(SEQUENCE[0], ENV), (SEQUENCE[1], ENV)]
    msgs = [(_msg(100, "Inc"), ENV), (_msg(101, "Ping", "hello"), ENV), (_msg(102, "Eval", "Count * 2"), ENV)]
    return setup, msgs


def loader(path: Path, mode: str, repeat: int) -> float:
    setup, msgs = workload()
    req = {"module": str(path), "format": FORMAT, "options": {}, "mode": mode, "repeat": repeat,
           "setup": [[m, e] for m, e in setup], "messages": [[m, e] for m, e in msgs]}
    node = ["node", "--experimental-wasm-memory64"] if FORMAT.startswith("wasm64") else ["node"]
    proc = subprocess.run([*node, str(RUNNER)], input=json.dumps(req), capture_output=True, text=True,
                          env={**os.environ, "TZ": "UTC"}, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["messages"] / out["seconds"]


def aonet(path: Path, mode: str, repeat: int, dirty_tracking: bool = True) -> tuple[float, str]:
    """(messages/s, sha256 of the final memory)."""
    setup, msgs = workload()
    rt = EmscriptenRuntime(program=str(RUNNER), dirty_tracking=dirty_tracking)
    inst = rt.instantiate(path.read_bytes(), Limits(), format=FORMAT)
    for m, e in setup:
        inst.handle(m, e)
    take = inst.snapshot_image if mode == "memory" else inst.snapshot
    image = take()
    n = 0
    t0 = time.perf_counter()
    for _ in range(repeat):
        for m, e in msgs:
            if mode == "instance":
                r = inst.handle(m, e)
            else:
                inst.restore(image)
                r = inst.handle(m, e)
                image = take()
            assert r.error is None, r.error
            n += 1
    rate = n / (time.perf_counter() - t0)
    return rate, hashlib.sha256(inst.snapshot()).hexdigest()


def main() -> None:
    global FORMAT
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--format", default=FORMAT, choices=("wasm32-unknown-emscripten2", "wasm32-unknown-emscripten3",
                                                         "wasm32-unknown-emscripten4", WASM64, *METERING))
    args = ap.parse_args()
    FORMAT = args.format
    path = build()
    print(f"format {FORMAT}, module {path.name} ({path.stat().st_size} bytes), {3 * args.repeat} messages per run")
    tracking = DirtyTracker.open() is not None
    print(f"dirty-page tracking (userfaultfd + PAGEMAP_SCAN): {'on' if tracking else 'unavailable'}")
    ref_memory = loader(path, "memory", args.repeat)
    for mode in ("memory", "bytes", "instance"):
        ref = ref_memory if mode != "instance" else loader(path, mode, args.repeat)
        ours, sha = aonet(path, mode, args.repeat)
        print(f"{mode:9s} ao-loader {ref:8.0f} msg/s   aonet {ours:8.0f} msg/s   x{ours / ref:.1f}   "
              f"memory {sha[:12]}")
    if tracking:
        ours, sha = aonet(path, "memory", args.repeat, dirty_tracking=False)
        print(f"{'memory, tracking off':9s}      aonet {ours:8.0f} msg/s   x{ours / ref_memory:.1f}   memory {sha[:12]}")


if __name__ == "__main__":
    main()
