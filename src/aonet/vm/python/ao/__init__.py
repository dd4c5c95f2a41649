"""aonet's process API for Python processes (frozen into the CPython module; see docs/python-processes.md).

    from ao import on, send, receive

    @on("Ping")
    def ping(msg):
        msg.reply("pong", Action="Pong")
"""
from ._handlers import ANY, HANDLERS as handlers, INBOX as inbox, assignable, on, once, receive
from ._msg import BadMessage, Msg
from ._outbox import assign, send, spawn
from ._process import PROCESS as process

__all__ = ["ANY", "BadMessage", "Msg", "assign", "assignable", "handlers", "inbox", "on", "once", "process", "receive",
           "send", "spawn"]
