"""A Python process in one minute.

Spawn a process whose Data is this file (the Process message's Data is the program), then:
  - send it `Action: Hello`           -> it replies `Action: Hello-Reply` and counts visitors;
  - send it `Action: Ask-Balance, Token: <token process id>`
                                      -> it asks that token for its balance, waits for the answer
                                         (the handler sleeps in `await`, across messages), and
                                         replies `Action: Balance-Is` with the amount.
Anything else lands in `inbox`. The owner can inspect state with an Eval: `greetings`.
"""
from ao import on, send

greetings = 0


@on("Hello")
def hello(msg):
    global greetings
    greetings += 1
    print(f"hello number {greetings}")                       # goes to the result's Output
    msg.reply(f"Hello! You are visitor #{greetings}.", Action="Hello-Reply")


@on("Ask-Balance")
async def ask_balance(msg):
    answer = await send(msg.Token, Action="Balance").receive()     # waits for the token's reply
    msg.reply(answer.Data, Action="Balance-Is", Token=msg.Token)
