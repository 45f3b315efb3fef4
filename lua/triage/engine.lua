-- Entry points that the C core calls on the engine's Lua state: diagnose,
-- show, check and site loading. Each runs under one protected call from C.
local core = require "triage.core"
local records = require "triage.record"
local report = require "triage.report"
local site = require "triage.site"

local M = {}

local site_layers = {}
local effective_site = nil

-- "script" renders the remediation steps as a shell script (--emit-script).
local FORMATS = { text = true, json = true, ndjson = true, markdown = true, script = true }

-- Site files and user formatters run sandboxed (triage.sandbox), each in a
-- Lua state of its own with limits; errors name the file and line.
local function formatter(name)
  if FORMATS[name] then
    return require("triage.format." .. name)
  end
  if name:match("%.lua$") then
    return require("triage.sandbox").formatter(name)
  end
  error(string.format("unknown format '%s'; expected text, json, ndjson, markdown, script or a path to a .lua formatter", name), 0)
end

local function render(rep, options)
  local out = formatter(options.format or "text")(rep, options)
  if type(out) ~= "string" then
    error(string.format("formatter '%s' returned %s; expected a string", options.format, type(out)), 0)
  end
  return out
end

-- hits: ranked hit tables from C; returns the rendered text, the number of
-- diagnoses and the rule failures first seen in this call (for the C side
-- to record as problems).
function M.diagnose(hits, text, options)
  local rep = report.build(hits, text, options, effective_site)
  return render(rep, options), #rep.diagnoses, require("triage.rules").take_failures()
end

-- Scan summary formats; ndjson is written per line by the C scanner.
local SCAN_FORMATS = { text = true, json = true, markdown = true }

-- Render a scan summary, the JSON text of the C scanner; returns the
-- rendered text and the number of findings.
function M.scan(summary, options)
  local scan = require "triage.scan"
  local rep = scan.build(summary, report.graph)
  local name = options.format or "text"
  local fn
  if SCAN_FORMATS[name] then
    fn = require("triage.format.scan_" .. name)
  elseif name == "ndjson" then
    error("the ndjson format has no summary: each diagnosed line is printed as it is scanned", 0)
  elseif name == "script" then
    error("a scan summary has no script format: use text, json, markdown or a .lua formatter, and diagnose one line with the script format for its remediation steps", 0)
  else
    fn = formatter(name)
  end
  local out = fn(rep, options)
  if type(out) ~= "string" then
    error(string.format("formatter '%s' returned %s; expected a string", name, type(out)), 0)
  end
  return out, #rep.findings
end

-- Render one record as a diagnosis without a match.
function M.show(id, options)
  local i = core.find(id)
  local record = records.get(i)
  local hit = { index = i, score = 1, parts = {}, text = "", start = 0, ["end"] = 0, line = 0, captures = {} }
  local d = report.diagnosis(hit, record, options)
  d.match = nil
  if effective_site then
    d = site.apply(d, effective_site)
  end
  local rep = { schema = report.SCHEMA, input = { text = "", lines = 0, source = "show" }, diagnoses = { d } }
  return render(rep, options)
end

function M.load_site(path)
  local t = require("triage.sandbox").load_value(path)
  if type(t) ~= "table" then
    error(string.format("site file '%s' returned %s; expected a table with vars, substitute and records", path, type(t)), 0)
  end
  local problems = site.validate(t, path)
  if #problems > 0 then
    error(table.concat(problems, "; "), 0)
  end
  site_layers[#site_layers + 1] = { file = path, table = t }
  effective_site = site.merge(site_layers)
end

-- The effective site as text, one line per value with the file that set it.
function M.site_show()
  local lines = site.show(effective_site or site.merge({}))
  if #lines == 0 then
    return "# no site values: no site file set any\n"
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Run the rule file at path on each line of text (triage test-rule);
-- returns the rendered results, the number of lines with remediation and
-- the number of failed rule calls.
function M.test_rule(path, text, options)
  return require("triage.rules").test(path, text, options, effective_site)
end

-- Grant a function (such as "os.execute") to scripts loaded from now on.
function M.allow_lua(name)
  require("triage.sandbox").allow(name)
end

local function add(problems, severity, record, field, message)
  problems[#problems + 1] = {
    severity = severity, file = record.file, id = record.id, field = field, message = message,
  }
end

-- Share of sample lines a pattern may match before check calls it too broad.
local BROAD_SHARE = 0.5

local function read_samples(path)
  local lines = {}
  local f, err = io.open(path, "rb")
  if not f then
    error(string.format("cannot open sample file '%s': %s", path, err), 0)
  end
  for line in f:lines() do
    if #lines >= 20000 then
      break
    end
    if line ~= "" and line:sub(1, 1) ~= "#" then
      lines[#lines + 1] = line
    end
  end
  f:close()
  return lines
end

-- Warn about regexes that match the empty string or most routine lines.
local function check_broad(problems, samples, sample_name)
  local hits = {}
  for _, line in ipairs(samples) do
    for _, i in ipairs(core.match_all(line)) do
      hits[i] = (hits[i] or 0) + 1
    end
  end
  for i, record in records.all() do
    local field = core.record_info(i).nested and "error.regex" or "regex"
    if core.match(i, "") then
      add(problems, "warning", record, field, "regex matches the empty string, so it matches every line")
    elseif #samples > 0 and (hits[i] or 0) >= #samples * BROAD_SHARE then
      add(problems, "warning", record, field, string.format(
        "regex matches %d of %d %s lines; anchor it on the message's distinctive text",
        hits[i], #samples, sample_name))
    end
  end
end

local function listed_as_confused(record, other_id)
  local graph_t = record.transition_graph or {}
  for _, edge in ipairs(graph_t.frequently_confused_with or {}) do
    local id = type(edge) == "table" and edge.error_id or edge
    if id == other_id then
      return true
    end
  end
  return false
end

-- Texts that stand for a record: its signature and its match examples.
local function own_texts(record)
  local texts = { record.signature }
  if type(record.examples) == "table" then
    for _, line in ipairs(record.examples.match or {}) do
      texts[#texts + 1] = line
    end
  end
  return texts
end

-- Two records whose regexes each match the other's texts need a
-- frequently_confused_with entry telling them apart.
local function check_confusions(problems)
  local matched_by = {}
  for i, record in records.all() do
    local set = {}
    for _, text in ipairs(own_texts(record)) do
      for _, j in ipairs(core.match_all(text)) do
        if j ~= i then
          set[j] = true
        end
      end
    end
    matched_by[i] = set
  end
  for i, record in records.all() do
    for j in pairs(matched_by[i]) do
      if j > i and matched_by[j][i] then
        local other = records.get(j)
        if not listed_as_confused(record, other.id) and not listed_as_confused(other, record.id) then
          add(problems, "warning", record, "transition_graph.frequently_confused_with", string.format(
            "regexes of '%s' and '%s' match each other's examples; list each under frequently_confused_with with the distinction",
            record.id, other.id))
        end
      end
    end
  end
end

-- A curated record (native schema) should carry what an operator needs.
local function check_completeness(problems, i, record)
  if core.record_info(i).nested then
    return
  end
  local function missing(field, what)
    add(problems, "warning", record, field, "missing: " .. what)
  end
  if type(record.signature_zh) ~= "string" or record.signature_zh == "" then
    missing("signature_zh", "Chinese signature")
  end
  if type(record.root_cause_zh) ~= "string" or record.root_cause_zh == "" then
    missing("root_cause_zh", "Chinese root cause")
  end
  if type(record.workarounds_zh) ~= "table" or #record.workarounds_zh == 0 then
    missing("workarounds_zh", "Chinese workarounds")
  end
  if type(record.examples) ~= "table" or #(record.examples.match or {}) == 0 then
    missing("examples.match", "example lines that the regex must match")
  end
  local g = record.transition_graph or {}
  if #(g.leads_to or {}) + #(g.preceded_by or {}) + #(g.frequently_confused_with or {}) == 0 then
    missing("transition_graph", "at least one edge to a related record")
  end
end

-- Warn when record i's regex does not match line, one of its own (what
-- names it), or when a matching limit left the line untested.
local function check_own_line(problems, i, record, field, line, what)
  local hit, reason = core.match(i, line)
  if hit then
    return
  end
  if reason == "limit" then
    add(problems, "warning", record, field, string.format(
      "regex could not be tested on %s \"%s\": it hit a matching limit (see the limit warning)", what, line))
  else
    add(problems, "warning", record, field, string.format("regex does not match %s \"%s\"", what, line))
  end
end

-- Check what loading cannot: a regex against its own signature and examples,
-- Chinese lists against English ones, graph edges, too broad patterns and
-- confusable pairs. sample_path, when given, is a log of routine lines.
function M.check(sample_path)
  local problems = {}
  local ids = {}
  local samples, sample_name = require("triage.routine"), "built-in routine"
  if sample_path then
    samples, sample_name = read_samples(sample_path), "'" .. sample_path .. "'"
  end
  -- A record's own lines go first: the routine samples below can make a
  -- slow regex hit limits until it is quarantined, and a quarantined regex
  -- matches nothing.
  for i, record in records.all() do
    check_completeness(problems, i, record)
    ids[#ids + 1] = record.id
    local field = core.record_info(i).nested and "error.regex" or "regex"
    check_own_line(problems, i, record, field, record.signature, "its own signature")
    local examples = record.examples
    if type(examples) == "table" then
      for k, line in ipairs(examples.match or {}) do
        check_own_line(problems, i, record, string.format("examples.match[%d]", k - 1), line, "example")
      end
      for k, line in ipairs(examples.no_match or {}) do
        if core.match(i, line) then
          add(problems, "warning", record, string.format("examples.no_match[%d]", k - 1),
            string.format("regex matches near miss \"%s\"", line))
        end
      end
    end
    if type(record.workarounds_zh) == "table" and #record.workarounds_zh ~= #(record.workarounds or {}) then
      add(problems, "warning", record, "workarounds_zh", string.format(
        "has %d entries but workarounds has %d; keep them the same length and order",
        #record.workarounds_zh, #(record.workarounds or {})))
    end
  end
  check_broad(problems, samples, sample_name)
  check_confusions(problems)
  for _, p in ipairs(report.graph:problems(ids)) do
    local record = records.by_id(p.id)
    add(problems, p.severity or "warning", record or { id = p.id }, p.field, p.message)
  end
  return problems
end

return M
