-- The emlua test module's entry: AO's module ABI around aonet's aos-compatible process library.
-- Returns the function handle(msg_json, env_json) -> '{"ok":true,"response":{...}}'.
local json = require("json")
local process = require("process")
_G.process = process

local function traceback(err)
  if type(err) ~= "string" then
    local ok, text = pcall(json.encode, err)
    err = ok and text or tostring(err)
  end
  if err:find("\nstack traceback:", 1, true) then return err end
  return debug.traceback(err, 2)
end

return function(msg_json, env_json)
  local ok, result = xpcall(function()
    return process.handle(json.decode(msg_json), json.decode(env_json))
  end, traceback)
  -- like aos: a failing handler is a result with Error, not a failed call
  if not ok then result = {Error = result} end
  local encoded, text = pcall(json.encode, {ok = true, response = result})
  if not encoded then
    text = json.encode({ok = false, response = "the result cannot be encoded as JSON: " .. tostring(text)})
  end
  return text
end
