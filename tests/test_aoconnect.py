"""AO's own client, @permaweb/aoconnect 0.0.98 from npm, unchanged, against an aonet devnet."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "js" / "aoconnect_e2e.mjs"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "@permaweb" / "aoconnect").exists(),
    reason="needs node and npm's @permaweb/aoconnect (make install)")


def test_aoconnect_spawn_message_result_dryrun_monitor_assign(devnet):
    env = {**os.environ, "MU_URL": devnet.mu_url, "CU_URL": devnet.cu_url, "GATEWAY_URL": devnet.gateway_url,
           "MODULE": devnet.modules["pingpong"], "SCHEDULER": devnet.scheduler, "WALLET": devnet.wallet_path}
    p = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "failed" not in out, json.dumps(out, indent=1)
    pid = out["spawn"]
    assert isinstance(pid, str) and len(pid) == 43
    assert out["result"]["Output"]["hits"] == 1 and out["result2"]["Output"]["hits"] == 2
    assert out["result"]["Messages"] == [] and "Error" not in out["result"]
    outputs = [e["node"]["Output"] for e in out["results"]["edges"]]
    assert [o["hits"] for o in outputs][-2:] == [1, 2]
    assert out["dryrun"]["Output"]["hits"] == 2
    assert out["monitor"] is not None and out["unmonitor"] is not None
    assert isinstance(out["assign"], str) and len(out["assign"]) == 43
    assert out["assignResult"]["Output"]["hits"] == 1
