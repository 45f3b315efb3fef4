-- Remediation rules: finding, loading and calling them, checking what they
-- return, and keeping count of their failures.
--
-- A rule file is a Lua chunk that returns
--   {
--     ids = { "communication/smtp-554-5-7-0-relay-denied", "**sasl**" },
--     description = "...",                                  -- optional
--     remediate = function(d, vars, context) ... end,
--   }
-- ids are record ids or globs (as in site files). remediate receives the
-- diagnosis d after site overrides, the site variables, and context =
-- { text = the whole input (nil above 1 MiB), lines = N }. In d,
-- d.match.captures contains the regex's named captures and
-- d.match.line_text the whole line. remediate returns nil or
--   {
--     notes = { "..." },
--     steps = { { title = "...", commands = { "..." }, check = "...",
--                 alternative = true, notes = { "..." } }, ... },
--   }
-- where title, commands and check are required in each step. check is a
-- command whose success shows that the step worked. alternative marks a
-- step that replaces the one before it instead of following it. The
-- engine prints the steps and never runs them.
--
-- Rules come from DATADIR/rules, then from the folders that site files
-- list under `rules`, in layer order; a file in a later folder replaces
-- one of the same name in an earlier folder. Every rule whose ids match a
-- diagnosis runs, in order of file name. Each runs sandboxed (see
-- triage.sandbox); a failing rule marks only the diagnosis it ran for, and
-- its failure is recorded once per file and kind, with a count.
local core = require "triage.core"
local records = require "triage.record"
local script = require "triage.script"
local sandbox = require "triage.sandbox"
local site = require "triage.site"
local json = require "triage.json"

local M = {}

local N = "triage.rules"

-- Inputs larger than this reach rules without their text (context.text).
local CONTEXT_TEXT_MAX = 1 << 20

local RESULT_FIELDS = { notes = true, steps = true }
local STEP_FIELDS = { title = true, commands = true, check = true, alternative = true, notes = true }

local loaded, loaded_key -- the rules, and the folders and grants they were loaded with
local failures, fresh = {}, {}


-- ==== failures ===========================================================

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- Split "PATH:LINE: text" into LINE and text.
local function split_location(path, message)
  local prefix = "^" .. escape_pattern(path)
  local line, text = message:match(prefix .. ":(%d+): (.*)$")
  if line then
    return tonumber(line), text
  end
  return nil, message:match(prefix .. ": (.*)$") or message
end

-- Record a failure of the script at path. The first failure of a path and
-- kind is kept with its message; later ones only count.
local function record_failure(path, kind, message, id)
  local key = path .. "\0" .. kind
  local entry = failures[key]
  if entry then
    entry.count = entry.count + 1
    return entry
  end
  local line, text = split_location(path, message)
  entry = {
    script = path, line = line, kind = kind, id = id or "-", field = "rule",
    message = text, full = message, count = 1,
  }
  failures[key] = entry
  fresh[#fresh + 1] = entry
  return entry
end

-- Return the failures first seen since the last call, as problems for the
-- engine ({script=, line=, id=, field=, message=}). A failure that happened
-- more than once so far gives its count in the message.
function M.take_failures()
  local out = {}
  for i, entry in ipairs(fresh) do
    local message = entry.message
    if entry.kind ~= "error" then
      message = string.format("%s (%s)", message, entry.kind)
    end
    if entry.count > 1 then
      message = string.format("%s; failed %d times", message, entry.count)
    end
    out[i] = { script = entry.script, line = entry.line, id = entry.id, field = entry.field,
      message = message }
  end
  fresh = {}
  return out
end


-- ==== loading =============================================================

-- The rule folders: the installed one, then those the site lists.
function M.folders(effective)
  local out = { { dir = core.datadir .. "/rules", installed = true } }
  for _, entry in ipairs(effective and effective.rule_dirs or {}) do
    out[#out + 1] = { dir = entry.dir, file = entry.file }
  end
  return out
end

local function check_rule_value(value)
  if type(value) ~= "table" then
    return "expected the file to return a table { ids = {...}, remediate = function(d, vars, context) }, got "
      .. (value == nil and "nil" or type(value))
  end
  if type(value.ids) ~= "table" or #value.ids == 0 then
    return "ids: expected a non-empty list of record ids or globs"
  end
  for i, id in ipairs(value.ids) do
    if type(id) ~= "string" or id == "" then
      return string.format("ids[%d]: expected a record id or glob", i)
    end
  end
  if value.remediate ~= script.FUNCTION then
    return "remediate: expected function(d, vars, context)"
  end
  if value.description ~= nil and type(value.description) ~= "string" then
    return "description: expected a string"
  end
  for key in pairs(value) do
    if key ~= "ids" and key ~= "remediate" and key ~= "description" then
      return string.format("unknown field '%s' (expected ids, remediate and description)", tostring(key))
    end
  end
  return nil
end

-- Load one rule file. Returns the rule { name=, path=, ids=, description=,
-- script= }, or nil, message, kind.
function M.load_file(path)
  local s, err, kind = script.load(path, sandbox.options())
  if not s then
    return nil, err, kind
  end
  local value, value_err = s:result()
  local problem = value_err or check_rule_value(value)
  if problem then
    s:close()
    if not problem:find(path, 1, true) then
      problem = path .. ": " .. problem
    end
    return nil, problem, "result"
  end
  return {
    name = path:match("([^/]+)%.lua$") or path,
    path = path,
    ids = value.ids,
    description = value.description,
    script = s,
  }
end

local function folders_key(folders)
  local parts = {}
  for i, f in ipairs(folders) do
    parts[i] = f.dir
  end
  local options = sandbox.options()
  return table.concat(parts, "\0") .. "\1" .. table.concat(options.allow, "\0")
end

-- The rules for the effective site, loaded on first use and again when the
-- folders or grants change. A rule that fails to load is a failure of kind
-- "open", "load", "error", "result" or a limit, and is left out.
function M.load(effective)
  local folders = M.folders(effective)
  local key = folders_key(folders)
  if loaded and loaded_key == key then
    return loaded
  end
  local by_name, names = {}, {}
  for _, folder in ipairs(folders) do
    local files, err = script.list_lua_files(folder.dir)
    if not files and not folder.installed then
      record_failure(folder.file or folder.dir, "open", err)
    end
    for _, path in ipairs(files or {}) do
      local name = path:match("([^/]+)%.lua$")
      if not by_name[name] then
        names[#names + 1] = name
      end
      by_name[name] = path
    end
  end
  table.sort(names)

  loaded, loaded_key = {}, key
  for _, name in ipairs(names) do
    local rule, err, kind = M.load_file(by_name[name])
    if rule then
      loaded[#loaded + 1] = rule
    else
      record_failure(by_name[name], kind, err)
    end
  end
  return loaded
end

-- True when rule handles the record id.
function M.handles(rule, id)
  for _, pattern in ipairs(rule.ids) do
    if pattern == id or (pattern:find("[*?]") and site.glob_match(pattern, id)) then
      return true
    end
  end
  return false
end


-- ==== results =============================================================

local function string_list(value, where)
  if type(value) == "string" then
    return json.array({ value })
  end
  if type(value) ~= "table" then
    return nil, string.format("%s: expected a list of strings, got %s", where, type(value))
  end
  local out = json.array()
  for i, item in ipairs(value) do
    if type(item) ~= "string" then
      return nil, string.format("%s[%d]: expected a string, got %s", where, i, type(item))
    end
    out[i] = item
  end
  return out
end

local function check_step(step, where)
  if type(step) ~= "table" then
    return nil, string.format("%s: expected a table, got %s", where, type(step))
  end
  for key in pairs(step) do
    if not STEP_FIELDS[key] then
      return nil, string.format("%s: unknown field '%s' (expected title, commands, check, "
        .. "alternative and notes)", where, tostring(key))
    end
  end
  if type(step.title) ~= "string" or step.title == "" then
    return nil, where .. ".title: expected a non-empty string"
  end
  local commands, err = string_list(step.commands, where .. ".commands")
  if not commands or #commands == 0 then
    return nil, err or (where .. ".commands: expected at least one command")
  end
  if type(step.check) ~= "string" or step.check == "" then
    return nil, where .. ".check: expected a command that shows whether the step worked"
  end
  local out = { title = step.title, commands = commands, check = step.check }
  if step.alternative ~= nil then
    if type(step.alternative) ~= "boolean" then
      return nil, where .. ".alternative: expected true or false"
    end
    out.alternative = step.alternative or nil
  end
  if step.notes ~= nil then
    out.notes, err = string_list(step.notes, where .. ".notes")
    if not out.notes then
      return nil, err
    end
  end
  return out
end

-- Check what remediate returned; returns notes, steps or nil, message.
function M.check_result(result)
  if result == nil then
    return json.array(), json.array()
  end
  if type(result) ~= "table" then
    return nil, string.format("remediate returned %s; expected nil or { notes = {...}, steps = {...} }",
      type(result))
  end
  for key in pairs(result) do
    if not RESULT_FIELDS[key] then
      return nil, string.format("remediate returned an unknown field '%s' (expected notes and steps)",
        tostring(key))
    end
  end
  local notes, steps = json.array(), json.array()
  local err
  if result.notes ~= nil then
    notes, err = string_list(result.notes, "notes")
    if not notes then
      return nil, err
    end
  end
  if result.steps ~= nil then
    if type(result.steps) ~= "table" then
      return nil, "steps: expected a list of steps, got " .. type(result.steps)
    end
    for i, step in ipairs(result.steps) do
      steps[i], err = check_step(step, string.format("steps[%d]", i))
      if not steps[i] then
        return nil, err
      end
    end
  end
  return notes, steps
end

-- Call one rule for diagnosis D. Returns notes, steps, or nil, message, kind.
function M.call(rule, D, vars, context)
  if rule.vars ~= vars then
    local ok, err, kind = rule.script:control("set_vars", vars)
    if not ok then
      return nil, err, kind
    end
    rule.vars = vars
  end
  local ok, result, kind = rule.script:call("remediate", D, vars, context)
  if not ok then
    return nil, result, kind
  end
  local notes, steps = M.check_result(result)
  if not notes then
    return nil, rule.path .. ": " .. steps, "result"
  end
  return notes, steps
end


-- ==== runs ================================================================

local Run = {}
Run.__index = Run

-- Start applying rules to the diagnoses of one report on input text.
function M.new_run(effective, text)
  local lines = 0
  if text ~= "" then
    lines = select(2, text:gsub("\n", "")) + (text:sub(-1) == "\n" and 0 or 1)
  end
  return setmetatable({
    rules = M.load(effective),
    vars = effective and effective.vars or {},
    context = { text = #text <= CONTEXT_TEXT_MAX and text or nil, lines = lines },
    errors = {},
    error_list = json.array(),
  }, Run)
end

-- Count a failure for the report's errors list, where the message leaves
-- out the file (the entry's script) and starts with the line.
function Run:note_error(rule_path, kind, message, id)
  local key = rule_path .. "\0" .. kind
  local entry = self.errors[key]
  if entry then
    entry.count = entry.count + 1
  else
    local line, text = split_location(rule_path, message)
    entry = {
      script = rule_path, line = line, kind = kind, id = id, count = 1,
      message = line and string.format("line %d: %s", line, text) or text,
    }
    self.errors[key] = entry
    self.error_list[#self.error_list + 1] = entry
  end
  record_failure(rule_path, kind, message, id)
end

-- Run the rules that handle D.id and add their notes and steps to D. A
-- failing rule sets D.remediation_error and leaves the other rules' output.
function Run:apply(D)
  for _, rule in ipairs(self.rules) do
    if type(D.id) == "string" and M.handles(rule, D.id) then
      local notes, steps, kind = M.call(rule, D, self.vars, self.context)
      if notes then
        for _, note in ipairs(notes) do
          D.notes[#D.notes + 1] = note
        end
        for _, step in ipairs(steps) do
          step.rule = rule.name
          D.remediation[#D.remediation + 1] = step
        end
      else
        D.remediation_error = D.remediation_error or steps
        self:note_error(rule.path, kind, steps, D.id)
      end
    end
  end
  return D
end

-- The failures of this run's rules, one entry per file and kind, for the
-- report's "errors" list; nil when there were none.
function Run:report_errors()
  if #self.error_list == 0 then
    return nil
  end
  return self.error_list
end


-- ==== test-rule ===========================================================

local function each_line(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line:gsub("\r$", "")
  end
  if text:sub(-1) == "\n" then
    lines[#lines] = nil
  end
  return lines
end

local function render_test_text(t)
  local out = {
    "rule: " .. t.rule,
    "handles: " .. table.concat(t.ids, ", "),
    string.format("lines: %d read, %d skipped (blank or '#'), %d matched a handled record, "
      .. "%d with remediation, %d failed", t.lines, t.skipped, t.matched, t.remediated, t.failed),
  }
  for _, r in ipairs(t.results) do
    out[#out + 1] = ""
    out[#out + 1] = string.format("line %d: %s", r.line, r.text)
    out[#out + 1] = "  record: " .. r.id
    local captures = {}
    for name, value in pairs(r.captures) do
      captures[#captures + 1] = name .. "=" .. value
    end
    table.sort(captures)
    if #captures > 0 then
      out[#out + 1] = "  captures: " .. table.concat(captures, " ")
    end
    if r.error then
      out[#out + 1] = "  error: " .. r.error
    end
    for _, note in ipairs(r.notes or {}) do
      out[#out + 1] = "  note: " .. note
    end
    for i, step in ipairs(r.steps or {}) do
      out[#out + 1] = string.format("  step %d%s: %s", i, step.alternative and " (alternative)" or "",
        step.title)
      for _, command in ipairs(step.commands) do
        out[#out + 1] = "      " .. command:gsub("\n", "\n      ")
      end
      out[#out + 1] = "      check: " .. step.check
    end
    if not r.error and #(r.notes or {}) == 0 and #(r.steps or {}) == 0 then
      out[#out + 1] = "  (the rule returned nothing)"
    end
  end
  return table.concat(out, "\n") .. "\n"
end

--[[
Run the rule file at path on every line of text, as fail2ban-regex runs a
filter on a log: each line is matched against the loaded records, and the
rule is called for each match of a record it handles. Lines that are blank
or start with '#' are skipped. Returns the rendered report (text, or JSON
when options.format is "json"), the number of lines with remediation and
the number of failed calls. Raises when the rule file does not load.
]]
function M.test(path, text, options, effective)
  local report = require "triage.report"
  local rule, err = M.load_file(path)
  if not rule then
    error(err, 0)
  end
  local vars = effective and effective.vars or {}
  local context = { text = #text <= CONTEXT_TEXT_MAX and text or nil }
  local lines = each_line(text)
  context.lines = #lines
  local t = {
    schema = "triage.rule-test/1", rule = path, ids = json.array(rule.ids), lines = #lines,
    skipped = 0, matched = 0, remediated = 0, failed = 0, results = json.array(),
  }
  for n, line in ipairs(lines) do
    if line:match("^%s*$") or line:match("^%s*#") then
      t.skipped = t.skipped + 1
    else
      local any_match, any_output = false, false
      for _, i in ipairs(core.match_all(line)) do
        local record = records.get(i)
        if M.handles(rule, record.id) then
          any_match = true
          local m = core.match(i, line)
          local hit = {
            index = i, score = 1, parts = {}, text = m.text, start = m.start, ["end"] = m["end"],
            line = n, line_text = line, captures = m.captures,
          }
          local D = report.diagnosis(hit, record, options or {})
          if effective then
            D = site.apply(D, effective)
          end
          local notes, steps, kind = M.call(rule, D, vars, context)
          local r = { line = n, text = line, id = record.id, captures = m.captures }
          if notes then
            r.notes, r.steps = notes, steps
            any_output = any_output or #notes > 0 or #steps > 0
          else
            r.error = steps
            t.failed = t.failed + 1
            record_failure(path, kind, steps, record.id)
          end
          t.results[#t.results + 1] = r
        end
      end
      t.matched = t.matched + (any_match and 1 or 0)
      t.remediated = t.remediated + (any_output and 1 or 0)
    end
  end
  rule.script:close()
  if options and options.format == "json" then
    return json.encode(t, { indent = true }) .. "\n", t.remediated, t.failed
  end
  return render_test_text(t), t.remediated, t.failed
end

M.N = N

return M
