-- bint: arbitrary-precision signed integers for token quantities.
-- Values are immutable tables {sign, limb1, limb2, ...}: sign is -1, 0 or 1 and limbs are base 10^7,
-- least significant first (10^7 * 10^7 plus carries stays far below 2^63).
-- bint(x) accepts an integer, an integral float, a decimal string ("-123", "+5", "1_000") or a bint.
local bint = {}
bint.__index = bint
bint.__bint = true

local BASE, DIGITS = 10000000, 7
local LIMB_FORMATS = {}
for i = 1, 16 do LIMB_FORMATS[i] = ("%07d"):rep(i) end
local mtype, format, concat = math.type, string.format, table.concat

local function make(sign, limbs)
  -- strip leading zero limbs
  local n = #limbs
  while n > 0 and limbs[n] == 0 do limbs[n] = nil; n = n - 1 end
  if n == 0 then sign = 0 end
  limbs.sign = sign
  return setmetatable(limbs, bint)
end

local function from_integer(i)
  local sign = i < 0 and -1 or (i > 0 and 1 or 0)
  local limbs = {}
  if i == math.mininteger then
    -- -2^63 cannot be negated; split off the last digit
    local q, r = -(i // -BASE), -(i % -BASE)
    limbs[1] = r
    i = q
  else
    i = i < 0 and -i or i
  end
  while i > 0 do limbs[#limbs + 1] = i % BASE; i = i // BASE end
  return make(sign, limbs)
end

local function from_string(s)
  local sign, digits = s:match("^([-+]?)(%d+)$")
  if not digits then
    local text = s:gsub("[_%s]", "")
    sign, digits = text:match("^([-+]?)(%d+)$")
    if not digits then error("bint: not an integer: '" .. s .. "'", 2) end
  end
  if digits:byte(1) == 48 then digits = digits:gsub("^0+", "") end
  local limbs = {}
  local i = #digits
  while i > 0 do
    local j = i - DIGITS + 1
    if j < 1 then j = 1 end
    limbs[#limbs + 1] = tonumber(digits:sub(j, i))
    i = j - 1
  end
  return make(sign == "-" and -1 or 1, limbs)
end

local function is_bint(x) return getmetatable(x) == bint end

--- Convert x to a bint (a no-op for bints).
local function new(x)
  if is_bint(x) then return x end
  local t = mtype(x)
  if t == "integer" then return from_integer(x) end
  if t == "float" then
    local i = math.tointeger(x)
    if i then return from_integer(i) end
    if x ~= x or x == math.huge or x == -math.huge or x ~= math.floor(x) then
      error("bint: not an integer: " .. tostring(x), 2)
    end
    return from_string(format("%.0f", x))
  end
  if type(x) == "string" then return from_string(x) end
  error("bint: cannot convert a " .. type(x), 2)
end
bint.new = new
bint.isbint = is_bint

-- magnitude helpers ------------------------------------------------------------------------------

local function cmp_mag(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
  end
  return 0
end

local function add_mag(a, b)
  local r, carry = {}, 0
  for i = 1, math.max(#a, #b) do
    local s = (a[i] or 0) + (b[i] or 0) + carry
    if s >= BASE then r[i] = s - BASE; carry = 1 else r[i] = s; carry = 0 end
  end
  if carry > 0 then r[#r + 1] = carry end
  return r
end

local function sub_mag(a, b) -- |a| >= |b|
  local r, borrow = {}, 0
  for i = 1, #a do
    local s = a[i] - (b[i] or 0) - borrow
    if s < 0 then r[i] = s + BASE; borrow = 1 else r[i] = s; borrow = 0 end
  end
  return r
end

local function mul_mag(a, b)
  local r = {}
  for i = 1, #a + #b do r[i] = 0 end
  for i = 1, #a do
    local ai, carry = a[i], 0
    if ai ~= 0 then
      for j = 1, #b do
        local cur = r[i + j - 1] + ai * b[j] + carry
        carry = cur // BASE
        r[i + j - 1] = cur % BASE
      end
      local k = i + #b
      while carry > 0 do
        local cur = r[k] + carry
        carry = cur // BASE
        r[k] = cur % BASE
        k = k + 1
      end
    end
  end
  return r
end

local function mul_small(a, m) -- 0 <= m < BASE
  local r, carry = {}, 0
  for i = 1, #a do
    local cur = a[i] * m + carry
    r[i] = cur % BASE; carry = cur // BASE
  end
  if carry > 0 then r[#r + 1] = carry end
  return r
end

local function trim(a)
  local n = #a
  while n > 0 and a[n] == 0 do a[n] = nil; n = n - 1 end
  return a
end

-- quotient and remainder of magnitudes (schoolbook, one base-10^7 digit at a time)
local function divmod_mag(a, b)
  if #b == 1 then
    local d, q, rem = b[1], {}, 0
    for i = #a, 1, -1 do
      local cur = rem * BASE + a[i]
      q[i] = cur // d; rem = cur % d
    end
    return trim(q), trim({rem})
  end
  local q, rem = {}, {}
  for i = #a, 1, -1 do
    -- rem = rem * BASE + a[i]
    table.insert(rem, 1, a[i])
    trim(rem)
    -- binary search the largest digit d with b * d <= rem
    local lo, hi = 0, BASE - 1
    if cmp_mag(rem, b) < 0 then hi = 0 end
    while lo < hi do
      local mid = (lo + hi + 1) // 2
      if cmp_mag(trim(mul_small(b, mid)), rem) <= 0 then lo = mid else hi = mid - 1 end
    end
    q[i] = lo
    if lo > 0 then rem = trim(sub_mag(rem, trim(mul_small(b, lo)))) end
  end
  for i = 1, #a do q[i] = q[i] or 0 end
  return trim(q), rem
end

-- arithmetic -------------------------------------------------------------------------------------

local function copy(a)
  local r = {}
  for i = 1, #a do r[i] = a[i] end
  return r
end

function bint.__add(x, y)
  local a, b = new(x), new(y)
  if a.sign == 0 then return b end
  if b.sign == 0 then return a end
  if a.sign == b.sign then return make(a.sign, add_mag(a, b)) end
  local c = cmp_mag(a, b)
  if c == 0 then return make(0, {}) end
  if c > 0 then return make(a.sign, sub_mag(a, b)) end
  return make(b.sign, sub_mag(b, a))
end

function bint.__unm(x)
  local a = new(x)
  return make(-a.sign, copy(a))
end

function bint.__sub(x, y)
  local a, b = new(x), new(y)
  if b.sign == 0 then return a end
  if a.sign == 0 then return make(-b.sign, copy(b)) end
  if a.sign ~= b.sign then return make(a.sign, add_mag(a, b)) end
  local c = cmp_mag(a, b)
  if c == 0 then return make(0, {}) end
  if c > 0 then return make(a.sign, sub_mag(a, b)) end
  return make(-a.sign, sub_mag(b, a))
end

function bint.__mul(x, y)
  local a, b = new(x), new(y)
  if a.sign == 0 or b.sign == 0 then return make(0, {}) end
  return make(a.sign * b.sign, mul_mag(a, b))
end

--- Truncating division and remainder (the remainder has the dividend's sign).
function bint.tdivmod(x, y)
  local a, b = new(x), new(y)
  if b.sign == 0 then error("bint: division by zero", 2) end
  if a.sign == 0 then return make(0, {}), make(0, {}) end
  local q, r = divmod_mag(a, b)
  return make(a.sign * b.sign, q), make(a.sign, r)
end

--- Floored division and modulo, like Lua's // and % on integers.
function bint.fdivmod(x, y)
  local b = new(y)
  local q, r = bint.tdivmod(x, b)
  if r.sign ~= 0 and r.sign ~= b.sign then
    q = q - 1
    r = r + b
  end
  return q, r
end

function bint.__idiv(x, y) return (bint.fdivmod(x, y)) end
function bint.__mod(x, y) local _, r = bint.fdivmod(x, y); return r end
function bint.__div(x, y) return (bint.fdivmod(x, y)) end
function bint.tdiv(x, y) return (bint.tdivmod(x, y)) end
function bint.tmod(x, y) local _, r = bint.tdivmod(x, y); return r end

function bint.__pow(x, y)
  local base, e = new(x), math.tointeger(y)
  if not e then e = tonumber(tostring(new(y))) end
  if e < 0 then error("bint: negative exponent", 2) end
  local result = new(1)
  while e > 0 do
    if e & 1 == 1 then result = result * base end
    base = base * base
    e = e >> 1
  end
  return result
end
bint.ipow = bint.__pow

local function compare(x, y)
  local a, b = new(x), new(y)
  if a.sign ~= b.sign then return a.sign < b.sign and -1 or 1 end
  local c = cmp_mag(a, b)
  return a.sign >= 0 and c or -c
end
bint.compare = compare

function bint.__eq(x, y) return compare(x, y) == 0 end
function bint.__lt(x, y) return compare(x, y) < 0 end
function bint.__le(x, y) return compare(x, y) <= 0 end
bint.eq, bint.lt, bint.le = bint.__eq, bint.__lt, bint.__le

function bint.__tostring(x)
  local a = new(x)
  if a.sign == 0 then return "0" end
  local n = #a
  local head = (a.sign < 0 and "-" or "") .. a[n]
  if n == 1 then return head end
  local rev = {}
  for i = n - 1, 1, -1 do rev[n - i] = a[i] end
  return head .. format(LIMB_FORMATS[n - 1] or ("%07d"):rep(n - 1), table.unpack(rev))
end
bint.tostring = bint.__tostring

function bint.__tojson(x) return '"' .. bint.__tostring(x) .. '"' end

function bint.__concat(x, y)
  return tostring(x) .. tostring(y)
end

function bint.iszero(x) return new(x).sign == 0 end
function bint.isneg(x) return new(x).sign < 0 end
function bint.ispos(x) return new(x).sign > 0 end
function bint.abs(x) local a = new(x); return a.sign < 0 and -a or a end
function bint.zero() return make(0, {}) end
function bint.one() return from_integer(1) end
function bint.fromstring(s) return from_string(s) end
function bint.frominteger(i) return from_integer(i) end
function bint.max(x, y) return compare(x, y) >= 0 and new(x) or new(y) end
function bint.min(x, y) return compare(x, y) <= 0 and new(x) or new(y) end

--- The value as a Lua integer, or nil when it does not fit in 64 bits.
function bint.tointeger(x)
  local s = bint.__tostring(x)
  return math.tointeger(tonumber(s))
end

--- The value as a float (may lose precision).
function bint.tonumber(x)
  return tonumber(bint.__tostring(x) .. ".0")
end

--- True when s is a canonical non-negative decimal integer string ("0", "42", not "042" or "-1").
function bint.isdecimal(s)
  return type(s) == "string" and (s == "0" or s:match("^[1-9]%d*$") ~= nil)
end

return setmetatable(bint, {__call = function(_, x) return new(x) end})
