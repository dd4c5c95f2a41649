-- Token blueprint: AO's standard token (aos blueprints/token.lua), balances as decimal strings of any size.
-- Load it with Eval (Data = this file) or at spawn (tag On-Boot = Data, process Data = this file).
-- Set Name / Ticker / Denomination / Logo / Balances before loading to override the defaults.
-- Actions: Info, Balance, Balances, Transfer, Mint, Total-Supply, Burn. The Python blueprint
-- (ao.blueprints.token) answers every message with the same messages: tests/token_cases.py runs on both.
local bint = require("bint")
local json = require("json")

local GRAY, BLUE, GREEN, RESET = "\27[90m", "\27[34m", "\27[32m", "\27[0m"

Denomination = Denomination or 12
Name = Name or "Points Coin"
Ticker = Ticker or "PNTS"
Logo = Logo or "SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY"
Balances = Balances or {[ao.id] = tostring(bint(10000) * bint(10) ^ Denomination)}

local function total()
  local sum = bint(0)
  for _, v in pairs(Balances) do sum = sum + bint(v) end
  return tostring(sum)
end
TotalSupply = TotalSupply or total()

-- A quantity must be a canonical positive decimal integer string ("1", "250"; not "01", "-5", "1.5").
local function quantity(msg)
  local q = msg.Quantity
  assert(type(q) == "string", "Quantity is required!")
  assert(bint.isdecimal(q), "Quantity must be a decimal integer string!")
  local n = bint(q)
  assert(bint.ispos(n), "Quantity must be greater than 0!")
  return n
end

-- The message's X- tags, in the order they came (first value wins), added to `out`.
local function x_tags(msg, out)
  for _, t in ipairs(msg.TagArray or {}) do
    if type(t.name) == "string" and t.name:sub(1, 2) == "X-" and out[t.name] == nil then out[t.name] = t.value end
  end
  return out
end

Handlers.add("Info", "Info", function(msg)
  msg.reply({
    Name = Name, Ticker = Ticker, Logo = Logo, Denomination = tostring(Denomination),
    Data = json.encode({name = Name, ticker = Ticker, logo = Logo,
      denomination = tostring(Denomination), supply = TotalSupply}),
  })
end)

-- AO's rule: the balance of Recipient, else of a Target tag that holds one, else of the sender.
Handlers.add("Balance", "Balance", function(msg)
  local recipient, target = msg.Tags.Recipient, msg.Tags.Target
  local balance
  if recipient then
    balance = Balances[recipient]
  elseif target and Balances[target] then
    balance = Balances[target]
  else
    balance = Balances[msg.From]
  end
  balance = balance or "0"
  msg.reply({Balance = balance, Ticker = Ticker, Account = recipient or msg.From, Data = balance})
end)

Handlers.add("Balances", "Balances", function(msg)
  msg.reply({Data = json.encode(json.object(Balances))})
end)

Handlers.add("Transfer", "Transfer", function(msg)
  local recipient = msg.Recipient
  assert(type(recipient) == "string" and recipient ~= "", "Recipient is required!")
  local qty = quantity(msg)
  -- as in aos, both accounts exist from now on, even when the transfer is refused
  Balances[msg.From] = Balances[msg.From] or "0"
  Balances[recipient] = Balances[recipient] or "0"
  local have = bint(Balances[msg.From])
  if qty > have then
    msg.reply({Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!"})
    return
  end
  Balances[msg.From] = tostring(have - qty)
  Balances[recipient] = tostring(bint(Balances[recipient]) + qty)
  if msg.Cast then return end
  local q = msg.Quantity
  msg.reply(x_tags(msg, {
    Action = "Debit-Notice", Recipient = recipient, Quantity = q,
    Data = GRAY .. "You transferred " .. BLUE .. q .. GRAY .. " to " .. GREEN .. recipient .. RESET,
  }))
  Send(x_tags(msg, {
    Target = recipient, Action = "Credit-Notice", Sender = msg.From, Quantity = q,
    Data = GRAY .. "You received " .. BLUE .. q .. GRAY .. " from " .. GREEN .. msg.From .. RESET,
  }))
end)

-- The process itself or its owner may mint (aos: the process only); the minter's balance grows.
Handlers.add("Mint", "Mint", function(msg)
  local qty = quantity(msg)
  if msg.From ~= ao.id and msg.From ~= Owner then
    msg.reply({Action = "Mint-Error", ["Message-Id"] = msg.Id,
               Error = "Only the process or its owner can mint new " .. Ticker .. " tokens!"})
    return
  end
  Balances[msg.From] = tostring(bint(Balances[msg.From] or "0") + qty)
  TotalSupply = tostring(bint(TotalSupply) + qty)
  msg.reply({Data = GRAY .. "Successfully minted " .. BLUE .. msg.Quantity .. RESET})
end)

Handlers.add("Total-Supply", "Total-Supply", function(msg)
  assert(msg.From ~= ao.id, "Cannot call Total-Supply from the same process!")
  msg.reply({Action = "Total-Supply", Data = TotalSupply, Ticker = Ticker})
end)

Handlers.add("Burn", "Burn", function(msg)
  local qty = quantity(msg)
  local have = bint(Balances[msg.From] or "0")
  assert(qty <= have, "Quantity must be less than or equal to the current balance!")
  Balances[msg.From] = tostring(have - qty)
  TotalSupply = tostring(bint(TotalSupply) - qty)
  msg.reply({Data = GRAY .. "Successfully burned " .. BLUE .. msg.Quantity .. RESET})
end)

return "token loaded: " .. Name .. " (" .. Ticker .. ")"
