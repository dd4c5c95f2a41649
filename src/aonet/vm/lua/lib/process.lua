-- process: the aos-compatible process runtime. process.handle(msg, env) runs one message and
-- returns the result table (Output, Messages, Spawns, Assignments, or Error).
local json = require("json")
local utils = require("utils")
local ao = require("ao")
local Handlers = require("handlers")

local process = {}
local byte = string.byte

-- Globals every process sees (aos names) ---------------------------------------------------------
_G.json = json
_G.utils = utils
_G.Utils = utils
_G.bint = require("bint")
_G.ao = ao
_G.Handlers = Handlers
Inbox = Inbox or {}
MAX_INBOX = 10000

package.loaded[".json"] = json
package.loaded[".utils"] = utils
package.loaded[".ao"] = ao
package.loaded[".handlers"] = Handlers
package.loaded[".handlers-utils"] = Handlers.utils
package.loaded[".bint"] = function() return _G.bint end  -- aos: require('.bint')(256)

function Send(msg) return ao.send(msg) end
function Spawn(module, msg)
  if type(module) == "table" and msg == nil then
    -- Spawn({Module = ..., ...}): the module comes from the table (default: this process's own)
    msg = {}
    for k, v in pairs(module) do if k ~= "Module" then msg[k] = v end end
    module = module.Module or ao._module
  end
  return ao.spawn(module, msg)
end
function Assign(assignment) return ao.assign(assignment) end
function Receive(pattern) return Handlers.receive(pattern) end
function Prompt() return "aonet> " end

-- print is captured into the message's Output --------------------------------------------------------
local printed = {}
function print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  printed[#printed + 1] = table.concat(parts, "\t")
end
if io then
  io.write = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    printed[#printed + 1] = table.concat(parts)
    return io
  end
end

-- Determinism: time comes from the message, random numbers from a seeded generator ------------------
local now = 0
os.time = function(t)
  if t ~= nil then error("os.time(table) is not available in a process", 2) end
  return now
end
os.clock = function() return 0 end
os.exit = function() error("os.exit is not available in a process", 2) end
os.getenv = function() return nil end
os.execute = nil
os.tmpname = nil
os.remove = nil
os.rename = nil

-- xoshiro256** over Lua's 64-bit integers; seeded from the first message
local S = {0x180EC6D33CFD0ABA, 0xD5A61266F0C9392C, 0xA9582618E03FC9AA, 0x39ABDC4529B1661C}
local function rotl(x, k) return (x << k) | (x >> (64 - k)) end
local function next64()
  local s0, s1, s2, s3 = S[1], S[2], S[3], S[4]
  local result = rotl(s1 * 5, 7) * 9
  local t = s1 << 17
  s2 = s2 ~ s0; s3 = s3 ~ s1; s1 = s1 ~ s2; s0 = s0 ~ s3
  s2 = s2 ~ t; s3 = rotl(s3, 45)
  S[1], S[2], S[3], S[4] = s0, s1, s2, s3
  return result
end

local function seed(text)
  -- FNV-1a 64 over the text, spread into the four words with splitmix64
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #text do h = (h ~ text:byte(i)) * 1099511628211 end
  for i = 1, 4 do
    h = h + -7046029254386353131 -- 0x9e3779b97f4a7c15
    local z = h
    z = (z ~ (z >> 30)) * -4658895280553007687
    z = (z ~ (z >> 27)) * -7723592293110705685
    S[i] = z ~ (z >> 31)
  end
  if S[1] | S[2] | S[3] | S[4] == 0 then S[1] = 1 end
end

local function project(lo, hi) -- uniform integer in [lo, hi]
  local range = hi - lo
  if range < 0 then error("bad argument to 'random' (interval is empty)", 3) end
  if range == -1 or range >= math.maxinteger then return lo + next64() end
  local n = range + 1
  local limit = math.maxinteger - (math.maxinteger % n) -- reject the biased tail
  while true do
    local r = next64() & math.maxinteger
    if r < limit then return lo + r % n end
  end
end

math.random = function(m, n)
  if m == nil then return (next64() >> 11) * (1.0 / 9007199254740992.0) end
  m = math.tointeger(m) or error("bad argument #1 to 'random' (number has no integer representation)", 2)
  if n == nil then return project(1, m) end
  n = math.tointeger(n) or error("bad argument #2 to 'random' (number has no integer representation)", 2)
  return project(m, n)
end
math.randomseed = function(x) seed(tostring(x)) end

-- Messages -----------------------------------------------------------------------------------------

-- tags that stay in msg.Tags and are not lifted onto msg
local NOT_LIFTED = {
  ["Data-Protocol"] = true, Variant = true, ["From-Process"] = true, ["From-Module"] = true,
  Type = true, From = true, Owner = true, Anchor = true, Target = true, Data = true, Tags = true,
  ["Read-Only"] = true,
}

-- "block_height" / "action" -> "Block-Height" / "Action" (HyperBEAM sends lower-case keys)
local function title_case(name)
  return (name:gsub("_", "-"):gsub("(%a)([%w]*)", function(a, b) return a:upper() .. b end))
end

local function normalize(msg)
  local lower
  -- messages from a legacy CU carry these keys in Title-Case; only others need the (costly) pass
  if msg.From == nil or msg.Tags == nil or msg.Timestamp == nil or msg["Block-Height"] == nil then
    for k in pairs(msg) do
    if type(k) == "string" then
      local b = byte(k, 1)
      if b and ((b >= 97 and b <= 122) or b == 95) then lower = lower or {}; lower[#lower + 1] = k end
    end
  end end
  if lower then
    table.sort(lower)
    for _, k in ipairs(lower) do
      local t = title_case(k)
      if msg[t] == nil then msg[t] = msg[k] end
    end
  end
  local list = msg.Tags
  if type(list) ~= "table" then list = {} end
  local map = {}
  if #list == 0 and next(list) ~= nil then
    -- a map of tags: turn it into a sorted list
    local l = {}
    for _, k in ipairs(utils.keys(list)) do l[#l + 1] = {name = k, value = list[k]} end
    list = l
  end
  for _, t in ipairs(list) do
    local name, value = t.name, t.value
    if type(name) == "string" then
      if map[name] == nil then map[name] = value end
      if not NOT_LIFTED[name] and msg[name] == nil then msg[name] = value end
    end
  end
  msg.TagArray = list
  msg.Tags = map
  if msg.Type == nil then msg.Type = map.Type end
  if msg.Data == nil then msg.Data = "" end
  if map["Content-Type"] == "application/json" and type(msg.Data) == "string" then
    local ok, decoded = pcall(json.decode, msg.Data)
    if ok then msg.Data = decoded end
  end
  return msg
end
process.normalize = normalize

-- tags that are not copied when a message is forwarded
local NOT_FORWARDED = {
  ["Data-Protocol"] = true, Variant = true, Type = true, ["From-Process"] = true, ["From-Module"] = true,
  Reference = true, ["Pushed-For"] = true, ["Read-Only"] = true, From = true, Owner = true,
}

local function attach_helpers(msg)
  msg.reply = function(reply)
    if type(reply) ~= "table" then reply = {Data = reply} end
    reply.Target = msg["Reply-To"] or reply.Target or msg.From
    reply["X-Reference"] = msg["X-Reference"] or msg.Reference
    reply["X-Origin"] = msg["X-Origin"]
    return ao.send(reply)
  end
  msg.forward = function(target, extra)
    local fwd = {Target = target, Data = msg.Data, Tags = {}}
    for _, t in ipairs(msg.TagArray) do
      if not NOT_FORWARDED[t.name] then table.insert(fwd.Tags, {name = t.name, value = t.value}) end
    end
    local set = {}
    for k, v in pairs(extra or {}) do
      if k ~= "Tags" and k ~= "Target" then set[k] = v end
    end
    set["X-Reference"] = msg["X-Reference"] or msg.Reference
    set["X-Origin"] = msg["X-Origin"] or msg.From
    set["Reply-To"] = msg["Reply-To"] or msg.From
    -- values set here replace forwarded tags of the same name
    local kept = {}
    for _, t in ipairs(fwd.Tags) do if set[t.name] == nil then kept[#kept + 1] = t end end
    fwd.Tags = kept
    for k, v in pairs(set) do if k == "Data" then fwd.Data = v else fwd[k] = v end end
    return ao.send(fwd)
  end
  return msg
end

-- Eval -----------------------------------------------------------------------------------------

local function show(v)
  if type(v) == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return tostring(v) end
    local ok, text = pcall(json.encode, v)
    if ok then return text end
  end
  return tostring(v)
end

--- Run Lua source in the global environment; returns the text of its value (or nil).
function process.eval(source, chunkname)
  local fn, err = load("return " .. source, chunkname or "=eval", "t", _G)
  if not fn then fn, err = load(source, chunkname or "=eval", "t", _G) end
  if not fn then error(err, 0) end
  local results = table.pack(fn())
  if results.n == 0 or (results.n == 1 and results[1] == nil) then return nil end
  local parts = {}
  for i = 1, results.n do parts[i] = show(results[i]) end
  return table.concat(parts, "\t")
end

local eval_value -- the value of the last Eval in this message, shown after printed output

Handlers.prepend("_eval", function(msg)
  return msg.Action == "Eval" and (msg.From == Owner or msg.From == ao.id) and "break" or "skip"
end, function(msg)
  local value = process.eval(type(msg.Data) == "string" and msg.Data or "", "=eval")
  eval_value = value or ""
end)

-- Handling one message ----------------------------------------------------------------------------

local booted = false

local function output_text()
  local lines = {}
  for i, line in ipairs(printed) do lines[i] = line end
  if eval_value ~= nil and eval_value ~= "" then lines[#lines + 1] = eval_value end
  return table.concat(lines, "\n")
end

local function run_in_coroutine(fn, ...)
  local co = coroutine.create(fn)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    error(debug.traceback(co, type(err) == "string" and err or show(err)), 0)
  end
  if coroutine.status(co) == "suspended" then Handlers.coroutines[co] = true end
end

function process.handle(msg, env)
  assert(type(msg) == "table", "message must be a JSON object")
  env = type(env) == "table" and env or {}
  ao.init(env)
  ao.clearOutbox()
  printed = {}
  eval_value = nil
  now = math.tointeger(msg.Timestamp) or tonumber(msg.Timestamp) or now

  normalize(msg)
  if Owner == nil then
    Owner = msg.From or msg.Owner
    seed(table.concat({tostring(msg["Block-Height"]), tostring(msg.Owner), tostring(ao._module),
      tostring(msg.Id)}, "|"))
  end
  attach_helpers(msg)

  if not booted and msg.Type == "Process" then
    booted = true
    local on_boot = msg.Tags["On-Boot"]
    if on_boot == "Data" then
      local source = type(msg.Data) == "string" and msg.Data or ""
      run_in_coroutine(function() process.eval(source, "=boot") end)
    elseif on_boot ~= nil then
      print("On-Boot " .. tostring(on_boot) .. ": loading code from a transaction is not supported")
    end
  end

  if not ao.isTrusted(msg) then
    print("Message is not trusted by this process! From: " .. tostring(msg.From)
      .. " Owner: " .. tostring(msg.Owner))
  elseif ao.isAssignment(msg) and not ao.isAssignable(msg) then
    print("Assignment is not trusted by this process!")
  else
    run_in_coroutine(function()
      local unhandled = Handlers.evaluate(msg, env)
      if unhandled and msg.Type ~= "Process" then
        Inbox[#Inbox + 1] = msg
        local n = #Inbox
        if n > MAX_INBOX + MAX_INBOX // 10 then
          -- drop the oldest in one move (amortised: not one O(n) shift per message)
          local drop = n - MAX_INBOX
          table.move(Inbox, drop + 1, n, 1)
          for i = n - drop + 1, n do Inbox[i] = nil end
        end
      end
    end)
  end

  local text = output_text()
  if eval_value ~= nil or text ~= "" then
    ao.outbox.Output = {data = text, prompt = Prompt()}
  end
  return ao.result()
end

return process
