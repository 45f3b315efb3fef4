-- Deterministic JSON encoder for triage reports.
--
-- lua-cjson 2.1.0 (the Debian 12 build) encodes an empty table as {} and
-- emits object keys in hash order, so the same report can print differently
-- from run to run. This encoder fixes both: arrays are recognised by shape,
-- by a marker or by key name, and object keys come out in a fixed order.
--
-- Number format: integers, and floats with an integral value below 2^53,
-- print as plain digits without an exponent (1.0 -> 1). Other floats print
-- with the fewest significant digits (15, 16 or 17) that read back to the
-- same double, so 0.85 stays 0.85, 1e300 stays 1e+300 and no precision is
-- lost. Scores get no special rounding, because the code that computes a
-- score decides its precision.
local cjson = require "cjson"

local M = {}

M.decode = cjson.decode

-- cjson decodes JSON null to this sentinel; it encodes back to null.
M.null = cjson.null

local ARRAY_MARKER = { __name = "triage.json.array" }

-- Keys that come first in every object, in this order. The other keys
-- follow, sorted. One list serves all output shapes (report, diagnosis,
-- match, edge, scan finding, check problem), so a key shared by two shapes
-- sits where it suits both. For example, "line" precedes "text" for ndjson
-- lines, which puts it first in a match object too.
M.key_order = {
  "schema", "records", "file", "line", "text", "source", "lines", "input",
  "findings", "id", "known", "count", "first_line", "last_line", "sample",
  "score", "title", "signature", "signature_zh", "root_cause",
  "root_cause_zh", "domain", "category", "probability", "dead_ends",
  "workarounds", "workarounds_zh", "action", "why_fails", "fail_rate",
  "success_rate", "how", "condition", "distinction", "sources", "versions",
  "os_specific", "official_doc_url", "official_doc_section",
  "verification_tier", "confidence", "fix_success_rate", "match", "start",
  "end", "captures", "transitions", "leads_to", "preceded_by",
  "frequently_confused_with", "remediation", "commands", "check", "notes",
  "runbook", "explain", "guess", "diagnoses", "guesses", "errors",
  "warnings", "script", "field", "message",
}

-- Keys whose value is always a JSON array. An empty Lua table under one of
-- these keys encodes as [] even without the json.array marker, because
-- tables decoded by cjson (such as "sources": []) carry no marker.
M.array_keys = {
  dead_ends = true, workarounds = true, workarounds_zh = true,
  sources = true, versions = true, tags = true, aliases = true,
  leads_to = true, preceded_by = true, frequently_confused_with = true,
  diagnoses = true, guesses = true, errors = true, warnings = true,
  findings = true, remediation = true, commands = true, notes = true,
}


-- Mark t (or a new table) as a JSON array and return it.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MARKER)
end


-- Return true when t was marked by json.array.
function M.is_array_marked(t)
  return getmetatable(t) == ARRAY_MARKER
end


-- ==== strings ============================================================

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return ESCAPES[c] or string.format("\\u%04x", string.byte(c))
end

local REPLACEMENT = "\239\191\189" -- U+FFFD in UTF-8

-- Return the length of the valid UTF-8 sequence starting at byte i of s,
-- or nil plus the number of bytes that form the longest invalid prefix
-- (the "maximal subpart" that Unicode recommends replacing by one U+FFFD).
local function sequence_length(s, i)
  local b = string.byte(s, i)
  local need, lo, hi
  if b < 0x80 then
    return 1
  elseif b >= 0xC2 and b <= 0xDF then
    need, lo, hi = 1, 0x80, 0xBF
  elseif b == 0xE0 then
    need, lo, hi = 2, 0xA0, 0xBF
  elseif b == 0xED then
    need, lo, hi = 2, 0x80, 0x9F -- excludes UTF-16 surrogates
  elseif b >= 0xE1 and b <= 0xEF then
    need, lo, hi = 2, 0x80, 0xBF
  elseif b == 0xF0 then
    need, lo, hi = 3, 0x90, 0xBF
  elseif b >= 0xF1 and b <= 0xF3 then
    need, lo, hi = 3, 0x80, 0xBF
  elseif b == 0xF4 then
    need, lo, hi = 3, 0x80, 0x8F -- caps at U+10FFFF
  else
    return nil, 1
  end

  for k = 1, need do
    local c = string.byte(s, i + k)
    if c == nil or c < lo or c > hi then
      return nil, k
    end
    lo, hi = 0x80, 0xBF
  end
  return need + 1
end


-- Return s with every invalid UTF-8 sequence replaced by U+FFFD.
function M.sanitize_utf8(s)
  if utf8.len(s) then
    return s
  end

  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = sequence_length(s, i)
    if len then
      out[#out + 1] = string.sub(s, i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = REPLACEMENT
      i = i + bad
    end
  end
  return table.concat(out)
end


local function quote(s)
  -- Plain ASCII, most strings, needs neither sanitizing nor escapes.
  if not string.find(s, '[%c"\\\128-\255]') then
    return '"' .. s .. '"'
  end
  s = M.sanitize_utf8(s)
  if not string.find(s, '[%c"\\]') then
    return '"' .. s .. '"'
  end
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    if c == "\127" then
      return c -- DEL is not a control character in JSON
    end
    return escape_char(c)
  end) .. '"'
end

M.quote = quote


-- ==== numbers ============================================================

local function format_number(x)
  if math.type(x) == "integer" then
    return tostring(x)
  end
  if x ~= x or x == math.huge or x == -math.huge then
    return "null"
  end
  if x == math.floor(x) and math.abs(x) < 2^53 then
    -- tostring of the integer prints the same digits faster. -0.0 keeps
    -- string.format, because the integer 0 would lose its sign.
    return x == 0 and string.format("%.0f", x) or tostring(math.tointeger(x))
  end
  for digits = 15, 16 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then
      return s
    end
  end
  return string.format("%.17g", x)
end

M.format_number = format_number


-- ==== tables =============================================================

-- Return the number of elements when t is a non-empty sequence 1..n with no
-- other keys, else nil.
local function sequence_size(t)
  local n = #t
  if n == 0 then
    return nil
  end
  local count = 0
  for _ in pairs(t) do
    count = count + 1
    if count > n then
      return nil
    end
  end
  if count ~= n then
    return nil
  end
  for i = 1, n do
    if t[i] == nil then
      return nil
    end
  end
  return n
end


-- Return the largest positive integer key of a marked array. A marked
-- table with holes is still an array: missing entries encode as null, and
-- keys that are not positive integers are left out.
local function marked_size(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) == "integer" and k > n then
      n = k
    end
  end
  return n
end


-- The JSON path of the value being encoded, for messages: "$", then
-- ".name" or "[i]" per level. Built only when something is wrong, from the
-- keys that state.keys holds for depths 1..depth.
local function path_of(state, depth)
  local parts = { "$" }
  for d = 1, depth do
    local k = state.keys[d]
    parts[#parts + 1] = math.type(k) == "integer" and state.in_array[d]
      and "[" .. k .. "]" or "." .. tostring(k)
  end
  return table.concat(parts)
end


local function key_string(k, state, depth)
  local kind = type(k)
  if kind == "string" then
    return k
  elseif kind == "number" then
    return format_number(k)
  end
  error(string.format("json.encode: %s: object key of type %s cannot be encoded",
    path_of(state, depth), kind), 0)
end


-- Return the object's keys as strings, in output order, and, when some key
-- is not a string, the table from those strings to the keys themselves.
local function ordered_keys(t, state, depth)
  local rank = state.rank
  -- When every key is a string, as in nearly every object, the names are
  -- the keys themselves, and two keys cannot give the same name.
  local names, n, original = {}, 0, nil
  for k in pairs(t) do
    if type(k) ~= "string" then
      original = {}
      break
    end
    n = n + 1
    names[n] = k
  end
  if original then
    names = {}
    for k in pairs(t) do
      local name = key_string(k, state, depth)
      if original[name] ~= nil then
        error(string.format("json.encode: %s: keys %q and %q both encode as %q",
          path_of(state, depth), tostring(original[name]), tostring(k), name), 0)
      end
      original[name] = k
      names[#names + 1] = name
    end
  end
  -- Objects of one kind list the same keys in the same order, so the sorted
  -- order is kept per listing and reused.
  local listing = table.concat(names, "\0")
  local sorted = state.sorted[listing]
  if sorted then
    return sorted, original
  end
  table.sort(names, function(a, b)
    local ra, rb = rank[a], rank[b]
    if ra and rb then
      return ra < rb
    elseif ra or rb then
      return ra ~= nil
    end
    return a < b
  end)
  state.sorted[listing] = names
  return names, original
end


local encode_value

-- The line break and indentation before an item at depth, "" when compact.
local function newline(state, depth)
  local breaks = state.breaks
  if not breaks then
    return ""
  end
  local s = breaks[depth]
  if not s then
    s = "\n" .. string.rep(state.indent, depth)
    breaks[depth] = s
  end
  return s
end


local function encode_array(t, n, state, depth)
  if n == 0 then
    return "[]"
  end
  local parts = {}
  local inner = newline(state, depth + 1)
  state.in_array[depth + 1] = true
  for i = 1, n do
    state.keys[depth + 1] = i
    parts[i] = inner .. encode_value(t[i], state, depth + 1, nil)
  end
  return "[" .. table.concat(parts, ",") .. newline(state, depth) .. "]"
end


local function encode_object(t, state, depth)
  local names, original = ordered_keys(t, state, depth)
  if #names == 0 then
    return "{}"
  end
  local key_texts = state.key_texts
  local inner = newline(state, depth + 1)
  local parts = {}
  for i, name in ipairs(names) do
    state.keys[depth + 1] = name
    state.in_array[depth + 1] = false
    local key = key_texts[name]
    if key == nil then
      key = quote(name) .. (state.indent and ": " or ":")
      key_texts[name] = key
    end
    local k = name
    if original then
      k = original[name]
    end
    parts[i] = inner .. key .. encode_value(t[k], state, depth + 1, name)
  end
  return "{" .. table.concat(parts, ",") .. newline(state, depth) .. "}"
end


local function encode_table(t, state, depth, key)
  if state.open[t] then
    error("json.encode: " .. path_of(state, depth) .. ": table contains itself", 0)
  end
  if depth >= state.max_depth then
    error(string.format("json.encode: %s: nesting deeper than %d levels",
      path_of(state, depth), state.max_depth), 0)
  end

  state.open[t] = true
  local out
  local n = sequence_size(t)
  if n then
    out = encode_array(t, n, state, depth)
  elseif next(t) == nil and (M.is_array_marked(t) or M.array_keys[key]) then
    out = "[]"
  elseif M.is_array_marked(t) then
    out = encode_array(t, marked_size(t), state, depth)
  else
    out = encode_object(t, state, depth)
  end
  state.open[t] = nil
  return out
end


-- Return the text of v from cache, made by encode on first sight.
local function cached(cache, v, encode)
  local text = cache[v]
  if text == nil then
    text = encode(v)
    cache[v] = text
  end
  return text
end


function encode_value(v, state, depth, key)
  local kind = type(v)
  if v == nil or v == cjson.null then
    return "null"
  elseif kind == "boolean" then
    return v and "true" or "false"
  elseif kind == "number" then
    -- Some numbers are formatted each time: 0 and -0.0 share a table key
    -- but print apart, NaN cannot be a key, and past 2^53 an integer and a
    -- float of one value share a key but not a text.
    if v == 0 or v ~= v or v >= 2^53 or v <= -2^53 then
      return format_number(v)
    end
    return cached(state.numbers, v, format_number)
  elseif kind == "string" then
    return cached(state.strings, v, quote)
  elseif kind == "table" then
    return encode_table(v, state, depth, key)
  end
  error(string.format("json.encode: %s: value of type %s cannot be encoded",
    path_of(state, depth), kind), 0)
end


local function rank_of(order)
  local rank = {}
  for i, name in ipairs(order) do
    if rank[name] == nil then
      rank[name] = i
    end
  end
  return rank
end


-- Encode value as JSON text.
-- opts.indent: true for two spaces, a number of spaces, or a string; pretty
--   output puts every array element and object member on its own line.
-- opts.key_order: a list that replaces json.key_order for this call.
-- opts.max_depth: nesting limit (default 200).
-- Raises an error naming the JSON path for functions, userdata, cyclic
-- tables and keys that are neither strings nor numbers.
function M.encode(value, opts)
  opts = opts or {}
  local indent = opts.indent
  if indent == true then
    indent = "  "
  elseif type(indent) == "number" then
    indent = string.rep(" ", indent)
  elseif type(indent) ~= "string" then
    indent = nil
  end

  local state = {
    indent = indent,
    breaks = indent and {} or nil,
    rank = rank_of(opts.key_order or M.key_order),
    key_texts = {}, -- per key name: its quoted text and the colon
    sorted = {}, -- per listing of an object's keys: the keys in output order
    open = {},
    keys = {},
    in_array = {},
    max_depth = opts.max_depth or 200,
    -- The encoded text of each string and number met so far: ids and
    -- counts repeat across a report, and quoting or formatting is most of
    -- the cost of a value.
    strings = {},
    numbers = {},
  }
  return encode_value(value, state, 0, nil)
end


return M
