"""The `aonet` subcommands: each takes the Context and returns an exit status."""
from __future__ import annotations

import sys
from pathlib import Path

from rich.markup import escape

from ..ans104 import Tag
from ..client import AoError, ConfigError
from ..config import default_wallet_path
from ..wallet import Wallet
from . import render
from .context import Context


class UsageError(AoError):
    """A mistake on the command line that argparse cannot see (a missing file, a wrong combination)."""


def read_data(value: str) -> bytes | str:
    """--data: literal text, `@FILE` for a file's bytes, `-` for standard input."""
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return value


def message_tags(action: str | None, tags: list[tuple[str, str]]) -> list[Tag]:
    out = [Tag("Action", action)] if action else []
    return out + [Tag(k, v) for k, v in tags if not (action and k == "Action")]


# ---- wallet ------------------------------------------------------------------------------------------
def wallet_new(ctx: Context) -> int:
    a = ctx.args
    out = render.out_console()
    with render.progress(render.err_console(), f"generating an {a.kind} key"):
        w = Wallet.generate(a.kind)
    if a.out == "-":
        import json
        print(json.dumps(w.to_json()))
        return 0
    path = Path(a.out).expanduser() if a.out else default_wallet_path(ctx.data_dir)
    if path.exists() and not a.force:
        raise UsageError(f"{path} already exists (use --force to overwrite, or --out PATH)")
    w.save(path)
    if ctx.opt("json"):
        render.print_json(out, {"address": w.address, "kind": w.kind, "path": str(path)})
    else:
        out.print(f"{w.address}  [dim]({w.kind}, written to {escape(str(path))})[/dim]")
    return 0


def wallet_address(ctx: Context) -> int:
    path = Path(ctx.args.path).expanduser() if ctx.args.path else ctx.wallet_path()
    if path is None:
        raise ConfigError(f"no wallet found (looked for {default_wallet_path(ctx.data_dir)}); "
                          f"create one with `aonet wallet new`")
    try:
        w = Wallet.load(path)
    except FileNotFoundError:
        raise UsageError(f"wallet file not found: {path}") from None
    print(w.address)
    return 0


# ---- modules -----------------------------------------------------------------------------------------
def module_publish(ctx: Context) -> int:
    """Upload a .wasm file as a Module item (format checked against the binary) and print its id."""
    from ..client.base import resolve_wallet
    from ..vm.publish import PublishError, detect_format, publish_module
    a = ctx.args
    gateway = ctx.url("gateway")
    if not gateway:
        raise ConfigError("no gateway known: start a devnet with `aonet up` or pass --gateway URL")
    path = ctx.wallet_path()
    if path is None:
        raise ConfigError("no wallet: create one with `aonet wallet new` or pass --wallet PATH")
    wallet = resolve_wallet(path)
    file = Path(a.file).expanduser()
    try:
        wasm = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    tags = [Tag(k, v) for k, v in a.tag]
    try:
        with render.progress(render.err_console(), f"publishing {file.name}"):
            fmt = a.module_format or detect_format(wasm)
            module_id = publish_module(wasm, gateway=gateway, wallet=wallet, module_format=fmt,
                                       memory_limit=a.memory_limit, compute_limit=a.compute_limit, tags=tags)
    except PublishError as exc:
        raise UsageError(str(exc)) from None
    if ctx.opt("json"):
        render.print_json(render.out_console(), {"module": module_id, "format": fmt})
    else:
        print(module_id)
    return 0


# ---- devnet ------------------------------------------------------------------------------------------
def up(ctx: Context) -> int:
    try:
        from .. import node
    except ImportError as exc:
        raise UsageError(f"the devnet runner (aonet.node) is not available: {exc}") from exc
    return node.cli_up(ctx.args, data_dir=ctx.data_dir) or 0


# ---- processes ---------------------------------------------------------------------------------------
def spawn(ctx: Context) -> int:
    a, cfg = ctx.args, ctx.config
    err = render.err_console()
    if a.module:
        module = a.module
    else:
        module = cfg.module("python" if a.python else "lua")
    tags: list[Tag] = [Tag(k, v) for k, v in a.tag]
    names = {t.name for t in tags}
    if a.name and "Name" not in names:
        tags.append(Tag("Name", a.name))
    if cfg.mu_address and "Authority" not in names:
        tags.append(Tag("Authority", cfg.mu_address))
    if a.cron:
        tags.append(Tag("Cron-Interval", a.cron))
        tags += [Tag(f"Cron-Tag-{k}", v) for k, v in a.cron_tag]
    elif a.cron_tag:
        raise UsageError("--cron-tag needs --cron INTERVAL")
    loads = []
    for f in a.load:
        p = Path(f).expanduser()
        try:
            loads.append((p, p.read_text()))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {p}: {exc}") from exc
    data = read_data(a.data) if a.data else ""
    with ctx.client(signing=True) as ao:
        with render.progress(err, "spawning"):
            pid = ao.spawn(module, scheduler=a.scheduler or cfg.scheduler, tags=tags, data=data)
        out = render.out_console()
        if ctx.opt("json"):
            render.print_json(out, {"process": pid, "module": module})
        else:
            print(pid)
        if a.cron:
            with render.progress(err, "asking the MU to run its crons"):
                ao.monitor(pid)
        status = 0
        for path, code in loads:
            with render.progress(err, f"loading {path.name}"):
                sent = ao.send(pid, code, action="Eval")
            if not ctx.opt("json"):
                render.result(err, sent.result, label=f"{path.name}:")
            status |= 0 if sent.result.ok else 1
    return status


def send(ctx: Context) -> int:
    a = ctx.args
    err, out = render.err_console(), render.out_console()
    tags = message_tags(a.action, a.tag)
    with ctx.client(signing=True) as ao:
        if a.no_wait:
            print(ao.message(a.process, read_data(a.data), tags))
            return 0
        with render.progress(err, "sending"):
            sent = ao.send(a.process, read_data(a.data), tags, cascade=a.cascade, timeout=a.timeout)
    if ctx.opt("json"):
        render.print_json(out, {"id": sent.id, "result": dict(sent.result.raw),
                                "trace": sent.trace.raw if sent.trace else None})
    else:
        err.print(f"[dim]message {sent.id}[/dim]")
        render.result(out, sent.result)
        if sent.trace is not None:
            err.print(f"[dim]cascade delivered: {len(sent.trace.pushed)} pushed items[/dim]")
    return 0 if sent.result.ok else 1


def result(ctx: Context) -> int:
    out = render.out_console()
    with ctx.client() as ao, render.progress(render.err_console(), "evaluating"):
        res = ao.result(ctx.args.message, ctx.args.process)
    render.print_json(out, dict(res.raw)) if ctx.opt("json") else render.result(out, res)
    return 0 if res.ok else 1


def results(ctx: Context) -> int:
    a, out = ctx.args, render.out_console()
    with ctx.client() as ao:
        page = ao.results(a.process, from_=a.from_, to=a.to, sort=a.sort.upper(), limit=a.limit)
    render.print_json(out, dict(page.raw)) if ctx.opt("json") else render.results_page(out, page)
    return 0


def dryrun(ctx: Context) -> int:
    a, out = ctx.args, render.out_console()
    with ctx.client() as ao, render.progress(render.err_console(), "evaluating"):
        owner = ao.wallet.address if ao.wallet is not None else None
        res = ao.dryrun(a.process, read_data(a.data) or None, message_tags(a.action, a.tag), owner=owner)
    render.print_json(out, dict(res.raw)) if ctx.opt("json") else render.result(out, res)
    return 0 if res.ok else 1


def inspect(ctx: Context) -> int:
    pid, out = ctx.args.process, render.out_console()
    with ctx.client() as ao, render.progress(render.err_console(), "asking the units"):
        info = ao.process(pid)
        latest = ao.latest(pid)
        trace = None
        if ao.endpoints.mu_url and latest.message_id:
            try:
                trace = ao.trace(latest.message_id)
            except AoError:          # an MU without the debug trace: show the rest
                trace = None
    if ctx.opt("json"):
        render.print_json(out, {"process": dict(info.raw), "latest": dict(latest.raw),
                                "trace": trace.raw if trace else None})
    else:
        render.process_info(out, info, latest, trace)
    return 0


def verify_chain(ctx: Context) -> int:
    from . import verify as v
    return v.verify_chain(ctx)


def verify(ctx: Context) -> int:
    from . import verify as v
    return v.verify_results(ctx)


def shell(ctx: Context) -> int:
    from .shell import run_shell
    return run_shell(ctx)
