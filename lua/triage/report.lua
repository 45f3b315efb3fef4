-- Report building: turn the C core's ranked hits into diagnoses with the
-- record's advice, transitions, site overrides and remediation. Runs once per
-- diagnosis, never per scanned line.
local records = require "triage.record"
local graph = require "triage.graph"
local site = require "triage.site"
local json = require "triage.json"

local M = {}

M.SCHEMA = "triage.report/1"

local function copy(value)
  if type(value) ~= "table" then
    return value
  end
  local out = {}
  for k, v in pairs(value) do
    out[k] = copy(v)
  end
  return setmetatable(out, getmetatable(value))
end

local function list(t)
  return json.array(t or {})
end

-- Order workarounds best first by success_rate (stable), and keep each
-- Chinese text beside its English entry.
local function rank_workarounds(workarounds, zh)
  local order = {}
  for i = 1, #workarounds do
    order[i] = i
  end
  table.sort(order, function(a, b)
    local ra = tonumber(workarounds[a].success_rate) or 0
    local rb = tonumber(workarounds[b].success_rate) or 0
    if ra ~= rb then
      return ra > rb
    end
    return a < b
  end)
  local ranked, ranked_zh = {}, {}
  for i, k in ipairs(order) do
    ranked[i] = copy(workarounds[k])
    -- Without a translation the English action stands in, so the list has no gaps.
    if type(zh) == "table" and type(zh[k]) == "string" and zh[k] ~= "" then
      ranked_zh[i] = zh[k]
    else
      ranked_zh[i] = ranked[i].action
    end
  end
  return list(ranked), list(ranked_zh)
end

local function lookup(id)
  return records.by_id(id)
end

M.graph = graph.new(lookup)

-- Build one diagnosis from a hit table (see lua_engine.c push_hit) and its record.
function M.diagnosis(hit, record, options)
  local workarounds, workarounds_zh = rank_workarounds(record.workarounds or {}, record.workarounds_zh)
  local d = {
    id = record.id,
    score = hit.score,
    signature = record.signature,
    signature_zh = record.signature_zh,
    root_cause = record.root_cause,
    root_cause_zh = record.root_cause_zh,
    domain = record.domain,
    category = record.category,
    dead_ends = list(copy(record.dead_ends)),
    workarounds = workarounds,
    workarounds_zh = workarounds_zh,
    versions = list(copy(record.versions)),
    os_specific = copy(record.os_specific or {}),
    official_doc_url = record.official_doc_url,
    official_doc_section = record.official_doc_section,
    verification_tier = record.verification_tier,
    confidence = record.confidence,
    fix_success_rate = record.fix_success_rate,
    resolvable = record.resolvable,
    match = {
      text = hit.text,
      start = hit.start,
      ["end"] = hit["end"],
      line = hit.line,
      line_text = hit.line_text,
      captures = hit.captures or {},
      -- Only the first part of a line longer than the engine's bound was matched.
      truncated = hit.truncated or nil,
    },
    transitions = M.graph:resolve(record),
    remediation = list(),
    notes = list(),
  }
  if options.explain then
    -- score = match_floor + (1 - match_floor) * sum(weights[k] * parts[k]),
    -- times line_weight (below 1 only for a quiet line of a multi-line input).
    d.explain = {
      parts = hit.parts,
      weights = hit.weights,
      match_floor = hit.match_floor,
      pattern = hit.pattern or record.regex,
      alternative = hit.by_signature and "signature" or hit.alternative,
      span = { start = hit.start, ["end"] = hit["end"] },
      text = hit.text,
      line = hit.line,
      line_weight = hit.line_weight,
    }
  end
  return d
end

-- Closest records by token similarity, for input that no regex matched.
-- They go to report.guesses, never among the diagnoses.
local function guesses(text, options)
  local core = require "triage.core"
  local out = {}
  for _, g in ipairs(core.guess(text)) do
    local record = records.get(g.index)
    local entry = {
      id = record.id,
      score = g.score,
      guess = true,
      signature = record.signature,
      signature_zh = record.signature_zh,
      root_cause = record.root_cause,
      root_cause_zh = record.root_cause_zh,
    }
    if options.explain then
      entry.explain = { parts = { similarity = g.similarity } }
    end
    out[#out + 1] = entry
  end
  return out
end

local function count_lines(text)
  if text == "" then
    return 0
  end
  local n = 1
  for _ in text:gmatch("\r?\n") do
    n = n + 1
  end
  if text:sub(-1) == "\n" then
    n = n - 1
  end
  return n
end

-- Build the report for ranked hits on text. effective_site may be nil.
-- Remediation rules (triage.rules) add notes and steps to each diagnosis;
-- their failures go to report.errors.
function M.build(hits, text, options, effective_site)
  local diagnoses, warnings = {}, {}
  local run
  local top = options.top or 0
  local min_score = options.min_score or 0
  for _, hit in ipairs(hits) do
    if top > 0 and #diagnoses >= top then
      break
    end
    if hit.score >= min_score then
      local d = M.diagnosis(hit, records.get(hit.index), options)
      if effective_site then
        local site_warnings
        d, site_warnings = site.apply(d, effective_site)
        for _, w in ipairs(site_warnings or {}) do
          warnings[#warnings + 1] = w
        end
      end
      run = run or require("triage.rules").new_run(effective_site, text)
      d = run:apply(d)
      diagnoses[#diagnoses + 1] = d
    end
  end
  local rep = {
    schema = M.SCHEMA,
    input = { text = text, lines = count_lines(text), source = options.source },
    diagnoses = list(diagnoses),
  }
  if #warnings > 0 then
    rep.warnings = list(warnings)
  end
  rep.errors = run and run:report_errors() or nil
  if #hits == 0 and options.guess then
    local g = guesses(text, options)
    if #g > 0 then
      rep.guesses = list(g)
    end
  end
  return rep
end

return M
