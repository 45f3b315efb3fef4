-- Tests for the output formatters (text, markdown, json, ndjson) and for
-- triage.i18n, which they use for labels and language choice.
-- Run from the repository root: lua5.4 tests/lua/test_format.lua
package.path = "lua/?.lua;tests/lua/?.lua;" .. package.path

local lu = require "luaunit"
local cjson = require "cjson"
local i18n = require "triage.i18n"
local fixtures = require "fixtures.report"

local format = {
  text = require "triage.format.text",
  markdown = require "triage.format.markdown",
  json = require "triage.format.json",
  ndjson = require "triage.format.ndjson",
}

local RELAY = "communication/smtp-554-5-7-0-relay-denied"
local ESC = "\27["


local function lines_of(text)
  local out = {}
  for line in string.gmatch(text, "([^\n]*)\n") do
    out[#out + 1] = line
  end
  return out
end


-- Return the 1-based line number of the first line containing needle.
local function line_index(text, needle)
  for i, line in ipairs(lines_of(text)) do
    if string.find(line, needle, 1, true) then
      return i
    end
  end
  return nil
end


local function report_with_extras()
  local report = fixtures.report()
  report.guesses = {
    { id = "communication/smtp-greylisted", score = 0.31, guess = true,
      signature = "450 4.7.1 Greylisted", signature_zh = "450 4.7.1 灰名单",
      root_cause = "The server defers first contact." },
  }
  report.errors = { { script = "rules/mail.lua:12", message = "attempt to index a nil value" } }
  return report
end


TestI18n = {}

function TestI18n:test_labels()
  local cases = {
    { "root_cause", "en", "Root cause" }, { "root_cause", "zh", "根本原因" },
    { "dead_ends", "zh", "无效尝试" }, { "workarounds", "zh", "解决方法" },
    { "why_fails", "zh", "失败原因" }, { "leads_to", "zh", "后续错误" },
    { "preceded_by", "zh", "先前错误" }, { "frequently_confused_with", "zh", "易混淆" },
    { "versions", "zh", "适用版本" }, { "os_specific", "zh", "操作系统" },
    { "documentation", "zh", "官方文档" }, { "verification", "zh", "验证等级" },
    { "confidence", "zh", "置信度" }, { "score", "zh", "得分" },
    { "remediation", "zh", "修复步骤" }, { "notes", "zh", "备注" }, { "match", "zh", "匹配" },
    { "no_match", "en", "No known problem matched." }, { "no_match", "zh", "未匹配到已知问题。" },
    { "root_cause", "zh_CN.UTF-8", "根本原因" }, { "root_cause", "fr", "Root cause" },
    { "no_such_label", "zh", "no_such_label" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(i18n.label(case[1], case[2]), case[3], case[1] .. " in " .. case[2])
  end
end

function TestI18n:test_every_label_translated()
  for key in pairs(i18n.labels.en) do
    lu.assertNotNil(i18n.labels.zh[key], "zh label for " .. key)
  end
  for key in pairs(i18n.labels.zh) do
    lu.assertNotNil(i18n.labels.en[key], "en label for " .. key)
  end
end

function TestI18n:test_normalize_and_colon()
  local cases = {
    { "zh", "zh" }, { "ZH_tw", "zh" }, { "zh-CN.UTF-8", "zh" }, { "en_US.UTF-8", "en" },
    { "C", "en" }, { nil, "en" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(i18n.normalize(case[1]), case[2], "normalize " .. tostring(case[1]))
  end
  lu.assertEquals(i18n.colon("en"), ": ", "English colon")
  lu.assertEquals(i18n.colon("zh"), "：", "full-width colon")
end

function TestI18n:test_pick_per_field()
  local D = fixtures.user_unknown_diagnosis()
  D.signature_zh = cjson.null
  local cases = {
    { "signature", "en", "550 5.1.1 User unknown", "English asked" },
    { "signature", "zh", "550 5.1.1 User unknown", "JSON null zh falls back" },
    { "root_cause", "zh", D.root_cause, "empty zh string falls back" },
    { "category", "zh", "delivery_error", "no zh field at all" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(i18n.pick(D, case[1], case[2]), case[3], case[4])
  end

  local relay = fixtures.relay_diagnosis()
  lu.assertEquals(i18n.pick(relay, "signature", "zh"), "554 5.7.0 中继访问被拒绝", "zh present")
  lu.assertEquals(i18n.pick(relay, "root_cause", "en"), relay.root_cause, "en ignores zh")
end

function TestI18n:test_pick_workarounds()
  local D = fixtures.user_unknown_diagnosis()
  local cases = {
    { "zh", 1, "检查收件人地址是否有拼写错误", "zh text at the same index" },
    { "zh", 2, "Ask the recipient for a current address", "missing zh falls back to the action" },
    { "en", 1, "Check the recipient address for typos", "English action" },
    { "zh", 9, nil, "no such workaround" },
  }
  D.workarounds[3] = { action = "Wait and retry", success_rate = 0.1 }
  D.workarounds_zh[3] = ""
  cases[#cases + 1] = { "zh", 3, "Wait and retry", "empty zh string falls back to the action" }
  for _, case in ipairs(cases) do
    lu.assertEquals(i18n.pick(D, "workarounds", case[1], case[2]), case[3], case[4])
  end
  lu.assertEquals(i18n.pick(D, "workarounds", "zh"),
    { "检查收件人地址是否有拼写错误", "Ask the recipient for a current address", "Wait and retry" },
    "list form without an index")
end

function TestI18n:test_printable()
  local cases = {
    { "plain text", "plain text", "plain text unchanged" },
    { "tab\tand\nnewline", "tab\tand\nnewline", "tab and newline kept" },
    { "crlf\r\nline", "crlf\nline", "CRLF becomes LF" },
    { "\27[31mred", "\\x1b[31mred", "ESC shown as an escape" },
    { "nul\0", "nul\\x00", "NUL" },
    { "del\127", "del\\x7f", "DEL" },
    { "csi\194\155", "csi\\u009b", "C1 control in UTF-8" },
    { "bad\255", "bad\239\191\189", "invalid UTF-8 replaced" },
    { "中文", "中文", "Chinese unchanged" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(i18n.printable(case[1]), case[2], case[3])
  end
  local tree = { a = { "x\27" }, n = 1 }
  local copy = i18n.printable_tree(tree)
  lu.assertEquals(copy, { a = { "x\\x1b" }, n = 1 }, "strings cleaned at every depth")
  lu.assertEquals(tree.a[1], "x\27", "input tree unchanged")
end

function TestI18n:test_present()
  local cases = {
    { nil, false }, { cjson.null, false }, { "", false }, { {}, false },
    { "x", true }, { { 1 }, true }, { 0, true }, { false, true },
  }
  for i, case in ipairs(cases) do
    lu.assertEquals(i18n.present(case[1]), case[2], "present case " .. i)
  end
end


TestFormatText = {}

function TestFormatText:test_plain_content()
  local out = format.text(report_with_extras(), { lang = "en", color = false })
  lu.assertNotStrContains(out, ESC, false, "no ANSI codes without colour")
  lu.assertEquals(string.sub(out, -1), "\n", "ends with a newline")
  local expected = {
    "1. " .. RELAY .. "  (Score 0.92)",
    "   554 5.7.0 Relay access denied",
    "   Match (line 2): 554 5.7.0 <bob@example.org>: Relay access denied",
    "     client_ip = 203.0.113.9",
    "   Root cause: SMTP server rejects the relay attempt",
    "   Dead ends:",
    "     x Disable SMTP authentication on the server to allow open relay (fails 95%)",
    "         Why it fails: Open relays are a security risk",
    "   Workarounds:",
    "     2. Enable SMTP authentication with valid credentials",
    "(works 90%)",
    "   Remediation:",
    "          systemctl reload postfix",
    "        Check: postconf -h mynetworks",
    "   Next errors:",
    "     - communication/smtp-bounce-storm  Mail queue growing with bounces (60%); when: the client keeps retrying",
    "     - communication/not-in-this-set (not loaded) (20%)",
    "   Previous errors:",
    "     - communication/smtp-auth-failed  535 5.7.8 Authentication failed (50%)",
    "   Confused with:",
    "550 5.7.1 Relaying denied: 550 comes from Exim and Sendmail; 554 from Postfix",
    "   Notes:",
    "   Versions: Postfix 3.7.0, Exim 4.96, Sendmail 8.17.1",
    "     debian: Config lives in /etc/postfix/main.cf",
    "   Documentation: https://www.ietf.org/rfc/rfc2821.txt (3.6)",
    "   Verification: ai_generated   Confidence: 0.87",
    "2. communication/smtp-550-5-1-1-user-unknown  (Score 0.81)",
    "          Compare the address with the directory entry.",
    "3. communication/smtp-noqueue-reject  (Score 0.40)",
    "No regex matched; closest signatures (guesses):",
    "   1. communication/smtp-greylisted  (Score 0.31)",
    "Script errors:",
    "   - rules/mail.lua:12: attempt to index a nil value",
  }
  for _, needle in ipairs(expected) do
    lu.assertStrContains(out, needle, false, "text output contains: " .. needle)
  end
end

function TestFormatText:test_control_characters_escaped()
  local report = fixtures.report()
  report.diagnoses[1].match.text = "554 \27[2J\27]0;owned\7 Relay access denied"
  report.diagnoses[1].match.captures.client_ip = "\27[31m203.0.113.9"
  for _, name in ipairs({ "text", "markdown" }) do
    local out = format[name](report, { color = false })
    lu.assertNotStrContains(out, "\27", false, name .. ": no raw ESC from log text")
    lu.assertNotStrContains(out, "\7", false, name .. ": no raw BEL from log text")
    lu.assertStrContains(out, "554 \\x1b[2J\\x1b]0;owned\\x07 Relay access denied", false,
      name .. ": escapes shown")
  end
end

function TestFormatText:test_section_order()
  local out = format.text(fixtures.report(), {})
  local order = { "Match (line 2)", "Root cause:", "Dead ends:", "Workarounds:", "Remediation:",
    "Next errors:", "Previous errors:", "Confused with:", "Versions:", "Documentation:" }
  for i = 2, #order do
    local a, b = line_index(out, order[i - 1]), line_index(out, order[i])
    lu.assertNotNil(a, order[i - 1] .. " present")
    lu.assertNotNil(b, order[i] .. " present")
    lu.assertTrue(a < b, order[i - 1] .. " before " .. order[i])
  end
end

function TestFormatText:test_how_printed_once()
  local out = format.text(fixtures.report(), {})
  local _, count = string.gsub(out, "Route email through a dedicated relay service", "")
  lu.assertEquals(count, 1, "how equal to the action is not repeated")
  lu.assertNotNil(line_index(out, "          Compare the address with the directory entry."),
    "a different how is printed on its own indented line")
end

function TestFormatText:test_colour()
  local out = format.text(fixtures.report(), { color = true })
  local cases = {
    { ESC .. "1m" .. RELAY .. ESC .. "0m", "bold id" },
    { ESC .. "1mRoot cause:" .. ESC .. "0m", "bold label" },
    { ESC .. "32mworks 90%" .. ESC .. "0m", "high success rate in green" },
    { ESC .. "33mworks 60%" .. ESC .. "0m", "middling success rate in yellow" },
    { ESC .. "31mfails 95%" .. ESC .. "0m", "high fail rate in red" },
  }
  for _, case in ipairs(cases) do
    lu.assertStrContains(out, case[1], false, case[2])
  end
end

function TestFormatText:test_zh()
  local out = format.text(report_with_extras(), { lang = "zh" })
  local cases = {
    { "(得分 0.92)", "score label" },
    { "   554 5.7.0 中继访问被拒绝", "zh signature" },
    { "根本原因：SMTP 服务器拒绝中继尝试", "zh root cause with full-width colon" },
    { "无效尝试：", "dead ends heading" },
    { "失败原因：Open relays", "why-fails label, English text kept" },
    { "解决方法：", "workarounds heading" },
    { "1. 检查收件人地址是否有拼写错误 (成功率 70%)", "zh workaround text" },
    { "2. Ask the recipient for a current address (成功率 60%)", "per-index fallback" },
    { "   550 5.1.1 User unknown", "signature without zh falls back" },
    { "The recipient mailbox does not exist", "empty root_cause_zh falls back" },
    { "后续错误：", "next errors" }, { "先前错误：", "previous errors" }, { "易混淆：", "confused with" },
    { "535 5.7.8 认证失败", "zh signature of a neighbour" },
    { "(未加载)", "not loaded" }, { "适用版本：", "versions" }, { "官方文档：", "documentation" },
    { "验证等级：ai_generated", "verification" }, { "置信度：0.87", "confidence" },
    { "修复步骤：", "remediation" }, { "备注：", "notes" }, { "匹配 (行 2)：", "match" },
    { "没有正则表达式匹配；最接近的签名（推测）：", "guesses heading" },
    { "450 4.7.1 灰名单", "zh guess signature" },
  }
  for _, case in ipairs(cases) do
    lu.assertStrContains(out, case[1], false, case[2])
  end
  lu.assertNotStrContains(out, "Root cause", false, "no English labels")
end

function TestFormatText:test_no_match()
  local cases = {
    { "en", "No known problem matched.\n" },
    { "zh", "未匹配到已知问题。\n" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(format.text(fixtures.empty_report(), { lang = case[1] }), case[2],
      "empty report in " .. case[1])
  end

  local report = fixtures.empty_report()
  report.guesses = report_with_extras().guesses
  local out = format.text(report, {})
  lu.assertTrue(line_index(out, "No known problem matched.")
    < line_index(out, "No regex matched; closest signatures (guesses):"),
    "guesses follow the no-match line")
end

function TestFormatText:test_top_and_explain()
  local out = format.text(fixtures.report(), { top = 1 })
  lu.assertStrContains(out, RELAY, false, "first diagnosis kept")
  lu.assertNotStrContains(out, "user-unknown", false, "second diagnosis cut by top")
  lu.assertNotStrContains(out, "Score parts", false, "no explanation unless asked")

  for _, name in ipairs({ "text", "markdown" }) do
    lu.assertStrContains(format[name](fixtures.report(), { top = 0 }), "noqueue-reject", false,
      name .. ": top 0 means no limit")
  end
  lu.assertEquals(#lines_of(format.ndjson(fixtures.report(), { top = 0 })), 2,
    "ndjson: top 0 means no limit")
  lu.assertStrContains(format.ndjson(fixtures.report(), { top = 0 }), "noqueue-reject", false,
    "ndjson: top 0 keeps every diagnosis")

  local explained = format.text(fixtures.report(), { explain = true })
  lu.assertStrContains(explained, "   Score parts:\n     confidence: 0.87\n     literal: 0.8\n",
    false, "score parts listed in key order")

  local report = fixtures.report()
  report.diagnoses[1].explain = { parts = { literal = 0.4, coverage = 0.41025641025641024 },
    span = { 1, 9 }, line = 2.0 }
  lu.assertStrContains(format.text(report, { explain = true, top = 1 }),
    "   Score parts:\n     line: 2\n     parts:\n       coverage: 0.4103\n       literal: 0.4\n"
    .. "     span: [1,9]\n",
    false, "nested parts indented, numbers rounded, arrays as JSON")
end


TestFormatMarkdown = {}

function TestFormatMarkdown:test_headings()
  local out = format.markdown(report_with_extras(), {})
  local cases = {
    "# triage report",
    "## 1. `" .. RELAY .. "` — 554 5.7.0 Relay access denied",
    "### Root cause", "### Dead ends", "### Workarounds", "### Remediation",
    "### Next errors", "### Previous errors", "### Confused with", "### Notes", "### Details",
    "## 2. `communication/smtp-550-5-1-1-user-unknown` — 550 5.1.1 User unknown",
    "## No regex matched; closest signatures (guesses):",
    "## Script errors",
  }
  local present = {}
  for _, line in ipairs(lines_of(out)) do
    present[line] = true
  end
  for _, heading in ipairs(cases) do
    lu.assertTrue(present[heading], "heading line: " .. heading)
  end
  for _, line in ipairs(lines_of(out)) do
    if string.find(line, "^#") then
      lu.assertStrMatches(line, "^#+ .+", nil, nil, "heading has a space after the hashes")
    end
  end
end

function TestFormatMarkdown:test_content()
  local out = format.markdown(fixtures.report(), {})
  local cases = {
    { "**Score:** 0.92", "score" },
    { "**Match (line 2):**\n\n```text\n554 5.7.0 <bob@example.org>: Relay access denied\n```",
      "matched text in a fenced block" },
    { "- `client_ip` = `203.0.113.9`", "capture" },
    { "   ```sh\n   postconf -e 'mynetworks = 127.0.0.0/8, 203.0.113.0/24'\n"
      .. "   systemctl reload postfix\n   ```", "remediation commands fenced and indented" },
    { "   Check: `postconf -h mynetworks`", "check as code" },
    { "- Disable SMTP authentication on the server to allow open relay (fails 95%)", "dead end" },
    { "  - Why it fails: Open relays", "why it fails" },
    { "2. Enable SMTP authentication with valid credentials: In the client, configure `smtp_auth = login`",
      "code spans in record text kept" },
    { "   ```\n   Compare the address with the directory entry.\n   ```", "different how fenced" },
    { "- `communication/not-in-this-set` (not loaded) (20%)", "unknown id" },
    { "- **Documentation:** <https://www.ietf.org/rfc/rfc2821.txt> (3.6)", "doc link" },
    { "- **Verification:** ai_generated", "underscore inside a word is not escaped" },
  }
  for _, case in ipairs(cases) do
    lu.assertStrContains(out, case[1], false, case[2])
  end
end

function TestFormatMarkdown:test_escaping()
  local report = fixtures.report()
  local D = report.diagnoses[1]
  D.root_cause = "Files *.log under <dir> with [brackets], _lead and `a*b` kept"
  D.notes = { "# not a heading" }
  D.workarounds[1].how = "echo ```fence``` inside"
  local out = format.markdown(report, {})
  lu.assertStrContains(out, "Files \\*.log under \\<dir\\> with \\[brackets\\], \\_lead and `a*b` kept",
    false, "punctuation escaped outside code spans")
  lu.assertStrContains(out, "- \\# not a heading", false, "leading hash escaped")
  lu.assertStrContains(out, "   ````\n   echo ```fence``` inside\n   ````", false,
    "fence longer than any backtick run inside")
end

function TestFormatMarkdown:test_zh_and_empty()
  local out = format.markdown(report_with_extras(), { lang = "zh" })
  local cases = {
    "# triage 报告", "### 根本原因", "### 无效尝试", "### 解决方法", "### 后续错误",
    "**得分：** 0.92", "1. 检查收件人地址是否有拼写错误 (成功率 70%)",
  }
  for _, needle in ipairs(cases) do
    lu.assertStrContains(out, needle, false, "zh markdown: " .. needle)
  end
  lu.assertEquals(format.markdown(fixtures.empty_report(), {}),
    "# triage report\n\nNo known problem matched.\n", "empty report")
end


TestFormatJson = {}

function TestFormatJson:test_report()
  local report = fixtures.report()
  local out = format.json(report, { lang = "zh", color = true })
  lu.assertEquals(string.sub(out, -2), "}\n", "one object and a newline")
  lu.assertStrContains(out, '{\n  "schema": "triage.report/1",\n  "input": {', false,
    "indented, schema first")
  local decoded = cjson.decode(out)
  lu.assertEquals(#decoded.diagnoses, 3, "all diagnoses")
  lu.assertEquals(decoded.diagnoses[1].workarounds_zh[1], report.diagnoses[1].workarounds_zh[1],
    "zh text present regardless of lang")
  lu.assertStrContains(out, '"leads_to": [],', false, "empty transition list is an array")
end


TestFormatNdjson = {}

function TestFormatNdjson:test_one_line_per_input_line()
  local out = format.ndjson(fixtures.report(), {})
  local lines = lines_of(out)
  lu.assertEquals(#lines, 2, "two diagnosed input lines")
  lu.assertEquals(string.sub(out, -1), "\n", "ends with a newline")
  local first, second = cjson.decode(lines[1]), cjson.decode(lines[2])
  lu.assertEquals(first.line, 2, "first line number")
  lu.assertStrContains(first.text, "NOQUEUE: reject: RCPT from unknown[203.0.113.9]", false,
    "whole input line as text")
  lu.assertEquals(#first.diagnoses, 2, "both line 2 diagnoses grouped")
  lu.assertEquals(first.diagnoses[1], { id = RELAY, score = 0.92 }, "report order kept")
  lu.assertEquals(first.diagnoses[2].id, "communication/smtp-noqueue-reject", "second on the line")
  lu.assertEquals(second.line, 4, "second line number")
  lu.assertEquals(second.diagnoses, { { id = "communication/smtp-550-5-1-1-user-unknown", score = 0.81 } },
    "line 4 diagnosis")
  lu.assertStrMatches(lines[1], '^{"line":2,"text":".*","diagnoses":%[{"id":.*}%]}$', nil, nil,
    "compact object with line, text, diagnoses in order")
end

function TestFormatNdjson:test_defaults_and_limits()
  local report = fixtures.report()
  report.input.text = "only one line"
  report.diagnoses = { fixtures.generic_reject_diagnosis(), fixtures.user_unknown_diagnosis() }
  report.diagnoses[1].match.line = nil
  local lines = lines_of(format.ndjson(report, {}))
  lu.assertEquals(#lines, 2, "two groups")
  local first = cjson.decode(lines[1])
  lu.assertEquals(first.line, 1, "missing line counts as line 1")
  lu.assertEquals(first.text, "only one line", "line 1 text")
  lu.assertEquals(cjson.decode(lines[2]).text, "550 5.1.1 <nobody@example.net>",
    "line beyond the input falls back to the matched text")

  report.diagnoses[2].match.line_text = "the whole line 4 as the core read it"
  lines = lines_of(format.ndjson(report, {}))
  lu.assertEquals(cjson.decode(lines[2]).text, "the whole line 4 as the core read it",
    "match.line_text is preferred")

  local top = lines_of(format.ndjson(fixtures.report(), { top = 1 }))
  lu.assertEquals(#cjson.decode(top[1]).diagnoses, 1, "top limits diagnoses per line")
  lu.assertEquals(format.ndjson(fixtures.empty_report(), {}), "", "no diagnoses, no lines")
end

os.exit(lu.LuaUnit.run())
