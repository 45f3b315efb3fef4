-- Tests of the triage Lua module (core/lua_module.c) loaded into stock lua5.4.
-- Run from the repository root with the built module on LUA_CPATH:
--   LUA_CPATH="BUILD/lua/?.so;;" lua5.4 tests/embed/test_module.lua
local lu = require "luaunit"
local triage = require "triage"

local RELAY_ID = "communication/smtp-554-5-7-0-relay-denied"
local RELAY_LINE = "Dec  4 03:12:41 mx1 postfix/smtpd[21877]: NOQUEUE: reject: RCPT from "
  .. "client.example.net[203.0.113.45]: 554 5.7.1 <alice@example.org>: Relay access denied; "
  .. "from=<bob@example.com> to=<alice@example.org> proto=ESMTP helo=<client.example.net>"
local FIXTURES = "tests/fixtures/records"

local function open(options)
  options = options or {}
  options.no_site_layers = true
  local engine, err = triage.open(options)
  lu.assertNotNil(engine, err)
  return engine
end

local function write_temp(text, suffix)
  local path = os.tmpname()
  if suffix then
    os.remove(path)
    path = path .. suffix
  end
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

TestModule = {}

function TestModule:test_module_fields()
  lu.assertIsFunction(triage.open)
  lu.assertIsString(triage.version)
  lu.assertIsTable(triage.cjson)
  lu.assertIsFunction(triage.cjson.decode)
  lu.assertIs(package.loaded["triage.regex"], triage.regex)
end

function TestModule:test_open_rejects_unknown_option()
  local ok, err = pcall(triage.open, { record = "x" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "unknown option 'record'")
end

function TestModule:test_open_rejects_bad_option_type()
  local ok, err = pcall(triage.open, { strict = "yes" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "option 'strict' must be a boolean, got string")
  ok, err = pcall(triage.open, { records = { FIXTURES, 3 } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "records[2] must be a path string")
end

function TestModule:test_open_missing_records_returns_message()
  local engine, err = triage.open({ no_site_layers = true, records = "tests/no/such/folder" })
  lu.assertNil(engine)
  lu.assertStrContains(err, "tests/no/such/folder")
end

function TestModule:test_open_missing_datadir_returns_message()
  local engine, err = triage.open({ datadir = "/nonexistent/triage" })
  lu.assertNil(engine)
  lu.assertStrContains(err, "/nonexistent/triage")
end

TestDiagnose = {}

function TestDiagnose:test_relay_line_top_id()
  local report = open():diagnose(RELAY_LINE)
  lu.assertEquals(report.schema, "triage.report/1")
  lu.assertEquals(report.diagnoses[1].id, RELAY_ID)
end

function TestDiagnose:test_report_has_contract_fields()
  local d = open():diagnose(RELAY_LINE).diagnoses[1]
  for _, field in ipairs({ "score", "signature", "root_cause", "dead_ends", "workarounds", "match",
    "transitions", "remediation" }) do
    lu.assertNotNil(d[field], "diagnosis lacks " .. field)
  end
  lu.assertIsNumber(d.score)
  lu.assertStrContains(d.match.text, "Relay access denied")
  lu.assertIsTable(d.match.captures)
  lu.assertTrue(#d.workarounds >= 1)
end

function TestDiagnose:test_report_equals_cli_json_shape()
  local engine = open()
  local rendered = engine:render(RELAY_LINE, { format = "json" })
  lu.assertEquals(engine:diagnose(RELAY_LINE), triage.cjson.decode(rendered))
end

function TestDiagnose:test_no_match_empty_diagnoses()
  local report = open():diagnose("all systems nominal")
  lu.assertEquals(#report.diagnoses, 0)
  lu.assertEquals(report.input.text, "all systems nominal")
end

function TestDiagnose:test_top_option_limits()
  local engine = open({ records = FIXTURES .. "/good" })
  local text = "gadget stalled\nwidget frobnication failed for queue 9"
  lu.assertEquals(#engine:diagnose(text).diagnoses, 2)
  lu.assertEquals(#engine:diagnose(text, { top = 1 }).diagnoses, 1)
end

function TestDiagnose:test_named_capture_in_report()
  local engine = open({ records = FIXTURES .. "/good" })
  local d = engine:diagnose("widget frobnication failed for queue 42").diagnoses[1]
  lu.assertEquals(d.id, "mail/widget-failure")
  lu.assertEquals(d.match.captures.queue, "42")
end

function TestDiagnose:test_format_option_rejected()
  local engine = open()
  local ok, err = pcall(engine.diagnose, engine, RELAY_LINE, { format = "text" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "unknown option 'format'")
end

function TestDiagnose:test_text_argument_required()
  local engine = open()
  local ok, err = pcall(engine.diagnose, engine)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "string expected")
end

TestRender = {}

function TestRender:test_render_named_formats()
  local engine = open()
  for _, format in ipairs({ "text", "json", "ndjson", "markdown" }) do
    local out, count = engine:render(RELAY_LINE, { format = format })
    lu.assertIsString(out, format)
    lu.assertEquals(count, 1, format)
    lu.assertStrContains(out, RELAY_ID, false)
  end
end

function TestRender:test_render_lua_formatter_file()
  local path = write_temp([[
return function(report)
  return "ids:" .. report.diagnoses[1].id
end
]], ".lua")
  local out = open():render(RELAY_LINE, { format = path })
  os.remove(path)
  lu.assertEquals(out, "ids:" .. RELAY_ID)
end

function TestRender:test_render_unknown_format_message()
  local out, err = open():render(RELAY_LINE, { format = "yaml" })
  lu.assertNil(out)
  lu.assertStrContains(err, "unknown format 'yaml'")
end

function TestRender:test_show_record()
  local out = open():show(RELAY_ID, { format = "json" })
  lu.assertEquals(triage.cjson.decode(out).diagnoses[1].id, RELAY_ID)
  local missing, err = open():show("mail/none")
  lu.assertNil(missing)
  lu.assertStrContains(err, "mail/none")
end

TestMatch = {}

function TestMatch:test_match_hits_ranked()
  local engine = open({ records = FIXTURES .. "/good" })
  local hits = engine:match("x\ngadget stalled")
  lu.assertEquals(#hits, 1)
  lu.assertEquals(hits[1].id, "mail/gadget-stall")
  lu.assertEquals(hits[1].line, 2)
  lu.assertEquals(hits[1].start, 3)
  lu.assertEquals(hits[1]["end"], 16)
  lu.assertIsNumber(hits[1].parts.literal)
end

function TestMatch:test_ids_and_counts()
  local engine = open({ records = FIXTURES .. "/good" })
  lu.assertEquals(engine:record_count(), 2)
  local ids = engine:ids()
  table.sort(ids)
  lu.assertEquals(ids, { "mail/gadget-stall", "mail/widget-failure" })
  local added = engine:load_records("records")
  lu.assertTrue(added >= 1)
  lu.assertEquals(engine:record_count(), 2 + added)
end

function TestMatch:test_problems_listed()
  local engine = open({ records = FIXTURES .. "/bad" })
  local problems = engine:problems()
  lu.assertTrue(#problems >= 1)
  local found = false
  for _, p in ipairs(problems) do
    lu.assertIsString(p.message)
    found = found or (p.file:find("invalid-json.json", 1, true) and p.line == 4)
  end
  lu.assertTrue(found)
end

TestScan = {}

-- The tests build the scanner's prefilter without its cache, so that they
-- write nothing under the user's home.
local SCAN = { no_cache = true }

function TestScan:test_scan_yields_diagnosed_lines()
  local path = write_temp("quiet line\n" .. RELAY_LINE .. "\r\nanother quiet line\n" .. RELAY_LINE)
  local engine = open()
  local seen = {}
  for entry in engine:scan(path, SCAN) do
    seen[#seen + 1] = entry
  end
  os.remove(path)
  lu.assertEquals(#seen, 2)
  lu.assertEquals(seen[1].line, 2)
  lu.assertEquals(seen[2].line, 4)
  lu.assertEquals(seen[1].text, RELAY_LINE)
  lu.assertEquals(seen[2].text, RELAY_LINE)
  lu.assertEquals(seen[1].diagnoses[1].id, RELAY_ID)
  lu.assertIsNumber(seen[1].diagnoses[1].score)
  lu.assertNil(seen[1].truncated)
end

-- Vectorscan's AVX2 and AVX-512 code missed this line with these two
-- records (core/prefilter.c), so the module must search with the same
-- code as the command.
function TestScan:test_scan_small_database_finds_line()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  for _, literal in ipairs({ "abb", "caa" }) do
    local f = assert(io.open(dir .. "/" .. literal .. ".json", "wb"))
    f:write(string.format('{"id": "t/%s", "signature": "%s", "regex": "%s"}', literal, literal, literal))
    f:close()
  end
  local line = "bbbbbcbbbbbbbbbbb bbbbbbbbbbbbbbbbbbbbbbbcxbbbb bbbbbbbbbbbbbbbbbabbab"
  local path = write_temp(line .. "\n")
  local ids = {}
  for entry in open({ records = { dir } }):scan(path, SCAN) do
    for _, d in ipairs(entry.diagnoses) do
      ids[#ids + 1] = d.id
    end
  end
  os.remove(path)
  os.execute("rm -r " .. dir)
  lu.assertEquals(ids, { "t/abb" })
end

function TestScan:test_scan_ranks_like_diagnose()
  local engine = open({ records = { "records", FIXTURES .. "/good" } })
  local line = "gadget stalled after widget frobnication failed for queue 7"
  local path = write_temp(line .. "\n")
  local entry = engine:scan(path, SCAN)()
  os.remove(path)
  local report = engine:diagnose(line)
  lu.assertEquals(#entry.diagnoses, #report.diagnoses)
  for i, d in ipairs(report.diagnoses) do
    lu.assertEquals(entry.diagnoses[i].id, d.id)
    lu.assertAlmostEquals(entry.diagnoses[i].score, d.score, 1e-12)
  end
end

function TestScan:test_scan_many_lines_in_order()
  local lines = {}
  for i = 1, 5000 do
    lines[i] = (i % 1000 == 0) and RELAY_LINE or ("routine line number " .. i)
  end
  local path = write_temp(table.concat(lines, "\n") .. "\n")
  local numbers = {}
  for entry in open():scan(path, { no_cache = true, jobs = 3 }) do
    numbers[#numbers + 1] = entry.line
  end
  os.remove(path)
  lu.assertEquals(numbers, { 1000, 2000, 3000, 4000, 5000 })
end

function TestScan:test_scan_gzip_file()
  local path = write_temp("quiet\n" .. RELAY_LINE .. "\n")
  lu.assertTrue(os.execute("gzip -f " .. path))
  local seen = {}
  for entry in open():scan(path .. ".gz", SCAN) do
    seen[#seen + 1] = entry
  end
  os.remove(path .. ".gz")
  lu.assertEquals(#seen, 1)
  lu.assertEquals(seen[1].line, 2)
  lu.assertEquals(seen[1].diagnoses[1].id, RELAY_ID)
end

function TestScan:test_scan_min_score_filters_all()
  local path = write_temp(RELAY_LINE .. "\n")
  local count = 0
  for _ in open():scan(path, { no_cache = true, min_score = 1 }) do
    count = count + 1
  end
  os.remove(path)
  lu.assertEquals(count, 0)
end

function TestScan:test_scan_rejects_unknown_option()
  local engine = open()
  local ok, err = pcall(engine.scan, engine, "x.log", { follow = true })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "unknown option 'follow'")
end

function TestScan:test_scan_missing_file_message()
  local iter, err = open():scan("/nonexistent/mail.log", SCAN)
  lu.assertNil(iter)
  lu.assertStrContains(err, "cannot open '/nonexistent/mail.log'")
end

function TestScan:test_scan_options_may_be_omitted()
  local iter, err = open():scan("/nonexistent/mail.log")
  lu.assertNil(iter)
  lu.assertStrContains(err, "No such file or directory")
end

function TestScan:test_engine_busy_during_scan()
  local path = write_temp(RELAY_LINE .. "\n" .. RELAY_LINE .. "\n")
  local engine = open()
  -- Not iterated yet, so the scan is certainly still open.
  local _, _, _, closer = engine:scan(path, SCAN)
  local ok, err = pcall(engine.close, engine)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "1 scan(s) still use the engine")
  ok, err = pcall(engine.load_records, engine, "records")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "engine:load_records")
  getmetatable(closer).__close(closer)
  engine:close()
  os.remove(path)
  lu.assertEquals(tostring(engine), "triage.engine (closed)")
end

function TestScan:test_scan_break_then_close_engine()
  local path = write_temp(RELAY_LINE .. "\n" .. RELAY_LINE .. "\n")
  local engine = open()
  for _ in engine:scan(path, SCAN) do
    break
  end
  engine:close()
  os.remove(path)
  lu.assertEquals(tostring(engine), "triage.engine (closed)")
end

TestRegex = {}

function TestRegex:test_named_and_numbered_captures()
  local re = triage.regex("client (?<host>\\S+)\\[([0-9.]+)\\]")
  local m, first, last = re:match("RCPT from client mx.example.net[203.0.113.45]: 554")
  lu.assertNotNil(m)
  lu.assertEquals(m.host, "mx.example.net")
  lu.assertEquals(m[1], "mx.example.net")
  lu.assertEquals(m[2], "203.0.113.45")
  lu.assertEquals(m[0], "client mx.example.net[203.0.113.45]")
  lu.assertEquals(first, 11)
  lu.assertEquals(last, 45)
end

function TestRegex:test_case_insensitive_like_records()
  lu.assertNotNil(triage.regex.new("relay access denied"):match("RELAY ACCESS DENIED"))
end

function TestRegex:test_unset_group_is_false()
  local m = triage.regex("(a)|(b)"):match("b")
  lu.assertEquals(m[1], false)
  lu.assertEquals(m[2], "b")
end

function TestRegex:test_no_match_nil()
  lu.assertNil(triage.regex("relay"):match("all good"))
end

function TestRegex:test_invalid_utf8_subject()
  lu.assertNotNil(triage.regex("denied"):match("\xff\xfe denied \xc3"))
end

function TestRegex:test_bad_pattern_raises_with_offset()
  local ok, err = pcall(triage.regex, "relay (access")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "at offset 13")
end

function TestRegex:test_pattern_and_tostring()
  local re = triage.regex("a+b")
  lu.assertEquals(re:pattern(), "a+b")
  lu.assertEquals(tostring(re), "triage.regex: a+b")
end

TestRecords = {}

function TestRecords:test_record_native_model()
  local record = open():record(RELAY_ID)
  lu.assertEquals(record.id, RELAY_ID)
  lu.assertIsString(record.regex)
  lu.assertIsTable(record.transition_graph)
  lu.assertNil(open():record("mail/none"))
end

function TestRecords:test_graph_over_engine()
  local engine = open({ records = { "records", FIXTURES .. "/good" } })
  local graph = engine:graph()
  local transitions = graph:resolve(engine:record(RELAY_ID))
  lu.assertIsTable(transitions)
  lu.assertIs(triage.graph, require("triage.graph"))
  lu.assertIsFunction(triage.graph.new)
end

function TestRecords:test_datadir_is_source_tree()
  local dir = open():datadir()
  lu.assertIsString(dir)
  local f = io.open(dir .. "/lua/triage/report.lua")
  lu.assertNotNil(f)
  f:close()
end

TestClose = {}

function TestClose:test_closed_engine_raises()
  local engine = open()
  engine:close()
  engine:close()
  local ok, err = pcall(engine.diagnose, engine, RELAY_LINE)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "engine is closed")
end

function TestClose:test_to_be_closed()
  local kept
  do
    local engine <close> = open()
    kept = engine
    lu.assertStrContains(tostring(engine), "records")
  end
  lu.assertEquals(tostring(kept), "triage.engine (closed)")
end

os.exit(lu.LuaUnit.run())
