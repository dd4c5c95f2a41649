"""The `aonet` command: `main(argv)` parses, dispatches, and turns every user mistake into one line.

Exit status: 0 success, 1 a failed result or a unit/user error, 2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import sys

from rich.markup import escape

from .. import __version__
from ..client import AoError, CascadeTimeout, UnitError, UnitUnreachable
from ..config import ConfigFileError
from ..wallet import WalletError
from . import commands, render
from .args import build_parser, parse_args
from .context import Context

COMMANDS = {
    "up": commands.up, "spawn": commands.spawn, "send": commands.send, "result": commands.result,
    "results": commands.results, "dryrun": commands.dryrun, "inspect": commands.inspect,
    "verify-chain": commands.verify_chain, "verify": commands.verify, "shell": commands.shell,
}
WALLET = {"new": commands.wallet_new, "address": commands.wallet_address}
MODULE = {"publish": commands.module_publish}


def describe(exc: BaseException) -> str:
    """One line a person can act on; the unit's own error text when a unit said no."""
    if isinstance(exc, UnitUnreachable):
        return f"{exc.unit.upper()} not reachable at {exc.url} ({exc.reason}); is the devnet up (`aonet up`)?"
    if isinstance(exc, UnitError):
        return f"{exc.unit.upper()} said {exc.status}: {exc.error}"
    if isinstance(exc, CascadeTimeout):
        return str(exc) + " (the MU is still delivering; see `aonet inspect`)"
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else list(argv))
    if args.version:
        print(f"aonet {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    if args.command == "wallet":
        fn = WALLET[args.wallet_command]
    elif args.command == "module":
        fn = MODULE[args.module_command]
    else:
        fn = COMMANDS[args.command]
    try:
        return fn(Context(args)) or 0
    except KeyboardInterrupt:
        render.err_console().print("[dim]interrupted[/dim]")
        return 130
    except (AoError, ConfigFileError, WalletError, OSError, ValueError) as exc:
        render.err_console().print(f"[bold red]error:[/bold red] {escape(describe(exc))}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
