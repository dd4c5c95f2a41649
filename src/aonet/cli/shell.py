"""`aonet shell PID`: type code, it runs in the process (Action=Eval), its Output prints back.

Theory of operation: `ShellSession` is the logic (evaluate, poll for results, dot-commands) over a
Client and a rich Console; `run_shell` is the terminal: a prompt_toolkit prompt with a history file
and multi-line input (Enter submits once `lineedit.is_complete`; Alt-Enter always adds a line), plus
a background thread that polls the CU's /results and prints what arrives, above the prompt.
One lock makes "send + read result" atomic against the poller, so our own results are printed once.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from ..client import AoError, Client, Result
from . import render
from .context import Context
from .lineedit import guess_lang, is_complete

HELP = """\
Type code and press Enter to evaluate it in the process (sent as Action=Eval).
Unfinished blocks continue on the next line; Alt-Enter (Esc Enter) always adds a line.
  .load FILE    evaluate a file
  .send ACTION [DATA]   send a message with that Action to the process itself
  .results      show new results now
  .help         this text
  .exit         leave (or Ctrl-D)"""


def _key(res: Result) -> str:
    """What makes two views of one result equal: /result and a /results edge carry the same fields."""
    return json.dumps({k: res.raw.get(k) for k in ("Output", "Messages", "Spawns", "Assignments", "Error")},
                      sort_keys=True, default=str)


class ShellSession:
    def __init__(self, client: Client, process: str, console: Console, *, lang: str = "lua",
                 poll_client: Client | None = None):
        self.client, self.process, self.console, self.lang = client, process, console, lang
        self.poll_client = poll_client or client
        self.lock = threading.Lock()
        self.cursor: str | None = None
        self.own: Counter[str] = Counter()
        self.prompt_text: str | None = None

    # ---- the two ways results reach the screen ---------------------------------------------------
    def start(self) -> None:
        """Skip the results that exist already: only new ones are shown."""
        page = self.poll_client.results(self.process, sort="DESC", limit=1)
        self.cursor = page.last_cursor

    def evaluate(self, code: str, *, action: str = "Eval") -> Result:
        with self.lock:
            sent = self.client.send(self.process, code, action=action)
            self.own[_key(sent.result)] += 1
        self.show(sent.result)
        return sent.result

    def poll(self) -> list[Result]:
        """Fetch results newer than the cursor, print those that are not our own, return them."""
        with self.lock:
            shown: list[Result] = []
            while True:
                page = self.poll_client.results(self.process, from_=self.cursor, sort="ASC", limit=50)
                for edge in page:
                    self.cursor = edge.cursor
                    k = _key(edge.result)
                    if self.own[k] > 0:
                        self.own[k] -= 1
                        continue
                    shown.append(edge.result)
                if not page.has_next_page or not page.edges:
                    break
        for res in shown:
            self.show(res, incoming=True)
        return shown

    def show(self, res: Result, *, incoming: bool = False) -> None:
        if res.prompt:
            self.prompt_text = res.prompt
        if incoming:
            if not (res.text or res.messages or res.spawns or not res.ok):
                return
            self.console.print("[dim]── new result ──[/dim]")
        render.result(self.console, res)

    # ---- input ----------------------------------------------------------------------------------
    def handle(self, text: str) -> bool:
        """Run one submitted input; False means leave the shell."""
        line = text.strip()
        if not line:
            return True
        try:
            if line.startswith("."):
                return self.command(line)
            self.evaluate(text)
        except AoError as exc:
            from . import describe
            self.console.print(f"[bold red]error:[/bold red] {escape(describe(exc))}")
        return True

    def command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in (".exit", ".quit"):
            return False
        if name == ".help":
            self.console.print(HELP, markup=False)
        elif name == ".load":
            if not rest:
                self.console.print("usage: .load FILE")
                return True
            try:
                code = Path(rest).expanduser().read_text()
            except (OSError, UnicodeDecodeError) as exc:
                self.console.print(f"[red]cannot read {escape(rest)}: {escape(str(exc))}[/red]")
                return True
            self.evaluate(code)
        elif name == ".send":
            action, _, data = rest.partition(" ")
            if not action:
                self.console.print("usage: .send ACTION [DATA]")
                return True
            self.evaluate(data, action=action)
        elif name == ".results":
            if not self.poll():
                self.console.print("[dim]no new results[/dim]")
        else:
            self.console.print(f"unknown command {escape(name)}; try .help")
        return True

    def prompt(self) -> str:
        return self.prompt_text or f"{self.process[:8]}> "


def _poller(session: ShellSession, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            session.poll()
        except AoError as exc:   # a unit restarting must not kill the shell
            session.console.print(f"[dim red]poll: {escape(str(exc))}[/dim red]")


def make_prompt(session: ShellSession, history_path: Path | None, *, input=None, output=None):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event):
        buf = event.current_buffer
        if is_complete(buf.text, session.lang):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    @kb.add("escape", "enter")
    def _newline(event):
        event.current_buffer.insert_text("\n")

    history = InMemoryHistory()
    if history_path is not None:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(history_path))
    return PromptSession(history=history, multiline=True, key_bindings=kb, input=input, output=output,
                         prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ")


def repl(session: ShellSession, prompt_session, *, poll_interval: float = 1.0,
         patch: Callable[[], Any] | None = None) -> int:
    """The read-eval-print loop; returns when the user leaves (`.exit`, Ctrl-D)."""
    from contextlib import nullcontext

    stop = threading.Event()
    thread = threading.Thread(target=_poller, args=(session, poll_interval, stop), daemon=True)
    thread.start()
    try:
        with (patch() if patch else nullcontext()):
            while True:
                try:
                    text = prompt_session.prompt(session.prompt())
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if not session.handle(text):
                    break
    finally:
        stop.set()
        thread.join(timeout=5)
    return 0


def run_shell(ctx: Context, *, input=None, output=None, console: Console | None = None) -> int:
    from prompt_toolkit.patch_stdout import patch_stdout

    pid = ctx.args.process
    console = console or render.out_console()
    client = ctx.client(signing=True)
    poll_client = ctx.client()
    try:
        with render.progress(render.err_console(), "connecting"):
            info = client.process(pid) if client.endpoints.su_url else None
            lang = guess_lang({t.name: t.value for t in info.tags} if info else None,
                              info.module if info else None, ctx.config.modules)
            session = ShellSession(client, pid, console, lang=lang, poll_client=poll_client)
            session.start()
        console.print(f"[bold]aonet shell[/bold] → {escape(pid)} ({lang}); .help for help, Ctrl-D to leave")
        prompt = make_prompt(session, ctx.data_dir / "shell_history", input=input, output=output)
        return repl(session, prompt, poll_interval=ctx.args.poll,
                    patch=None if output is not None else (lambda: patch_stdout(raw=True)))
    finally:
        client.close()
        poll_client.close()
