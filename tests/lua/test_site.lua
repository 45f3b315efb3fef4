-- Tests for triage.site: site-file validation, layering, variable
-- expansion, substitution and per-record overrides.
-- Run from the repository root: lua5.4 tests/lua/test_site.lua
package.path = "lua/?.lua;tests/lua/?.lua;" .. package.path

local lu = require "luaunit"
local site = require "triage.site"
local json = require "triage.json"
local fixtures = require "fixtures.report"

local RELAY = "communication/smtp-554-5-7-0-relay-denied"
local MAIL_SITE = "tests/lua/fixtures/site_mail.lua"


local function load_site_file(path)
  local chunk = assert(loadfile(path, "t", {}))
  return chunk()
end


-- Build an effective site from one layer.
local function single(t)
  return site.merge({ { file = "site.lua", table = t } })
end


local function actions(list)
  local out = {}
  for i, item in ipairs(list) do
    out[i] = item.action
  end
  return out
end


TestSiteGlob = {}

function TestSiteGlob:test_glob_match()
  local cases = {
    { "communication/smtp-*", RELAY, true, "star within the last segment" },
    { "communication/smtp-*", "communication/smtp-x/prod", false, "star stops at '/'" },
    { "communication/*", "network/dns", false, "other domain" },
    { "communication/**", "communication/smtp-x/prod", true, "double star crosses '/'" },
    { "communication/**", "communication", false, "double star needs the separator" },
    { "**", "anything/at/all", true, "double star alone matches every id" },
    { "*/smtp-*", RELAY, true, "star in the first segment" },
    { "communication/smtp-55?-*", RELAY, true, "question mark is one character" },
    { "communication/smtp-5?", "communication/smtp-5/x", false, "question mark is not '/'" },
    { "a.b/c", "axb/c", false, "dot is literal" },
    { "a%b/*", "a%b/c", true, "percent is literal" },
    { "a-b/(x)", "a-b/(x)", true, "dash and parentheses are literal" },
    { "communication/***", "communication/smtp-x/prod", true, "three stars are a double star" },
    { "a*b*c/x", "aXbYc/x", true, "stars between literals" },
    { "a*b*c/x", "aXbY/x", false, "a literal after the stars is missing" },
    { "*", "", true, "star matches the empty id" },
    { "?", "", false, "question mark needs a character" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(site.glob_match(case[1], case[2]), case[3], case[4])
  end
end


-- A Lua pattern built from such globs backtracked inside string.find past
-- a fuzzer's 10 s timeout. A clock bound here would flake, so ctest's
-- timeout is what catches a regression.
function TestSiteGlob:test_many_wildcards_do_not_backtrack()
  local id = string.rep("a", 200)
  lu.assertFalse(site.glob_match(string.rep("*", 106) .. "mail/t-/*", id), "106 stars")
  lu.assertFalse(site.glob_match(string.rep("*a", 120) .. "b", id), "120 star-literal pairs")
  lu.assertTrue(site.glob_match(string.rep("*a", 120), id), "120 pairs that match")
  lu.assertFalse(site.glob_match(string.rep("?*", 100) .. "/", id), "question marks and stars")
end


TestSiteValidate = {}

function TestSiteValidate:test_fixture_is_valid()
  lu.assertEquals(site.validate(load_site_file(MAIL_SITE), MAIL_SITE), {},
    "the example site file has no problems")
end

function TestSiteValidate:test_problems()
  local cases = {
    { "not a table", "F: expected the chunk to return a table, got string", "chunk result" },
    { { varz = {} }, "F: varz: unknown key (expected vars, substitute, records or rules)", "top-level typo" },
    { { vars = "x" }, "F: vars: expected a table, got string", "vars not a table" },
    { { vars = { x = {} } }, "F: vars.x: expected string or number, got table", "var value" },
    { { vars = { ["bad name"] = "v" } }, 'F: vars["bad name"]: invalid variable name', "var name" },
    { { substitute = { a = 1 } }, "F: substitute.a: expected string, got number", "substitute value" },
    { { substitute = { [""] = "x" } }, 'F: substitute[""]: key must be a non-empty string', "empty key" },
    { { records = { [RELAY] = 3 } }, "F: records[\"" .. RELAY .. "\"]: expected a table, got number",
      "override not a table" },
    { { records = { x = { runbok = "u" } } }, "F: records.x.runbok: unknown field", "override typo" },
    { { records = { x = { confidence = 2 } } }, "F: records.x.confidence: expected a number in [0, 1], got 2",
      "confidence range" },
    { { records = { x = { notes = "n" } } }, "F: records.x.notes: expected a list of strings, got string",
      "notes type" },
    { { records = { x = { notes = { 1 } } } }, "F: records.x.notes[1]: expected string, got number",
      "note item type" },
    { { records = { x = { runbook = 1 } } }, "F: records.x.runbook: expected string, got number", "runbook" },
    { { records = { x = { workarounds = { remove = {} } } } },
      "F: records.x.workarounds.remove: unknown operation", "operation typo" },
    { { records = { x = { workarounds = { add = { { success_rate = 0.5 } } } } } },
      "F: records.x.workarounds.add[1].action: missing non-empty string", "added entry without action" },
    { { records = { x = { workarounds = { add = { { action = "a", sucess_rate = 0.5 } } } } } },
      "F: records.x.workarounds.add[1].sucess_rate: unknown field", "entry field typo" },
    { { records = { x = { dead_ends = { add = { { action = "a", fail_rate = 1.2 } } } } } },
      "F: records.x.dead_ends.add[1].fail_rate: expected a number in [0, 1], got 1.2", "rate range" },
    { { records = { x = { dead_ends = { add = { { action = "a", success_rate = 0.2 } } } } } },
      "F: records.x.dead_ends.add[1].success_rate: unknown field", "dead ends have no success_rate" },
    { { records = { x = { workarounds = { drop = { 0 } } } } },
      "F: records.x.workarounds.drop[1]: expected a 1-based index or an action text, got 0", "drop index 0" },
    { { records = { x = { workarounds = { order = "1" } } } },
      "F: records.x.workarounds.order: expected a list, got string", "order type" },
    { { records = { x = { workarounds = { replace = { [2] = { how = 5 } } } } } },
      "F: records.x.workarounds.replace[2].how: expected string, got number", "replace field type" },
    { { records = { x = { workarounds = { replace = { [-1] = {} } } } } },
      "F: records.x.workarounds.replace[-1]: key must be a 1-based index or an action text", "replace key" },
    { { records = { [string.rep("*", 300)] = { notes = { "n" } } } },
      "F: records[\"" .. string.rep("*", 40) .. "...\"]: key is 300 bytes long; record ids and globs are at most 256 bytes",
      "over-long glob" },
  }
  for _, case in ipairs(cases) do
    local problems = site.validate(case[1], "F")
    lu.assertEquals(#problems, 1, case[3] .. ": exactly one problem, got "
      .. table.concat(problems, " | "))
    lu.assertStrContains(problems[1] or "", case[2], false, case[3])
  end
end


TestSiteMerge = {}

function TestSiteMerge:test_later_layer_wins_with_origin()
  local effective = site.merge({
    { file = "/usr/share/triage/site.lua", table = {
      vars = { mynetworks = "127.0.0.0/8", relayhost = "[relay]:25" },
      substitute = { ["old"] = "default" },
    } },
    { file = "/etc/triage/site.lua", table = nil },
    { file = "/etc/triage/site.lua", table = {
      vars = { mynetworks = "10.20.0.0/16" },
      substitute = { ["old"] = "etc" },
    } },
    { file = "./ops.lua", table = { substitute = { ["other"] = "x" } } },
  })
  local cases = {
    { effective.vars.mynetworks, "10.20.0.0/16", "later var wins" },
    { effective.vars.relayhost, "[relay]:25", "earlier var kept when not overridden" },
    { effective.substitute.old, "etc", "later substitute wins" },
    { effective.substitute.other, "x", "new substitute key added" },
    { effective.origin["vars.mynetworks"], "/etc/triage/site.lua", "origin of the winning var" },
    { effective.origin["vars.relayhost"], "/usr/share/triage/site.lua", "origin of the default var" },
    { effective.origin["substitute.old"], "/etc/triage/site.lua", "origin of a substitute" },
    { effective.origin["substitute.other"], "./ops.lua", "origin of the last layer" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(case[1], case[2], case[3])
  end
end

function TestSiteMerge:test_record_overrides_merge_by_field()
  local effective = site.merge({
    { file = "a.lua", table = { records = { [RELAY] = {
      notes = { "from a" }, runbook = "https://a.example", confidence = 0.5,
      workarounds = { add = { { action = "A" } }, drop = { 1 },
        replace = { [2] = { success_rate = 0.1, how = "a-how" } }, order = { 2 } },
    } } } },
    { file = "b.lua", table = { records = { [RELAY] = {
      notes = { "from b" }, runbook = "https://b.example",
      workarounds = { add = { { action = "B" } }, drop = { "X" },
        replace = { [2] = { success_rate = 0.2 } }, order = { 3 } },
    } } } },
  })
  local o = effective.records[RELAY]
  lu.assertEquals(o.notes, { "from a", "from b" }, "notes concatenated in layer order")
  lu.assertEquals(o.runbook, "https://b.example", "later runbook wins")
  lu.assertEquals(o.confidence, 0.5, "field set only in the earlier layer is kept")
  lu.assertEquals(actions(o.workarounds.add), { "A", "B" }, "add lists concatenated")
  lu.assertEquals(o.workarounds.drop, { 1, "X" }, "drop lists concatenated")
  lu.assertEquals(o.workarounds.replace[2], { success_rate = 0.2, how = "a-how" },
    "replace merged per field, later wins")
  lu.assertEquals(o.workarounds.order, { 3 }, "later order wins")
  lu.assertEquals(effective.origin["records." .. RELAY], "a.lua, b.lua", "both files named")
end

function TestSiteMerge:test_does_not_share_layer_tables()
  local layer = { records = { x = { notes = { "n" } } } }
  local effective = single(layer)
  effective.records.x.notes[2] = "changed"
  lu.assertEquals(layer.records.x.notes, { "n" }, "layer table unchanged")
end


TestSiteExpand = {}

function TestSiteExpand:test_expand()
  local vars = { net = "10.0.0.0/8", port = 25, ratio = 0.5, nested = "${net}" }
  local cases = {
    { "allow ${net}", "allow 10.0.0.0/8", {}, "known variable" },
    { "port ${port}", "port 25", {}, "integer variable" },
    { "ratio ${ratio}", "ratio 0.5", {}, "float variable" },
    { "${missing} and ${missing} and ${other}", "${missing} and ${missing} and ${other}",
      { "missing", "other" }, "unknown names kept, each reported once" },
    { "${nested}", "${net}", {}, "values are not expanded again" },
    { "$net and $${net}", "$net and $10.0.0.0/8", {}, "only the braced form expands" },
    { "no variables", "no variables", {}, "plain text" },
  }
  for _, case in ipairs(cases) do
    local text, unknown = site.expand(case[1], vars)
    lu.assertEquals(text, case[2], case[4])
    lu.assertEquals(unknown, case[3], case[4] .. ": unknown names")
  end
end


TestSiteApply = {}

function TestSiteApply:test_mynetworks_substitution()
  local D = fixtures.relay_diagnosis()
  local effective = single({
    vars = { mynetworks = "10.20.0.0/16, 10.30.0.0/16" },
    substitute = { ["mynetworks = 192.168.1.0/24"] = "mynetworks = ${mynetworks}" },
  })
  local out, warnings = site.apply(D, effective)
  local want = "mynetworks = 10.20.0.0/16, 10.30.0.0/16"
  lu.assertEquals(warnings, {}, "no warnings")
  lu.assertStrContains(out.workarounds[1].action, want, false, "workaround action")
  lu.assertStrContains(out.workarounds[1].how, want, false, "workaround how")
  lu.assertStrContains(out.workarounds_zh[1], want, false, "workarounds_zh")
  lu.assertNotStrContains(out.workarounds[1].action, "192.168.1.0/24", false, "old network gone")
  lu.assertStrContains(D.workarounds[1].action, "192.168.1.0/24", false,
    "input diagnosis unchanged")
end

function TestSiteApply:test_substitution_everywhere()
  local D = fixtures.relay_diagnosis()
  D.dead_ends[1].why_fails = "OLD in why"
  D.root_cause = "OLD in cause"
  D.root_cause_zh = "OLD 原因"
  D.remediation[1].commands[1] = "run OLD"
  D.remediation[1].check = "check OLD"
  D.dead_ends[2].action = "OLD in action"
  local out = site.apply(D, single({ vars = { v = "NEW" }, substitute = { OLD = "${v}" } }))
  local cases = {
    { out.dead_ends[1].why_fails, "NEW in why", "dead-end why_fails" },
    { out.dead_ends[2].action, "NEW in action", "dead-end action" },
    { out.root_cause, "NEW in cause", "root cause" },
    { out.root_cause_zh, "NEW 原因", "root cause zh" },
    { out.remediation[1].commands[1], "run NEW", "remediation command" },
    { out.remediation[1].check, "check NEW", "remediation check" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(case[1], case[2], case[3])
  end
  lu.assertEquals(D.remediation[1].commands[1], "run OLD", "input remediation unchanged")
end

function TestSiteApply:test_substitution_is_literal_and_single_pass()
  local D = { id = "t/x", root_cause = "a.b | a%b | ab", workarounds = {}, dead_ends = {} }
  local cases = {
    { { ["a.b"] = "X" }, "X | a%b | ab", "dot is not a pattern" },
    { { ["a%b"] = "%1" }, "a.b | %1 | ab", "percent in key and value" },
    { { ab = "ab ab" }, "a.b | a%b | ab ab", "replacement is not substituted again" },
    { { a = "1", ["a.b"] = "2" }, "2 | 1%b | 1b", "longer key wins where both match" },
  }
  for _, case in ipairs(cases) do
    local out = site.apply(D, single({ substitute = case[1] }))
    lu.assertEquals(out.root_cause, case[2], case[3])
  end
end

function TestSiteApply:test_unknown_var_in_substitute_warns()
  local D = fixtures.relay_diagnosis()
  local out, warnings = site.apply(D, single({
    substitute = { ["192.168.1.0/24"] = "${nets}" } }))
  lu.assertStrContains(out.workarounds[1].action, "mynetworks = ${nets}", false,
    "unknown variable left in place")
  lu.assertEquals(#warnings, 1, "one warning")
  lu.assertStrContains(warnings[1], "unknown variable ${nets}", false, "warning names it")
end

function TestSiteApply:test_site_file_fixture()
  local D = fixtures.relay_diagnosis()
  local effective = site.merge({ { file = MAIL_SITE, table = load_site_file(MAIL_SITE) } })
  local out, warnings = site.apply(D, effective)
  lu.assertEquals(warnings, {}, "no warnings")
  lu.assertEquals(#out.workarounds, 3, "one dropped, one added")
  lu.assertEquals(out.workarounds[3].action,
    "Send through the corporate relay [smtp.corp.example]:587", "added entry expanded")
  lu.assertEquals(out.workarounds[3].how, "postconf -e 'relayhost = [smtp.corp.example]:587'",
    "added how expanded")
  lu.assertNil(out.workarounds[3].action_zh, "action_zh is not kept in the entry")
  lu.assertEquals(out.workarounds_zh[3], "通过公司中继 [smtp.corp.example]:587 发送",
    "added zh text aligned with its workaround")
  lu.assertStrContains(out.workarounds_zh[2], "smtp_auth", false, "zh list follows the drop")
  lu.assertEquals(out.notes, { "Mail team: #mail-oncall", "Mail team: #mail-oncall" },
    "fixture note after the diagnosis's own note")
  lu.assertEquals(out.runbook, "https://wiki.corp.example/mail", "runbook from the glob")
end

function TestSiteApply:test_list_operations()
  local D = fixtures.relay_diagnosis()
  local first = D.workarounds[1].action
  local cases = {
    { { drop = { 1 } }, { 0.9, 0.8 }, "drop by index" },
    { { drop = { first } }, { 0.9, 0.8 }, "drop by action text" },
    { { order = { 3, 1 } }, { 0.8, 0.85, 0.9 }, "order moves the listed entries first" },
    { { replace = { [3] = { success_rate = 0.99 } } }, { 0.99, 0.9, 0.85 },
      "rate override re-sorts by success_rate" },
    { { replace = { [3] = { success_rate = 0.99 } }, order = { 2 } }, { 0.9, 0.85, 0.99 },
      "explicit order disables the re-sort" },
    { { replace = { [1] = { how = "new how" } } }, { 0.85, 0.9, 0.8 },
      "replace without a rate keeps the order" },
    { { add = { { action = "new", success_rate = 0.99 } } }, { 0.85, 0.9, 0.8, 0.99 },
      "added entries go last" },
    { { add = { { action = "new", success_rate = 0.1 } }, order = { "new" } },
      { 0.1, 0.85, 0.9, 0.8 }, "order can name an added entry" },
  }
  for _, case in ipairs(cases) do
    local out = site.apply(D, single({ records = { [RELAY] = { workarounds = case[1] } } }))
    local rates = {}
    for i, w in ipairs(out.workarounds) do
      rates[i] = w.success_rate
    end
    lu.assertEquals(rates, case[2], case[3])
  end
end

function TestSiteApply:test_zh_follows_workarounds()
  local D = fixtures.user_unknown_diagnosis()
  local out = site.apply(D, single({ records = { [D.id] = { workarounds = { order = { 2 } } } } }))
  lu.assertEquals(out.workarounds_zh, { "Ask the recipient for a current address",
    "检查收件人地址是否有拼写错误" }, "zh reordered, missing zh filled with the action")
end

function TestSiteApply:test_dead_end_operations()
  local D = fixtures.relay_diagnosis()
  local out = site.apply(D, single({ records = { [RELAY] = { dead_ends = {
    drop = { 3 },
    replace = { [1] = { fail_rate = 0.5, why_fails = "Local policy forbids it." } },
    add = { { action = "Reboot the mail server", why_fails = "Nothing changes.", fail_rate = 1 } },
  } } } }))
  lu.assertEquals(#out.dead_ends, 3, "one dropped, one added")
  lu.assertEquals(out.dead_ends[1].fail_rate, 0.5, "fail rate replaced")
  lu.assertEquals(out.dead_ends[1].why_fails, "Local policy forbids it.", "why replaced")
  lu.assertEquals(out.dead_ends[3].action, "Reboot the mail server", "added dead end")
  lu.assertEquals(out.dead_ends[1].action, D.dead_ends[1].action, "action kept")
  lu.assertEquals(D.dead_ends[1].fail_rate, 0.95, "input unchanged")
end

function TestSiteApply:test_precedence_exact_over_glob()
  local D = fixtures.relay_diagnosis()
  D.notes = {}
  local out = site.apply(D, single({ records = {
    ["**"] = { runbook = "https://any", notes = { "any" }, confidence = 0.1 },
    ["communication/*"] = { runbook = "https://domain", notes = { "domain" } },
    [RELAY] = { runbook = "https://exact", notes = { "exact" } },
    ["network/*"] = { notes = { "never" } },
  } }))
  lu.assertEquals(out.runbook, "https://exact", "exact id wins")
  lu.assertEquals(out.notes, { "exact", "domain", "any" }, "notes in precedence order")
  lu.assertEquals(out.confidence, 0.1, "confidence from the only override that sets it")

  local out2 = site.apply(D, single({ records = {
    ["**"] = { runbook = "https://any" },
    ["communication/*"] = { runbook = "https://domain" },
  } }))
  lu.assertEquals(out2.runbook, "https://domain", "more specific glob wins")

  local out3 = site.apply(D, single({ records = {
    ["**"] = { workarounds = { replace = { [1] = { how = "any" } } } },
    ["communication/*"] = { workarounds = { replace = { [1] = { how = "domain" } } } },
    [RELAY] = { workarounds = { replace = { [1] = { how = "exact" } } } },
  } }))
  lu.assertEquals(out3.workarounds[1].how, "exact", "exact id has the last word on list edits")
end

function TestSiteApply:test_unresolved_references_warn()
  local D = fixtures.relay_diagnosis()
  local out, warnings = site.apply(D, single({ records = { [RELAY] = { workarounds = {
    drop = { 9, "no such action" }, replace = { [7] = { how = "x" } }, order = { 8 },
  } } } }))
  lu.assertEquals(#out.workarounds, 3, "nothing dropped")
  local expected = {
    "workarounds.replace: workarounds[7] not found",
    "workarounds.drop: workarounds[9] not found",
    'workarounds.drop: workarounds entry with action "no such action" not found',
    "workarounds.order: workarounds[8] not found",
  }
  lu.assertEquals(#warnings, #expected, "one warning per bad reference")
  for i, text in ipairs(expected) do
    lu.assertStrContains(warnings[i], text, false, "warning " .. i)
  end
end

function TestSiteApply:test_shared_tables_untouched()
  local D1 = fixtures.relay_diagnosis()
  local D2 = {}
  for k, v in pairs(D1) do
    D2[k] = v
  end
  local before = json.encode(D1)
  local out = site.apply(D1, single({
    vars = { n = "10.0.0.0/8" },
    substitute = { ["192.168.1.0/24"] = "${n}", ["Open relays"] = "Relays" },
    records = { [RELAY] = { notes = { "x" }, workarounds = { drop = { 2 } },
      dead_ends = { replace = { [1] = { fail_rate = 0.1 } } } } },
  }))
  lu.assertEquals(json.encode(D1), before, "input diagnosis unchanged")
  lu.assertIs(D2.workarounds, D1.workarounds, "sharing diagnosis still shares")
  lu.assertNotIs(out.workarounds, D1.workarounds, "changed list is a copy")
  lu.assertNotIs(out.notes, D1.notes, "notes list is a copy")
end

function TestSiteApply:test_no_site()
  local D = fixtures.relay_diagnosis()
  local out, warnings = site.apply(D, site.merge({}))
  lu.assertEquals(json.encode(out), json.encode(D), "empty site changes nothing")
  lu.assertEquals(warnings, {}, "no warnings")
  local ok, err = pcall(site.apply, nil, site.merge({}))
  lu.assertFalse(ok, "nil diagnosis raises")
  lu.assertStrContains(err, "expected a diagnosis table, got nil", false, "message")
end


TestSiteShow = {}

function TestSiteShow:test_show_lines()
  local effective = site.merge({
    { file = "/etc/triage/site.lua", table = {
      vars = { mynetworks = "10.20.0.0/16", port = 25, ["relay-host"] = "r" },
      substitute = { ["a\nb"] = "c" },
    } },
    { file = "./ops.lua", table = { records = { [RELAY] = { notes = { "n" }, confidence = 0.5 } } } },
  })
  local lines = site.show(effective)
  local width = #('records["' .. RELAY .. '"] = { confidence = 0.5, notes = { "n" } }')
  local function row(text, file)
    return text .. string.rep(" ", width - #text + 4) .. "# " .. file
  end
  lu.assertEquals(lines, {
    row('vars.mynetworks = "10.20.0.0/16"', "/etc/triage/site.lua"),
    row("vars.port = 25", "/etc/triage/site.lua"),
    row('vars["relay-host"] = "r"', "/etc/triage/site.lua"),
    row('substitute["a\\nb"] = "c"', "/etc/triage/site.lua"),
    row('records["' .. RELAY .. '"] = { confidence = 0.5, notes = { "n" } }', "./ops.lua"),
  }, "sorted per section, comments aligned, origin named")
end

function TestSiteShow:test_show_long_row_keeps_alignment()
  local long = string.rep("x", 120)
  local effective = site.merge({
    { file = "a.lua", table = { vars = { short = "v", long = long } } },
  })
  local lines = site.show(effective)
  lu.assertEquals(lines[1], 'vars.long = "' .. long .. '"    # a.lua', "a long row gets four spaces")
  lu.assertEquals(lines[2], 'vars.short = "v"    # a.lua', "short rows align among themselves")
end

function TestSiteShow:test_show_empty()
  lu.assertEquals(site.show(site.merge({})), {}, "no lines for an empty site")
end


TestSiteRules = {}

function TestSiteRules:test_rule_folders_validated()
  local cases = {
    { { rules = "rules.d" }, "F: rules: expected a table, got string", "not a list" },
    { { rules = { 3 } }, "F: rules[1]: expected a folder path, got number", "folder type" },
    { { rules = { "" } }, "F: rules[1]: expected a folder path, got an empty string", "empty folder" },
    { { rules = { x = "a" } }, "F: rules.x: expected a list of folders", "named key" },
  }
  for _, case in ipairs(cases) do
    local problems = site.validate(case[1], "F")
    lu.assertEquals(#problems, 1, case[3] .. ": " .. table.concat(problems, " | "))
    lu.assertStrContains(problems[1] or "", case[2], false, case[3])
  end
  lu.assertEquals(site.validate({ rules = { "rules.d", "/srv/rules" } }, "F"), {}, "a valid list")
end

function TestSiteRules:test_rule_folders_merge_in_layer_order()
  local effective = site.merge({
    { file = "/etc/triage/site.lua", table = { rules = { "rules.d" } } },
    { file = "site.lua", table = { rules = { "/srv/rules", "mine" } } },
  })
  lu.assertEquals(effective.rule_dirs, {
    { dir = "/etc/triage/rules.d", file = "/etc/triage/site.lua" },
    { dir = "/srv/rules", file = "site.lua" },
    { dir = "./mine", file = "site.lua" },
  }, "relative folders are taken from the site file's folder")
end

function TestSiteRules:test_show_lists_rule_folders()
  local effective = site.merge({
    { file = "/etc/triage/site.lua", table = { vars = { a = "b" }, rules = { "/srv/rules" } } },
  })
  local lines = site.show(effective)
  lu.assertEquals(#lines, 2)
  lu.assertStrContains(lines[2], 'rules[1] = "/srv/rules"')
  lu.assertStrContains(lines[2], "# /etc/triage/site.lua")
end

os.exit(lu.LuaUnit.run())
