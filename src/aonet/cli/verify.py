"""`aonet verify-chain` and `aonet verify`: check what the units claim, from the outside."""
from __future__ import annotations

from rich.markup import escape

from ..client import AoError, ConfigError
from . import render
from .context import Context


def verify_chain(ctx: Context) -> int:
    pid, out = ctx.args.process, render.out_console()
    with ctx.client() as ao, render.progress(render.err_console(), "reading and checking the schedule"):
        report = ao.check_chain(pid)
    if ctx.opt("json"):
        render.print_json(out, {"process_id": pid, "ok": report.ok, "count": report.count,
                                "last_nonce": report.last_nonce, "messages_checked": report.messages_checked,
                                "messages_unchecked": report.messages_unchecked, "errors": report.errors})
    else:
        state = "[bold green]OK[/bold green]" if report.ok else f"[bold red]FAILED[/bold red] ({len(report.errors)})"
        out.print(f"{escape(pid)}: {report.count} assignments, last nonce {report.last_nonce}, "
                  f"{report.messages_checked} message signatures checked: {state}")
        for e in report.errors:
            out.print(f"  [red]✗[/red] {escape(e)}")
    return 0 if report.ok else 1


def verify_results(ctx: Context) -> int:
    """Recompute the process from its schedule in a throw-away CU and compare with the running CU."""
    import httpx

    from ..cu.sources import GatewayModuleSource
    from ..cu.verify import verify_process
    pid, out = ctx.args.process, render.out_console()
    su, cu, gateway = ctx.url("su"), ctx.url("cu"), ctx.url("gateway")
    missing = [n for n, u in (("--su", su), ("--cu", cu), ("--gateway", gateway)) if not u]
    if missing:
        raise ConfigError(f"verify needs the SU, CU and gateway URLs (missing {', '.join(missing)}; "
                          f"or start a devnet with `aonet up`)")
    modules = GatewayModuleSource(gateway)
    try:
        with render.progress(render.err_console(), "recomputing the process from its log"):
            report = verify_process(pid, su_url=su, cu_url=cu, modules=modules)
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        raise AoError(f"cannot verify {pid}: {exc}") from exc
    finally:
        close = getattr(modules, "close", None)
        if close:
            close()
    if ctx.opt("json"):
        render.print_json(out, {"process_id": pid, "ok": report.ok, "timestamp": report.timestamp,
                                "results_compared": report.results_compared, "signer": report.signer,
                                "memory_sha256_remote": report.memory_sha256_remote,
                                "memory_sha256_local": report.memory_sha256_local,
                                "mismatches": report.mismatches})
    else:
        state = "[bold green]OK[/bold green]" if report.ok else "[bold red]FAILED[/bold red]"
        out.print(f"{escape(pid)} at {report.timestamp}: {report.results_compared} results compared, memory "
                  f"{report.memory_sha256_local[:16]}… (CU {escape(str(report.signer or '?'))}): {state}")
        for m in report.mismatches:
            out.print(f"  [red]✗[/red] {escape(m)}")
    return 0 if report.ok else 1
