"""Reusable SU fixtures: start a real SU (thread or subprocess) on a free loopback port.

Import what you need in a test module:

    from fixtures_su import SUProcess, SUThread, free_port, su_process, su_thread, su_client  # noqa: F401

- `SUThread(store, wallet)`: uvicorn in a thread of this process (fast start, shares the store).
- `SUProcess(data_dir)`: `python -m aonet.su` as a subprocess (crash tests: `.kill()` sends SIGKILL).
- pytest fixtures `su_thread` (SQLite store in tmp_path, Ed25519 wallet), `su_process`, `su_client`
  (Starlette TestClient, no sockets).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from aonet.store.sqlite import SQLiteStore
from aonet.su import create_su_app
from aonet.wallet import Wallet

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"SU exited with {proc.returncode} before it was healthy")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"SU at {url} not healthy after {timeout}s")


class SUThread:
    """An SU app served by uvicorn in a background thread; the caller owns `store`."""

    def __init__(self, store, wallet: Wallet, *, port: int | None = None, **app_kwargs):
        self.store, self.wallet = store, wallet
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_su_app(store, wallet, url=self.url, close_store=False, **app_kwargs)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "SUThread":
        self.thread.start()
        wait_healthy(self.url)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SUProcess:
    """`python -m aonet.su` on a free port; restartable on the same data dir."""

    def __init__(self, data_dir: str | os.PathLike, *, port: int | None = None, extra_args: tuple = ()):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SUProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log = open(self.data_dir / "su.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "aonet.su", "--data-dir", str(self.data_dir),
                                      "--port", str(self.port), *self.extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_healthy(self.url, proc=self.proc)
        return self

    @property
    def address(self) -> str:
        return Wallet.load(self.data_dir / "su-wallet.json").address

    def workers(self) -> list[int]:
        """Pids of the worker processes (`--workers N`); [] for a single-process SU."""
        try:
            return [int(c) for c in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except (FileNotFoundError, AttributeError):
            return []

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; what was acknowledged must survive.

        With workers, only the supervisor is killed: its workers must die with it."""
        workers = self.workers()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() and "zombie" not in _state(w) for w in workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"SU workers {workers} outlived their supervisor")
            time.sleep(0.01)
        self._close_log()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        log = getattr(self, "log", None)
        if log is not None and not log.closed:
            log.close()

    def __enter__(self) -> "SUProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (FileNotFoundError, IndexError):
        return "zombie"


# ---- pytest fixtures -------------------------------------------------------------------------
@pytest.fixture
def su_wallet() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def su_thread(tmp_path, su_wallet):
    store = SQLiteStore(tmp_path / "su.sqlite")
    with SUThread(store, su_wallet) as su:
        yield su
    store.close()


@pytest.fixture
def su_process(tmp_path):
    with SUProcess(tmp_path / "su") as su:
        yield su


@pytest.fixture
def su_client(tmp_path, su_wallet):
    from starlette.testclient import TestClient
    store = SQLiteStore(tmp_path / "su.sqlite")
    app = create_su_app(store, su_wallet, url="http://testserver")
    with TestClient(app) as client:
        client.store, client.wallet = store, su_wallet
        yield client
