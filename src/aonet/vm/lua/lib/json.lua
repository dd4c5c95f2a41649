-- json: JSON for aonet processes. encode/decode are in C (json.c); see there for the exact rules
-- (sorted object keys, integers kept as integers, deterministic float text).
local core = require("json.core")
local json = {encode = core.encode, decode = core.decode}

-- A table with this metatable encodes as an object even when empty.
json.object_mt = {__jsontype = "object"}
function json.object(t) return setmetatable(t or {}, json.object_mt) end
-- A table with this metatable encodes as an array even when empty.
json.array_mt = {__jsontype = "array"}
function json.array(t) return setmetatable(t or {}, json.array_mt) end
-- json.null encodes as null (decoding gives nil).
json.null = setmetatable({}, {__jsontype = "null", __tostring = function() return "null" end})

return json
