"""Drive `aonet shell` as a person would, from a test: keys in through a pipe, the screen read back.

    with driven_shell([*data_dir_args, "shell", pid, "--poll", "0.2"]) as sh:
        sh.send("return 1 + 41\r"); sh.wait_for("42")
    # leaving the block types .exit and checks the shell ended with exit code 0; sh.text() stays readable
"""
from __future__ import annotations

import contextlib
import io
import threading
import time

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from aonet.cli.args import build_parser
from aonet.cli.context import Context
from aonet.cli.shell import run_shell


class ShellSession:
    def __init__(self, inp, buf: io.StringIO):
        self._inp, self._buf = inp, buf

    def send(self, keys: str) -> None:
        self._inp.send_text(keys)

    def text(self) -> str:
        return self._buf.getvalue()

    def lines(self) -> list[str]:
        return [line.strip() for line in self.text().splitlines()]

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self._buf.getvalue():
            assert time.monotonic() < deadline, f"{text!r} not in {self._buf.getvalue()!r}"
            time.sleep(0.05)


@contextlib.contextmanager
def driven_shell(argv: list[str], width: int = 300):
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None)
    args = build_parser().parse_args(argv)
    with create_pipe_input() as inp:
        done: list[int] = []
        t = threading.Thread(target=lambda: done.append(
            run_shell(Context(args), input=inp, output=DummyOutput(), console=console)))
        t.start()
        session = ShellSession(inp, buf)
        yield session
        inp.send_text(".exit\r")
        t.join(30)
    assert done == [0], session.text()[-2000:]
