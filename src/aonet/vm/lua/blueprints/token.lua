-- Token blueprint: a fungible token with balances held as decimal strings (arbitrary precision).
-- Load it with Eval (Data = this file) or at spawn (tag On-Boot = Data, process Data = this file).
-- Set Name / Ticker / Denomination / Logo / Balances before loading to override the defaults.
-- Actions: Info, Balance, Balances, Transfer, Mint, Total-Supply, Burn.
local bint = require("bint")
local json = require("json")

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

-- A quantity must be a canonical positive decimal integer string.
local function quantity(msg)
  local q = msg.Quantity
  assert(type(q) == "string", "Quantity is required and must be a string")
  assert(bint.isdecimal(q), "Quantity must be a decimal integer string")
  local n = bint(q)
  assert(bint.ispos(n), "Quantity must be greater than 0")
  return n
end

local function x_tags(msg, out)
  for name, value in pairs(msg.Tags) do
    if type(name) == "string" and name:sub(1, 2) == "X-" then out[name] = value end
  end
  return out
end

Handlers.add("Info", "Info", function(msg)
  msg.reply({
    Name = Name, Ticker = Ticker, Logo = Logo, Denomination = tostring(Denomination),
    ["Total-Supply"] = TotalSupply,
    Data = json.encode({name = Name, ticker = Ticker, logo = Logo,
      denomination = tostring(Denomination), supply = TotalSupply}),
  })
end)

Handlers.add("Balance", "Balance", function(msg)
  local account = msg.Tags.Recipient or msg.Tags.Target or msg.From
  local balance = Balances[account] or "0"
  msg.reply({Balance = balance, Ticker = Ticker, Account = account, Data = balance})
end)

Handlers.add("Balances", "Balances", function(msg)
  msg.reply({Data = json.encode(json.object(Balances))})
end)

Handlers.add("Transfer", "Transfer", function(msg)
  local recipient = msg.Recipient
  assert(type(recipient) == "string" and recipient ~= "", "Recipient is required")
  local qty = quantity(msg)
  local have = bint(Balances[msg.From] or "0")
  if qty > have then
    msg.reply({Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!"})
    return
  end
  Balances[msg.From] = tostring(have - qty)
  Balances[recipient] = tostring(bint(Balances[recipient] or "0") + qty)
  if msg.Cast then return end
  local q = tostring(qty)
  msg.reply(x_tags(msg, {
    Action = "Debit-Notice", Recipient = recipient, Quantity = q,
    Data = "You transferred " .. q .. " to " .. recipient,
  }))
  Send(x_tags(msg, {
    Target = recipient, Action = "Credit-Notice", Sender = msg.From, Quantity = q,
    Data = "You received " .. q .. " from " .. msg.From,
  }))
end)

Handlers.add("Mint", "Mint", function(msg)
  if msg.From ~= ao.id and msg.From ~= Owner then
    msg.reply({Action = "Mint-Error", Error = "Only the process owner can mint new " .. Ticker .. " tokens!"})
    return
  end
  local qty = quantity(msg)
  Balances[msg.From] = tostring(bint(Balances[msg.From] or "0") + qty)
  TotalSupply = tostring(bint(TotalSupply) + qty)
  msg.reply({Data = "Successfully minted " .. tostring(qty)})
end)

Handlers.add("Total-Supply", "Total-Supply", function(msg)
  assert(msg.From ~= ao.id, "Cannot call Total-Supply from the same process!")
  msg.reply({Action = "Total-Supply", Data = TotalSupply, Ticker = Ticker})
end)

Handlers.add("Burn", "Burn", function(msg)
  local qty = quantity(msg)
  local have = bint(Balances[msg.From] or "0")
  if qty > have then
    msg.reply({Action = "Burn-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!"})
    return
  end
  Balances[msg.From] = tostring(have - qty)
  TotalSupply = tostring(bint(TotalSupply) - qty)
  msg.reply({Data = "Successfully burned " .. tostring(qty)})
end)

return "token loaded: " .. Name .. " (" .. Ticker .. ")"
