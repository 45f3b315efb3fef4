-- Scan summaries: turn the document that the C scanner writes at the end
-- of `triage scan` into the report the scan formatters print. Runs once
-- per scan, never per line.
--
-- The report is the scanner's document (schema "triage.scan/1") with, per
-- finding, the record's signature, domain and category, and, per observed
-- transition, whether the records' transition graphs know the edge; the
-- known edges come first. Findings of background records (scanners, bots)
-- follow the others and carry background = true.
local core = require "triage.core"
local json = require "triage.json"
local records = require "triage.record"

local M = {}

M.SCHEMA = "triage.scan/1"


-- Return the set of ids that the record with this id names in its edges of
-- kind. cache keeps the set per id, because a record takes part in many
-- observed pairs.
local function edge_ids(graph, cache, id, kind)
  local ids = cache[id]
  if ids == nil then
    ids = {}
    local record = records.by_id(id)
    for _, edge in ipairs(record and graph:edges(record, kind) or {}) do
      ids[edge.id] = true
    end
    cache[id] = ids
  end
  return ids
end


-- Return true when the graph has the edge from -> to: from leads to to, or
-- to is preceded by from. leads and preceded cache the edges per id.
local function known_edge(graph, leads, preceded, from, to)
  return edge_ids(graph, leads, from, "leads_to")[to] == true
    or edge_ids(graph, preceded, to, "preceded_by")[from] == true
end


-- Tags of records whose lines are routine on an internet-facing host:
-- scanners and bots probing every address. Their findings are real but
-- rarely what an operator came for, so they follow the others.
local BACKGROUND_TAGS = { scanner = true, bots = true, ["weak-signal"] = true }

local function is_background(record)
  for _, tag in ipairs(type(record.tags) == "table" and record.tags or {}) do
    if BACKGROUND_TAGS[tag] then
      return true
    end
  end
  return false
end


local function describe(finding)
  local i = core.find(finding.id)
  local record = i and records.get(i)
  if not record then
    return
  end
  finding.signature = record.signature
  finding.signature_zh = record.signature_zh
  finding.domain = record.domain
  finding.category = record.category
  finding.background = is_background(record)
  if type(finding.captures) == "table" then
    for _, values in pairs(finding.captures) do
      json.array(values)
    end
  end
end


-- Build the report from the scanner's JSON text; graph is a
-- triage.graph over the loaded records.
function M.build(text, graph)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" or doc.schema ~= M.SCHEMA then
    error("scan: the scanner's summary is not a " .. M.SCHEMA .. " document: " .. tostring(doc), 0)
  end
  json.array(doc.files)
  json.array(doc.findings)
  json.array(doc.observed)
  local foreground, background = {}, {}
  for _, finding in ipairs(doc.findings) do
    describe(finding)
    local group = finding.background and background or foreground
    group[#group + 1] = finding
  end
  for _, finding in ipairs(background) do
    foreground[#foreground + 1] = finding
  end
  doc.findings = json.array(foreground)
  -- Known edges first: they confirm the graph and are what a person looks
  -- for among the many pairs that interleaved sources make. Within each
  -- group the scanner's order (most frequent first) stays.
  local known, other = {}, {}
  local leads, preceded = {}, {}
  for _, pair in ipairs(doc.observed) do
    pair.known = known_edge(graph, leads, preceded, pair.from, pair.to)
    local group = pair.known and known or other
    group[#group + 1] = pair
  end
  for _, pair in ipairs(other) do
    known[#known + 1] = pair
  end
  doc.observed = json.array(known)
  return doc
end


return M
