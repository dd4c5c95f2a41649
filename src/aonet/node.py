"""A devnet: gateway, SU, CU and MU composed on loopback, in one process (default) or one per unit.

Layout of the data directory (default `~/.aonet`, or `$AONET_HOME`, or `NodeConfig.data_dir`):

    aonet.sqlite          the log and the item store (SU + gateway; the CU reads modules from it)
    mu.sqlite             the MU's durable task queue and cron monitors
    cu/                   the CU's checkpoints and caches
    wallets/{su,mu,cu,publisher}.json   one key per unit, created on first start
    wallet.json           the user's key (created when missing; `aonet` CLI default)
    modules.json          the built-in modules already published: name -> {sha256, id}
    devnet.json           URLs, module ids, scheduler address (read by the CLI and SDK)

Ports: the units take consecutive ports from `port` (default 4000): gateway 4000, SU 4001,
MU 4002, CU 4003. `port=0` picks free ports. A restart with the same directory keeps every process,
message, queued task and monitor.

Durability: the devnet's log runs SQLite WAL with synchronous=NORMAL by default: an acknowledged
message survives a crash or kill of the process, not a power loss (`synchronous="FULL"` fsyncs every
group commit; the standalone SU, `python -m aonet.su`, keeps FULL). docs/devnet.md says why.

Units in one process call each other directly (aonet.links): the MU pushes to the SU's service and
pulls results from the CU's service, the CU reads the SU's store, and the SU tells the CU of each new
slot. Every HTTP route still serves clients and units elsewhere; `links=False` sends it all over HTTP.

Use from code:

    devnet = await start_devnet(NodeConfig(data_dir=tmp, port=0))   # inside an event loop
    ...; await devnet.stop()
    devnet = start_background(NodeConfig(...))                       # its own thread and loop
    ...; devnet.stop()
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .blocks import DEFAULT_INTERVAL_MS, BlockClock
from .config import DevnetConfig, config_path, default_data_dir, default_wallet_path
from .protocol import build_module
from .wallet import Wallet

log = logging.getLogger("aonet.node")

UNITS = ("gateway", "su", "mu", "cu")          # port order: first port + index
DEFAULT_PORT = 4000
# WAL + NORMAL: an acknowledged write survives a process crash or kill, not a power loss (docs/devnet.md)
DEVNET_SYNCHRONOUS = "NORMAL"


# ---- built-in modules: one line per runtime ---------------------------------------------------------
@dataclass(frozen=True)
class ModuleSpec:
    name: str
    wasm: bytes
    tags: list


def _lua_module() -> ModuleSpec:
    from .vm.lua import lua_module, module_tags
    return ModuleSpec("lua", lua_module(), module_tags())


def _python_module() -> ModuleSpec:
    from .vm.python import module_tags, python_module
    return ModuleSpec("python", python_module(), module_tags())


MODULE_REGISTRY: dict[str, Callable[[], ModuleSpec]] = {
    "lua": _lua_module,
    "python": _python_module,
}


def builtin_modules(names: tuple[str, ...] | None = None) -> list[ModuleSpec]:
    """The built-in modules that exist now (a runtime that is missing or fails to build is skipped)."""
    out = []
    for name in (MODULE_REGISTRY if names is None else names):
        factory = MODULE_REGISTRY.get(name)
        if factory is None:
            raise ValueError(f"unknown built-in module {name!r} (known: {', '.join(MODULE_REGISTRY)})")
        try:
            out.append(factory())
        except Exception as exc:  # noqa: BLE001 - a runtime not built here is not fatal to a devnet
            log.warning("built-in module %s not available: %s", name, exc)
    return out


# ---- configuration ---------------------------------------------------------------------------------
@dataclass
class NodeConfig:
    data_dir: str | os.PathLike = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int | None = DEFAULT_PORT     # first port; 0 or None = free ports
    units: tuple[str, ...] = UNITS      # which units this process runs
    separate: bool = False              # one OS process per unit
    modules: tuple[str, ...] | None = None   # built-in modules to publish (None: every available one)
    extra_modules: dict[str, bytes] = field(default_factory=dict)   # name -> wasm32-wasi-ao1 bytes
    monitor_interval: float = 10.0      # MU cron poll period (s)
    mu_concurrency: int = 32
    cu_workers: int = 0                 # CU evaluation worker processes (0: a thread of this process)
    synchronous: str = DEVNET_SYNCHRONOUS   # SQLite durability of the log (FULL: fsync per group commit)
    links: bool = True                  # units in this process call each other directly (aonet.links)
    uvloop: bool = True                 # run on uvloop when installed (start_background, aonet up)
    block_interval_ms: int = DEFAULT_INTERVAL_MS
    mu_wallet_kind: str = "arweave"
    su_wallet_kind: str = "ed25519"
    write_config: bool = True           # write devnet.json (and create wallet.json) for the CLI
    fresh: bool = False                 # wipe the state first
    log_level: str = "warning"
    urls: dict[str, str] = field(default_factory=dict)   # for units run elsewhere (separate mode)
    ports: dict[str, int] = field(default_factory=dict)  # explicit per-unit ports (override `port`)

    @property
    def path(self) -> Path:
        # absolute: devnet.json's wallet path must work from any working directory
        return Path(self.data_dir).expanduser().resolve()


@dataclass
class Devnet:
    """A running devnet: URLs, module ids, the scheduler address; `await stop()`."""
    config: NodeConfig
    urls: dict[str, str]
    scheduler: str
    mu_address: str
    modules: dict[str, str]
    wallet_path: str
    _stop: Callable[[], Any] = field(repr=False, default=None)

    gateway_url = property(lambda self: self.urls.get("gateway"))
    su_url = property(lambda self: self.urls.get("su"))
    mu_url = property(lambda self: self.urls.get("mu"))
    cu_url = property(lambda self: self.urls.get("cu"))

    def devnet_config(self) -> DevnetConfig:
        return DevnetConfig(mu_url=self.mu_url, cu_url=self.cu_url, su_url=self.su_url,
                            gateway_url=self.gateway_url, scheduler=self.scheduler, mu_address=self.mu_address,
                            modules=dict(self.modules), wallet=self.wallet_path)

    async def stop(self) -> None:
        if self._stop:
            stop, self._stop = self._stop, None
            await stop()

    def describe(self) -> str:
        lines = ["aonet devnet"]
        lines += [f"  {name:8} {self.urls[name]}" for name in UNITS if name in self.urls]
        lines.append(f"  scheduler {self.scheduler}")
        lines.append(f"  MU address (Authority) {self.mu_address}")
        for name, mid in self.modules.items():
            lines.append(f"  module {name:8} {mid}")
        lines.append(f"  data     {self.config.path}")
        return "\n".join(lines)


# ---- helpers ---------------------------------------------------------------------------------------
def new_event_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    """uvloop when installed (every HTTP request between units costs less on it), else asyncio's."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_async(coro, use_uvloop: bool = True):
    """`asyncio.run` on `new_event_loop`."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(use_uvloop)) as runner:
        return runner.run(coro)


def unit_wallet(data_dir: Path, unit: str, kind: str = "arweave") -> Wallet:
    """The unit's key, created on first start (data_dir/wallets/<unit>.json)."""
    path = data_dir / "wallets" / f"{unit}.json"
    if path.exists():
        return Wallet.load(path)
    wallet = Wallet.generate(kind)
    wallet.save(path)
    return wallet


def _bind(host: str, port: int) -> socket.socket:
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else every
    # keep-alive response waits ~40 ms for a delayed ACK)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_ports(host: str, n: int) -> list[int]:
    socks = [_bind(host, 0) for _ in range(n)]
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _ports(cfg: NodeConfig) -> dict[str, int]:
    if cfg.port:
        ports = {u: cfg.port + i for i, u in enumerate(UNITS)}
    else:
        ports = dict(zip(UNITS, free_ports(cfg.host, len(UNITS))))
    ports.update(cfg.ports)
    return ports


def _wipe(data_dir: Path) -> None:
    for name in ("aonet.sqlite", "aonet.sqlite-wal", "aonet.sqlite-shm", "mu.sqlite", "mu.sqlite-wal",
                 "mu.sqlite-shm", "modules.json", "devnet.json"):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()
    import shutil
    shutil.rmtree(data_dir / "cu", ignore_errors=True)


def publish_modules(store, wallet: Wallet, data_dir: Path, specs: list[ModuleSpec]) -> dict[str, str]:
    """Store each module as a Module item once; the same bytes keep the same id across restarts."""
    index_path = data_dir / "modules.json"
    try:
        index = json.loads(index_path.read_text())
    except (FileNotFoundError, ValueError):
        index = {}
    out = {}
    for spec in specs:
        sha = hashlib.sha256(spec.wasm).hexdigest()
        known = index.get(spec.name)
        if known and known.get("sha256") == sha and store.get_item(known["id"]) is not None:
            out[spec.name] = known["id"]
            continue
        tags = [(t["name"], t["value"]) if isinstance(t, dict) else tuple(t) for t in spec.tags]
        if not any(n == "Name" for n, _ in tags):
            tags.append(("Name", spec.name))
        names = {n for n, _ in tags}
        item = build_module(wallet, spec.wasm, tags=[t for t in tags if t[0] in names])
        store.put_item(item)
        index[spec.name] = {"sha256": sha, "id": item.id}
        out[spec.name] = item.id
    index_path.write_text(json.dumps(index, indent=2))
    return out


class _Server:
    """uvicorn without its own signal handling, so several share one loop and the node owns Ctrl-C."""

    def __init__(self, app, sock: socket.socket, log_level: str):
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        self.server = Quiet(uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False,
                                           timeout_graceful_shutdown=2))
        self.sock = sock
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task:
            with contextlib.suppress(Exception):
                await self.task
        with contextlib.suppress(OSError):
            self.sock.close()


# ---- unit apps -------------------------------------------------------------------------------------
def _cu_app(cfg: NodeConfig, urls: dict[str, str], store, clock: BlockClock, su_service=None):
    """The CU's app; with `su_service` (an SU in this process) it reads the schedule in-process."""
    from .cu.app import create_cu_app
    from .cu.service import ComputeUnit
    from .cu.sources import GatewayModuleSource, StoreModuleSource
    wallet = unit_wallet(cfg.path, "cu", "ed25519")
    modules = StoreModuleSource(store) if store is not None else GatewayModuleSource(urls["gateway"])
    su_client = None
    if su_service is not None:
        from .links import LocalSUClient
        su_client = LocalSUClient(su_service, urls["su"])
    cu = ComputeUnit(data_dir=str(cfg.path / "cu"), su_url=urls["su"], modules=modules, wallet=wallet,
                     workers=cfg.cu_workers, su_client=su_client)
    return create_cu_app(cu=cu)


# ---- in-process devnet -----------------------------------------------------------------------------
async def start_devnet(config: NodeConfig | None = None, **overrides) -> Devnet:
    """Start the configured units in this event loop; returns the running Devnet."""
    cfg = replace(config or NodeConfig(), **overrides)
    data_dir = cfg.path
    data_dir.mkdir(parents=True, exist_ok=True)
    if cfg.fresh:
        _wipe(data_dir)
    if cfg.separate:
        return await _start_separate(cfg)
    ports = _ports(cfg)
    urls = {u: cfg.urls.get(u) or _url(cfg.host, ports[u]) for u in UNITS}
    clock = BlockClock(interval_ms=cfg.block_interval_ms)
    servers: list[_Server] = []
    store = None
    mu = None
    su_wallet = unit_wallet(data_dir, "su", cfg.su_wallet_kind)
    mu_wallet = unit_wallet(data_dir, "mu", cfg.mu_wallet_kind)
    modules: dict[str, str] = {}
    su_service = cu = None          # the units' service objects, when they run here

    async def stop() -> None:
        for s in reversed(servers):
            await s.stop()
        if store is not None:
            await asyncio.to_thread(store.close)

    try:
        if {"gateway", "su", "cu"} & set(cfg.units):
            from .store.sqlite import open_store
            store = await asyncio.to_thread(open_store, data_dir, synchronous=cfg.synchronous, block_clock=clock)
        if "gateway" in cfg.units:
            from .gateway import create_gateway_app
            servers.append(_Server(create_gateway_app(store, clock), _bind(cfg.host, ports["gateway"]), cfg.log_level))
            await servers[-1].start()
            specs = builtin_modules(cfg.modules) + [
                ModuleSpec(name, wasm, []) for name, wasm in cfg.extra_modules.items()]
            publisher = unit_wallet(data_dir, "publisher", "arweave")
            modules = await asyncio.to_thread(publish_modules, store, publisher, data_dir, specs)
        if "su" in cfg.units:
            from .su.app import create_su_app
            app = create_su_app(store, su_wallet, url=urls["su"], block_clock=clock, close_store=False)
            servers.append(_Server(app, _bind(cfg.host, ports["su"]), cfg.log_level))
            await servers[-1].start()
            su_service = app.state.service           # set by the app's start-up
        if "cu" in cfg.units:
            app = _cu_app(cfg, urls, store, clock, su_service if cfg.links else None)
            servers.append(_Server(app, _bind(cfg.host, ports["cu"]), cfg.log_level))
            await servers[-1].start()
            cu = app.state.cu
            if cfg.links and su_service is not None:
                from .links import tell_cu_of_slots
                tell_cu_of_slots(su_service, cu)
        if "mu" in cfg.units:
            from .mu import MessengerUnit, create_mu_app
            local_sus, local_cu = {}, None
            if cfg.links:
                from .links import LocalCU, LocalSU   # the MU's pushes and pulls to units in this process
                local_sus = {urls["su"]: LocalSU(su_service)} if su_service is not None else {}
                local_cu = LocalCU(cu) if cu is not None else None
            mu = MessengerUnit(mu_wallet, data_dir=data_dir, cu_url=urls["cu"], gateway_url=urls["gateway"],
                               su_urls=(urls["su"],), concurrency=cfg.mu_concurrency,
                               monitor_interval=cfg.monitor_interval, local_sus=local_sus, local_cu=local_cu)
            servers.append(_Server(create_mu_app(mu), _bind(cfg.host, ports["mu"]), cfg.log_level))
            await servers[-1].start()
    except BaseException:
        await stop()
        raise
    running = {u: urls[u] for u in UNITS if u in cfg.units or u in cfg.urls}
    devnet = Devnet(cfg, running, su_wallet.address, mu_wallet.address, modules,
                    str(default_wallet_path(data_dir)), stop)
    devnet.mu = mu
    devnet.store = store
    devnet.cu = cu
    devnet.su_service = su_service
    if cfg.write_config and set(UNITS) <= set(cfg.units):
        _write_config(devnet)
    return devnet


def _write_config(devnet: Devnet) -> None:
    data_dir = devnet.config.path
    wallet_path = default_wallet_path(data_dir)
    if not wallet_path.exists():
        Wallet.generate("arweave").save(wallet_path)
    devnet.devnet_config().save(config_path(data_dir))


# ---- one OS process per unit -----------------------------------------------------------------------
async def _start_separate(cfg: NodeConfig) -> Devnet:
    ports = _ports(cfg)
    urls = {u: _url(cfg.host, ports[u]) for u in UNITS}
    data_dir = cfg.path
    su_wallet = unit_wallet(data_dir, "su", cfg.su_wallet_kind)
    mu_wallet = unit_wallet(data_dir, "mu", cfg.mu_wallet_kind)
    procs: list[subprocess.Popen] = []
    info: dict = {}
    for unit in ("gateway", "su", "cu", "mu"):
        argv = [sys.executable, "-m", "aonet.node", "unit", unit, "--data-dir", str(data_dir),
                "--host", cfg.host, "--port", str(ports[unit]), "--synchronous", cfg.synchronous,
                "--monitor-interval", str(cfg.monitor_interval), "--log-level", cfg.log_level,
                "--block-interval-ms", str(cfg.block_interval_ms)]
        for u, url in urls.items():
            argv += [f"--{u}-url", url]
        if unit == "gateway" and cfg.modules is not None:
            argv += ["--modules", ",".join(cfg.modules)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        line = await asyncio.to_thread(procs[-1].stdout.readline)     # "ready {json}" once serving
        if not line.startswith("ready"):
            for p in procs:
                p.terminate()
            raise RuntimeError(f"unit {unit} did not start (exit {procs[-1].poll()})")
        ready = json.loads(line[5:])
        if ready.get("modules"):                 # only the gateway publishes (later units say {})
            info["modules"] = ready["modules"]

    async def stop() -> None:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                await asyncio.to_thread(p.wait, 10)
            except subprocess.TimeoutExpired:
                p.kill()

    devnet = Devnet(cfg, urls, su_wallet.address, mu_wallet.address, info.get("modules", {}),
                    str(default_wallet_path(data_dir)), stop)
    if cfg.write_config:
        _write_config(devnet)
    return devnet


async def run_unit(unit: str, cfg: NodeConfig) -> None:
    """Serve one unit until SIGINT/SIGTERM (the child side of separate mode, and `python -m aonet.node unit`)."""
    devnet = await start_devnet(replace(cfg, units=(unit,), separate=False, write_config=False))
    print("ready " + json.dumps({"unit": unit, "modules": devnet.modules, "urls": devnet.urls}), flush=True)
    await _wait_for_signal()
    await devnet.stop()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_devnet(config: NodeConfig | None = None, *, out=None) -> None:
    """`aonet up`: start, print URLs/modules/scheduler, serve until Ctrl-C, stop cleanly."""
    out = out or sys.stdout
    devnet = await start_devnet(config)
    print(devnet.describe(), file=out, flush=True)
    if devnet.config.write_config:
        print(f"  config   {config_path(devnet.config.path)}", file=out, flush=True)
    print("Ctrl-C stops the devnet; its state stays in the data directory.", file=out, flush=True)
    try:
        await _wait_for_signal()
    finally:
        print("stopping...", file=out, flush=True)
        await devnet.stop()


# ---- a devnet on its own thread (tests, benchmarks, notebooks) -------------------------------------
class BackgroundDevnet:
    """A Devnet whose event loop runs in a daemon thread; `stop()` is synchronous.

    The loop runs one long-lived main task (not `run_forever`): anyio stops its worker threads when
    the task it takes for the root finishes, and without a root task that was every request's own,
    so each `to_thread` call (CU evaluation, SQLite reads) started a new thread and a new connection."""

    def __init__(self, config: NodeConfig | None = None, **overrides):
        self._loop = new_event_loop(replace(config or NodeConfig(), **overrides).uvloop)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self.devnet: Devnet | None = None
        self._thread = threading.Thread(target=self._run, args=(config, overrides), daemon=True,
                                        name="aonet-devnet")
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error

    def _run(self, config, overrides) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main(config, overrides))
        finally:
            self._ready.set()

    async def _main(self, config, overrides) -> None:
        self._stopped = asyncio.Event()
        try:
            self.devnet = await start_devnet(config, **overrides)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc
            return
        finally:
            self._ready.set()
        await self._stopped.wait()

    def call(self, coro, timeout: float | None = None):
        """Run a coroutine on the devnet's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self.devnet is None:
            return
        self.call(self.devnet.stop(), timeout=60)
        self.devnet = None
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def __getattr__(self, name):
        if self.devnet is None:
            raise AttributeError(name)
        return getattr(self.devnet, name)


def start_background(config: NodeConfig | None = None, **overrides) -> BackgroundDevnet:
    return BackgroundDevnet(config, **overrides)


# ---- command line ----------------------------------------------------------------------------------
def cli_up(args: argparse.Namespace, data_dir: str | os.PathLike | None = None) -> int:
    """Entry point for `aonet up` (args: host, port, separate, fresh, modules, optionally synchronous)."""
    names = getattr(args, "modules", None)
    modules = tuple(m.strip() for m in names.split(",") if m.strip()) if names is not None else None
    unknown = [m for m in modules or () if m not in MODULE_REGISTRY]
    if unknown:
        print(f"aonet up: unknown module {', '.join(unknown)} (known: {', '.join(MODULE_REGISTRY)})", file=sys.stderr)
        return 2
    cfg = NodeConfig(data_dir=Path(data_dir) if data_dir else default_data_dir(),
                     host=getattr(args, "host", None) or "127.0.0.1",
                     port=DEFAULT_PORT if getattr(args, "port", None) is None else args.port,
                     separate=bool(getattr(args, "separate", False)), fresh=bool(getattr(args, "fresh", False)),
                     modules=modules, synchronous=getattr(args, "synchronous", None) or DEVNET_SYNCHRONOUS)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        run_async(run_devnet(cfg), cfg.uvloop)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"aonet up: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aonet.node", description="run an aonet devnet or one unit")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    unit = sub.add_parser("unit")
    unit.add_argument("name", choices=UNITS)
    for sp in (up, unit):
        sp.add_argument("--data-dir", default=str(default_data_dir()))
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=None)
        sp.add_argument("--synchronous", default=DEVNET_SYNCHRONOUS, choices=("NORMAL", "FULL", "EXTRA"),
                        type=str.upper, help="SQLite durability of the log (FULL: survives power loss too)")
        sp.add_argument("--monitor-interval", type=float, default=10.0)
        sp.add_argument("--block-interval-ms", type=int, default=DEFAULT_INTERVAL_MS)
        sp.add_argument("--modules", default=None, help="comma-separated built-in modules to publish")
        sp.add_argument("--log-level", default="warning")
    up.add_argument("--separate", action="store_true")
    up.add_argument("--fresh", action="store_true")
    up.add_argument("--no-links", action="store_true", help="units in this process talk HTTP to each other too")
    up.add_argument("--mu-wallet", choices=("arweave", "ed25519"), default="arweave",
                    help="key type of a new MU key (Ed25519 signs pushes ~30x faster than RSA-4096)")
    for u in UNITS:
        unit.add_argument(f"--{u}-url")
    a = p.parse_args(argv)
    cfg = NodeConfig(data_dir=a.data_dir, host=a.host, synchronous=a.synchronous,
                     monitor_interval=a.monitor_interval, block_interval_ms=a.block_interval_ms,
                     modules=tuple(m for m in a.modules.split(",") if m) if a.modules is not None else None,
                     log_level=a.log_level)
    if a.cmd == "up":
        cfg = replace(cfg, port=DEFAULT_PORT if a.port is None else a.port, separate=a.separate, fresh=a.fresh,
                      links=not a.no_links, mu_wallet_kind=a.mu_wallet)
        with contextlib.suppress(KeyboardInterrupt):
            run_async(run_devnet(cfg), cfg.uvloop)
        return 0
    urls = {u: getattr(a, f"{u}_url") for u in UNITS if getattr(a, f"{u}_url")}
    port = a.port if a.port is not None else DEFAULT_PORT + UNITS.index(a.name)
    cfg = replace(cfg, port=0, ports={a.name: port}, urls=urls)
    with contextlib.suppress(KeyboardInterrupt):
        run_async(run_unit(a.name, cfg), cfg.uvloop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
