"""The aonet Python SDK, shaped like aoconnect.

    from aonet.client import connect
    ao = connect(mu_url=..., cu_url=..., su_url=..., wallet="wallet.json")
    pid = ao.spawn(module_id)                       # scheduler asked from the SU when omitted
    mid = ao.message(pid, data="1 + 1", tags={"Action": "Eval"})
    print(ao.result(mid, pid).text)

`connect_async` gives the same API as coroutines. Both drive the pure flows of `aonet.client.core`.
"""
from .aio import AsyncClient, connect_async
from .core import Endpoints
from .errors import (AoError, CascadeTimeout, ConfigError, ProtocolError, RateLimited, UnitError,
                     UnitUnreachable)
from .sync import Client, connect
from .trace import Trace, TraceTask
from .types import (ItemView, OutboxAssignment, OutboxMessage, OutboxSpawn, Owner, ProcessInfo, Result, ResultEdge,
                    ResultsPage, Scheduled, SchedulePage, Sent)

__all__ = ["AoError", "AsyncClient", "CascadeTimeout", "Client", "ConfigError", "Endpoints", "ItemView",
           "OutboxAssignment", "OutboxMessage", "OutboxSpawn", "Owner", "ProcessInfo", "ProtocolError",
           "RateLimited", "Result", "ResultEdge", "ResultsPage", "Scheduled", "SchedulePage", "Sent", "Trace",
           "TraceTask", "UnitError", "UnitUnreachable", "connect", "connect_async"]
