-- Engine side of the script sandbox: the options every sandboxed script is
-- loaded with (data folder, grants), and loading of site files and
-- formatters. Rules load through triage.rules with the same options.
--
-- Each script runs in a Lua state of its own (core/sandbox.c, module
-- triage.script) with limits per call of 10,000,000 instructions, 1 s of CPU time and
-- 64 MiB; its environment is built by lua/triage/sandbox/env.lua.
local core = require "triage.core"
local script = require "triage.script"

local M = {}

local grants = {}

local function is_grantable(name)
  for _, known in ipairs(script.GRANTABLE) do
    if known == name then
      return true
    end
  end
  return false
end

-- Grant name (such as "os.execute") to the scripts loaded from now on.
-- Raises for a name that cannot be granted.
function M.allow(name)
  if not is_grantable(name) then
    error(string.format("cannot grant '%s' to scripts; grantable are %s", tostring(name),
      table.concat(script.GRANTABLE, ", ")), 0)
  end
  for _, granted in ipairs(grants) do
    if granted == name then
      return
    end
  end
  grants[#grants + 1] = name
end

-- The options of triage.script.load() for a script loaded now.
function M.options()
  local allow = {}
  for i, name in ipairs(grants) do
    allow[i] = name
  end
  return { datadir = core.datadir, allow = allow }
end

-- Run the file at path in a sandbox and return a copy of the value it
-- returned. Raises "PATH:LINE: message" when it fails.
function M.load_value(path)
  local s, err = script.load(path, M.options())
  if not s then
    error(err, 0)
  end
  local value, value_err = s:result()
  s:close()
  if value_err then
    error(value_err, 0)
  end
  return value
end

-- Load a formatter file, which returns function(report, options) -> text,
-- and return a function that calls it in its sandbox. The report reaches
-- the formatter as a copy with the shape of the JSON contract.
function M.formatter(path)
  local s, err = script.load(path, M.options())
  if not s then
    error(err, 0)
  end
  if s:result() ~= script.FUNCTION then
    local value = s:result()
    s:close()
    error(string.format("%s: the formatter file returned %s; expected function(report, options) "
      .. "returning the output text", path, value == nil and "nil" or type(value)), 0)
  end
  return function(report, options)
    local ok, out = s:call(nil, report, options)
    if not ok then
      error(out, 0)
    end
    if type(out) ~= "string" then
      error(string.format("%s: the formatter returned %s; expected the output text as a string", path,
        out == nil and "nil" or type(out)), 0)
    end
    return out
  end
end

return M
