-- End-to-end tests of `triage scan`: real logs, gzip, CRLF, a 50 MB line,
-- invalid UTF-8, following a rotated file, and ndjson rankings compared
-- with `triage diagnose` on the same lines. Run from the repository root:
--   lua5.4 tests/cli/test_scan.lua BINARY SHARED_DIR
local lu = require "luaunit"
local cjson = require "cjson"

local BINARY = assert(arg[1], "usage: test_scan.lua BINARY SHARED_DIR")
local SHARED = assert(arg[2], "usage: test_scan.lua BINARY SHARED_DIR")

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function write_file(path, text, mode)
  local f = assert(io.open(path, mode or "wb"))
  f:write(text)
  f:close()
end

local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. shell_quote(TMP)))
-- Each test run keeps its prefilter cache to itself.
local ENV = "env XDG_CACHE_HOME=" .. shell_quote(TMP .. "/cache") .. " "

-- Run the binary with args; returns stdout, stderr, exit status. prefix
-- goes before the command (a wrapper such as /usr/bin/time); stdin is the
-- text on standard input (none when nil).
local function run(args, prefix, stdin)
  local parts = { shell_quote(BINARY) }
  local first = 1
  if args[1] == "scan" or args[1] == "diagnose" then
    parts[2] = args[1]
    first = 2
  end
  parts[#parts + 1] = "--no-site-layers"
  for i = first, #args do
    parts[#parts + 1] = shell_quote(args[i])
  end
  local err_file = TMP .. "/stderr"
  local in_file = "/dev/null"
  if stdin then
    in_file = TMP .. "/stdin"
    write_file(in_file, stdin)
  end
  local cmd = (prefix or "") .. ENV .. table.concat(parts, " ") .. " 2>" .. err_file .. " <" .. shell_quote(in_file)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  return out, read_file(err_file), status
end

-- Lines of the shared logs (without fail2ban's "#" notes).
local function log_lines(file)
  local lines = {}
  for line in io.lines(SHARED .. "/logs/" .. file) do
    if line:sub(1, 1) ~= "#" and line ~= "" then
      lines[#lines + 1] = line
    end
  end
  return lines
end

local function ndjson_objects(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    out[#out + 1] = cjson.decode(line)
  end
  return out
end

local MAIL = {}
for _, file in ipairs({ "fail2ban/postfix", "fail2ban/sendmail-reject", "fail2ban/sshd", "fail2ban/dovecot" }) do
  for _, line in ipairs(log_lines(file)) do
    MAIL[#MAIL + 1] = line
  end
end
local MAIL_FILE = TMP .. "/mail.log"
write_file(MAIL_FILE, table.concat(MAIL, "\n") .. "\n")

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

TestScan = {}

function TestScan.test_json_summary_contract()
  local out, err, status = run({ "scan", "--format", "json", MAIL_FILE })
  lu.assertEquals(status, 0, err)
  local summary = cjson.decode(out)
  lu.assertEquals(summary.schema, "triage.scan/1")
  lu.assertEquals(summary.lines, #MAIL)
  lu.assertTrue(#summary.findings > 0)
  for _, f in ipairs(summary.findings) do
    for _, field in ipairs({ "id", "count", "first_line", "last_line", "sample" }) do
      lu.assertNotNil(f[field], "finding lacks " .. field)
    end
    lu.assertTrue(f.first_line <= f.last_line)
    lu.assertEquals(f.sample, MAIL[f.first_line])
    lu.assertTrue(f.top_count >= 0 and f.top_count <= f.count, f.id .. ": top_count within count")
  end
  -- Findings of scanner and bot records follow the others.
  local background_seen = false
  for _, f in ipairs(summary.findings) do
    lu.assertEquals(type(f.background), "boolean", f.id)
    lu.assertFalse(background_seen and not f.background, f.id .. " follows a background finding")
    background_seen = background_seen or f.background
  end
  -- top_count counts each diagnosed line once: the record ranked first there.
  local firsts = 0
  for _, object in ipairs(ndjson_objects((run({ "scan", "--format", "ndjson", MAIL_FILE })))) do
    firsts = firsts + (#object.diagnoses > 0 and 1 or 0)
  end
  local top_total = 0
  for _, f in ipairs(summary.findings) do
    top_total = top_total + f.top_count
  end
  lu.assertEquals(top_total, firsts)
  lu.assertTrue(#summary.observed > 0, "consecutive mail errors give transitions")
  local seen_other = false
  for _, pair in ipairs(summary.observed) do
    lu.assertEquals(type(pair.known), "boolean")
    lu.assertFalse(pair.known and seen_other, "known edges come first")
    seen_other = seen_other or not pair.known
  end
end

function TestScan.test_ndjson_ranks_as_diagnose()
  local out, err, status = run({ "scan", "--format", "ndjson", MAIL_FILE })
  lu.assertEquals(status, 0, err)
  local by_line = {}
  for _, object in ipairs(ndjson_objects(out)) do
    by_line[object.line] = object
  end
  local compared = 0
  for i = 1, math.min(#MAIL, 320) do
    local expected = run({ "diagnose", "--format", "ndjson", "--", MAIL[i] })
    local diagnoses = {}
    for _, object in ipairs(ndjson_objects(expected)) do
      for _, d in ipairs(object.diagnoses) do
        diagnoses[#diagnoses + 1] = d
      end
    end
    local got = by_line[i] and by_line[i].diagnoses or {}
    lu.assertEquals(got, diagnoses, "line " .. i .. ": " .. MAIL[i])
    if by_line[i] then
      lu.assertEquals(by_line[i].text, MAIL[i])
    end
    compared = compared + 1
  end
  lu.assertTrue(compared >= 300)
end

function TestScan.test_top_and_min_score()
  local out = run({ "scan", "--format", "ndjson", "--top", "1", "--min-score", "0.5", MAIL_FILE })
  for _, object in ipairs(ndjson_objects(out)) do
    lu.assertEquals(#object.diagnoses, 1)
    lu.assertTrue(object.diagnoses[1].score >= 0.5)
  end
end

function TestScan.test_gzip_reads_as_plain()
  local gz = TMP .. "/mail.log.gz"
  assert(os.execute("gzip -c " .. shell_quote(MAIL_FILE) .. " > " .. shell_quote(gz)))
  local plain = run({ "scan", "--format", "ndjson", MAIL_FILE })
  local packed, err, status = run({ "scan", "--format", "ndjson", gz })
  lu.assertEquals(status, 0, err)
  lu.assertEquals(packed, plain)
end

function TestScan.test_crlf_reads_as_lf()
  local crlf = TMP .. "/mail-crlf.log"
  write_file(crlf, table.concat(MAIL, "\r\n") .. "\r\n")
  local plain = run({ "scan", "--format", "ndjson", MAIL_FILE })
  local dos, err, status = run({ "scan", "--format", "ndjson", crlf })
  lu.assertEquals(status, 0, err)
  lu.assertEquals(dos, plain)
end

function TestScan.test_standard_input_and_exit_status()
  local out, _, status = run({ "scan", "--format", "json" }, nil, "nothing to see\n")
  lu.assertEquals(status, 1)
  lu.assertEquals(cjson.decode(out).lines, 1)
  local _, err, bad = run({ "scan", TMP .. "/missing.log" })
  lu.assertEquals(bad, 2)
  lu.assertStrContains(err, "missing.log")
end

function TestScan.test_long_line_cut_and_bounded()
  local path = TMP .. "/long.log"
  local f = assert(io.open(path, "wb"))
  f:write(MAIL[1], " ")
  local block = string.rep("x", 1024 * 1024)
  for _ = 1, 50 do
    f:write(block)
  end
  f:write("\n", MAIL[1], "\n")
  f:close()
  local has_time = os.execute("test -x /usr/bin/time")
  local prefix = has_time and ("/usr/bin/time -f '%M' -o " .. shell_quote(TMP .. "/rss") .. " ") or ""
  local out, err, status = run({ "scan", "--format", "ndjson", path }, prefix)
  lu.assertEquals(status, 0, err)
  local objects = ndjson_objects(out)
  lu.assertEquals(#objects, 2)
  lu.assertTrue(objects[1].truncated)
  lu.assertEquals(#objects[1].text, 65536)
  lu.assertNil(objects[2].truncated)
  lu.assertEquals(objects[2].line, 2)
  if has_time then
    local kib = tonumber(read_file(TMP .. "/rss"):match("(%d+)%s*$"))
    lu.assertTrue(kib < 200 * 1024, "peak RSS " .. tostring(kib) .. " KiB for a 50 MB line")
  end
  local summary = cjson.decode((run({ "scan", "--format", "json", path })))
  lu.assertEquals(summary.lines, 2)
  lu.assertEquals(summary.truncated_lines, 1)
end

function TestScan.test_invalid_utf8_and_nul()
  local path = TMP .. "/odd.log"
  write_file(path, "\255\254 " .. MAIL[1] .. " \0 \195\40\n\192\128 plain text\n")
  local out, err, status = run({ "scan", "--format", "ndjson", path })
  lu.assertEquals(status, 0, err)
  local objects = ndjson_objects(out)
  lu.assertEquals(#objects, 1)
  lu.assertStrContains(objects[1].text, "\239\191\189\239\191\189 ")
  lu.assertStrContains(objects[1].text, " \0 \239\191\189(")
  local summary = cjson.decode((run({ "scan", "--format", "json", path })))
  lu.assertEquals(summary.lines, 2)
end

function TestScan.test_text_and_markdown_summaries()
  local text, err, status = run({ "scan", MAIL_FILE })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(text, "Scanned " .. #MAIL .. " lines")
  lu.assertStrContains(text, "Observed transitions")
  lu.assertStrContains(text, "\n   signature: ")
  lu.assertStrContains(text, "\nStart here: triage show ")
  local md = run({ "scan", "--format", "markdown", MAIL_FILE })
  lu.assertStrContains(md, "| Record | Lines |")
end

-- journald's export is matched on its MESSAGE and timed by
-- __REALTIME_TIMESTAMP, written back as ISO 8601.
function TestScan.test_journal_json_lines()
  local path = TMP .. "/journal.json"
  write_file(path, '{"__REALTIME_TIMESTAMP":"1772546457712005","_HOSTNAME":"app02","_TRANSPORT":"kernel",'
    .. '"MESSAGE":"Out of memory: Killed process 744 (java) total-vm:4194304kB, anon-rss:2097152kB",'
    .. '"PRIORITY":"3"}\n')
  local out, err, status = run({ "scan", "--format", "json", path })
  lu.assertEquals(status, 0, err)
  local summary = cjson.decode(out)
  lu.assertEquals(summary.findings[1].id, "kernel/oom-killer-killed-process")
  lu.assertEquals(summary.findings[1].first_time, "2026-03-03T14:00:57Z")
end

function TestScan.test_background_findings_follow()
  local path = TMP .. "/background.log"
  local pregreet = "Mar  3 00:35:%02d mx postfix/postscreen[812]: PREGREET 11 after 0.12 from [198.51.100.7]:51234: EHLO x"
  local lines = {}
  for i = 1, 5 do
    lines[i] = string.format(pregreet, i)
  end
  lines[#lines + 1] = log_lines("fail2ban/postfix")[1]
  write_file(path, table.concat(lines, "\n") .. "\n")
  local summary = cjson.decode((run({ "scan", "--format", "json", path })))
  lu.assertEquals(summary.findings[1].background, false)
  lu.assertEquals(summary.findings[#summary.findings].id, "communication/postscreen-pregreet")
  lu.assertTrue(summary.findings[#summary.findings].background)
  local text = run({ "scan", path })
  lu.assertStrContains(text, "Routine on internet-facing hosts (scanners, bots):")
  lu.assertStrContains(text, "Start here: triage show " .. summary.findings[1].id)
end

-- A failed password for one client does not follow an invalid user of
-- another; the lines about one client make the only pair.
function TestScan.test_transitions_need_same_client()
  local path = TMP .. "/clients.log"
  write_file(path, table.concat({
    "Dec  4 10:00:01 host sshd[100]: Invalid user admin from 203.0.113.5 port 40022",
    "Dec  4 10:00:02 host sshd[101]: Failed password for invalid user oracle from 198.51.100.7 port 40023 ssh2",
    "Dec  4 10:00:03 host sshd[102]: Invalid user test from 192.0.2.9 port 40024",
    "Dec  4 10:00:04 host sshd[102]: Failed password for invalid user test from 192.0.2.9 port 40024 ssh2",
  }, "\n") .. "\n")
  local out, err, status = run({ "scan", "--format", "json", path })
  lu.assertEquals(status, 0, err)
  local summary = cjson.decode(out)
  lu.assertEquals(#summary.observed, 1)
  local pair = summary.observed[1]
  lu.assertEquals(pair.from, "ssh/invalid-user")
  lu.assertEquals(pair.to, "ssh/failed-password")
  lu.assertEquals(pair.count, 1)
  lu.assertEquals(pair.first_line, 4)
end

function TestScan.test_several_files_named()
  local out = run({ "scan", "--format", "ndjson", MAIL_FILE, MAIL_FILE })
  local objects = ndjson_objects(out)
  lu.assertEquals(objects[1].file, MAIL_FILE)
  lu.assertEquals(objects[#objects].line, objects[#objects / 2].line + #MAIL)
end

function TestScan.test_cache_written_and_reused()
  run({ "scan", "--format", "json", MAIL_FILE })
  local listing = io.popen("ls " .. shell_quote(TMP .. "/cache/triage")):read("a")
  lu.assertStrContains(listing, "prefilter-")
  lu.assertStrContains(listing, "regex-")
  local _, err, status = run({ "scan", "--format", "json", "--no-cache", MAIL_FILE })
  lu.assertEquals(status, 0, err)
end

function TestScan.test_no_cache_writes_no_file()
  assert(os.execute("rm -rf " .. shell_quote(TMP .. "/cache")))
  local _, err, status = run({ "scan", "--format", "json", "--no-cache", MAIL_FILE })
  lu.assertEquals(status, 0, err)
  _, err, status = run({ "--no-cache", "554 5.7.1 <a@example.org>: Relay access denied" })
  lu.assertEquals(status, 0, err)
  lu.assertNil(os.execute("test -e " .. shell_quote(TMP .. "/cache")), "--no-cache created the cache folder")
end

function TestScan.test_follow_across_rotation()
  local log = TMP .. "/follow.log"
  local out_file = TMP .. "/follow.out"
  write_file(log, MAIL[1] .. "\n")
  local cmd = ENV .. shell_quote(BINARY) .. " scan --no-site-layers --follow " .. shell_quote(log) .. " > "
    .. shell_quote(out_file) .. " 2>" .. shell_quote(TMP .. "/follow.err") .. " & echo $!"
  local pid = io.popen(cmd):read("l")
  sleep(1)
  write_file(log, MAIL[2] .. "\n", "ab")
  sleep(1)
  -- Rotate: the old file gets one more line before the new one appears.
  assert(os.rename(log, log .. ".1"))
  write_file(log .. ".1", MAIL[3] .. "\n", "ab")
  write_file(log, MAIL[4] .. "\n")
  sleep(1.5)
  write_file(log, MAIL[5] .. "\n", "ab")
  sleep(1)
  -- Truncation: the file starts again.
  write_file(log, MAIL[6] .. "\n")
  sleep(1.5)
  os.execute("kill -INT " .. pid)
  sleep(0.5)
  local texts = {}
  for _, object in ipairs(ndjson_objects(read_file(out_file))) do
    texts[#texts + 1] = object.text
  end
  local expected = {}
  for i = 1, 6 do
    if run({ "diagnose", "--format", "ndjson", "--", MAIL[i] }) ~= "" then
      expected[#expected + 1] = MAIL[i]
    end
  end
  lu.assertTrue(#expected >= 4, "the first mail lines are diagnosed")
  lu.assertEquals(texts, expected, read_file(TMP .. "/follow.err"))
end

local status = lu.LuaUnit.run("-v")
os.execute("rm -rf " .. shell_quote(TMP))
os.exit(status)
