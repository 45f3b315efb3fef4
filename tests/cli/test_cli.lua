-- End-to-end tests of the triage binary: real log lines in, output and exit
-- status checked. Run from the repository root:
--   lua5.4 tests/cli/test_cli.lua BINARY SHARED_DIR
local lu = require "luaunit"
local cjson = require "cjson"

local BINARY = assert(arg[1], "usage: test_cli.lua BINARY SHARED_DIR")
local SHARED = assert(arg[2], "usage: test_cli.lua BINARY SHARED_DIR")
local REFERENCE = "communication/smtp-554-5-7-0-relay-denied"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local COMMANDS = { show = true, check = true, diagnose = true, scan = true, explain = true, site = true }

-- Run the binary with args (a list); returns stdout, stderr, exit status.
-- The host's own site files are ignored so results do not depend on the machine.
local function run(args, stdin)
  local parts = { shell_quote(BINARY) }
  local first = 1
  if COMMANDS[args[1]] then
    parts[2] = shell_quote(args[1])
    first = 2
  end
  parts[#parts + 1] = "--no-site-layers"
  for i = first, #args do
    parts[#parts + 1] = shell_quote(args[i])
  end
  local err_file = os.tmpname()
  local cmd = table.concat(parts, " ") .. " 2>" .. err_file
  if stdin then
    local in_file = os.tmpname()
    local f = assert(io.open(in_file, "wb"))
    f:write(stdin)
    f:close()
    cmd = cmd .. " <" .. in_file
  else
    cmd = cmd .. " </dev/null"
  end
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  local f = assert(io.open(err_file, "rb"))
  local err = f:read("a")
  f:close()
  os.remove(err_file)
  return out, err, status
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

TestDiagnose = {}

function TestDiagnose.test_relay_line_json_reference_first()
  local out, err, status = run({ "--format", "json", RELAY })
  lu.assertEquals(status, 0, err)
  local report = cjson.decode(out)
  lu.assertEquals(report.schema, "triage.report/1")
  lu.assertEquals(report.input.text, RELAY)
  lu.assertEquals(report.diagnoses[1].id, REFERENCE)
  local d = report.diagnoses[1]
  for _, field in ipairs({ "score", "signature", "root_cause", "dead_ends", "workarounds", "match", "transitions", "remediation" }) do
    lu.assertNotNil(d[field], "diagnosis lacks " .. field)
  end
  lu.assertTrue(d.score > 0 and d.score <= 1)
  lu.assertStrContains(d.match.text, "Relay access denied")
  lu.assertTrue(d.workarounds[1].success_rate >= d.workarounds[2].success_rate, "workarounds best first")
end

function TestDiagnose.test_text_output_for_people()
  local out, _, status = run({ "--color", "never", RELAY })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, REFERENCE)
  lu.assertStrContains(out, "client's IP or authenticated user is not authorized")
  lu.assertStrContains(out, "Increase the SMTP timeout value")
  lu.assertStrContains(out, "systemctl restart postfix")
  lu.assertStrContains(out, "https://www.ietf.org/rfc/rfc2821.txt")
  lu.assertStrContains(out, "Postfix 3.7.0")
  lu.assertNotStrContains(out, "\27[")
end

function TestDiagnose.test_color_always_adds_escapes()
  local out = run({ "--color", "always", RELAY })
  lu.assertStrContains(out, "\27[")
end

function TestDiagnose.test_lang_zh_shows_chinese()
  local out, _, status = run({ "--lang", "zh", "--color", "never", RELAY })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "SMTP 服务器拒绝中继尝试")
  lu.assertStrContains(out, "554 5.7.0 中继访问被拒绝")
end

-- A JSON log line as Go writes it: < and > as \u003c and \u003e.
function TestDiagnose.test_json_log_line_diagnosed_on_its_text()
  local message = RELAY:gsub("<", "\\u003c"):gsub(">", "\\u003e"):gsub('"', '\\"')
  local line = '{"level":"warn","logger":"mail","msg":"' .. message .. '"}'
  lu.assertStrContains(line, "\\u003c")
  local out, err, status = run({ "--format", "json", "--top", "1", line })
  lu.assertEquals(status, 0, err)
  local d = cjson.decode(out).diagnoses[1]
  lu.assertEquals(d.id, REFERENCE)
  lu.assertStrContains(d.match.text, "Relay access denied")
  lu.assertEquals(d.match.line_text, line)
  local steps = cjson.encode(d.remediation)
  local client = RELAY:match("from [^%[]*%[([%d.]+)%]")
  lu.assertNotNil(client)
  lu.assertStrContains(steps, client)
end

function TestDiagnose.test_site_substitutes_mynetworks()
  local out, err, status = run({ "--format", "json", "--site", "tests/fixtures/sites/mynetworks.lua", RELAY })
  lu.assertEquals(status, 0, err)
  local d = cjson.decode(out).diagnoses[1]
  local found = false
  for _, w in ipairs(d.workarounds) do
    lu.assertNotStrContains(w.how or "", "192.168.1.0/24")
    lu.assertNotStrContains(w.action or "", "192.168.1.0/24")
    if (w.how or ""):find("mynetworks = 10.20.0.0/16, 10.30.0.0/16", 1, true) then
      found = true
    end
  end
  lu.assertTrue(found, "site range missing from workarounds")
end

function TestDiagnose.test_stdin_message()
  local out, _, status = run({ "--format", "json" }, RELAY .. "\n")
  lu.assertEquals(status, 0)
  lu.assertEquals(cjson.decode(out).diagnoses[1].id, REFERENCE)
end

function TestDiagnose.test_nothing_matched_exits_1()
  local out, _, status = run({ "--format", "json", "--no-guess", "all systems nominal" })
  lu.assertEquals(status, 1)
  lu.assertEquals(#cjson.decode(out).diagnoses, 0)
end

function TestDiagnose.test_top_limits_diagnoses()
  local out, _, status = run({ "--format", "json", "--top", "1", RELAY })
  lu.assertEquals(status, 0)
  lu.assertEquals(#cjson.decode(out).diagnoses, 1)
end

TestErrors = {}

function TestErrors.test_unknown_option_exits_2()
  local _, err, status = run({ "--bogus" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "triage: unknown option '--bogus'")
end

-- An option of another command is refused with the commands that take it,
-- not ignored.
function TestErrors.test_option_of_other_command_exits_2()
  local cases = {
    { { "scan", "--explain", "/dev/null" }, "option --explain does not apply to scan, only to diagnose/show/test-rule" },
    { { "--jobs", "2", "x" }, "option --jobs does not apply to diagnose, only to scan" },
    { { "check", "--emit-script", "out.sh", "records" }, "option --emit-script does not apply to check" },
    { { "scan", "--jobs", "0", "/dev/null" }, "invalid value '0' for --jobs: expected 1 to 256" },
    { { "scan", "--format", "script", "/dev/null" }, "scan has no script format" },
  }
  for _, case in ipairs(cases) do
    local _, err, status = run(case[1])
    lu.assertEquals(status, 2, table.concat(case[1], " "))
    lu.assertStrContains(err, case[2])
  end
end

-- A command's --help lists the options that it takes and no others.
function TestErrors.test_command_help_lists_its_options()
  local out, _, status = run({ "scan", "--help" })
  lu.assertEquals(status, 0)
  for _, text in ipairs({ "triage scan [OPTIONS] [FILE...]", "--jobs N", "--records PATH" }) do
    lu.assertStrContains(out, text)
  end
  for _, text in ipairs({ "--emit-script", "triage check", "script (remediation steps" }) do
    lu.assertNotStrContains(out, text)
  end
  local all = run({ "--help" })
  for _, text in ipairs({ "--emit-script FILE", "--jobs N", "triage check [OPTIONS] PATH..." }) do
    lu.assertStrContains(all, text)
  end
end

function TestErrors.test_bad_value_names_option_and_value()
  local _, err, status = run({ "--lang", "fr", "x" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "'fr'")
  lu.assertStrContains(err, "--lang")
end

function TestErrors.test_missing_records_path_exits_2()
  local _, err, status = run({ "--records", "/nonexistent/records", "x" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "/nonexistent/records")
end

function TestErrors.test_broken_site_file_exits_2()
  local site = os.tmpname()
  local f = assert(io.open(site, "w"))
  f:write("return {\n vars = \n")
  f:close()
  local _, err, status = run({ "--site", site, RELAY })
  os.remove(site)
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, site)
end

TestCheck = {}

function TestCheck.test_builtin_records_clean()
  local _, err, status = run({ "check", "records" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(err, "0 rejected; 0 error(s)")
end

function TestCheck.test_bad_fixtures_exit_2_with_locations()
  local _, err, status = run({ "check", "tests/fixtures/records/good", "tests/fixtures/records/bad" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "tests/fixtures/records/bad/invalid-json.json:4:16: bad/json: -: error: invalid JSON")
  lu.assertStrContains(err, "broken-regex.json:1:62: bad/broken-regex: regex: error: regex does not compile: missing closing parenthesis at offset 8")
  lu.assertStrContains(err, "bad/rate: workarounds[0].success_rate: error: 1.5 is outside [0, 1]")
  lu.assertStrContains(err, "mail/widget-failure: id: error: duplicate id")
end

-- A regex that the routine samples drive into quarantine is still tested
-- on its own signature first, so check reports no false mismatch.
function TestCheck.test_quarantined_regex_matches_own_signature()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local f = assert(io.open(dir .. "/r.json", "wb"))
  f:write('{"id": "t/slow", "signature": "words to end", "regex": "(\\\\w+\\\\s?)*$"}')
  f:close()
  local out, err = run({ "check", dir })
  os.execute("rm -r " .. dir)
  lu.assertStrContains(out .. err, "quarantined")
  lu.assertNotStrContains(out .. err, "does not match its own signature")
end

function TestCheck.test_json_format()
  local out, _, status = run({ "check", "--format", "json", "tests/fixtures/records/bad" })
  lu.assertEquals(status, 2)
  local result = cjson.decode(out)
  -- The duplicate-id record loads here: its twin is in the good folder only.
  lu.assertEquals(result.records, 1)
  lu.assertEquals(#result.errors, 6)
  for _, e in ipairs(result.errors) do
    lu.assertNotNil(e.file)
    lu.assertNotNil(e.id)
    lu.assertNotNil(e.field)
    lu.assertNotNil(e.message)
  end
end

function TestCheck.test_public_corpus_loads_with_self_mismatch_warnings()
  local out, err, status = run({ "check", "--quiet", "--format", "json", SHARED .. "/corpora/deadends/canons" })
  lu.assertEquals(status, 0, err)
  local result = cjson.decode(out)
  lu.assertEquals(result.records, 2522)
  lu.assertEquals(#result.errors, 0)
  local self_mismatches = 0
  for _, w in ipairs(result.warnings) do
    if w.message:find("does not match its own signature", 1, true) then
      self_mismatches = self_mismatches + 1
    end
  end
  lu.assertEquals(self_mismatches, 208)
end

function TestCheck.test_broad_regex_warned()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir .. "/x")
  local f = assert(io.open(dir .. "/x/broad.json", "w"))
  f:write('{"id": "x/broad", "signature": "error", "regex": "e"}')
  f:close()
  local _, err, status = run({ "check", "--strict", dir })
  os.execute("rm -rf " .. dir)
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "x/broad: regex: warning: regex matches")
end

TestShow = {}

function TestShow.test_show_reference()
  local out, _, status = run({ "show", "--color", "never", REFERENCE })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "Relay access denied")
end

function TestShow.test_show_unknown_id_exits_2()
  local _, err, status = run({ "show", "no/such-record" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "'no/such-record' is not loaded")
end

os.exit(lu.LuaUnit.run("-v"))
