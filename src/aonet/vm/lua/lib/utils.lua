-- utils: small functional helpers and the message pattern matcher used by Handlers.
local utils = {}

-- '-' alone does not make a pattern: tag values like "Credit-Notice" are plain strings
local MAGIC = "[%^%$%(%)%%%.%[%]%*%+%?]"

--- Does one wanted value match one actual value?
-- want: '_' (anything), a string (exact, then case-insensitive, then an anchored Lua pattern when it
-- contains magic characters), a function(value, msg), or a list of alternatives.
function utils.matchesPattern(want, value, msg)
  if want == "_" then return true end
  local tw = type(want)
  if tw == "function" then return want(value, msg) and true or false end
  if tw == "table" then
    for _, alt in ipairs(want) do
      if utils.matchesPattern(alt, value, msg) then return true end
    end
    return false
  end
  if value == nil then return false end
  if tw == "string" then
    if type(value) ~= "string" then value = tostring(value) end
    if value == want or value:lower() == want:lower() then return true end
    if want:find(MAGIC) then
      local ok, found = pcall(string.find, value, "^" .. want .. "$")
      return ok and found ~= nil
    end
    return false
  end
  return value == want
end

--- Does a message match a spec table {key = wanted, ...}? Keys are looked up on msg, then msg.Tags.
function utils.matchesSpec(msg, spec)
  if type(spec) == "function" then return spec(msg) end
  if type(spec) == "string" then return msg.Action == spec end
  if type(spec) ~= "table" then return false end
  for key, want in pairs(spec) do
    local value = msg[key]
    if value == nil and type(msg.Tags) == "table" then value = msg.Tags[key] end
    if not utils.matchesPattern(want, value, msg) then return false end
  end
  return true
end

function utils.map(f, list)
  local r = {}
  for i, v in ipairs(list) do r[i] = f(v, i) end
  return r
end

function utils.filter(f, list)
  local r = {}
  for _, v in ipairs(list) do if f(v) then r[#r + 1] = v end end
  return r
end

function utils.reduce(f, acc, list)
  for i, v in ipairs(list) do acc = f(acc, v, i) end
  return acc
end

function utils.find(f, list)
  for _, v in ipairs(list) do if f(v) then return v end end
  return nil
end

function utils.includes(value, list)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

--- The keys of a table, sorted (so iteration order never depends on hashing).
function utils.keys(t)
  local r, strings = {}, true
  for k in pairs(t) do
    r[#r + 1] = k
    if strings and type(k) ~= "string" then strings = false end
  end
  if strings then table.sort(r); return r end
  table.sort(r, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return r
end

function utils.values(t)
  local r = {}
  for _, k in ipairs(utils.keys(t)) do r[#r + 1] = t[k] end
  return r
end

function utils.concat(a, b)
  local r = {}
  for _, v in ipairs(a) do r[#r + 1] = v end
  for _, v in ipairs(b) do r[#r + 1] = v end
  return r
end

function utils.propEq(key, value)
  return function(t) return t[key] == value end
end

function utils.isArray(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

return utils
