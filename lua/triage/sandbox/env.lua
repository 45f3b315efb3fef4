-- The environment of one sandboxed script (site file, rule or formatter).
--
-- core/sandbox.c runs this file first in the script's own Lua state, with
-- the full standard library, and passes `host`:
--   path, datadir   the script's file and the engine's data folder
--   grants          set of granted function names ("os.execute" = true)
--   string          bounded find, match, gmatch and gsub
--   regex           the triage.regex module
--   tripped()       true once a limit of the running call has tripped
--   raise([kind])   raise the limit error again
--   after(...)      check the clock after a long C call, return its arguments
--   memory_limit    bytes the whole state may hold
-- It returns the script's environment and the control functions that the
-- engine calls (set_vars). The environment is an allow list: what is not
-- copied into it here is out of reach, because the script sees neither this
-- file's locals nor the state's registry. Denied functions are stubs whose
-- error names the function and, where one exists, the grant.
local host = ...

-- The real functions, kept before the environment replaces the globals.
local assert, error, ipairs, next, pairs = assert, error, ipairs, next, pairs
local pcall, xpcall, load, select, type = pcall, xpcall, load, select, type
local rawequal, rawget, rawlen, rawset = rawequal, rawget, rawlen, rawset
local getmetatable, setmetatable = getmetatable, setmetatable
local tonumber, tostring, print = tonumber, tostring, print
local collectgarbage = collectgarbage
local real = {
  string = string, table = table, math = math, utf8 = utf8,
  coroutine = coroutine, io = io, os = os,
}
local format = real.string.format

-- Lua's message for an allocation that failed.
local MEMORY_ERROR = "not enough memory"

-- Modules a script may require, by name, with their file under lua/triage.
local MODULES = { ["triage.cidr"] = "cidr" }

-- Distinct patterns one script may compile with triage.regex. Compiled
-- regexes live outside the state's memory budget, so their number is capped.
local MAX_REGEXES = 256

local GC_OPTIONS = { collect = true, count = true, step = true, isrunning = true }


-- ==== limits that a protected call must not swallow ========================

-- Pass the results of pcall, xpcall, coroutine.resume or coroutine.close
-- through, but raise the limit error again when the call failed because a
-- limit tripped or memory ran out.
local function pass_through(ok, ...)
  if not ok then
    if host.tripped() then
      host.raise()
    elseif (...) == MEMORY_ERROR then
      host.raise("memory")
    end
  end
  return ok, ...
end

local function safe_pcall(f, ...)
  return pass_through(pcall(f, ...))
end

-- A limit error raised by the count hook reaches the message handler while
-- Lua still runs with hooks off, so a looping handler could never be
-- stopped. Once a limit has tripped the script's handler is skipped.
local function safe_xpcall(f, handler, ...)
  local function guarded(e)
    if host.tripped() then
      return e
    end
    return handler(e)
  end
  return pass_through(xpcall(f, guarded, ...))
end

-- load() compiles text only, and a chunk without an explicit environment
-- gets the script's. A reader function runs under the limits too, and
-- load() itself catches its errors, so the limit is checked afterwards.
local function make_load(default_env)
  return function(chunk, name, mode, ...)
    if mode ~= nil and mode ~= "t" and mode ~= "bt" then
      return nil, "binary chunks are not loaded in sandboxed scripts; give Lua source text"
    end
    local env = default_env
    if select("#", ...) > 0 then
      env = ...
    end
    local f, err = load(chunk, name, "t", env)
    if host.tripped() then
      host.raise()
    end
    return f, err
  end
end

-- setmetatable without __gc: a finalizer would run at an arbitrary later
-- time, outside any call and its limits.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in sandboxed scripts", 2)
  end
  return setmetatable(t, mt)
end

local function safe_collectgarbage(option, arg)
  option = option or "collect"
  if not GC_OPTIONS[option] then
    error(format("collectgarbage(%q) is not available in sandboxed scripts; use \"count\", "
      .. "\"collect\", \"step\" or \"isrunning\"", tostring(option)), 2)
  end
  return host.after(collectgarbage(option, arg))
end


-- ==== stubs ===============================================================

local function grantable(name)
  if host.grants[name] then
    local library, field = real.string.match(name, "^(%a+)%.(%a+)$")
    if library then
      return real[library][field]
    end
    return print
  end
  return function()
    error(format("%s is not allowed in sandboxed scripts; an operator can grant it with "
      .. "--allow-lua %s", name, name), 2)
  end
end

local function unavailable(name)
  return function()
    error(format("%s is not available in sandboxed scripts", name), 2)
  end
end


-- ==== libraries ===========================================================

local function copy_fields(from, names)
  local out = {}
  for _, name in ipairs(names) do
    out[name] = from[name]
  end
  return out
end

local function copy_all(from)
  local out = {}
  for k, v in pairs(from) do
    out[k] = v
  end
  return out
end

-- string.rep checks the size first, so a result that could never fit fails
-- with a message and the script's line instead of at the memory limit.
local function safe_rep(s, n, sep)
  if type(n) == "number" and n > 1 then
    local unit = (type(s) == "string" or type(s) == "number") and #tostring(s) or 0
    local gap = (type(sep) == "string" or type(sep) == "number") and #tostring(sep) or 0
    local size = unit * n + gap * (n - 1)
    if size > host.memory_limit then
      error(format("string.rep: a result of %.0f bytes is more than the memory limit of %d bytes",
        size, host.memory_limit), 2)
    end
  end
  return host.after(real.string.rep(s, n, sep))
end

local function make_string()
  local lib = copy_fields(real.string, {
    "byte", "char", "format", "len", "lower", "pack", "packsize", "reverse", "sub",
    "unpack", "upper",
  })
  lib.find, lib.match = host.string.find, host.string.match
  lib.gmatch, lib.gsub = host.string.gmatch, host.string.gsub
  lib.rep = safe_rep
  lib.dump = unavailable("string.dump")
  return lib
end

local function make_table()
  local lib = copy_fields(real.table, { "insert", "move", "pack", "remove", "unpack" })
  lib.concat = function(...)
    return host.after(real.table.concat(...))
  end
  lib.sort = function(...)
    return host.after(real.table.sort(...))
  end
  return lib
end

local function make_coroutine()
  local lib = copy_fields(real.coroutine, {
    "create", "isyieldable", "running", "status", "wrap", "yield",
  })
  lib.resume = function(co, ...)
    return pass_through(real.coroutine.resume(co, ...))
  end
  lib.close = function(co)
    return pass_through(real.coroutine.close(co))
  end
  return lib
end

local function make_os()
  local lib = copy_fields(real.os, { "clock", "date", "difftime", "time" })
  for _, name in ipairs({ "execute", "getenv", "remove", "rename", "tmpname" }) do
    lib[name] = grantable("os." .. name)
  end
  lib.exit = unavailable("os.exit")
  lib.setlocale = unavailable("os.setlocale")
  return lib
end

local function make_io()
  local lib = {}
  for _, name in ipairs({ "open", "lines", "popen", "read", "write" }) do
    lib[name] = grantable("io." .. name)
  end
  for _, name in ipairs({ "close", "input", "output", "tmpfile", "type" }) do
    lib[name] = unavailable("io." .. name)
  end
  return lib
end

-- A fresh global table with the allowed base functions and libraries.
-- Scripts and modules get separate ones, so a script that changes its
-- string table cannot change how the modules it requires behave.
local function make_globals(require)
  local g = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
    select = select, tonumber = tonumber, tostring = tostring, type = type,
    getmetatable = getmetatable, setmetatable = safe_setmetatable,
    pcall = safe_pcall, xpcall = safe_xpcall, collectgarbage = safe_collectgarbage,
    require = require, print = grantable("print"),
    dofile = unavailable("dofile"), loadfile = unavailable("loadfile"),
    _VERSION = _VERSION,
    string = make_string(), table = make_table(), math = copy_all(real.math),
    utf8 = copy_all(real.utf8), coroutine = make_coroutine(), os = make_os(), io = make_io(),
  }
  g.load = make_load(g)
  g._G = g
  return g
end


-- ==== require =============================================================

local loaded = {}
local module_globals
local triage

local function load_module(name, file)
  local path = host.datadir .. "/lua/triage/" .. file .. ".lua"
  local f, err = real.io.open(path, "rb")
  if not f then
    error(format("cannot load module '%s': %s", name, err), 3)
  end
  local text = f:read("a")
  f:close()
  local chunk, cerr = load(text, "@" .. path, "t", module_globals)
  if not chunk then
    error(cerr, 0)
  end
  return chunk(name)
end

local function safe_require(name)
  if name == "triage" then
    return triage
  elseif name == "triage.regex" then
    return triage.regex
  end
  if loaded[name] == nil then
    local file = MODULES[name]
    if not file then
      error(format("module '%s' is not available in sandboxed scripts; they may require only "
        .. "triage, triage.cidr and triage.regex", tostring(name)), 2)
    end
    loaded[name] = load_module(name, file)
  end
  return loaded[name]
end

module_globals = make_globals(safe_require)

-- Lua strings index the string metatable, so s:find(p) must reach the
-- bounded functions too; __metatable keeps the metatable out of reach.
local string_meta = getmetatable("")
string_meta.__index = module_globals.string
string_meta.__metatable = false

-- The same for the metatables of the userdata a script can reach (regexes,
-- and files when io is granted): a script that replaced their __gc would
-- run its code whenever the collector frees one.
getmetatable(host.regex.new("")).__metatable = false
if real.io.stdout then
  getmetatable(real.io.stdout).__metatable = false
end


-- ==== the triage helpers ==================================================

local current_vars = {}
local regexes, regex_count = {}, 0

triage = { version = "1" }

-- triage.regex(pattern) -> compiled PCRE2 regex, with the options of record
-- regexes; re:match(text) returns the captures table ([0], numbered and
-- named groups) and the span, or nil.
function triage.regex(pattern)
  if type(pattern) ~= "string" then
    error("triage.regex: expected a pattern string, got " .. type(pattern), 2)
  end
  local re = regexes[pattern]
  if re == nil then
    if regex_count >= MAX_REGEXES then
      error(format("triage.regex: more than %d distinct patterns; compile each pattern once, "
        .. "outside loops", MAX_REGEXES), 2)
    end
    local ok, compiled = pcall(host.regex.new, pattern)
    if host.tripped() then
      host.raise()
    end
    if not ok then
      error(compiled, 2)
    end
    re = compiled
    regexes[pattern] = re
    regex_count = regex_count + 1
  end
  return re
end

-- triage.var(name [, default]) -> the site variable, or default when unset.
function triage.var(name, default)
  local v = current_vars[name]
  if v == nil then
    return default
  end
  return v
end

-- triage.vars() -> a copy of all site variables.
function triage.vars()
  return copy_all(current_vars)
end

-- triage.list(value) -> the items of a list written as text ("a, b c"), or
-- the value itself when it is a list already; nil gives an empty list.
function triage.list(value)
  local out = {}
  if type(value) == "table" then
    for i, item in ipairs(value) do
      out[i] = item
    end
  elseif value ~= nil then
    for item in tostring(value):gmatch("[^%s,]+") do
      out[#out + 1] = item
    end
  end
  return out
end

-- triage.shell_quote(s) -> s as one shell word. Text taken from a log line
-- must go through this before it becomes part of a command.
function triage.shell_quote(s)
  s = tostring(s)
  if s ~= "" and not s:find("[^%w@%%+=:,./_-]") then
    return s
  end
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

local function unescape_mount(text)
  return (text:gsub("\\(%d%d%d)", function(octal)
    return real.string.char(tonumber(octal, 8))
  end))
end

-- triage.mounts() -> the mount table of the host that runs triage, as a
-- list of { dir=, device=, type= }, read from /proc/self/mounts.
function triage.mounts()
  local out = {}
  local f = real.io.open("/proc/self/mounts", "r")
  if not f then
    return out
  end
  for line in f:lines() do
    local device, dir, fstype = line:match("^(%S+) (%S+) (%S+)")
    if device then
      out[#out + 1] = { device = unescape_mount(device), dir = unescape_mount(dir), type = fstype }
    end
  end
  f:close()
  return out
end

-- triage.mount_of(path, mounts) -> the longest mount point in mounts (a
-- list of paths or of { dir= } tables) that holds the absolute path.
function triage.mount_of(path, mounts)
  local best
  for _, m in ipairs(mounts or {}) do
    local dir = type(m) == "table" and m.dir or m
    if type(dir) == "string" then
      local holds = dir == "/" or path == dir
        or (path:sub(1, #dir) == dir and path:sub(#dir + 1, #dir + 1) == "/")
      if holds and (best == nil or #dir > #best) then
        best = dir
      end
    end
  end
  return best
end


-- ==== the environment =====================================================

local env = make_globals(safe_require)
env.triage = triage
triage.cidr = safe_require("triage.cidr")

local control = {}

-- Set the site variables that triage.var() reads during the next calls.
function control.set_vars(vars)
  current_vars = type(vars) == "table" and vars or {}
  return true
end

return env, control
