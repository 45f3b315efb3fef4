-- IPv4 and IPv6 addresses and networks, and Postfix-style network lists.
--
-- An address is { family = 4 or 6, bytes = { ... } } (4 or 16 bytes); a
-- network adds prefix (bits) and text (as written). IPv4-mapped IPv6
-- addresses (::ffff:192.0.2.1) compare as the IPv4 address they carry, as
-- Postfix does for clients of a dual-stack listener.
--
-- Pure Lua with no requires, so it runs in sandboxed rules and in the
-- engine alike.
local M = {}

local function parse_ipv4_bytes(text)
  local bytes = {}
  for part in (text .. "."):gmatch("([^.]*)%.") do
    -- Leading zeros are refused: some parsers read them as octal.
    if not part:match("^%d+$") or #part > 3 or (#part > 1 and part:sub(1, 1) == "0") then
      return nil
    end
    local n = tonumber(part)
    if n > 255 then
      return nil
    end
    bytes[#bytes + 1] = n
  end
  if #bytes ~= 4 then
    return nil
  end
  return bytes
end

local function parse_groups(text)
  local groups = {}
  if text == "" then
    return groups
  end
  for part in (text .. ":"):gmatch("([^:]*):") do
    if not part:match("^%x%x?%x?%x?$") then
      return nil
    end
    groups[#groups + 1] = tonumber(part, 16)
  end
  return groups
end

local function parse_ipv6_bytes(text)
  local v4
  local head = text
  -- A trailing dotted quad stands for the last two groups.
  local prefix, quad = text:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$")
  if quad then
    v4 = parse_ipv4_bytes(quad)
    if not v4 then
      return nil
    end
    head = prefix .. "0:0"
  end

  local left, right = head:match("^(.-)::(.*)$")
  local groups
  if left then
    if right:find("::", 1, true) then
      return nil
    end
    local a, b = parse_groups(left), parse_groups(right)
    if not a or not b or #a + #b > 7 then
      return nil
    end
    groups = a
    for _ = 1, 8 - #a - #b do
      groups[#groups + 1] = 0
    end
    for _, g in ipairs(b) do
      groups[#groups + 1] = g
    end
  else
    groups = parse_groups(head)
    if not groups or #groups ~= 8 then
      return nil
    end
  end

  local bytes = {}
  for i, g in ipairs(groups) do
    bytes[2 * i - 1] = g // 256
    bytes[2 * i] = g % 256
  end
  if v4 then
    for i = 1, 4 do
      bytes[12 + i] = v4[i]
    end
  end
  return bytes
end

-- An IPv4-mapped IPv6 address as its IPv4 address; other addresses as they are.
local function unmap(addr)
  if addr.family ~= 6 then
    return addr
  end
  local b = addr.bytes
  for i = 1, 10 do
    if b[i] ~= 0 then
      return addr
    end
  end
  if b[11] ~= 255 or b[12] ~= 255 then
    return addr
  end
  return { family = 4, bytes = { b[13], b[14], b[15], b[16] } }
end

-- Parse an address: "192.0.2.1", "2001:db8::1", "[2001:db8::1]", and
-- "fe80::1%eth0" (the zone is dropped). Returns the address or nil and a
-- message.
function M.parse_address(text)
  if type(text) ~= "string" then
    return nil, "expected an address string, got " .. type(text)
  end
  local s = text:match("^%s*(.-)%s*$")
  s = s:match("^%[(.*)%]$") or s
  s = s:gsub("%%[%w._-]+$", "")
  if s:find(":", 1, true) then
    local bytes = parse_ipv6_bytes(s)
    if bytes then
      return { family = 6, bytes = bytes }
    end
  else
    local bytes = parse_ipv4_bytes(s)
    if bytes then
      return { family = 4, bytes = bytes }
    end
  end
  return nil, string.format("'%s' is not an IPv4 or IPv6 address", text)
end

-- Parse a network: an address with an optional /prefix, the IPv6 part
-- optionally in brackets as Postfix writes it ("[2001:db8::]/32"). A bare
-- address is a host network (/32 or /128). Host bits set below the prefix
-- are cleared, as Postfix does after its warning. Returns the network or
-- nil and a message.
function M.parse(text)
  if type(text) ~= "string" then
    return nil, "expected a network string, got " .. type(text)
  end
  local s = text:match("^%s*(.-)%s*$")
  local addr_text, bits = s:match("^(.-)/(%d+)$")
  addr_text = addr_text or s
  local addr, err = M.parse_address(addr_text)
  if not addr then
    return nil, string.format("'%s' is not a network: %s", text, err)
  end
  local max = addr.family == 4 and 32 or 128
  local prefix = bits and tonumber(bits) or max
  if prefix > max then
    return nil, string.format("'%s' has a prefix longer than %d bits", text, max)
  end
  local net = { family = addr.family, bytes = {}, prefix = prefix, text = text }
  for i, byte in ipairs(addr.bytes) do
    local keep = math.max(0, math.min(8, prefix - 8 * (i - 1)))
    local mask = (0xff << (8 - keep)) & 0xff
    net.bytes[i] = byte & mask
  end
  return net
end

local function as_address(value)
  if type(value) == "table" then
    return value
  end
  return M.parse_address(value)
end

local function as_network(value)
  if type(value) == "table" then
    return value
  end
  return M.parse(value)
end

-- True when the network holds the address; nil and a message when either
-- does not parse. Both may be tables from parse() or text.
function M.contains(network, address)
  local net, err = as_network(network)
  if not net then
    return nil, err
  end
  local addr
  addr, err = as_address(address)
  if not addr then
    return nil, err
  end
  if net.family == 4 then
    addr = unmap(addr)
  end
  if addr.family ~= net.family then
    return false
  end
  for i = 1, #net.bytes do
    local keep = math.max(0, math.min(8, net.prefix - 8 * (i - 1)))
    if keep == 0 then
      break
    end
    local mask = (0xff << (8 - keep)) & 0xff
    if addr.bytes[i] & mask ~= net.bytes[i] then
      return false
    end
  end
  return true
end

-- Canonical text of an address: dotted quad, or RFC 5952 IPv6 (lower
-- case, longest run of two or more zero groups as "::").
function M.format(address)
  local addr = assert(as_address(address))
  local b = addr.bytes
  if addr.family == 4 then
    return string.format("%d.%d.%d.%d", b[1], b[2], b[3], b[4])
  end
  local groups = {}
  for i = 1, 8 do
    groups[i] = b[2 * i - 1] * 256 + b[2 * i]
  end
  local best_start, best_len, start = nil, 1, nil
  for i = 1, 9 do
    if i <= 8 and groups[i] == 0 then
      start = start or i
    elseif start then
      if i - start > best_len then
        best_start, best_len = start, i - start
      end
      start = nil
    end
  end
  local parts = {}
  for i = 1, 8 do
    parts[i] = string.format("%x", groups[i])
  end
  if not best_start then
    return table.concat(parts, ":")
  end
  local left = table.concat(parts, ":", 1, best_start - 1)
  local right = table.concat(parts, ":", best_start + best_len, 8)
  return left .. "::" .. right
end

-- The address as a host network in Postfix syntax: "192.0.2.1/32" or
-- "[2001:db8::1]/128".
function M.host_network(address)
  local addr = assert(as_address(address))
  addr = unmap(addr)
  if addr.family == 4 then
    return M.format(addr) .. "/32"
  end
  return "[" .. M.format(addr) .. "]/128"
end

-- Split a network list as Postfix writes mynetworks: entries separated by
-- commas and white space.
function M.split(list)
  local out = {}
  if type(list) == "table" then
    for i, entry in ipairs(list) do
      out[i] = entry
    end
    return out
  end
  for entry in tostring(list or ""):gmatch("[^%s,]+") do
    out[#out + 1] = entry
  end
  return out
end

--[[
Find the entry of a network list that decides about an address, reading
left to right as Postfix match lists do: the first entry that matches
wins, and a leading "!" makes it exclude. Entries that cannot be evaluated
here (type:table lookups, /file/name patterns, host names) are listed in
unknown; when one of them comes before the first match, the answer may
differ on the server.
Returns { inside = true | false, entry = "the deciding entry" or nil,
          unknown = { ... }, certain = true | false }.
]]
function M.match_list(list, address)
  local result = { inside = false, unknown = {}, certain = true }
  local addr, err = as_address(address)
  if not addr then
    error(err, 2)
  end
  for _, entry in ipairs(M.split(list)) do
    local negated = entry:sub(1, 1) == "!"
    local text = negated and entry:sub(2) or entry
    local net = M.parse(text)
    if net == nil then
      result.unknown[#result.unknown + 1] = entry
      result.certain = false
    elseif M.contains(net, addr) then
      result.inside = not negated
      result.entry = entry
      return result
    end
  end
  return result
end

return M
