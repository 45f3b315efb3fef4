-- Diagnose systemd journal entries.
--
-- Reads `journalctl -o json` output (one JSON object per line) on standard
-- input and prints one JSON line per entry whose MESSAGE shows a known
-- problem:
--   {"time": "2024-12-04T03:12:41.000123Z", "unit": "postfix@-.service",
--    "message": "...", "diagnoses": [{"id": ..., "score": ..., "root_cause": ...}]}
-- "time" comes from __REALTIME_TIMESTAMP (UTC) and "unit" from
-- _SYSTEMD_UNIT; either is left out when the entry lacks it.
--
--   journalctl -u postfix -o json --since today |
--     LUA_CPATH="PREFIX/lib/lua/5.4/?.so;;" lua5.4 examples/journal.lua
--
-- Exit status as the triage tool's: 0 something was diagnosed, 1 nothing
-- matched, 2 the engine cannot start.
local triage = require "triage"

local cjson = triage.cjson

-- journald writes MESSAGE as an array of bytes when it is not valid UTF-8.
local function message_text(value)
  if type(value) == "string" then
    return value
  end
  if type(value) == "table" then
    local bytes = {}
    for i, b in ipairs(value) do
      -- lua-cjson 2.1 decodes every number as a float.
      local byte = math.tointeger(b)
      if not byte or byte < 0 or byte > 255 then
        return nil
      end
      bytes[i] = string.char(byte)
    end
    return table.concat(bytes)
  end
  return nil
end

-- Replace each byte that is not part of valid UTF-8 by U+FFFD, so that the
-- output stays valid JSON; lua-cjson copies string bytes as they are.
local function printable(s)
  local parts, i = {}, 1
  while i <= #s do
    local len, bad = utf8.len(s, i)
    if len then
      parts[#parts + 1] = s:sub(i)
      break
    end
    parts[#parts + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(parts)
end

-- __REALTIME_TIMESTAMP is microseconds since the epoch, as a decimal string.
local function iso_time(value)
  local usec = math.tointeger(tonumber(value))
  if not usec then
    return nil
  end
  return os.date("!%Y-%m-%dT%H:%M:%S", usec // 1000000) .. string.format(".%06dZ", usec % 1000000)
end

local function diagnose_entry(engine, entry)
  local message = message_text(entry.MESSAGE)
  -- Matching alone is cheap; the report is built only for entries that hit.
  if not message or #engine:match(message) == 0 then
    return nil
  end
  local report = assert(engine:diagnose(message))
  local diagnoses = {}
  for i, d in ipairs(report.diagnoses) do
    diagnoses[i] = { id = d.id, score = d.score, root_cause = d.root_cause }
  end
  return {
    time = iso_time(entry.__REALTIME_TIMESTAMP),
    unit = type(entry._SYSTEMD_UNIT) == "string" and entry._SYSTEMD_UNIT or nil,
    message = printable(message),
    diagnoses = diagnoses,
  }
end

local function main()
  local engine, err = triage.open()
  if not engine then
    io.stderr:write("journal: cannot open the triage engine: ", err, "\n")
    return 2
  end
  local status, line_no = 1, 0
  for line in io.lines() do
    line_no = line_no + 1
    local ok, entry = pcall(cjson.decode, line)
    if not ok or type(entry) ~= "table" then
      io.stderr:write(string.format("journal: line %d: skipped, not a JSON object: %s\n", line_no,
        ok and type(entry) or entry))
    else
      local finding = diagnose_entry(engine, entry)
      if finding then
        io.write(cjson.encode(finding), "\n")
        status = 0
      end
    end
  end
  return status
end

os.exit(main())
