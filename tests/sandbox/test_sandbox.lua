-- Tests of the script sandbox: what scripts may reach, the limits, error
-- locations, copying between states and the bounded pattern functions.
-- Run by the tests/test_sandbox.c host, which provides the triage.script
-- module, the global `bounded` (the bounded find/match/gmatch/gsub) and
-- TRIAGE_DATADIR (the repository root).
local lu = require "luaunit"
local script = require "triage.script"

local DATADIR = assert(TRIAGE_DATADIR, "run through the test_sandbox host")

local created = {}

-- Limits that leave only the instruction or the memory limit to trip, so a
-- loaded test machine cannot turn an instruction limit into a time limit.
local SLOW_CLOCK = { seconds = 60 }
local MEMORY_ONLY = { seconds = 60, instructions = 1e12 }

local function write_file(text, suffix)
  local path = os.tmpname() .. (suffix or ".lua")
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  created[#created + 1] = path
  return path
end

local function options(extra)
  local o = { datadir = DATADIR }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end

-- Load text as a script; returns the script or nil, message, kind, and the path.
local function load_text(text, extra)
  local path = write_file(text)
  local s, err, kind = script.load(path, options(extra))
  return s, err, kind, path
end

-- Load text that returns a function and call it; returns ok, result or
-- message, kind, the path and the elapsed seconds.
local function call_text(text, extra, ...)
  local s, err, kind, path = load_text(text, extra)
  lu.assertNotNil(s, err)
  local started = os.clock()
  local ok, result, call_kind = s:call(nil, ...)
  local elapsed = os.clock() - started
  s:close()
  return ok, result, call_kind, path, elapsed
end

-- Assert that text fails when loaded, with kind and a message naming path:line.
local function assert_load_fails(text, want_kind, line, needle, extra)
  local s, err, kind, path = load_text(text, extra)
  lu.assertNil(s, "the script loaded but should have failed")
  lu.assertEquals(kind, want_kind, err)
  lu.assertStrContains(err, path .. ":" .. line .. ":")
  if needle then
    lu.assertStrContains(err, needle)
  end
  return err
end


TestSandboxLoad = {}

function TestSandboxLoad:test_data_result_is_copied()
  local s = assert(load_text([[return { vars = { a = "x", n = 3 }, list = { 1, 2.5, true } }]]))
  local t = s:result()
  lu.assertEquals(t, { vars = { a = "x", n = 3 }, list = { 1, 2.5, true } })
  lu.assertTrue(math.type(t.vars.n) == "integer")
end

function TestSandboxLoad:test_functions_become_marker()
  local s = assert(load_text([[return { ids = { "a/b" }, remediate = function() end }]]))
  local t = s:result()
  lu.assertEquals(t.ids, { "a/b" })
  lu.assertEquals(t.remediate, script.FUNCTION)
end

function TestSandboxLoad:test_syntax_error_names_line()
  assert_load_fails("return {\n  vars = \n", "error", 3, "expected")
end

function TestSandboxLoad:test_runtime_error_names_line()
  assert_load_fails("local x = nil\nreturn x.field\n", "error", 2, "attempt to index")
end

function TestSandboxLoad:test_error_value_not_string()
  assert_load_fails("local t = {}\nerror(setmetatable(t, { __tostring = function() while true do end end }))\n",
    "error", 2, "error object is a table value")
end

function TestSandboxLoad:test_long_path_named_in_full()
  local dir = os.tmpname()
  os.remove(dir)
  local long = dir .. "-" .. string.rep("d", 80)
  assert(os.execute("mkdir -p '" .. long .. "'"))
  local path = long .. "/site.lua"
  local f = assert(io.open(path, "w"))
  f:write("\nerror('boom')\n")
  f:close()
  local s, err = script.load(path, options())
  os.remove(path)
  os.remove(long)
  lu.assertNil(s)
  lu.assertStrContains(err, path .. ":2: boom")
end

function TestSandboxLoad:test_bytecode_refused()
  local path = write_file(string.dump(function() return 1 end))
  local s, err, kind = script.load(path, options())
  lu.assertNil(s)
  lu.assertEquals(kind, "load")
  lu.assertStrContains(err, path)
  lu.assertStrContains(err, "precompiled")
end

function TestSandboxLoad:test_missing_file()
  local s, err, kind = script.load("/nonexistent/site.lua", options())
  lu.assertNil(s)
  lu.assertEquals(kind, "open")
  lu.assertStrContains(err, "/nonexistent/site.lua")
end


TestSandboxDenied = {}

local DENIED = {
  { "os.execute('true')", "os.execute is not allowed" },
  { "io.popen('true')", "io.popen is not allowed" },
  { "io.open('/tmp/triage-sandbox-write', 'w')", "io.open is not allowed" },
  { "io.write('x')", "io.write is not allowed" },
  { "os.remove('/tmp/x')", "os.remove is not allowed" },
  { "os.exit(1)", "os.exit is not available" },
  { "print('x')", "print is not allowed" },
  { "dofile('/etc/passwd')", "dofile is not available" },
  { "loadfile('/etc/passwd')", "loadfile is not available" },
  { "string.dump(function() end)", "string.dump is not available" },
  { "require('os')", "module 'os' is not available" },
  { "require('socket')", "module 'socket' is not available" },
  { "collectgarbage('stop')", "is not available in sandboxed scripts" },
  { "setmetatable({}, { __gc = function() end })", "__gc metamethods are not allowed" },
  { "debug.getinfo(1)", "attempt to index a nil value (global 'debug')" },
}

function TestSandboxDenied:test_each_denial_names_file_and_line()
  for _, case in ipairs(DENIED) do
    local err = assert_load_fails("local x = 1\n" .. case[1] .. "\n", "error", 2, case[2])
    lu.assertNotNil(err, case[1])
  end
end

function TestSandboxDenied:test_write_file_refused_and_nothing_written()
  local target = os.tmpname()
  os.remove(target)
  assert_load_fails("local f = io.open(" .. string.format("%q", target) .. ", 'w')\nf:write('x')\n",
    "error", 1, "io.open is not allowed")
  lu.assertNil(io.open(target, "r"), "the file was created")
end

function TestSandboxDenied:test_load_without_env_stays_sandboxed()
  assert_load_fails("local f = load('return os.execute')\nf()('true')\n", "error", 2, "os.execute is not allowed")
end

function TestSandboxDenied:test_load_binary_mode_refused()
  local s = assert(load_text([[
    local f, err = load("return 1", "x", "b")
    return { f = f == nil, err = err }
  ]]))
  local t = s:result()
  lu.assertTrue(t.f)
  lu.assertStrContains(t.err, "binary chunks are not loaded")
end

function TestSandboxDenied:test_string_metatable_hidden()
  local s = assert(load_text([[return { meta = getmetatable(""), dump = pcall(("").dump, print) }]]))
  local t = s:result()
  lu.assertEquals(t.meta, false)
  lu.assertEquals(t.dump, false)
end

function TestSandboxDenied:test_userdata_metatables_hidden()
  local s = assert(load_text([[return { regex = getmetatable(triage.regex("x")) }]]))
  lu.assertEquals(s:result(), { regex = false })
  local granted = assert(load_text([[return { file = getmetatable(io.open("/dev/null")) }]],
    { allow = { "io.open" } }))
  lu.assertEquals(granted:result(), { file = false })
end

function TestSandboxDenied:test_grant_allows_function()
  local s, err = load_text("return os.getenv('HOME') ~= nil\n", { allow = { "os.getenv" } })
  lu.assertNotNil(s, err)
  lu.assertTrue(s:result())
end

function TestSandboxDenied:test_unknown_grant_rejected()
  local path = write_file("return 1\n")
  local ok, err = pcall(script.load, path, options({ allow = { "os.exit" } }))
  lu.assertFalse(ok)
  lu.assertStrContains(err, "cannot grant 'os.exit'")
end

function TestSandboxDenied:test_allowed_modules()
  local s, err = load_text([=[
    local cidr = require "triage.cidr"
    local regex = require "triage.regex"
    return { inside = cidr.contains("10.0.0.0/8", "10.1.2.3"), client = regex("\\[(?<c>[^]]+)\\]"):match("x[1.2.3.4]").c }
  ]=])
  lu.assertNotNil(s, err)
  lu.assertEquals(s:result(), { inside = true, client = "1.2.3.4" })
end


TestSandboxLimits = {}

function TestSandboxLimits:test_endless_loop_stops_on_instructions()
  local s, err, kind, path = load_text("local n = 0\nwhile true do\n  n = n + 1\nend\n", SLOW_CLOCK)
  lu.assertNil(s)
  lu.assertEquals(kind, "instructions")
  lu.assertStrContains(err, path .. ":")
  lu.assertStrContains(err, "limit of 10000000 instructions")
end

-- The limits count the CPU time of the calling thread, so the bounds
-- below are CPU time too: a loaded machine cannot fail them.
function TestSandboxLimits:test_time_limit()
  local started = os.clock()
  local _, err, kind, path = load_text("while true do end\n", { instructions = 1e15, seconds = 0.2 })
  lu.assertEquals(kind, "time")
  lu.assertStrContains(err, path .. ":1: exceeded the time limit of 0.2 s")
  lu.assertTrue(os.clock() - started <= 2)
end

function TestSandboxLimits:test_memory_limit()
  local _, err, kind, path = load_text(
    "local t = {}\nwhile true do\n  t[#t + 1] = ('x'):rep(1000) .. #t\nend\n",
    { memory = 16 << 20, seconds = 60, instructions = 1e12 })
  lu.assertEquals(kind, "memory")
  lu.assertStrContains(err, path)
  lu.assertStrContains(err, "memory limit of 16 MiB")
end

function TestSandboxLimits:test_default_memory_limit()
  local s, err = load_text("return function() local t = {} while true do t[#t + 1] = {} end end\n", MEMORY_ONLY)
  lu.assertNotNil(s, err)
  local ok, msg, kind = s:call(nil)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "memory", msg)
  lu.assertStrContains(msg, "memory limit of 64 MiB")
  lu.assertTrue(s:memory() < 64 << 20)
end

function TestSandboxLimits:test_pcall_cannot_swallow_loop()
  local ok, msg, kind = call_text([[return function()
    while true do pcall(function() while true do end end) end
  end]], SLOW_CLOCK)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "instructions", msg)
end

function TestSandboxLimits:test_pcall_then_return_still_fails()
  local ok, _, kind = call_text([[return function()
    pcall(function() while true do end end)
    return "done"
  end]], SLOW_CLOCK)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "instructions")
end

function TestSandboxLimits:test_xpcall_handler_cannot_swallow()
  local ok, _, kind = call_text([[return function()
    return xpcall(function() while true do end end, function() while true do end end)
  end]], SLOW_CLOCK)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "instructions")
end

function TestSandboxLimits:test_pcall_cannot_swallow_memory()
  local ok, msg, kind = call_text([[return function()
    local ok = pcall(function() local t = {} while true do t[#t + 1] = {} end end)
    return ok
  end]], { memory = 8 << 20, seconds = 60, instructions = 1e12 })
  lu.assertFalse(ok)
  lu.assertEquals(kind, "memory", msg)
end

function TestSandboxLimits:test_coroutine_cannot_swallow()
  local ok, _, kind = call_text([[return function()
    local co = coroutine.create(function() while true do end end)
    return coroutine.resume(co)
  end]], SLOW_CLOCK)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "instructions")
end

function TestSandboxLimits:test_load_reader_cannot_swallow()
  local ok, _, kind = call_text([[return function()
    return load(function() while true do end end)
  end]], SLOW_CLOCK)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "instructions")
end

function TestSandboxLimits:test_pattern_stall_bounded()
  for _, body in ipairs({
    [[string.find(("a"):rep(1e4), ".-.-.-.-b$")]],
    [[(("a"):rep(1e4)):find(".-.-.-.-b$")]],
    [[string.gsub(("a"):rep(1e4), ".-.-.-.-b", "")]],
    [[for _ in string.gmatch(("a"):rep(1e4), ".-.-.-.-b") do end]],
    [[string.match(("a"):rep(1e4), "^(.-)(.-)(.-)b$")]],
  }) do
    local started = os.clock()
    local ok, msg, kind = call_text("return function()\n  " .. body .. "\nend\n")
    lu.assertFalse(ok, body)
    lu.assertTrue(kind == "instructions" or kind == "time", msg)
    lu.assertStrContains(msg, ":2:")
    lu.assertTrue(os.clock() - started <= 2, body .. " took too long")
  end
end

function TestSandboxLimits:test_huge_rep_fails_with_line()
  local _, err, kind, path = load_text("local x = 1\nlocal s = ('x'):rep(1 << 40)\n")
  lu.assertEquals(kind, "error")
  lu.assertStrContains(err, path .. ":2: string.rep: a result of")
end

function TestSandboxLimits:test_limits_reset_per_call()
  local s = assert(load_text("return function() local n = 0 for i = 1, 2e6 do n = n + i end return n end\n",
    SLOW_CLOCK))
  for _ = 1, 3 do
    local ok, result = s:call(nil)
    lu.assertTrue(ok, result)
    lu.assertEquals(result, 2000001000000)
  end
end

function TestSandboxLimits:test_state_usable_after_limit()
  local s = assert(load_text([[return {
    spin = function() while true do end end,
    hog = function() local t = {} while true do t[#t + 1] = {} end end,
    ok = function() return "fine" end,
  }]], { memory = 8 << 20, seconds = 60 }))
  lu.assertFalse((s:call("spin")))
  lu.assertFalse((s:call("hog")))
  local ok, result = s:call("ok")
  lu.assertTrue(ok, result)
  lu.assertEquals(result, "fine")
end


TestSandboxCall = {}

function TestSandboxCall:test_arguments_copied_with_cycles()
  local s = assert(load_text([[return function(t)
    return { same = t.self == t, n = t.n, f = t.f, list = t.list }
  end]]))
  local arg = { n = 1, f = function() end, list = { "a", "b" } }
  arg.self = arg
  local ok, result = s:call(nil, arg)
  lu.assertTrue(ok, result)
  lu.assertEquals(result, { same = true, n = 1, list = { "a", "b" } })
end

function TestSandboxCall:test_arguments_cannot_change_caller()
  local s = assert(load_text("return function(t) t.x = 2 return t.x end\n"))
  local arg = { x = 1 }
  local ok, result = s:call(nil, arg)
  lu.assertTrue(ok)
  lu.assertEquals(result, 2)
  lu.assertEquals(arg.x, 1)
end

function TestSandboxCall:test_userdata_result_refused()
  local s = assert(load_text("return function() return { re = triage.regex('x') } end\n"))
  local ok, msg, kind = s:call(nil)
  lu.assertFalse(ok)
  lu.assertEquals(kind, "result")
  lu.assertStrContains(msg, "plain data")
end

function TestSandboxCall:test_missing_function()
  local s = assert(load_text("return { ids = {} }\n"))
  local ok, msg, kind = s:call("remediate")
  lu.assertFalse(ok)
  lu.assertEquals(kind, "error")
  lu.assertStrContains(msg, "'remediate' is a nil, not a function")
end

function TestSandboxCall:test_vars_reach_triage_var()
  local s = assert(load_text("return function() return triage.var('mynetworks', 'unset') end\n"))
  lu.assertEquals(select(2, s:call(nil)), "unset")
  lu.assertTrue((s:control("set_vars", { mynetworks = "10.0.0.0/8" })))
  lu.assertEquals(select(2, s:call(nil)), "10.0.0.0/8")
end


TestSandboxHelpers = {}

function TestSandboxHelpers:test_shell_quote_and_list()
  local s = assert(load_text([[return {
    plain = triage.shell_quote("192.0.2.1"),
    quoted = triage.shell_quote("a b'c"),
    danger = triage.shell_quote("$(rm -rf /)"),
    list = triage.list("10.0.0.0/8, 192.0.2.0/24  [2001:db8::]/32"),
  }]]))
  lu.assertEquals(s:result(), {
    plain = "192.0.2.1",
    quoted = "'a b'\\''c'",
    danger = "'$(rm -rf /)'",
    list = { "10.0.0.0/8", "192.0.2.0/24", "[2001:db8::]/32" },
  })
end

function TestSandboxHelpers:test_regex_limit_of_patterns()
  local ok, msg = call_text([[return function()
    for i = 1, 300 do triage.regex("x" .. i) end
  end]])
  lu.assertFalse(ok)
  lu.assertStrContains(msg, "more than 256 distinct patterns")
end

function TestSandboxHelpers:test_mount_of()
  local s = assert(load_text([[return {
    a = triage.mount_of("/var/lib/docker/x", { "/", "/var", "/var/lib/docker" }),
    b = triage.mount_of("/varnish/x", { "/", "/var" }),
    c = triage.mount_of("/srv", { { dir = "/" }, { dir = "/srv" } }),
  }]]))
  lu.assertEquals(s:result(), { a = "/var/lib/docker", b = "/", c = "/srv" })
end


-- The bounded functions must give what the stock functions give.
TestBoundedPatterns = {}

local function same(f, g, ...)
  local a = table.pack(pcall(f, ...))
  local b = table.pack(pcall(g, ...))
  if not a[1] or not b[1] then
    return a[1] == b[1], a, b
  end
  if a.n ~= b.n then
    return false, a, b
  end
  for i = 1, a.n do
    if a[i] ~= b[i] and not (a[i] ~= a[i] and b[i] ~= b[i]) then
      return false, a, b
    end
  end
  return true, a, b
end

local function gmatch_all(gmatch, s, p, init)
  local out = {}
  for a, b in gmatch(s, p, init) do
    out[#out + 1] = tostring(a) .. "|" .. tostring(b)
    if #out > 200 then
      break
    end
  end
  return table.concat(out, ";")
end

local CASES = {
  { "hello world", "o w" }, { "hello world", "o", 6 }, { "hello", "l+" }, { "hello", "^h(.-)o$" },
  { "hello", "x*" }, { "", "" }, { "abc", "", 10 }, { "abc", "b", -1 }, { "abc", "b", -10 },
  { "a,b,,c", "([^,]*)" }, { "key = value", "^(%w+)%s*=%s*(%w+)$" }, { "THE (quick) fox", "%((%a+)%)" },
  { "f(a(b)c)d", "%b()" }, { "THE (quick) fox", "%f[%a]%a+" }, { "hello hello", "(h%a+) %1" },
  { "x = 1", "()=()" }, { "[x]", "[]]" }, { "a-b", "[a-]" }, { "a]b", "[%]]" }, { "a^b", "[%^b]+" },
  { "abc", "[^a]" }, { "a.b", "%." }, { "a.b", ".", 1, true }, { "a+b", "+", 1, true },
  { "aaa", "a-b" }, { "aaab", "a-b" }, { "aaa", "a?a?a?a" }, { "end$", "$" }, { "a$b", "a$b" },
  { "x", "%" }, { "x", "[a" }, { "x", "(x" }, { "x", "x)" }, { "x", "%1" }, { "x", "%bx" }, { "x", "%f" },
  { "\0a\0", "%z" }, { "\0a\0", "a\0" }, { "\0a\0", "[\0]" }, { "tab\there", "%s" }, { "é", "%a" },
  { "192.0.2.1", "^(%d+)%.(%d+)%.(%d+)%.(%d+)$" }, { "RCPT from x[1.2.3.4]: 554", "%[([^%]]+)%]" },
  { "aaaa", "^a*$" }, { "  trim  ", "^%s*(.-)%s*$" }, { "CamelCase", "%u%l+" }, { "0x1F", "%x+$" },
}

function TestBoundedPatterns:test_find_and_match_cases()
  for _, c in ipairs(CASES) do
    for _, name in ipairs({ "find", "match" }) do
      local ok, a, b = same(string[name], bounded[name], table.unpack(c, 1, 4))
      lu.assertTrue(ok, string.format("%s(%q, %q): stock %s, bounded %s", name, c[1], c[2],
        tostring(a[2]) .. "," .. tostring(a[3]), tostring(b[2]) .. "," .. tostring(b[3])))
    end
  end
end

function TestBoundedPatterns:test_gmatch_cases()
  for _, c in ipairs(CASES) do
    local ok_a, a = pcall(gmatch_all, string.gmatch, c[1], c[2], c[3])
    local ok_b, b = pcall(gmatch_all, bounded.gmatch, c[1], c[2], c[3])
    lu.assertEquals(ok_b, ok_a, string.format("gmatch(%q, %q)", c[1], c[2]))
    if ok_a then
      lu.assertEquals(b, a, string.format("gmatch(%q, %q)", c[1], c[2]))
    end
  end
end

function TestBoundedPatterns:test_gsub_cases()
  local repls = { "<%0>", "%1-%2", "%%", "x", 7, "%", "%9", { hello = "HI", a = false },
    function(a, b) return b and (a .. b) or nil end }
  for _, c in ipairs(CASES) do
    for _, repl in ipairs(repls) do
      for _, n in ipairs({ false, 1, 0 }) do
        local ok, a, b = same(string.gsub, bounded.gsub, c[1], c[2], repl, n or nil)
        lu.assertTrue(ok, string.format("gsub(%q, %q, %s): stock %s, bounded %s", c[1], c[2],
          tostring(repl), tostring(a[2]), tostring(b[2])))
      end
    end
  end
end

function TestBoundedPatterns:test_random_patterns_agree()
  local atoms = { "a", "b", ".", "%a", "%d", "[ab]", "[^a]", "(", ")", "()", "%b()", "%f[a]", "%1", "^", "$",
    "1", "%", "[", "-" }
  local quantifiers = { "", "", "", "*", "+", "-", "?" }
  local alphabet = { "a", "b", "1", "(", ")", " ", "-" }
  math.randomseed(42)
  for _ = 1, 3000 do
    local p = {}
    for _ = 1, math.random(1, 6) do
      p[#p + 1] = atoms[math.random(#atoms)] .. quantifiers[math.random(#quantifiers)]
    end
    local s = {}
    for _ = 1, math.random(0, 10) do
      s[#s + 1] = alphabet[math.random(#alphabet)]
    end
    local pattern, subject = table.concat(p), table.concat(s)
    local init = math.random(-3, 12)
    for _, name in ipairs({ "find", "match" }) do
      local ok = same(string[name], bounded[name], subject, pattern, init)
      lu.assertTrue(ok, string.format("%s(%q, %q, %d)", name, subject, pattern, init))
    end
    local ok = same(string.gsub, bounded.gsub, subject, pattern, "<%0>")
    lu.assertTrue(ok, string.format("gsub(%q, %q)", subject, pattern))
    local ok_a, a = pcall(gmatch_all, string.gmatch, subject, pattern)
    local ok_b, b = pcall(gmatch_all, bounded.gmatch, subject, pattern)
    lu.assertEquals(ok_b, ok_a, string.format("gmatch(%q, %q)", subject, pattern))
    if ok_a then
      lu.assertEquals(b, a, string.format("gmatch(%q, %q)", subject, pattern))
    end
  end
end

function TestBoundedPatterns:test_unbudgeted_cap()
  local ok, err = pcall(bounded.find, ("a"):rep(1e4), ".-.-.-.-b$")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "pattern too complex")
end


local result = lu.LuaUnit.run(table.unpack(SUITE_ARGS or { "-v" }))
for _, path in ipairs(created) do
  os.remove(path)
end
return result
