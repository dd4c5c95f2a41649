"""How the CLI shows results to a person (rich), or as the units' raw JSON with --json."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..client import ProcessInfo, Result, ResultsPage, Scheduled, Trace


def out_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def progress(console: Console, text: str) -> Iterator[None]:
    """A spinner for anything that may take more than a second; silent when not on a terminal."""
    if console.is_terminal:
        with console.status(text, spinner="dots"):
            yield
    else:
        yield


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value, default=str)) if console.is_terminal else \
        console.print(json.dumps(value, default=str, indent=2), markup=False, highlight=False)


def tags_text(tags) -> str:
    return ", ".join(f"{t.name}={t.value}" for t in tags)


def result(console: Console, res: Result, *, label: str | None = None) -> None:
    """Output first (what the program printed), then the error and a one-line outbox summary."""
    if label:
        console.print(f"[dim]{escape(label)}[/dim]")
    text = res.text
    if text.endswith("\n"):      # print()ed output (Python processes) ends with one: no blank line after it
        text = text[:-1]
    if text:
        console.print(text, markup=False, highlight=False)
    if not res.ok:
        err = res.error if isinstance(res.error, str) else json.dumps(res.error)
        console.print(f"[bold red]Error:[/bold red] {escape(err)}")
    for m in res.messages:
        data = m.data if isinstance(m.data, str) else json.dumps(m.data)
        short = (data[:60] + "…") if len(data) > 60 else data
        console.print(f"[cyan]→ message[/cyan] to {escape(m.target)} "
                      f"[dim]{escape(tags_text(t for t in m.tags if t.name not in _PROTO))}[/dim]"
                      + (f" data={escape(short)!r}" if short.strip() else ""))
    for s in res.spawns:
        console.print(f"[magenta]→ spawn[/magenta] module {escape(s.tag('Module') or '?')}")
    for a in res.assignments:
        console.print(f"[yellow]→ assign[/yellow] {escape(a.message)} to {escape(', '.join(a.processes))}")


_PROTO = {"Data-Protocol", "Variant", "Type", "Reference", "From-Process", "From-Module", "SDK"}


def results_page(console: Console, page: ResultsPage) -> None:
    if not page.edges:
        console.print("[dim]no evaluated results yet[/dim]")
    for i, edge in enumerate(page):
        if i:
            console.print("[dim]──[/dim]")
        r = edge.result
        if not (r.text or r.messages or r.spawns or r.assignments or not r.ok):
            console.print("[dim](no output)[/dim]")
        result(console, r)
    if page.has_next_page:
        console.print(f"[dim]more: --from {escape(page.last_cursor or '')}[/dim]")


def process_info(console: Console, info: ProcessInfo, latest: Scheduled | None, trace: Trace | None) -> None:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("process", info.process_id)
    t.add_row("owner", info.owner.address)
    t.add_row("module", info.module or "?")
    t.add_row("scheduler", info.scheduler or "?")
    t.add_row("block", str(info.block or ""))
    t.add_row("timestamp", str(info.timestamp or ""))
    t.add_row("tags", tags_text(x for x in info.tags if x.name not in ("Module", "Scheduler")))
    if latest is not None:
        t.add_row("latest", f"nonce {latest.nonce}  {latest.message_id}  at {latest.timestamp}")
        if latest.message is not None:
            t.add_row("", tags_text(x for x in latest.message.tags if x.name not in _PROTO))
    console.print(t)
    if trace is not None:
        console.print(f"[bold]MU trace of the latest message[/bold] ({len(trace.tasks)} tasks, "
                      f"{'done' if trace.done else 'in progress'}):")
        for task in trace.tasks:
            style = {"done": "green", "failed": "red"}.get(task.state, "yellow")
            line = f"  [{style}]{task.state:7}[/{style}] {task.kind:7} {task.id or ''} → {task.target or ''}"
            if task.error:
                line += f"  [red]{escape(str(task.error))}[/red]"
            console.print(line)
