-- Run one record's examples through the built binary with the built-in
-- records loaded: every examples.match line must be diagnosed with that
-- record, and no examples.no_match line may be.
--   lua5.4 tests/records/test_examples.lua BINARY RECORD_FILE
local cjson = require "cjson"

local BINARY, FILE = arg[1], arg[2]
assert(BINARY and FILE, "usage: test_examples.lua BINARY RECORD_FILE")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Ids of the records diagnosed for line, best first.
local function diagnosed_ids(line)
  local cmd = string.format("%s --no-site-layers --no-guess --format json -- %s 2>&1", quote(BINARY), quote(line))
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  if status ~= 0 and status ~= 1 then
    error(string.format("triage exited %d on %q: %s", status, line, out))
  end
  local ids = {}
  for _, d in ipairs(cjson.decode(out).diagnoses) do
    ids[#ids + 1] = d.id
  end
  return ids
end

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

local record = cjson.decode(read(FILE))
local supplement_path = FILE:gsub("%.json$", ".supplement.json")
local ok_supplement, supplement_text = pcall(read, supplement_path)
local examples = record.examples or {}
if ok_supplement then
  examples = cjson.decode(supplement_text).examples or examples
end

local passed, failed = 0, 0
local function expect(condition, message)
  if condition then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write(FILE, ": ", message, "\n")
  end
end

expect(#(examples.match or {}) > 0, "record has no examples.match lines")
for _, line in ipairs(examples.match or {}) do
  local ids = diagnosed_ids(line)
  expect(contains(ids, record.id), string.format("%s not diagnosed for example %q (got: %s)",
    record.id, line, table.concat(ids, ", ")))
end
for _, line in ipairs(examples.no_match or {}) do
  local ids = diagnosed_ids(line)
  expect(not contains(ids, record.id), string.format("%s diagnosed for near miss %q", record.id, line))
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
