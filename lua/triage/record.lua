-- Records as Lua tables: decoded on demand from the text the C core
-- validated, normalised to the native flat model, and cached per engine.
local core = require "triage.core"
local cjson = require "cjson"

local M = {}

local cache = {}

-- Replace cjson.null by nil so that modules test fields with plain `if`.
local function strip_null(value)
  if value == cjson.null then
    return nil
  end
  if type(value) == "table" then
    for k, v in pairs(value) do
      value[k] = strip_null(v)
    end
  end
  return value
end

-- Turn a record of the public corpus' nested schema into the native model.
-- Fields the native model does not have are kept under their own names.
function M.normalize(t)
  if type(t.error) ~= "table" or t.signature ~= nil then
    return t
  end
  local err, verdict, env = t.error, t.verdict or {}, t.environment or {}
  local native = {
    id = t.id,
    signature = err.signature,
    regex = err.regex,
    domain = err.domain,
    category = err.category,
    root_cause = verdict.summary,
    confidence = verdict.confidence,
    fix_success_rate = verdict.fix_success_rate,
    resolvable = verdict.resolvable,
    last_updated = verdict.last_updated,
    first_seen = err.first_seen,
    last_confirmed = err.last_confirmed,
    dead_ends = t.dead_ends or {},
    workarounds = t.workarounds or {},
    transition_graph = t.transition_graph or {},
    official_doc_url = t.url,
    versions = {},
    os_specific = {},
    aliases = {},
    tags = {},
  }
  if type(env.runtime) == "table" and env.runtime.name then
    native.versions[1] = {
      version = env.runtime.name .. (env.runtime.version_range and (" " .. env.runtime.version_range) or ""),
      status = "active",
    }
  end
  if type(env.os) == "string" and env.os ~= "any" then
    native.os_specific[env.os] = "applies"
  end
  if type(t.metadata) == "table" then
    native.verification_tier = t.metadata.review_status or t.metadata.generated_by
    native.evidence_count = t.metadata.evidence_count
  end
  for k, v in pairs(t) do
    if native[k] == nil and k ~= "error" and k ~= "verdict" then
      native[k] = v
    end
  end
  return native
end

-- Add a supplement's examples and graph edges to a record (see
-- record_add_supplement in record.c for why supplements exist).
local function supplement(record, extra)
  if type(extra.examples) == "table" then
    record.examples = record.examples or {}
    for _, kind in ipairs({ "match", "no_match" }) do
      local list = record.examples[kind] or {}
      for _, line in ipairs(extra.examples[kind] or {}) do
        list[#list + 1] = line
      end
      record.examples[kind] = list
    end
  end
  if type(extra.transition_graph) == "table" then
    record.transition_graph = record.transition_graph or {}
    for kind, edges in pairs(extra.transition_graph) do
      local list = record.transition_graph[kind] or {}
      for _, edge in ipairs(edges) do
        list[#list + 1] = edge
      end
      record.transition_graph[kind] = list
    end
  end
end

-- Return the record at 1-based index i as a native table (cached).
function M.get(i)
  local record = cache[i]
  if record then
    return record
  end
  local text, file, extra = core.record_json(i)
  local ok, decoded = pcall(cjson.decode, text)
  if not ok then
    error(string.format("%s: cannot decode a record that loaded: %s", file, decoded))
  end
  record = M.normalize(strip_null(decoded))
  if extra then
    supplement(record, strip_null(cjson.decode(extra)))
  end
  record.file = record.file or file
  cache[i] = record
  return record
end

-- Return the record with this id, or nil when it is not loaded.
function M.by_id(id)
  local i = core.find(id)
  return i and M.get(i) or nil
end

-- Iterate over (index, record) of every loaded record.
function M.all()
  local i, n = 0, core.record_count()
  return function()
    i = i + 1
    if i <= n then
      return i, M.get(i)
    end
  end
end

return M
