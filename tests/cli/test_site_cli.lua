-- End-to-end tests of site files, remediation rules, the script sandbox
-- and the commands around them (site --show, test-rule, --emit-script,
-- --format FILE.lua). Run from the repository root:
--   lua5.4 tests/cli/test_site_cli.lua BINARY SHARED_DIR
local lu = require "luaunit"
local cjson = require "cjson"

local BINARY = assert(arg[1], "usage: test_site_cli.lua BINARY SHARED_DIR")
if BINARY:sub(1, 1) ~= "/" then
  -- Some tests run the binary from another folder.
  BINARY = assert(os.getenv("PWD"), "PWD is not set") .. "/" .. BINARY
end
local SHARED = assert(arg[2], "usage: test_site_cli.lua BINARY SHARED_DIR")
local RELAY_ID = "communication/smtp-554-5-7-0-relay-denied"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local tmp_dirs = {}

-- A new empty folder, removed at the end of the run.
local function temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shell_quote(dir)))
  tmp_dirs[#tmp_dirs + 1] = dir
  return dir
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

--[[
Run the binary with args (a list); returns stdout, stderr, exit status and
the elapsed wall-clock seconds. opts: stdin (text), cwd (folder to run in),
env (text put before the command, such as "XDG_CONFIG_HOME=/x"), layers
(true to keep the host's site layers; by default --no-site-layers is added).
]]
local function run(args, opts)
  opts = opts or {}
  local parts = {}
  if opts.cwd then
    parts[#parts + 1] = "cd " .. shell_quote(opts.cwd) .. " &&"
  end
  if opts.env then
    parts[#parts + 1] = opts.env
  end
  parts[#parts + 1] = shell_quote(BINARY)
  local first = 1
  local commands = { site = true, ["test-rule"] = true, show = true }
  if commands[args[1]] then
    parts[#parts + 1] = args[1]
    first = 2
  end
  if not opts.layers then
    parts[#parts + 1] = "--no-site-layers"
  end
  for i = first, #args do
    parts[#parts + 1] = shell_quote(args[i])
  end
  local err_file = os.tmpname()
  local in_file = write(os.tmpname(), opts.stdin or "")
  local cmd = table.concat(parts, " ") .. " 2>" .. err_file .. " <" .. in_file
  local started = os.time()
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  local elapsed = os.time() - started
  local err = read(err_file)
  os.remove(err_file)
  os.remove(in_file)
  return out, err, status, elapsed
end

-- The first line of a shared log file that contains needle.
local function log_line(file, needle)
  for line in io.lines(SHARED .. "/logs/" .. file) do
    if line:sub(1, 1) ~= "#" and line:find(needle, 1, true) then
      return line
    end
  end
  error("no line with '" .. needle .. "' in " .. file)
end

local RELAY = log_line("fail2ban/postfix", "Relay access denied")

local function site_file(dir, text)
  return write(dir .. "/site.lua", text)
end

local function relay_diagnosis(out)
  for _, d in ipairs(cjson.decode(out).diagnoses) do
    if d.id == RELAY_ID then
      return d
    end
  end
  error("no relay diagnosis in the output")
end

local function remediation_text(d)
  local parts = {}
  for _, step in ipairs(d.remediation) do
    parts[#parts + 1] = step.title
    for _, command in ipairs(step.commands) do
      parts[#parts + 1] = command
    end
    parts[#parts + 1] = step.check
  end
  return table.concat(parts, "\n")
end


TestRelayRemediation = {}

function TestRelayRemediation:test_client_outside_mynetworks_named()
  local site = site_file(temp_dir(), 'return { vars = { mynetworks = "127.0.0.0/8 10.20.0.0/16" } }\n')
  local out, err, status = run({ "--format", "json", "--site", site, RELAY })
  lu.assertEquals(status, 0, err)
  local d = relay_diagnosis(out)
  lu.assertTrue(#d.remediation >= 1, "remediation steps")
  lu.assertStrContains(remediation_text(d), "1.2.3.4")
  lu.assertStrContains(remediation_text(d), "postconf -e 'mynetworks = 127.0.0.0/8 10.20.0.0/16 1.2.3.4/32'")
  lu.assertEquals(d.remediation[1].rule, "postfix-relay")
end

function TestRelayRemediation:test_client_inside_mynetworks_differs()
  local dir = temp_dir()
  local outside = site_file(dir, 'return { vars = { mynetworks = "10.20.0.0/16" } }\n')
  local inside = write(dir .. "/inside.lua", 'return { vars = { mynetworks = "10.20.0.0/16, 1.2.3.0/24" } }\n')
  local out_a = run({ "--format", "json", "--site", outside, RELAY })
  local out_b, err, status = run({ "--format", "json", "--site", inside, RELAY })
  lu.assertEquals(status, 0, err)
  local a, b = remediation_text(relay_diagnosis(out_a)), remediation_text(relay_diagnosis(out_b))
  lu.assertNotEquals(b, a)
  lu.assertNotStrContains(b, "1.2.3.4/32")
  lu.assertStrContains(b, "permit_mynetworks")
  lu.assertStrContains(table.concat(relay_diagnosis(out_b).notes, "\n"), "inside mynetworks (entry 1.2.3.0/24)")
end

function TestRelayRemediation:test_text_output_shows_steps()
  local site = site_file(temp_dir(), 'return { vars = { mynetworks = "10.20.0.0/16" } }\n')
  local out, _, status = run({ "--color", "never", "--site", site, RELAY })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "1. Check whether example.com is a domain this server receives mail for")
  lu.assertStrContains(out, "3. Or let 1.2.3.4 relay without authenticating: add 1.2.3.4/32 to mynetworks")
end


TestUserFormatter = {}

function TestUserFormatter:test_relative_formatter_file()
  local dir = temp_dir()
  write(dir .. "/fmt.lua", [[
return function(report, options)
  local out = {}
  for _, d in ipairs(report.diagnoses) do
    out[#out + 1] = d.id .. " " .. d.match.text:sub(1, 4) .. " " .. #d.remediation .. " " .. options.lang
  end
  return report.schema .. "\n" .. table.concat(out, "\n") .. "\n"
end
]])
  local out, err, status = run({ "--format", "./fmt.lua", "--top", "1", RELAY }, { cwd = dir })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "triage.report/1\n")
  lu.assertStrContains(out, RELAY_ID .. " ")
  lu.assertStrContains(out, " en\n")
end

function TestUserFormatter:test_formatter_loop_stopped()
  local dir = temp_dir()
  write(dir .. "/fmt.lua", "return function(report)\n  while true do end\nend\n")
  local _, err, status, elapsed = run({ "--format", dir .. "/fmt.lua", RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, dir .. "/fmt.lua:2: exceeded")
  lu.assertTrue(elapsed <= 5, "stopped within 5 s")
end

function TestUserFormatter:test_formatter_returning_table_refused()
  local dir = temp_dir()
  write(dir .. "/fmt.lua", "return { 1 }\n")
  local _, err, status = run({ "--format", dir .. "/fmt.lua", RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, dir .. "/fmt.lua: the formatter file returned table")
end


TestSiteSandbox = {}

function TestSiteSandbox:test_endless_loop_stops_within_5s()
  local site = site_file(temp_dir(), "local n = 0\nwhile true do\n  n = n + 1\nend\n")
  local _, err, status, elapsed = run({ "--site", site, RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site .. ":3: exceeded the ")
  -- The 1 s CPU-time limit may come first on a sanitizer build.
  lu.assertTrue((err:find("limit of 10000000 instructions per call", 1, true)
    or err:find("time limit of 1 s", 1, true)) ~= nil, err)
  lu.assertTrue(elapsed <= 5, "stopped within 5 s, took " .. elapsed)
end

function TestSiteSandbox:test_memory_hog_stops_within_10s()
  local site = site_file(temp_dir(), "local t = {}\nwhile true do\n  t[#t + 1] = ('x'):rep(65536) .. #t\nend\n")
  local _, err, status, elapsed = run({ "--site", site, RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site .. ":3: exceeded the ")
  -- On a sanitizer build the 1 s CPU-time limit may come first. The
  -- sandbox suite checks the memory limit with the clock out of the way.
  lu.assertTrue((err:find("memory limit of 64 MiB", 1, true) or err:find("time limit of 1 s", 1, true)) ~= nil, err)
  lu.assertTrue(elapsed <= 10, "stopped within 10 s, took " .. elapsed)
end

function TestSiteSandbox:test_os_execute_refused()
  local dir = temp_dir()
  local site = site_file(dir, "os.execute('touch " .. dir .. "/pwned')\nreturn {}\n")
  local _, err, status = run({ "--site", site, RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site .. ":1: os.execute is not allowed in sandboxed scripts")
  lu.assertNil(read(dir .. "/pwned"), "the command ran")
end

function TestSiteSandbox:test_file_write_refused()
  local dir = temp_dir()
  local site = site_file(dir, "local f = io.open('" .. dir .. "/written', 'w')\nf:write('x')\nreturn {}\n")
  local _, err, status = run({ "--site", site, RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site .. ":1: io.open is not allowed in sandboxed scripts")
  lu.assertNil(read(dir .. "/written"), "the file was written")
end

function TestSiteSandbox:test_grant_allows_function()
  local site = site_file(temp_dir(), "return { vars = { home = os.getenv('HOME') or 'none' } }\n")
  local _, denied_status = select(2, run({ "--site", site, RELAY }))
  lu.assertEquals(denied_status, 2)
  local out, err, status = run({ "site", "--allow-lua", "os.getenv", "--site", site })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "vars.home = ")
end

function TestSiteSandbox:test_unknown_grant_rejected()
  local _, err, status = run({ "--allow-lua", "os.exit", RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "cannot grant 'os.exit'")
end

function TestSiteSandbox:test_bytecode_site_refused()
  local dir = temp_dir()
  local site = dir .. "/site.lua"
  assert(os.execute("printf 'return {}' > " .. dir .. "/src.lua && luac5.4 -o " .. site .. " " .. dir
    .. "/src.lua 2>/dev/null || printf '\\033Lua' > " .. site))
  local _, err, status = run({ "--site", site, RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site .. ": precompiled Lua chunks are not loaded")
end


TestSiteShow = {}

function TestSiteShow:test_show_names_each_file()
  local dir = temp_dir()
  local site = site_file(dir, 'return { vars = { mynetworks = "10.20.0.0/16", mail_log = "/var/log/maillog" },\n'
    .. '  rules = { "rules.d" } }\n')
  local out, err, status = run({ "site", "--show", "--site", site })
  lu.assertEquals(status, 0, err)
  lu.assertTrue(out:find('vars%.mynetworks = "10%.20%.0%.0/16" +# ' .. site:gsub("%p", "%%%0")) ~= nil, out)
  lu.assertTrue(out:find('vars%.mail_log = "/var/log/maillog" +# ' .. site:gsub("%p", "%%%0")) ~= nil,
    "a later layer wins over the installed defaults")
  lu.assertStrContains(out, "site/defaults.lua")
  lu.assertStrContains(out, 'rules[1] = "' .. dir .. '/rules.d"')
end

function TestSiteShow:test_user_layer_from_xdg()
  local dir = temp_dir()
  assert(os.execute("mkdir -p " .. dir .. "/triage"))
  write(dir .. "/triage/site.lua", 'return { vars = { relayhost = "[smtp.example.net]:587" } }\n')
  local out, err, status = run({ "site" }, { layers = true, env = "XDG_CONFIG_HOME=" .. shell_quote(dir) })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, 'vars.relayhost = "[smtp.example.net]:587"')
  lu.assertStrContains(out, "# " .. dir .. "/triage/site.lua")
end


TestTestRule = {}

function TestTestRule:test_shows_each_matched_line()
  local site = site_file(temp_dir(), 'return { vars = { mynetworks = "10.20.0.0/16" } }\n')
  local out, err, status = run({ "test-rule", "--site", site, "rules/postfix-relay.lua",
    SHARED .. "/logs/fail2ban/postfix" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "rule: rules/postfix-relay.lua")
  lu.assertStrContains(out, "1 matched a handled record, 1 with remediation, 0 failed")
  lu.assertStrContains(out, "record: " .. RELAY_ID)
  lu.assertStrContains(out, "step 1: Check whether example.com is a domain")
  lu.assertStrContains(out, "step 2 (alternative): Or have 1.2.3.4 authenticate")
  lu.assertStrContains(out, "step 3 (alternative): Or let 1.2.3.4 relay")
end

function TestTestRule:test_json_and_stdin()
  local lines = log_line("fail2ban/postfix", "sasl_username=admin") .. "\n" .. RELAY .. "\n# a comment\n"
  local out, err, status = run({ "test-rule", "--format", "json", "rules/postfix-sasl.lua" }, { stdin = lines })
  lu.assertEquals(status, 0, err)
  local t = cjson.decode(out)
  lu.assertEquals(t.schema, "triage.rule-test/1")
  lu.assertEquals(t.lines, 3)
  lu.assertEquals(t.skipped, 1)
  lu.assertEquals(t.matched, 1)
  lu.assertEquals(t.results[1].line, 1)
  lu.assertEquals(t.results[1].captures.client, "192.0.2.152")
  lu.assertStrContains(t.results[1].steps[2].commands[1], "banip 192.0.2.152")
end

function TestTestRule:test_nothing_handled_exits_1()
  local _, _, status = run({ "test-rule", "rules/sshd.lua" }, { stdin = RELAY .. "\n" })
  lu.assertEquals(status, 1)
end

function TestTestRule:test_failing_rule_exits_2()
  local dir = temp_dir()
  write(dir .. "/bad.lua", 'return { ids = { "' .. RELAY_ID .. '" },\n'
    .. '  remediate = function(d) return { steps = { { title = "x" } } } end }\n')
  local out, _, status = run({ "test-rule", dir .. "/bad.lua" }, { stdin = RELAY .. "\n" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(out, "error: " .. dir .. "/bad.lua: steps[1].commands: expected a list of strings")
end

function TestTestRule:test_rule_that_does_not_load_exits_2()
  local dir = temp_dir()
  write(dir .. "/bad.lua", "return {\n  ids = 'x',\n")
  local _, err, status = run({ "test-rule", dir .. "/bad.lua" }, { stdin = RELAY .. "\n" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, dir .. "/bad.lua:3:")
end


TestEmitScript = {}

function TestEmitScript:test_script_is_valid_shell()
  local dir = temp_dir()
  local site = site_file(dir, 'return { vars = { mynetworks = "10.20.0.0/16" } }\n')
  local script = dir .. "/fix.sh"
  local sasl = log_line("fail2ban/postfix", "sasl_username=admin")
  local out, err, status = run({ "--site", site, "--emit-script", script, "--format", "json" },
    { stdin = RELAY .. "\n" .. sasl .. "\n" })
  lu.assertEquals(status, 0, err)
  lu.assertNotNil(cjson.decode(out), "the report still goes to standard output")
  lu.assertStrContains(err, "wrote the remediation steps to " .. script)
  local text = assert(read(script), "no script written")
  lu.assertStrContains(text, "#!/bin/sh\n")
  lu.assertStrContains(text, "\nset -eu\n")
  lu.assertTrue(text:find("\n# %-%-%-%- step %d+: Check whether example%.com") ~= nil, "the domain step")
  lu.assertTrue(text:find("\n# %-%-%-%- step %d+, an alternative to step %d+ [^\n]*: Or let 1%.2%.3%.4 relay") ~= nil,
    "the mynetworks step")
  -- The alternative steps are commented out: mynetworks is never changed
  -- by running the script as written.
  lu.assertStrContains(text, "\n# postconf -e 'mynetworks = 10.20.0.0/16 1.2.3.4/32'\n")
  lu.assertStrContains(text, "\n# postconf -Me 'submission/inet=")
  lu.assertStrContains(text, "fail2ban-client set postfix-sasl banip 192.0.2.152")
  lu.assertTrue(os.execute("bash -n " .. shell_quote(script)), "bash -n rejects the script")
  lu.assertTrue(os.execute("sh -n " .. shell_quote(script)), "sh -n rejects the script")
end

function TestEmitScript:test_unwritable_path_exits_2()
  local _, err, status = run({ "--emit-script", "/nonexistent/dir/fix.sh", RELAY })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "cannot write the remediation script to '/nonexistent/dir/fix.sh'")
end

function TestEmitScript:test_rule_text_cannot_escape_comments()
  local dir = temp_dir()
  assert(os.execute("mkdir -p " .. dir .. "/rules.d"))
  write(dir .. "/rules.d/evil.lua", 'return { ids = { "ssh/host-key-verification-failed" }, remediate = function()\n'
    .. '  return { steps = { { title = "x\\ntouch ' .. dir .. '/pwned", commands = { "true" }, check = "true",\n'
    .. '    notes = { "n\\rtouch ' .. dir .. '/pwned2" } } } } end }\n')
  local site = site_file(dir, 'return { rules = { "rules.d" } }\n')
  local script = dir .. "/fix.sh"
  local _, err, status = run({ "--site", site, "--emit-script", script, "Host key verification failed." })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(read(script), "\ntrue\n")
  lu.assertTrue(os.execute("sh " .. shell_quote(script) .. " >/dev/null"), "the script failed")
  lu.assertNil(read(dir .. "/pwned"), "a title became a command")
  lu.assertNil(read(dir .. "/pwned2"), "a note became a command")
end


TestRuleFailures = {}

local function failing_rule_site(dir, body, ids)
  assert(os.execute("mkdir -p " .. dir .. "/rules.d"))
  write(dir .. "/rules.d/failing.lua", "return { ids = { " .. ids .. " },\n  remediate = function(d)\n"
    .. body .. "\n  end }\n")
  return site_file(dir, 'return { vars = { mynetworks = "10.20.0.0/16" }, rules = { "rules.d" } }\n')
end

function TestRuleFailures:test_failure_marks_only_its_diagnosis()
  local dir = temp_dir()
  local site = failing_rule_site(dir, "    while true do end", '"' .. RELAY_ID .. '"')
  local sasl = log_line("fail2ban/postfix", "sasl_username=admin")
  local out, err, status = run({ "--site", site, "--format", "json" }, { stdin = RELAY .. "\n" .. sasl .. "\n" })
  lu.assertEquals(status, 2, "a failed rule makes the exit status 2")
  lu.assertStrContains(err, dir .. "/rules.d/failing.lua:3:")
  lu.assertStrContains(err, "exceeded the ")
  local report = cjson.decode(out)
  local relay = relay_diagnosis(out)
  lu.assertStrContains(relay.remediation_error, "failing.lua:3: exceeded")
  -- The shipped relay rule still ran.
  lu.assertStrContains(remediation_text(relay), "1.2.3.4/32")
  for _, d in ipairs(report.diagnoses) do
    if d.id ~= RELAY_ID then
      lu.assertNil(d.remediation_error, d.id .. " was not affected")
    end
  end
  lu.assertEquals(report.errors[1].script, dir .. "/rules.d/failing.lua")
  lu.assertEquals(report.errors[1].line, 3)
  lu.assertStrContains(report.errors[1].message, "line 3: exceeded the ")
  lu.assertTrue(report.errors[1].kind == "instructions" or report.errors[1].kind == "time", report.errors[1].kind)
end

function TestRuleFailures:test_failure_logged_once_and_counted()
  local dir = temp_dir()
  local site = failing_rule_site(dir, "    error('broken rule')", '"**"')
  local sasl = log_line("fail2ban/postfix", "sasl_username=admin")
  local out, err, status = run({ "--site", site, "--format", "json" }, { stdin = RELAY .. "\n" .. sasl .. "\n" })
  lu.assertEquals(status, 2)
  local _, logged = err:gsub("failing%.lua", "")
  lu.assertEquals(logged, 1, "logged once per script and kind:\n" .. err)
  lu.assertStrContains(err, "broken rule; failed")
  local report = cjson.decode(out)
  lu.assertEquals(#report.errors, 1)
  lu.assertTrue(report.errors[1].count >= 2, "counted per diagnosis")
end


local status = lu.LuaUnit.run("-v")
for _, dir in ipairs(tmp_dirs) do
  os.execute("rm -rf " .. shell_quote(dir))
end
os.exit(status)
