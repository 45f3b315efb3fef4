-- Entry points that the C core calls on the engine's Lua state: diagnose,
-- show, check and site loading. Each runs under one protected call from C.
local core = require "triage.core"
local records = require "triage.record"
local report = require "triage.report"
local site = require "triage.site"

local M = {}

local site_layers = {}
local effective_site = nil

local FORMATS = { text = true, json = true, ndjson = true, markdown = true }

-- Libraries a site file or user formatter may use: an allow list.
local function sandbox_env()
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, xpcall = xpcall, setmetatable = setmetatable, getmetatable = getmetatable,
    rawequal = rawequal, rawget = rawget, rawlen = rawlen, rawset = rawset,
    string = string, table = table, math = math, utf8 = utf8,
  }
  env._G = env
  return env
end

-- Load a Lua file as text (never bytecode) in a fresh sandbox and run it.
local function run_user_file(path, what)
  local f, err = io.open(path, "rb")
  if not f then
    error(string.format("cannot open %s file '%s': %s", what, path, err), 0)
  end
  local text = f:read("a")
  f:close()
  local chunk, cerr = load(text, "@" .. path, "t", sandbox_env())
  if not chunk then
    error(string.format("invalid %s file: %s", what, cerr), 0)
  end
  local ok, result = pcall(chunk)
  if not ok then
    error(string.format("%s file failed: %s", what, tostring(result)), 0)
  end
  return result
end

local function formatter(name)
  if FORMATS[name] then
    return require("triage.format." .. name)
  end
  if name:match("%.lua$") then
    local fn = run_user_file(name, "formatter")
    if type(fn) ~= "function" then
      error(string.format("formatter file '%s' returned %s; expected function(report, options)", name, type(fn)), 0)
    end
    return fn
  end
  error(string.format("unknown format '%s'; expected text, json, ndjson, markdown or a path to a .lua formatter", name), 0)
end

local function render(rep, options)
  local out = formatter(options.format or "text")(rep, options)
  if type(out) ~= "string" then
    error(string.format("formatter '%s' returned %s; expected a string", options.format, type(out)), 0)
  end
  return out
end

-- hits: ranked hit tables from C; returns the rendered text and the number of diagnoses.
function M.diagnose(hits, text, options)
  local rep = report.build(hits, text, options, effective_site)
  return render(rep, options), #rep.diagnoses
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
  local t = run_user_file(path, "site")
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

local function add(problems, severity, record, field, message)
  problems[#problems + 1] = {
    severity = severity, file = record.file, id = record.id, field = field, message = message,
  }
end

-- Check what loading cannot: a regex against its own signature and examples,
-- Chinese lists against English ones, and graph edges.
function M.check()
  local problems = {}
  local ids = {}
  for i, record in records.all() do
    ids[#ids + 1] = record.id
    local field = core.record_info(i).nested and "error.regex" or "regex"
    if not core.match(i, record.signature) then
      add(problems, "warning", record, field, string.format("regex does not match its own signature \"%s\"", record.signature))
    end
    local examples = record.examples
    if type(examples) == "table" then
      for k, line in ipairs(examples.match or {}) do
        if not core.match(i, line) then
          add(problems, "warning", record, string.format("examples.match[%d]", k - 1),
            string.format("regex does not match example \"%s\"", line))
        end
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
  for _, p in ipairs(report.graph:problems(ids)) do
    local record = records.by_id(p.id)
    add(problems, "warning", record or { id = p.id }, p.field, p.message)
  end
  return problems
end

return M
