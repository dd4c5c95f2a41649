"""The `aonet` command line: argument grammar only (no I/O), so it is testable on its own."""
from __future__ import annotations

import argparse
import re

from ..wallet import KINDS


def tag_arg(text: str) -> tuple[str, str]:
    """`K=V` -> (K, V); the value may contain '=' and be empty, the name may not."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"tag must be NAME=VALUE, got {text!r}")
    return name.strip(), value


def cron_arg(text: str) -> str:
    """`10-seconds`, `1-minute`, `5-blocks` (AO's Cron-Interval; a space is accepted for the dash)."""
    value = text.strip().replace(" ", "-")
    n, sep, unit = value.partition("-")
    units = ("millisecond", "second", "minute", "hour", "day", "week", "month", "year", "block")
    if not sep or not n.isdigit() or int(n) < 1 or unit.rstrip("s") not in units:
        raise argparse.ArgumentTypeError(f"cron interval must look like 10-seconds, 1-minute or 5-blocks, "
                                         f"got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {n}")
    return n


def memory_limit_arg(text: str) -> str:
    """AO's Memory-Limit value (`512-mb`, `1-gb`, `16777216-b`), checked here, passed on as written."""
    from ..vm.base import parse_size
    try:
        if parse_size(text) < 65536:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"memory limit must look like 512-mb or 1-gb (at least one 64 KiB "
                                         f"page), got {text!r}") from None
    return text.strip()


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after its name (defaults suppressed so neither wins
    by accident)."""
    p = argparse.ArgumentParser(add_help=False)
    S = argparse.SUPPRESS
    p.add_argument("--data-dir", default=S, metavar="DIR", help="devnet data directory (default ~/.aonet or "
                                                                "$AONET_HOME); holds devnet.json")
    p.add_argument("--wallet", "-w", default=S, metavar="PATH", help="key file to sign with")
    p.add_argument("--mu", default=S, metavar="URL", help="MU URL (overrides devnet.json and $MU_URL)")
    p.add_argument("--cu", default=S, metavar="URL", help="CU URL")
    p.add_argument("--su", default=S, metavar="URL", help="SU URL")
    p.add_argument("--gateway", default=S, metavar="URL", help="gateway URL")
    p.add_argument("--json", action="store_true", default=S, help="print the units' raw JSON")
    return p


def _message_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--action", "-a", help="the Action tag")
    p.add_argument("--data", "-d", default="", help="message data; @FILE reads a file, - reads stdin")
    p.add_argument("--tag", "-t", action="append", type=tag_arg, default=[], metavar="K=V", help="a tag (repeat)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    root = argparse.ArgumentParser(prog="aonet", parents=[common],
                                   description="aonet: run an AO devnet and talk to its processes.")
    root.add_argument("--version", action="store_true", help="print the version and exit")
    sub = root.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    w = cmd("wallet", "create a key file or show its address")
    wsub = w.add_subparsers(dest="wallet_command", metavar="SUBCOMMAND", required=True)
    wn = wsub.add_parser("new", parents=[common], help="generate a new wallet")
    wn.add_argument("--kind", "-k", choices=KINDS, default="arweave")
    wn.add_argument("--out", "-o", metavar="PATH", help="where to write it (default <data-dir>/wallet.json; "
                                                          "- prints the key to stdout)")
    wn.add_argument("--force", action="store_true", help="overwrite an existing file")
    wa = wsub.add_parser("address", parents=[common], help="print a wallet's address")
    wa.add_argument("path", nargs="?", help="key file (default: --wallet, devnet.json's, <data-dir>/wallet.json)")

    up = cmd("up", "start a local devnet (SU, CU, MU, gateway) and write devnet.json")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=None, help="first port; the units take consecutive ports")
    up.add_argument("--separate", action="store_true", help="run each unit in its own OS process")
    up.add_argument("--fresh", action="store_true", help="start from an empty data directory state")
    up.add_argument("--modules", metavar="NAMES", help="comma-separated built-in modules to publish "
                                                       "(default: every one available, e.g. lua,python)")

    sp = cmd("spawn", "spawn a process")
    which = sp.add_mutually_exclusive_group()
    which.add_argument("--module", "-m", metavar="ID", help="module id")
    which.add_argument("--lua", action="store_true", help="the devnet's Lua module (default)")
    which.add_argument("--python", action="store_true", help="the devnet's Python module")
    sp.add_argument("--load", "-l", metavar="FILE", action="append", default=[],
                    help="evaluate this file in the new process (repeat)")
    sp.add_argument("--tag", "-t", action="append", type=tag_arg, default=[], metavar="K=V")
    sp.add_argument("--cron", type=cron_arg, metavar="INTERVAL", help="Cron-Interval, e.g. 10-seconds")
    sp.add_argument("--cron-tag", action="append", type=tag_arg, default=[], metavar="K=V",
                    help="a tag of every cron message (Cron-Tag-K: V)")
    sp.add_argument("--name", "-n", help="the Name tag")
    sp.add_argument("--data", "-d", default="", help="process data; @FILE reads a file")
    sp.add_argument("--scheduler", metavar="ADDRESS", help="SU wallet address (default: the devnet's)")

    se = cmd("send", "send a message to a process and print its result")
    se.add_argument("process", metavar="PID")
    _message_opts(se)
    se.add_argument("--no-wait", action="store_true", help="print the message id only")
    se.add_argument("--cascade", action="store_true", help="also wait until the MU delivered every message "
                                                           "it caused")
    se.add_argument("--timeout", type=float, default=30.0)

    r = cmd("result", "print the result of one message")
    r.add_argument("message", metavar="MSGID")
    r.add_argument("--process", "-p", required=True, metavar="PID")

    rs = cmd("results", "list a process's evaluated results")
    rs.add_argument("process", metavar="PID")
    rs.add_argument("--limit", type=positive_int, default=25)
    rs.add_argument("--sort", choices=("ASC", "DESC", "asc", "desc"), default="DESC")
    rs.add_argument("--from", dest="from_", metavar="CURSOR")
    rs.add_argument("--to", metavar="CURSOR")

    dr = cmd("dryrun", "evaluate a message without sending it")
    dr.add_argument("process", metavar="PID")
    _message_opts(dr)

    ins = cmd("inspect", "show a process: its item, latest message and the MU's trace of it")
    ins.add_argument("process", metavar="PID")

    vc = cmd("verify-chain", "check the SU's hash chain and signatures of a process's schedule")
    vc.add_argument("process", metavar="PID")

    vf = cmd("verify", "recompute a process's results and compare them with the CU's")
    vf.add_argument("process", metavar="PID")

    mo = cmd("module", "publish a wasm module (e.g. one built for AO's own loader)")
    msub = mo.add_subparsers(dest="module_command", metavar="SUBCOMMAND", required=True)
    mp = msub.add_parser("publish", parents=[common], help="upload a .wasm file as an AO Module item",
                         description="Upload a .wasm file to the gateway as an AO Module item and print its id.")
    mp.add_argument("file", metavar="FILE", help="the .wasm module")
    mp.add_argument("--format", "-f", dest="module_format", metavar="FORMAT",
                    help="Module-Format, e.g. wasm32-unknown-emscripten2 (default: detected from the binary)")
    mp.add_argument("--memory-limit", type=memory_limit_arg, default="1-gb", metavar="SIZE",
                    help="Memory-Limit tag, e.g. 512-mb (default 1-gb)")
    mp.add_argument("--compute-limit", type=positive_int, default=9_000_000_000_000, metavar="N",
                    help="Compute-Limit tag (default 9000000000000)")
    mp.add_argument("--tag", "-t", action="append", type=tag_arg, default=[], metavar="K=V",
                    help="an extra tag (repeat)")

    sh = cmd("shell", "an interactive terminal to a process (Action=Eval)")
    sh.add_argument("process", metavar="PID")
    sh.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="how often to look for new "
                                                                               "results")
    return root


# An AO id is 43 base64url characters, so about one in 64 starts with "-", which argparse would read
# as an option ("-tpPK..." as "-t pPK..."). Such tokens are hidden from argparse behind a NUL (never
# in a real argument) and restored in the parsed values.
_DASH_ID = re.compile(r"-[A-Za-z0-9_-]{42}")
_HIDDEN = "\0"


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args([_HIDDEN + a if _DASH_ID.fullmatch(a) else a for a in argv])
    for name, value in vars(args).items():
        setattr(args, name, _restore(value))
    return args


def _restore(value):
    if isinstance(value, str) and value.startswith(_HIDDEN):
        return value[1:]
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value
