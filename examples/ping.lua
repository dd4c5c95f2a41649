-- ping.lua: the smallest useful aonet process. Load it into a Lua process:
--
--   aonet spawn --lua --load examples/ping.lua          (prints the new process id)
--   aonet send PID --action Ping --cascade              (the reply "pong" comes back to you)
--
-- Every global (Pongs, the handlers) is process state: it lives on between messages, because the
-- process's memory is kept by the Compute Unit and rebuilt from the message log when needed.

Pongs = Pongs or 0   -- "or": loading the file twice keeps the count

-- Someone sent Action=Ping: answer them. msg.reply sends a message back to msg.From (a wallet or
-- another process), tagged X-Reference so the sender can match it to its question.
Handlers.add("ping", "Ping", function(msg)
  msg.reply({Action = "Pong", Data = "pong"})
end)

-- A Pong came back (we pinged someone): count it. print() goes into this message's Output.
Handlers.add("pong", "Pong", function(msg)
  Pongs = Pongs + 1
  print("pong from " .. msg.From .. " (" .. Pongs .. " so far)")
end)

-- Ping another process from here, e.g. in `aonet shell`:  ping("<other process id>")
function ping(target)
  Send({Target = target, Action = "Ping"})
end

return "ping loaded"
