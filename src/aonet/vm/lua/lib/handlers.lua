-- Handlers: the ordered list of (name, pattern, handle) a process runs every message through.
-- A pattern's result decides what happens next: true / -1 / "break" runs the handler and stops;
-- 1 / "continue" runs it and goes on; false / 0 / nil / "skip" skips it.
local utils = require("utils")

local Handlers = {list = {}, coroutines = {}, onceNonce = 0}
Handlers.utils = {}

-- outcome of a pattern: "break", "continue" or "skip"
local function outcome(r)
  if r == true or r == "break" then return "break" end
  if r == "continue" then return "continue" end
  if r == nil or r == false or r == "skip" then return "skip" end
  if type(r) == "number" then
    if r < 0 then return "break" elseif r > 0 then return "continue" end
    return "skip"
  end
  return "break" -- any other truthy value
end

local function match(msg, pattern)
  local tp = type(pattern)
  if tp == "function" then return outcome(pattern(msg)) end
  if tp == "string" then return msg.Action == pattern and "break" or "skip" end
  if tp == "table" then return utils.matchesSpec(msg, pattern) and "break" or "skip" end
  return "skip"
end
Handlers.match = match

local function index_of(name)
  for i, h in ipairs(Handlers.list) do
    if h.name == name then return i end
  end
  return nil
end

local function check(name, pattern, handle)
  assert(type(name) == "string", "handler name must be a string")
  local tp = type(pattern)
  assert(tp == "function" or tp == "string" or tp == "table", "handler pattern must be a function, string or table")
  assert(type(handle) == "function" or (type(handle) == "table" and getmetatable(handle)
    and getmetatable(handle).__call), "handler must be a function")
end

-- Handlers.add("Name", handle) uses "Name" as the Action to match.
local function args(name, pattern, handle, maxRuns)
  if handle == nil and (type(pattern) == "function" or type(pattern) == "table"
      and getmetatable(pattern) and getmetatable(pattern).__call) then
    handle, pattern = pattern, name
  end
  check(name, pattern, handle)
  if maxRuns ~= nil and maxRuns ~= "inf" then
    assert(math.type(maxRuns) == "integer" and maxRuns > 0, "maxRuns must be a positive integer or 'inf'")
  end
  return {name = name, pattern = pattern, handle = handle, maxRuns = maxRuns ~= "inf" and maxRuns or nil}
end

--- Add or replace (in place) a handler; new handlers go to the end of the list.
function Handlers.add(name, pattern, handle, maxRuns)
  local h = args(name, pattern, handle, maxRuns)
  local i = index_of(h.name)
  if i then Handlers.list[i].removed = true; Handlers.list[i] = h else table.insert(Handlers.list, h) end
  return #Handlers.list
end

--- Like add, but a replaced handler moves to the end of the list.
function Handlers.append(name, pattern, handle, maxRuns)
  local h = args(name, pattern, handle, maxRuns)
  local i = index_of(h.name)
  if i then table.remove(Handlers.list, i).removed = true end
  table.insert(Handlers.list, h)
  return #Handlers.list
end

--- Add a handler at the front of the list (replacing one with the same name).
function Handlers.prepend(name, pattern, handle, maxRuns)
  local h = args(name, pattern, handle, maxRuns)
  local i = index_of(h.name)
  if i then table.remove(Handlers.list, i).removed = true end
  table.insert(Handlers.list, 1, h)
  return #Handlers.list
end

local function insert_at(pos, name, pattern, handle, maxRuns)
  local h = args(name, pattern, handle, maxRuns)
  local i = index_of(h.name)
  if i then
    table.remove(Handlers.list, i).removed = true
    if i < pos then pos = pos - 1 end
  end
  table.insert(Handlers.list, pos, h)
  return #Handlers.list
end

--- Handlers.before("Other").add(name, pattern, handle) inserts just before "Other".
function Handlers.before(target)
  return {add = function(name, pattern, handle, maxRuns)
    local i = index_of(target) or 1
    return insert_at(i, name, pattern, handle, maxRuns)
  end}
end

--- Handlers.after("Other").add(name, pattern, handle) inserts just after "Other".
function Handlers.after(target)
  return {add = function(name, pattern, handle, maxRuns)
    local i = index_of(target)
    return insert_at(i and i + 1 or #Handlers.list + 1, name, pattern, handle, maxRuns)
  end}
end

--- A handler that runs once, ahead of the others. The name is optional.
function Handlers.once(name, pattern, handle)
  if type(name) ~= "string" then
    name, pattern, handle = nil, name, pattern
  end
  if name == nil then
    Handlers.onceNonce = Handlers.onceNonce + 1
    name = "_once_" .. Handlers.onceNonce
  end
  return Handlers.prepend(name, pattern, handle, 1)
end

function Handlers.remove(name)
  local i = index_of(name)
  if i then table.remove(Handlers.list, i).removed = true end
  return #Handlers.list
end

--- Suspend the running coroutine until a message matching pattern arrives; returns that message.
function Handlers.receive(pattern)
  local co, main = coroutine.running()
  if main then error("Receive can only wait inside a handler", 2) end
  Handlers.once(pattern, function(msg)
    Handlers.coroutines[co] = nil
    local ok, err = coroutine.resume(co, msg)
    if not ok then error(debug.traceback(co, err), 0) end
    if coroutine.status(co) == "suspended" then Handlers.coroutines[co] = true end
  end)
  Handlers.coroutines[co] = true
  return coroutine.yield(pattern)
end

--- Run msg through the handlers. Returns true when no handler stopped the chain.
function Handlers.evaluate(msg, env)
  local list = Handlers.list
  -- iterate over a copy: handlers added while this message runs (Receive, once) wait for the next one
  local snapshot = table.move(list, 1, #list, 1, {})
  local action = msg.Action
  for i = 1, #snapshot do
    local h = snapshot[i]
    if not h.removed then
      local pattern, what = h.pattern, nil
      if type(pattern) == "string" then
        what = action == pattern and "break" or "skip"
      else
        what = match(msg, pattern)
      end
      if what ~= "skip" then
        if h.maxRuns then
          h.maxRuns = h.maxRuns - 1
          if h.maxRuns <= 0 then Handlers.remove(h.name) end
        end
        h.handle(msg, env)
        if what == "break" then return false end
      end
    end
  end
  return true
end

-- Handlers.utils --------------------------------------------------------------------------------

function Handlers.utils.hasMatchingTag(name, value)
  return function(msg)
    local v = msg.Tags and msg.Tags[name]
    if v == nil then v = msg[name] end
    return v == value and "break" or "skip"
  end
end

function Handlers.utils.hasMatchingTagOf(name, values)
  return function(msg)
    for _, value in ipairs(values) do
      if Handlers.utils.hasMatchingTag(name, value)(msg) == "break" then return "break" end
    end
    return "skip"
  end
end

function Handlers.utils.hasMatchingData(value)
  return function(msg) return msg.Data == value and "break" or "skip" end
end

--- A handle function that replies with input (a string: Data; a table: the message).
function Handlers.utils.reply(input)
  return function(msg)
    if type(input) == "string" then return msg.reply({Data = input}) end
    return msg.reply(input)
  end
end

--- Turn a pattern into one that lets the chain continue after a match.
function Handlers.utils.continue(pattern)
  return function(msg)
    return match(msg, pattern) ~= "skip" and "continue" or "skip"
  end
end

return Handlers
