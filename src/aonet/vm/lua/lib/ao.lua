-- ao: the process's view of the network: its identity, its outbox and the trust rules.
-- Outbox entries have AO's shapes: Messages {Target, Data, Anchor, Tags=[{name,value}]},
-- Spawns {Data, Anchor, Tags}, Assignments {Processes, Message}; every tag value is a string.
local json = require("json")
local utils = require("utils")

local ao = {
  _version = "aonet-lua-0.1",
  id = nil,            -- this process's id (env.Process.Id)
  _module = nil,       -- the process's Module tag
  authorities = {},    -- addresses trusted to forward messages (process Authority tags)
  reference = 0,       -- counter behind Reference / Anchor of every outgoing message
  env = {},
  assignables = {},    -- {name, pattern} accepted for assignments (msg.Target ~= ao.id)
  outbox = {Output = nil, Messages = {}, Spawns = {}, Assignments = {}},
}

-- keys of a message table that are not turned into tags
local NOT_TAGS = {Target = true, Data = true, Anchor = true, Tags = true, From = true}

local function tag_value(v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    if math.type(v) == "float" and math.tointeger(v) then return string.format("%d", math.tointeger(v)) end
    return tostring(v)
  end
  if tv == "boolean" then return v and "true" or "false" end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return tostring(v) end
    return json.encode(v)
  end
  error("cannot use a " .. tv .. " as a tag value", 3)
end
ao.tagValue = tag_value

--- The tags of an outgoing message: root keys (sorted) then msg.Tags (list or map, sorted).
local function collect_tags(msg, tags)
  local names = {}
  for k, v in pairs(msg) do
    if type(k) == "string" and not NOT_TAGS[k] and type(v) ~= "function" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do tags[#tags + 1] = {name = k, value = tag_value(msg[k])} end
  local extra = msg.Tags
  if type(extra) == "table" then
    if #extra > 0 or next(extra) == nil then
      for _, t in ipairs(extra) do
        tags[#tags + 1] = {name = tostring(t.name), value = tag_value(t.value)}
      end
    else
      for _, k in ipairs(utils.keys(extra)) do
        tags[#tags + 1] = {name = tostring(k), value = tag_value(extra[k])}
      end
    end
  end
  return tags
end

local function has_tag(tags, name)
  for _, t in ipairs(tags) do if t.name == name then return true end end
  return false
end

-- table Data is sent as JSON with Content-Type: application/json
local function encode_data(data, tags)
  if type(data) == "table" then
    if not has_tag(tags, "Content-Type") then
      tags[#tags + 1] = {name = "Content-Type", value = "application/json"}
    end
    return json.encode(data)
  end
  if data == nil then return "" end
  return tostring(data)
end

local function next_reference()
  ao.reference = ao.reference + 1
  return tostring(ao.reference)
end

--- Set up identity from the env of the current message (done once; env is the same every time).
function ao.init(env)
  ao.env = env
  if ao.id then return end
  local process = env.Process or {}
  ao.id = process.Id
  ao.authorities = {}
  for _, t in ipairs(process.Tags or {}) do
    if t.name == "Module" then ao._module = t.value end
    if t.name == "Authority" then
      for addr in tostring(t.value):gmatch("[^,%s]+") do ao.authorities[#ao.authorities + 1] = addr end
    end
  end
  if not ao._module and env.Module then ao._module = env.Module.Id end
end

function ao.clearOutbox()
  ao.outbox = {Output = nil, Messages = {}, Spawns = {}, Assignments = {}}
end

--- Queue a message. Returns it, with .receive([from]) and .onReply([from,] fn) for the reply.
function ao.send(msg)
  assert(type(msg) == "table", "ao.send: msg must be a table")
  assert(type(msg.Target) == "string", "ao.send: msg.Target must be a string")
  local ref = next_reference()
  local tags = {
    {name = "Data-Protocol", value = "ao"},
    {name = "Variant", value = "ao.TN.1"},
    {name = "Type", value = "Message"},
    {name = "Reference", value = ref},
  }
  collect_tags(msg, tags)
  local message = {Target = msg.Target, Anchor = string.format("%032d", math.tointeger(ref)), Tags = tags}
  message.Data = encode_data(msg.Data, tags)
  table.insert(ao.outbox.Messages, message)
  -- helpers are attached to a proxy so they never reach the JSON outbox
  local target = msg.Target
  return setmetatable({}, {__index = function(_, k)
    if k == "receive" then
      return function(from)
        return Handlers.receive({From = from or target, ["X-Reference"] = ref})
      end
    elseif k == "onReply" then
      return function(from, fn)
        if fn == nil then fn, from = from, target end
        Handlers.once({From = from, ["X-Reference"] = ref}, fn)
      end
    end
    return message[k]
  end})
end

--- Queue a spawn of module. Returns it, with .receive() for the Spawned notice.
function ao.spawn(module, msg)
  assert(type(module) == "string", "ao.spawn: module must be a string")
  msg = msg or {}
  assert(type(msg) == "table", "ao.spawn: msg must be a table")
  local ref = next_reference()
  local tags = {
    {name = "Data-Protocol", value = "ao"},
    {name = "Variant", value = "ao.TN.1"},
    {name = "Type", value = "Process"},
    {name = "From-Process", value = ao.id},
    {name = "From-Module", value = ao._module},
    {name = "Module", value = module},
    {name = "Reference", value = ref},
  }
  collect_tags(msg, tags)
  local spawn = {Anchor = string.format("%032d", math.tointeger(ref)), Tags = tags}
  spawn.Data = msg.Data == nil and "NODATA" or encode_data(msg.Data, tags)
  table.insert(ao.outbox.Spawns, spawn)
  return setmetatable({}, {__index = function(_, k)
    if k == "receive" then
      return function()
        return Handlers.receive({Action = "Spawned", From = ao.id, Reference = ref})
      end
    elseif k == "onReply" then
      return function(fn) Handlers.once({Action = "Spawned", From = ao.id, Reference = ref}, fn) end
    end
    return spawn[k]
  end})
end

--- Queue an assignment of an existing message to other processes.
function ao.assign(assignment)
  assert(type(assignment) == "table", "ao.assign: expected {Processes = {...}, Message = id}")
  assert(type(assignment.Processes) == "table", "ao.assign: Processes must be a list")
  assert(type(assignment.Message) == "string", "ao.assign: Message must be a string")
  local entry = {Processes = {}, Message = assignment.Message}
  for i, p in ipairs(assignment.Processes) do entry.Processes[i] = tostring(p) end
  table.insert(ao.outbox.Assignments, entry)
  return entry
end

--- Trust rule: a message signed by its sender (From == Owner) is trusted; a forwarded one only when
-- the forwarder or sender is one of the process's Authority addresses (or none are set).
function ao.isTrusted(msg)
  if msg.From == msg.Owner then return true end
  if #ao.authorities == 0 then return true end
  for _, a in ipairs(ao.authorities) do
    if msg.From == a or msg.Owner == a then return true end
  end
  return false
end

function ao.isAssignment(msg)
  return msg.Target ~= nil and ao.id ~= nil and msg.Target ~= ao.id
end

function ao.addAssignable(name, pattern)
  if pattern == nil then pattern, name = name, nil end
  if name == nil then name = "_assignable_" .. (#ao.assignables + 1) end
  for i, a in ipairs(ao.assignables) do
    if a.name == name then ao.assignables[i] = {name = name, pattern = pattern}; return end
  end
  table.insert(ao.assignables, {name = name, pattern = pattern})
end

function ao.removeAssignable(name)
  for i, a in ipairs(ao.assignables) do
    if a.name == name then table.remove(ao.assignables, i); return end
  end
end

function ao.isAssignable(msg)
  for _, a in ipairs(ao.assignables) do
    if Handlers.match(msg, a.pattern) ~= "skip" then return true end
  end
  return false
end

--- The outbox as the result JSON of docs/abi.md.
function ao.result(extra)
  local r = {
    Output = ao.outbox.Output or "",
    Messages = json.array(ao.outbox.Messages),
    Spawns = json.array(ao.outbox.Spawns),
    Assignments = json.array(ao.outbox.Assignments),
  }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

return ao
