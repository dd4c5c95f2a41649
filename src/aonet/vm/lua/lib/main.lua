-- main: the entry point the C glue calls with the message and env JSON; always returns result JSON.
local json = require("json")
local process = require("process")
_G.process = process

local function traceback(err)
  if type(err) ~= "string" then
    local ok, text = pcall(json.encode, err)
    err = ok and text or tostring(err)
  end
  if err:find("\nstack traceback:", 1, true) then return err end -- already has one (from a coroutine)
  return debug.traceback(err, 2)
end

-- the env is the same for every message of a process: decode it once
local last_env_json, last_env

return function(msg_json, env_json)
  local ok, result = xpcall(function()
    local msg = json.decode(msg_json)
    if env_json ~= last_env_json then
      last_env, last_env_json = json.decode(env_json), env_json
    end
    return process.handle(msg, last_env)
  end, traceback)
  if not ok then result = {Error = result} end
  local encoded, text = pcall(json.encode, result)
  if not encoded then
    text = json.encode({Error = "the result cannot be encoded as JSON: " .. tostring(text)})
  end
  return text
end
