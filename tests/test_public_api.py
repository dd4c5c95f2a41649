"""The names re-exported from `aonet` resolve to real objects, and importing aonet stays light."""
import subprocess
import sys

import aonet


def test_every_export_resolves():
    for name in aonet.__all__:
        assert getattr(aonet, name) is not None, name


def test_import_does_not_load_wasmtime_or_servers():
    code = "import sys, aonet; print(any(m in sys.modules for m in ('wasmtime', 'uvicorn', 'starlette')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
