-- End-to-end tests of ranking explanations, guesses and "triage explain".
-- Run from the repository root:
--   lua5.4 tests/cli/test_ranking_cli.lua BINARY SHARED_DIR
local lu = require "luaunit"
local cjson = require "cjson"

local BINARY = assert(arg[1], "usage: test_ranking_cli.lua BINARY SHARED_DIR")
local SHARED = assert(arg[2], "usage: test_ranking_cli.lua BINARY SHARED_DIR")
local FIXTURES = "tests/fixtures/ranking"
local CORPUS = SHARED .. "/corpora/deadends/canons"
local NO_MATCH = "write failed: ENOSPC on /var/lib/docker"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Run the binary with args; returns stdout, stderr and the exit status.
local function run(args, stdin)
  local parts = { shell_quote(BINARY) }
  for i, a in ipairs(args) do
    parts[#parts + 1] = shell_quote(a)
    if i == 1 and (a == "explain" or a == "scan") then
      parts[#parts + 1] = "--no-site-layers"
    end
  end
  if args[1] ~= "explain" and args[1] ~= "scan" then
    parts[#parts + 1] = "--no-site-layers"
  end
  local input = os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(stdin or "")
  f:close()
  local err_file = os.tmpname()
  local p = assert(io.popen(table.concat(parts, " ") .. " <" .. input .. " 2>" .. err_file, "r"))
  local out = p:read("a")
  local _, _, status = p:close()
  f = assert(io.open(err_file, "rb"))
  local err = f:read("a")
  f:close()
  os.remove(input)
  os.remove(err_file)
  return out, err, status
end

local function log_line(file, needle)
  for line in io.lines(SHARED .. "/logs/" .. file) do
    if line:sub(1, 1) ~= "#" and line:find(needle, 1, true) then
      return line
    end
  end
  error("no line with '" .. needle .. "' in " .. file)
end

TestExplainOption = {}

function TestExplainOption.test_json_has_parts_span_and_branch()
  local line = log_line("fail2ban/postfix", "Relay access denied")
  local out, err, status = run({ "--format", "json", "--explain", line })
  lu.assertEquals(status, 0, err)
  local d = cjson.decode(out).diagnoses[1]
  lu.assertNotNil(d.explain, "diagnosis lacks explain")
  for _, part in ipairs({ "literal", "coverage", "similarity", "confidence" }) do
    local value = d.explain.parts[part]
    lu.assertNotNil(value, "explain.parts lacks " .. part)
    lu.assertTrue(value >= 0 and value <= 1, part .. " outside [0, 1]")
    lu.assertNotNil(d.explain.weights[part], "explain.weights lacks " .. part)
  end
  lu.assertEquals(d.explain.text, d.match.text)
  lu.assertEquals(d.explain.span.start, d.match.start)
  lu.assertEquals(d.explain.span["end"], d.match["end"])
  lu.assertTrue(#d.explain.pattern > 0)
  lu.assertNotNil(d.explain.alternative)
end

function TestExplainOption.test_score_follows_from_parts()
  local out, err, status = run({ "--records", FIXTURES, "--format", "json", "--explain", "worker 7: out of memory" })
  lu.assertEquals(status, 0, err)
  local d = cjson.decode(out).diagnoses[1]
  local e = d.explain
  local sum = 0
  for part, value in pairs(e.parts) do
    sum = sum + e.weights[part] * value
  end
  local expected = (e.match_floor + (1 - e.match_floor) * sum) * e.line_weight
  lu.assertAlmostEquals(d.score, expected, 1e-9)
  lu.assertEquals(e.pattern, "out of memory")
end

function TestExplainOption.test_absent_without_option()
  local out, _, status = run({ "--records", FIXTURES, "--format", "json", "OOM" })
  lu.assertEquals(status, 0)
  lu.assertNil(cjson.decode(out).diagnoses[1].explain)
end

function TestExplainOption.test_text_output_shows_parts()
  local out, _, status = run({ "--records", FIXTURES, "--explain", "OOM" })
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "similarity")
  lu.assertStrContains(out, "literal")
end

TestGuesses = {}

function TestGuesses.test_guess_when_nothing_matched()
  local out, err, status = run({ "--records", FIXTURES, "--format", "json", NO_MATCH })
  lu.assertEquals(status, 1, err)
  local report = cjson.decode(out)
  lu.assertEquals(#report.diagnoses, 0)
  lu.assertEquals(report.guesses[1].id, "storage/disk-full")
  lu.assertTrue(report.guesses[1].guess)
  lu.assertTrue(report.guesses[1].score < 0.12, "a guess scores below any match")
end

function TestGuesses.test_no_guess_option()
  local out, _, status = run({ "--records", FIXTURES, "--format", "json", "--no-guess", NO_MATCH })
  lu.assertEquals(status, 1)
  lu.assertNil(cjson.decode(out).guesses)
end

function TestGuesses.test_no_guesses_beside_a_match()
  local out, _, status = run({ "--records", FIXTURES, "--format", "json", "OOM, and no space left on device" })
  lu.assertEquals(status, 0)
  lu.assertNil(cjson.decode(out).guesses)
end

function TestGuesses.test_text_marks_guesses()
  local out, _, status = run({ "--records", FIXTURES, NO_MATCH })
  lu.assertEquals(status, 1)
  lu.assertStrContains(out, "guesses")
  lu.assertStrContains(out, "storage/disk-full")
end

function TestGuesses.test_scan_never_guesses()
  for _, format in ipairs({ "ndjson", "json", "text" }) do
    local out, err, status = run({ "scan", "--records", FIXTURES, "--format", format }, NO_MATCH .. "\n")
    lu.assertEquals(status, 1, err)
    lu.assertNotStrContains(out, "guess")
    lu.assertNotStrContains(out, "storage/disk-full")
  end
end

TestMultiLine = {}

function TestMultiLine.test_error_line_wins_over_noise()
  local trace = table.concat({
    "Mar 14 03:12:40 web-01 sshd[88]: session opened for user deploy",
    log_line("fail2ban/postfix", "Relay access denied"),
    "Mar 14 03:12:46 web-01 sshd[88]: session opened for user deploy",
  }, "\n")
  local out, err, status = run({ "--records", FIXTURES, "--format", "json" }, trace)
  lu.assertEquals(status, 0, err)
  local report = cjson.decode(out)
  lu.assertEquals(report.diagnoses[1].id, "communication/relay-denied")
  lu.assertEquals(report.diagnoses[1].match.line, 2)
  lu.assertEquals(#report.diagnoses, 2, "one diagnosis per record")
end

function TestMultiLine.test_python_traceback_in_corpus()
  local trace = table.concat({
    "Traceback (most recent call last):",
    '  File "/srv/app/worker.py", line 88, in run',
    "    import numpy",
    "ModuleNotFoundError: No module named 'numpy'",
    "INFO worker exiting",
  }, "\n")
  local out, err, status = run({ "--records", CORPUS, "--quiet", "--format", "json" }, trace)
  lu.assertEquals(status, 0, err)
  local first = cjson.decode(out).diagnoses[1]
  lu.assertEquals(first.match.line, 4)
  lu.assertStrContains(first.id, "modulenotfounderror")
end

TestExplainCommand = {}

function TestExplainCommand.test_match_exits_0()
  local out, err, status = run({ "explain", "--records", FIXTURES, "redis/crossslot",
    "ERR CROSSSLOT Keys in request don't hash to the same slot" })
  lu.assertEquals(status, 0, err)
  lu.assertStrContains(out, "redis/crossslot matches line 1")
  lu.assertStrContains(out, "CROSSSLOT")
end

function TestExplainCommand.test_non_match_names_failing_element()
  local out, err, status = run({ "explain", "--records", FIXTURES, "redis/crossslot",
    "ERR keys in request dont hash to the other slot" })
  lu.assertEquals(status, 1, err)
  lu.assertStrContains(out, "does not match")
  lu.assertStrContains(out, "closest branch: 2 of 2: keys.*dont hash.*same slot")
  lu.assertStrContains(out, "fails at:      same slot")
  lu.assertStrContains(out, '" to the other slot"')
end

function TestExplainCommand.test_json_output()
  local out, err, status = run({ "explain", "--records", FIXTURES, "--format", "json", "redis/crossslot",
    "ERR keys in request dont hash to the same sl" })
  lu.assertEquals(status, 1, err)
  local why = cjson.decode(out)
  lu.assertEquals(why.schema, "triage.explain/1")
  lu.assertFalse(why.matched)
  lu.assertEquals(why.failed_element, "same slot")
  lu.assertEquals(why.matched_pattern, "keys.*dont hash.*")
  lu.assertTrue(why.partial, "a line cut short is a partial match")
end

-- A repeated wildcard such as [^\n]{0,80}? reaches the end of any line, so
-- only the text the regex needs after it can show a cut.
function TestExplainCommand.test_wildcard_alone_is_no_cut()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write('{"id": "t/xfs", "signature": "XFS (sda1): Shutting down filesystem", "regex": '
    .. '"XFS \\\\((?<device>[^)]+)\\\\): (?:[^\\\\n]{0,80}?Shutting down filesystem|Corruption of in-memory data)"}\n')
  f:close()
  local function partial(line)
    local out, err = run({ "explain", "--records", path, "--format", "json", "t/xfs", line })
    local why = cjson.decode(out)
    lu.assertFalse(why.matched, err)
    return why.partial
  end
  lu.assertFalse(partial("XFS (sdb1): Corruption detected. Unmount and run xfs_repair"), "a whole line")
  lu.assertTrue(partial("XFS (sdb1): Corruption of in-mem"), "cut inside the text")
  lu.assertTrue(partial("XFS (sdb1): I/O error, Shutting do"), "cut after a wildcard")
  os.remove(path)
end

function TestExplainCommand.test_message_from_stdin()
  local out, _, status = run({ "explain", "--records", FIXTURES, "storage/disk-full" },
    "INFO start\nwrite(): No space left on device\n")
  lu.assertEquals(status, 0)
  lu.assertStrContains(out, "matches line 2")
end

function TestExplainCommand.test_unknown_id_exits_2()
  local _, err, status = run({ "explain", "--records", FIXTURES, "no/such-record", "text" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "no/such-record")
end

function TestExplainCommand.test_missing_arguments_exit_2()
  local _, err, status = run({ "explain" })
  lu.assertEquals(status, 2)
  lu.assertStrContains(err, "explain needs a record ID")
end

os.exit(lu.LuaUnit.run("-v"))
