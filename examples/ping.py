"""Ping-pong between processes: the Python twin of ping.lua.

    aonet spawn --python --load examples/ping.py     # twice: processes A and B
    aonet send A --action Ping --cascade             # A answers you: "pong"
    aonet send A --action Ask --tag Peer=B --cascade # A pings B, waits for B's pong, answers you
    aonet shell B                                    # then type: ping("A")
"""
from ao import on, send

pongs = 0


@on("Ping")
def on_ping(msg):
    msg.reply("pong", Action="Pong")          # to whoever sent the Ping


@on("Pong")
def on_pong(msg):
    global pongs
    pongs += 1
    print(f"pong from {msg.From} ({pongs} so far)")     # print() goes to the result's Output


def ping(target):
    """Call it from the shell: the Pong comes back later, as a message of its own."""
    send(target, Action="Ping")


@on("Ask")
async def ask(msg):
    answer = await send(msg.Peer, Action="Ping").receive()   # sleeps here until the Peer replies
    msg.reply(f"{msg.Peer} said {answer.Data}", Action="Asked")
