-- Site files: local knowledge layered over the shipped records.
--
-- A site file is a Lua chunk that returns
--   {
--     vars = { mynetworks = "10.20.0.0/16" },
--     substitute = { ["literal text"] = "replacement with ${mynetworks}" },
--     records = { ["communication/smtp-*"] = override, ... },
--   }
-- An override changes one record's lists and adds site facts:
--   workarounds = { add = {...}, drop = {...}, replace = {...}, order = {...} }
--   dead_ends   = the same operations
--   notes = { "..." }, runbook = "url", confidence = 0.9
-- drop and order take 1-based positions or the exact action text, and
-- replace is keyed the same way. A position counts in the diagnosis's list
-- as apply() receives it, before any override: for workarounds that is the
-- best-first order that triage prints without a site, which can differ
-- from the order in the record file. Action text is the safer reference.
-- replace merges its fields into the entry, so
-- { [2] = { success_rate = 0.95 } } changes only the rate.
-- Site text in add, replace, notes and runbook may use ${var}.
--
-- Record keys are ids or globs: "*" and "?" match within one id segment
-- (no "/"), "**" matches across segments.
--
-- A site file may also list folders of remediation rules:
--   rules = { "rules.d", "/srv/triage/rules" }
-- Relative folders are taken from the site file's own folder. The module
-- comment of triage.rules says how rules from several folders combine.
--
-- This module neither loads nor sandboxes site files; the engine does that
-- and passes the returned tables to merge().
local json = require "triage.json"

local M = {}

local N = "triage.site"

local TOP_FIELDS = { vars = true, substitute = true, records = true, rules = true }
local OVERRIDE_FIELDS = {
  workarounds = true, dead_ends = true, notes = true, runbook = true,
  confidence = true,
}
local LIST_OPS = { add = true, drop = true, replace = true, order = true }

-- Fields an added or replaced entry may set, with the rate field of each
-- list. action_zh goes to workarounds_zh, not into the entry.
local ENTRY_FIELDS = {
  workarounds = {
    action = "string", how = "string", condition = "string",
    success_rate = "rate", sources = "list", action_zh = "string",
  },
  dead_ends = {
    action = "string", why_fails = "string", condition = "string",
    fail_rate = "rate", sources = "list",
  },
}

local VAR_NAME = "^[%w_][%w_.%-]*$"

-- Widest row of show() that the file comments are aligned after.
local SHOW_ALIGN_MAX = 100


-- ==== helpers ============================================================

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = deep_copy(x)
  end
  return setmetatable(out, getmetatable(v))
end


local function append_all(dest, list)
  if type(list) == "table" then
    for _, v in ipairs(list) do
      dest[#dest + 1] = deep_copy(v)
    end
  end
  return dest
end


local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then
      return type(a) == "number"
    end
    return a < b
  end)
  return keys
end


-- The maximum length of a record key in a site file. The shipped record ids
-- are at most 56 bytes long, and matching a glob costs up to its length
-- times the id's, once per glob and diagnosis.
local MAX_KEY = 256


local function is_glob(key)
  return string.find(key, "[*?]") ~= nil
end


-- Split a record glob into tokens: a literal byte, "?" (one byte but "/"),
-- "*" (a run within one segment) or "**" (a run across segments). A run
-- of two or more stars is one "**" because "***" matches the same ids.
local function glob_tokens(glob)
  local tokens, i = {}, 1
  while i <= #glob do
    local c = string.sub(glob, i, i)
    if c == "*" then
      local j = i
      while string.sub(glob, j + 1, j + 1) == "*" do
        j = j + 1
      end
      tokens[#tokens + 1] = j > i and "**" or "*"
      i = j + 1
    else
      tokens[#tokens + 1] = c
      i = i + 1
    end
  end
  return tokens
end


-- Return true when id matches the record glob (see the module comment).
-- The glob runs as a set of token positions advanced one byte at a time,
-- so the cost is at most #id * #glob steps. A Lua pattern built from a key
-- of 106 stars backtracked inside string.find past a fuzzer's 10 s timeout,
-- and the sandbox's instruction hook cannot stop a C function.
function M.glob_match(glob, id)
  local tokens = glob_tokens(glob)
  local n = #tokens
  -- Add to set the positions reachable without reading a byte: a star
  -- may match nothing.
  local function close(set)
    for k = 1, n do
      if set[k] and (tokens[k] == "*" or tokens[k] == "**") then
        set[k + 1] = true
      end
    end
    return set
  end
  local set = close({ [1] = true })
  for i = 1, #id do
    local c = string.sub(id, i, i)
    local next_set, any = {}, false
    for k = 1, n do
      if set[k] then
        local t = tokens[k]
        if t == "**" or (t == "*" and c ~= "/") then
          next_set[k], any = true, true
        elseif t == c or (t == "?" and c ~= "/") then
          next_set[k + 1], any = true, true
        end
      end
    end
    if not any then
      return false
    end
    set = close(next_set)
  end
  return set[n + 1] == true
end


-- ==== validation =========================================================

local function lua_key(k)
  if type(k) == "string" and string.find(k, "^[%a_][%w_]*$") then
    return "." .. k
  elseif type(k) == "string" then
    return string.format("[%q]", k)
  end
  return "[" .. tostring(k) .. "]"
end


local function is_rate(v)
  return type(v) == "number" and v >= 0 and v <= 1
end


local function is_ref(v)
  return (math.type(v) == "integer" and v >= 1)
    or (type(v) == "string" and v ~= "")
end


local function check_entry(entry, fields, path, report, need_action)
  if type(entry) ~= "table" then
    report(path, "expected a table, got " .. type(entry))
    return
  end
  if need_action and not (type(entry.action) == "string" and entry.action ~= "") then
    report(path .. ".action", "missing non-empty string")
  end
  for _, k in ipairs(sorted_keys(entry)) do
    local v, want, at = entry[k], fields[k], path .. lua_key(k)
    if want == nil then
      report(at, "unknown field")
    elseif want == "rate" and not is_rate(v) then
      report(at, "expected a number in [0, 1], got " .. tostring(v))
    elseif want == "string" and type(v) ~= "string" then
      report(at, "expected string, got " .. type(v))
    elseif want == "list" and type(v) ~= "table" then
      report(at, "expected a list, got " .. type(v))
    end
  end
end


local function check_refs(list, path, report)
  if type(list) ~= "table" then
    report(path, "expected a list, got " .. type(list))
    return
  end
  for i, ref in ipairs(list) do
    if not is_ref(ref) then
      report(path .. "[" .. i .. "]",
        "expected a 1-based index or an action text, got " .. tostring(ref))
    end
  end
end


local function check_list_spec(spec, kind, path, report)
  if type(spec) ~= "table" then
    report(path, "expected a table, got " .. type(spec))
    return
  end
  local fields = ENTRY_FIELDS[kind]
  for _, op in ipairs(sorted_keys(spec)) do
    local v, at = spec[op], path .. lua_key(op)
    if not LIST_OPS[op] then
      report(at, "unknown operation (expected add, drop, replace or order)")
    elseif op == "add" then
      if type(v) ~= "table" then
        report(at, "expected a list, got " .. type(v))
      else
        for i, entry in ipairs(v) do
          check_entry(entry, fields, at .. "[" .. i .. "]", report, true)
        end
      end
    elseif op == "replace" then
      if type(v) ~= "table" then
        report(at, "expected a table, got " .. type(v))
      else
        for _, ref in ipairs(sorted_keys(v)) do
          local entry_path = at .. "[" .. string.format("%q", ref) .. "]"
          if not is_ref(ref) then
            report(entry_path, "key must be a 1-based index or an action text")
          end
          check_entry(v[ref], fields, entry_path, report, false)
        end
      end
    else
      check_refs(v, at, report)
    end
  end
end


local function check_override(override, path, report)
  if type(override) ~= "table" then
    report(path, "expected a table, got " .. type(override))
    return
  end
  for _, field in ipairs(sorted_keys(override)) do
    local v, at = override[field], path .. lua_key(field)
    if not OVERRIDE_FIELDS[field] then
      report(at, "unknown field (expected workarounds, dead_ends, notes, "
        .. "runbook or confidence)")
    elseif field == "workarounds" or field == "dead_ends" then
      check_list_spec(v, field, at, report)
    elseif field == "notes" then
      if type(v) ~= "table" then
        report(at, "expected a list of strings, got " .. type(v))
      else
        for i, note in ipairs(v) do
          if type(note) ~= "string" then
            report(at .. "[" .. i .. "]", "expected string, got " .. type(note))
          end
        end
      end
    elseif field == "runbook" and type(v) ~= "string" then
      report(at, "expected string, got " .. type(v))
    elseif field == "confidence" and not is_rate(v) then
      report(at, "expected a number in [0, 1], got " .. tostring(v))
    end
  end
end


local function check_vars(vars, report)
  for _, name in ipairs(sorted_keys(vars)) do
    local v, at = vars[name], "vars" .. lua_key(name)
    if type(name) ~= "string" or not string.find(name, VAR_NAME) then
      report(at, "invalid variable name (use letters, digits, '_', '.', '-')")
    elseif type(v) ~= "string" and type(v) ~= "number" then
      report(at, "expected string or number, got " .. type(v))
    end
  end
end


local function check_rule_folders(folders, report)
  for _, key in ipairs(sorted_keys(folders)) do
    local v, at = folders[key], "rules" .. lua_key(key)
    if math.type(key) ~= "integer" or key < 1 or key > #folders then
      report(at, "expected a list of folders")
    elseif type(v) ~= "string" or v == "" then
      report(at, "expected a folder path, got " .. (v == "" and "an empty string" or type(v)))
    end
  end
end


local function check_substitute(substitute, report)
  for _, key in ipairs(sorted_keys(substitute)) do
    local v, at = substitute[key], "substitute" .. lua_key(key)
    if type(key) ~= "string" or key == "" then
      report(at, "key must be a non-empty string")
    elseif type(v) ~= "string" then
      report(at, "expected string, got " .. type(v))
    end
  end
end


-- Check the table t returned by site file `file` and return a list of
-- problems, each "FILE: PATH: MESSAGE". An empty list means t is usable.
function M.validate(t, file)
  file = file or "site"
  local problems = {}
  local function report(path, message)
    problems[#problems + 1] = string.format("%s: %s: %s", file, path, message)
  end

  if type(t) ~= "table" then
    problems[1] = string.format("%s: expected the chunk to return a table, got %s",
      file, type(t))
    return problems
  end

  for _, key in ipairs(sorted_keys(t)) do
    local v = t[key]
    if not TOP_FIELDS[key] then
      report(tostring(key), "unknown key (expected vars, substitute, records or rules)")
    elseif type(v) ~= "table" then
      report(key, "expected a table, got " .. type(v))
    elseif key == "vars" then
      check_vars(v, report)
    elseif key == "substitute" then
      check_substitute(v, report)
    elseif key == "rules" then
      check_rule_folders(v, report)
    else
      for _, id in ipairs(sorted_keys(v)) do
        if type(id) ~= "string" or id == "" then
          report("records" .. lua_key(id), "key must be a record id or glob")
        elseif #id > MAX_KEY then
          report(string.format("records[%q]", string.sub(id, 1, 40) .. "..."),
            string.format("key is %d bytes long; record ids and globs are at most %d bytes",
              #id, MAX_KEY))
        else
          check_override(v[id], "records" .. lua_key(id), report)
        end
      end
    end
  end
  return problems
end


-- ==== merging ============================================================

-- Merging assumes validated layers but skips parts of the wrong type, so a
-- bad layer cannot stop the others from applying.
local function table_or_empty(v)
  if type(v) == "table" then
    return v
  end
  return {}
end


local function merge_list_spec(into, from)
  into = into or {}
  if type(from) ~= "table" then
    return into
  end
  if from.add then
    into.add = append_all(into.add or {}, from.add)
  end
  if from.drop then
    into.drop = append_all(into.drop or {}, from.drop)
  end
  if from.replace then
    into.replace = into.replace or {}
    for ref, fields in pairs(from.replace) do
      local entry = into.replace[ref] or {}
      for k, v in pairs(fields) do
        entry[k] = deep_copy(v)
      end
      into.replace[ref] = entry
    end
  end
  if from.order then
    into.order = deep_copy(from.order)
  end
  return into
end


local function merge_override(into, from)
  for field, value in pairs(from) do
    if field == "workarounds" or field == "dead_ends" then
      into[field] = merge_list_spec(into[field], value)
    elseif field == "notes" then
      into.notes = append_all(into.notes or {}, value)
    else
      into[field] = deep_copy(value)
    end
  end
end


local function add_origin(origin, key, file)
  local previous = origin[key]
  if previous and previous ~= file then
    origin[key] = previous .. ", " .. file
  else
    origin[key] = file
  end
end


-- A rule folder of a site file, relative to the file's own folder.
local function rule_folder(dir, file)
  if dir:sub(1, 1) == "/" then
    return dir
  end
  local base = file:match("^(.*)/[^/]*$") or "."
  return base .. "/" .. dir
end


-- Merge site layers, given in order of increasing precedence as
-- { {file=, table=}, ... } (installed defaults, /etc/triage/site.lua, the
-- user's file, then each --site). A later layer wins per variable, per
-- substitute key and per override field; add, drop and notes lists are
-- concatenated. Layers without a table are skipped. Returns the effective
-- site { vars=, substitute=, records=, rule_dirs=, origin= }, where origin
-- maps "vars.NAME", "substitute.KEY" and "records.ID" to the file that set
-- the entry (several files joined by ", " for merged record overrides),
-- and rule_dirs lists { dir=, file= } in layer order.
function M.merge(layers)
  local site = { vars = {}, substitute = {}, records = {}, rule_dirs = {}, origin = {} }
  for _, layer in ipairs(layers or {}) do
    local t, file = layer.table, layer.file or "site"
    if type(t) == "table" then
      for name, v in pairs(table_or_empty(t.vars)) do
        site.vars[name] = v
        site.origin["vars." .. name] = file
      end
      for key, v in pairs(table_or_empty(t.substitute)) do
        site.substitute[key] = v
        site.origin["substitute." .. key] = file
      end
      for id, override in pairs(table_or_empty(t.records)) do
        if type(override) == "table" then
          site.records[id] = site.records[id] or {}
          merge_override(site.records[id], override)
          add_origin(site.origin, "records." .. id, file)
        end
      end
      for _, dir in ipairs(table_or_empty(t.rules)) do
        if type(dir) == "string" and dir ~= "" then
          site.rule_dirs[#site.rule_dirs + 1] = { dir = rule_folder(dir, file), file = file }
        end
      end
    end
  end
  return site
end


-- ==== expansion and substitution =========================================

local function var_text(v)
  if type(v) == "number" then
    return json.format_number(v)
  end
  return v
end


-- Expand ${name} in text from vars. Unknown names stay as written and are
-- returned as a second value, a list of names in order of first use.
-- Expansion is a single pass, so a value containing ${...} is not expanded
-- again.
function M.expand(text, vars)
  local unknown, seen = {}, {}
  local out = string.gsub(text, "%${([%w_.%-]+)}", function(name)
    local v = vars and vars[name]
    if v ~= nil then
      return var_text(v)
    end
    if not seen[name] then
      seen[name] = true
      unknown[#unknown + 1] = name
    end
    return nil
  end)
  return out, unknown
end


-- Build the substitution list: keys longest first, so a key that contains
-- another key wins where both match, with values already expanded.
local function compile_substitutions(site, warn)
  local list = {}
  for key, value in pairs(site.substitute or {}) do
    local text, unknown = M.expand(value, site.vars)
    for _, name in ipairs(unknown) do
      warn(string.format("substitute[%q]: unknown variable ${%s}", key, name))
    end
    list[#list + 1] = { from = key, to = text }
  end
  table.sort(list, function(a, b)
    if #a.from ~= #b.from then
      return #a.from > #b.from
    end
    return a.from < b.from
  end)
  return list
end


-- Replace every literal occurrence of the substitution keys in s, scanning
-- left to right in one pass so replacement text is never substituted again.
local function substitute_text(s, list)
  if type(s) ~= "string" or #list == 0 then
    return s
  end
  local out, pos = {}, 1
  while true do
    local best_start, best_end, best
    for _, sub in ipairs(list) do
      local i, j = string.find(s, sub.from, pos, true)
      if i and (best_start == nil or i < best_start) then
        best_start, best_end, best = i, j, sub
      end
    end
    if not best_start then
      break
    end
    out[#out + 1] = string.sub(s, pos, best_start - 1)
    out[#out + 1] = best.to
    pos = best_end + 1
  end
  out[#out + 1] = string.sub(s, pos)
  return table.concat(out)
end


-- ==== overrides ==========================================================

-- Return the overrides that apply to id, highest precedence first: the
-- exact id, then globs from most to least specific (more literal
-- characters first, then by key).
local function matching_overrides(site, id)
  local globs = {}
  for key, override in pairs(site.records or {}) do
    if key ~= id and is_glob(key) and M.glob_match(key, id) then
      local literal = #string.gsub(key, "[*?]", "")
      globs[#globs + 1] = { key = key, override = override, literal = literal }
    end
  end
  table.sort(globs, function(a, b)
    if a.literal ~= b.literal then
      return a.literal > b.literal
    end
    return a.key < b.key
  end)

  local out = {}
  if site.records and site.records[id] then
    out[1] = { key = id, override = site.records[id] }
  end
  for _, g in ipairs(globs) do
    out[#out + 1] = g
  end
  return out
end


local function expand_strings(t, vars, where, warn)
  for k, v in pairs(t) do
    if type(v) == "string" then
      local text, unknown = M.expand(v, vars)
      t[k] = text
      for _, name in ipairs(unknown) do
        warn(string.format("%s: unknown variable ${%s}", where, name))
      end
    elseif type(v) == "table" then
      expand_strings(v, vars, where, warn)
    end
  end
end


-- Wrap a diagnosis list as working items that remember their position
-- and action before any override, and carry the zh text for workarounds.
local function make_items(list, zh_list)
  local items = {}
  for i, entry in ipairs(list or {}) do
    local zh = type(zh_list) == "table" and zh_list[i] or nil
    items[i] = {
      entry = deep_copy(entry),
      zh = type(zh) == "string" and zh or nil,
      index = i,
      action = type(entry) == "table" and entry.action or nil,
    }
  end
  return items
end


local function find_item(items, ref)
  for pos, item in ipairs(items) do
    if item.index == ref or item.action == ref
        or (type(ref) == "string" and item.entry.action == ref) then
      return pos, item
    end
  end
  return nil
end


local function describe_ref(kind, ref)
  if type(ref) == "number" then
    return string.format("%s[%d] not found", kind, ref)
  end
  return string.format("%s entry with action %q not found", kind, ref)
end


-- Merge fields into an item's entry. Returns true when the rate changed.
local function replace_fields(item, fields, rate_field)
  local rate_changed = false
  for k, v in pairs(fields) do
    if k == "action_zh" then
      item.zh = v
    else
      if k == rate_field and item.entry[k] ~= v then
        rate_changed = true
      end
      item.entry[k] = deep_copy(v)
    end
  end
  return rate_changed
end


local function apply_replace(items, spec, ctx)
  for _, ref in ipairs(sorted_keys(spec.replace)) do
    local _, item = find_item(items, ref)
    if item then
      if replace_fields(item, spec.replace[ref], ctx.rate_field) then
        ctx.rate_changed = true
      end
    else
      ctx.warn(ctx.where .. ".replace: " .. describe_ref(ctx.kind, ref))
    end
  end
end


local function apply_drop(items, spec, ctx)
  for _, ref in ipairs(spec.drop) do
    local pos = find_item(items, ref)
    if pos then
      table.remove(items, pos)
    else
      ctx.warn(ctx.where .. ".drop: " .. describe_ref(ctx.kind, ref))
    end
  end
end


local function apply_add(items, spec)
  for _, entry in ipairs(spec.add) do
    local copy = deep_copy(entry)
    local zh = copy.action_zh
    copy.action_zh = nil
    items[#items + 1] = { entry = copy, zh = zh, action = copy.action }
  end
end


-- Move the referenced items to the front in the given order; the others
-- keep their relative order after them.
local function apply_order(items, spec, ctx)
  local front, moved = {}, {}
  for _, ref in ipairs(spec.order) do
    local pos, item = find_item(items, ref)
    if pos and not moved[item] then
      moved[item] = true
      front[#front + 1] = item
    elseif not pos then
      ctx.warn(ctx.where .. ".order: " .. describe_ref(ctx.kind, ref))
    end
  end
  for _, item in ipairs(items) do
    if not moved[item] then
      front[#front + 1] = item
    end
  end
  for i = 1, #items do
    items[i] = front[i]
  end
end


-- Apply one override's operations on a list: replace, drop, add, order.
local function apply_list_spec(items, spec, ctx)
  spec = deep_copy(spec)
  expand_strings(spec, ctx.vars, ctx.where, ctx.warn)
  if spec.replace then
    apply_replace(items, spec, ctx)
  end
  if spec.drop then
    apply_drop(items, spec, ctx)
  end
  if spec.add then
    apply_add(items, spec)
  end
  if spec.order then
    apply_order(items, spec, ctx)
    ctx.ordered = true
  end
end


local function sort_by_rate(items, field)
  for i, item in ipairs(items) do
    item.position = i
  end
  table.sort(items, function(a, b)
    local ra = tonumber(a.entry[field]) or -1
    local rb = tonumber(b.entry[field]) or -1
    if ra ~= rb then
      return ra > rb
    end
    return a.position < b.position
  end)
end


-- Run the list operations of all matching overrides on D[kind], lowest
-- precedence first so the highest-precedence override has the last word.
local function override_list(D, kind, overrides, site, warn)
  local items = make_items(D[kind], kind == "workarounds" and D.workarounds_zh)
  local ctx = {
    kind = kind, vars = site.vars, warn = warn,
    rate_field = kind == "workarounds" and "success_rate" or "fail_rate",
    rate_changed = false, ordered = false,
  }
  local touched = false
  for i = #overrides, 1, -1 do
    local spec = overrides[i].override[kind]
    if type(spec) == "table" then
      touched = true
      ctx.where = string.format("records[%q].%s", overrides[i].key, kind)
      apply_list_spec(items, spec, ctx)
    end
  end
  if kind == "workarounds" and ctx.rate_changed and not ctx.ordered then
    sort_by_rate(items, "success_rate")
  end
  return items, touched
end


local function store_workarounds(D, items)
  local list, zh_list, any_zh = json.array(), json.array(), false
  for i, item in ipairs(items) do
    list[i] = item.entry
    zh_list[i] = item.zh or item.entry.action or ""
    any_zh = any_zh or item.zh ~= nil
  end
  D.workarounds = list
  if type(D.workarounds_zh) == "table" or any_zh then
    D.workarounds_zh = zh_list
  end
end


local function store_dead_ends(D, items)
  local list = json.array()
  for i, item in ipairs(items) do
    list[i] = item.entry
  end
  D.dead_ends = list
end


-- Set D.notes, D.runbook and D.confidence from the matching overrides.
-- Notes are appended to those D already has, highest precedence first;
-- runbook and confidence come from the highest-precedence override that
-- sets them.
local function apply_site_facts(D, overrides, site, warn)
  local notes = append_all(json.array(), D.notes)
  for _, o in ipairs(overrides) do
    for _, note in ipairs(o.override.notes or {}) do
      local where = string.format("records[%q].notes", o.key)
      local text, unknown = M.expand(note, site.vars)
      for _, name in ipairs(unknown) do
        warn(string.format("%s: unknown variable ${%s}", where, name))
      end
      notes[#notes + 1] = text
    end
  end
  D.notes = notes

  for i = #overrides, 1, -1 do
    local o = overrides[i].override
    if o.runbook ~= nil then
      D.runbook = (M.expand(o.runbook, site.vars))
    end
    if o.confidence ~= nil then
      D.confidence = o.confidence
    end
  end
end


local function substitute_all(D, list)
  D.root_cause = substitute_text(D.root_cause, list)
  D.root_cause_zh = substitute_text(D.root_cause_zh, list)

  for _, w in ipairs(D.workarounds or {}) do
    w.action = substitute_text(w.action, list)
    w.how = substitute_text(w.how, list)
  end
  if type(D.workarounds_zh) == "table" then
    for i, text in ipairs(D.workarounds_zh) do
      D.workarounds_zh[i] = substitute_text(text, list)
    end
  end
  for _, d in ipairs(D.dead_ends or {}) do
    d.action = substitute_text(d.action, list)
    d.why_fails = substitute_text(d.why_fails, list)
  end
  for _, step in ipairs(D.remediation or {}) do
    for i, command in ipairs(step.commands or {}) do
      step.commands[i] = substitute_text(command, list)
    end
    step.check = substitute_text(step.check, list)
  end
end


-- Copy the list fields that apply() changes, so the returned diagnosis
-- shares no changed table with D (records and diagnoses share tables).
local function copy_diagnosis(D)
  local out = {}
  for k, v in pairs(D) do
    out[k] = v
  end
  for _, field in ipairs({ "workarounds", "workarounds_zh", "dead_ends",
      "remediation", "notes" }) do
    if type(D[field]) == "table" then
      out[field] = deep_copy(D[field])
    end
  end
  return setmetatable(out, getmetatable(D))
end


-- Apply the effective site to diagnosis D and return the changed copy plus
-- a list of warnings (unresolved references, unknown variables). D itself
-- is not modified.
--
-- Steps, in order:
--  1. the list operations of every override that matches D.id (exact id,
--     then globs, as matching_overrides orders them);
--  2. workarounds re-sorted by success_rate, highest first, when an
--     override changed a rate and none gave an order;
--  3. the literal substitutions in root_cause(_zh), workaround action and
--     how, workarounds_zh, dead-end action and why_fails, and remediation
--     commands and check;
--  4. notes, runbook and confidence.
function M.apply(D, site)
  local warnings = {}
  local function warn(message)
    warnings[#warnings + 1] = message
  end

  if type(D) ~= "table" then
    error(N .. ".apply: expected a diagnosis table, got " .. type(D), 2)
  end
  local out = copy_diagnosis(D)
  site = site or {}
  local overrides = {}
  if type(D.id) == "string" then
    overrides = matching_overrides(site, D.id)
  end

  local items, touched = override_list(out, "workarounds", overrides, site, warn)
  if touched then
    store_workarounds(out, items)
  end
  items, touched = override_list(out, "dead_ends", overrides, site, warn)
  if touched then
    store_dead_ends(out, items)
  end

  substitute_all(out, compile_substitutions(site, warn))
  apply_site_facts(out, overrides, site, warn)
  return out, warnings
end


-- ==== show ===============================================================

local function lua_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    local named = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
      ['"'] = '\\"', ["\\"] = "\\\\" }
    return named[c] or string.format("\\%03d", string.byte(c))
  end) .. '"'
end


-- Render a value as a one-line Lua literal with sorted keys.
local function lua_literal(v)
  local kind = type(v)
  if kind == "string" then
    return lua_string(v)
  elseif kind == "number" then
    return json.format_number(v)
  elseif kind ~= "table" then
    return tostring(v)
  end

  local parts, n = {}, #v
  for i = 1, n do
    parts[#parts + 1] = lua_literal(v[i])
  end
  for _, k in ipairs(sorted_keys(v)) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      local key
      if type(k) == "string" and string.find(k, "^[%a_][%w_]*$") then
        key = k
      else
        key = "[" .. lua_literal(k) .. "]"
      end
      parts[#parts + 1] = key .. " = " .. lua_literal(v[k])
    end
  end
  if #parts == 0 then
    return "{}"
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end


local function show_key(section, k)
  if string.find(k, "^[%a_][%w_]*$") then
    return section .. "." .. k
  end
  return section .. "[" .. lua_string(k) .. "]"
end


-- Return the effective site as a list of lines, one per variable,
-- substitution, record override and rule folder, each followed by the
-- file that set it. Vars come first, then substitute, then records, each
-- sorted by key, then the rule folders in the order they are searched.
function M.show(site)
  local rows = {}
  for _, section in ipairs({ "vars", "substitute", "records" }) do
    for _, k in ipairs(sorted_keys(site[section])) do
      rows[#rows + 1] = {
        text = show_key(section, k) .. " = " .. lua_literal(site[section][k]),
        file = (site.origin or {})[section .. "." .. k] or "?",
      }
    end
  end
  for i, entry in ipairs(site.rule_dirs or {}) do
    rows[#rows + 1] = { text = string.format("rules[%d] = %s", i, lua_literal(entry.dir)), file = entry.file }
  end

  -- Comments line up after the longest row, but a row longer than
  -- SHOW_ALIGN_MAX does not push every comment that far right.
  local width = 0
  for _, row in ipairs(rows) do
    local len = utf8.len(row.text) or #row.text
    if len <= SHOW_ALIGN_MAX then
      width = math.max(width, len)
    end
  end
  local lines = {}
  for i, row in ipairs(rows) do
    local pad = math.max(0, width - (utf8.len(row.text) or #row.text))
    lines[i] = row.text .. string.rep(" ", pad + 4) .. "# " .. row.file
  end
  return lines
end


return M
