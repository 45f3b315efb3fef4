-- Plain-text report for a person at a terminal.
--
-- Each diagnosis prints what matched, the root cause, the fixes known to
-- fail, the workarounds best first with their commands on lines of their
-- own (easy to copy), remediation steps, neighbouring errors and reference
-- facts. ANSI colour is used only when options.color is true; the caller
-- decides that from the terminal and NO_COLOR.
local i18n = require "triage.i18n"
local json = require "triage.json"

local present = i18n.present

local ANSI = {
  bold = "\27[1m", dim = "\27[2m", red = "\27[31m", green = "\27[32m",
  yellow = "\27[33m", cyan = "\27[36m", reset = "\27[0m",
}


local function new_writer(options)
  local w = { lines = {}, color = options.color == true,
    lang = i18n.normalize(options.lang) }

  function w.paint(style, s)
    if w.color and style then
      return ANSI[style] .. s .. ANSI.reset
    end
    return s
  end

  -- Add text at an indent of `indent` spaces; every line of a multi-line
  -- text gets the same indent.
  function w.add(indent, text)
    local pad = string.rep(" ", indent)
    for line in string.gmatch(tostring(text) .. "\n", "(.-)\r?\n") do
      w.lines[#w.lines + 1] = line == "" and "" or pad .. line
    end
  end

  function w.blank()
    if #w.lines > 0 and w.lines[#w.lines] ~= "" then
      w.lines[#w.lines + 1] = ""
    end
  end

  local colon = i18n.colon(w.lang)

  -- Return the label for key followed by the language's colon; as_heading
  -- drops the space that separates a label from its value.
  function w.label_colon(key, as_heading)
    local text = i18n.label(key, w.lang) .. colon
    if as_heading then
      text = string.gsub(text, " $", "")
    end
    return text
  end

  function w.heading(indent, key)
    w.add(indent, w.paint("bold", w.label_colon(key, true)))
  end

  -- Return "Label: " with the label and colon in bold and the space plain.
  function w.field(key, qualifier)
    local text = i18n.label(key, w.lang)
    if qualifier then
      text = text .. " " .. qualifier
    end
    local head, space = string.match(text .. colon, "^(.-)( ?)$")
    return w.paint("bold", head) .. space
  end

  function w.label(key)
    return i18n.label(key, w.lang)
  end

  return w
end


local function percent(rate)
  return string.format("%d%%", math.floor(rate * 100 + 0.5))
end


-- Colour a success rate (high is good) or a fail rate (high is bad).
local function rate_text(w, rate, key)
  if type(rate) ~= "number" then
    return ""
  end
  local good = key == "success_rate" and rate or 1 - rate
  local style = good >= 0.8 and "green" or good >= 0.5 and "yellow" or "red"
  return " (" .. w.paint(style, w.label(key) .. " " .. percent(rate)) .. ")"
end


local function score_text(score)
  if type(score) ~= "number" then
    return "?"
  end
  return string.format("%.2f", score)
end


local function write_header(w, rank, D)
  local header = string.format("%d. %s  (%s %s)", rank, w.paint("bold", D.id or "?"),
    w.label("score"), score_text(D.score))
  if D.guess then
    header = header .. "  [" .. w.label("guess") .. "]"
  end
  w.add(0, header)
  local signature = i18n.pick(D, "signature", w.lang)
  if present(signature) then
    w.add(3, w.paint("cyan", signature))
  end
end


local function write_match(w, match)
  if type(match) ~= "table" or not present(match.text) then
    return
  end
  local qualifier
  if type(match.line) == "number" then
    qualifier = "(" .. w.label("line") .. " " .. json.format_number(match.line) .. ")"
  end
  w.add(3, w.field("match", qualifier) .. match.text)

  local captures = type(match.captures) == "table" and match.captures or {}
  local names = {}
  for name in pairs(captures) do
    names[#names + 1] = tostring(name)
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local value = captures[name] or captures[tonumber(name)]
    if present(value) then
      w.add(5, name .. " = " .. tostring(value))
    end
  end
end


local function write_condition(w, indent, item)
  if present(item.condition) then
    w.add(indent, w.label_colon("condition") .. item.condition)
  end
end


local function write_dead_ends(w, D)
  if not present(D.dead_ends) then
    return
  end
  w.blank()
  w.heading(3, "dead_ends")
  for _, d in ipairs(D.dead_ends) do
    local action = i18n.pick(d, "action", w.lang) or "?"
    w.add(5, w.paint("red", "x") .. " " .. action .. rate_text(w, d.fail_rate, "fail_rate"))
    local why_fails = i18n.pick(d, "why_fails", w.lang)
    if present(why_fails) then
      w.add(9, w.label_colon("why_fails") .. why_fails)
    end
    write_condition(w, 9, d)
  end
end


local function write_workarounds(w, D)
  if not present(D.workarounds) then
    return
  end
  w.blank()
  w.heading(3, "workarounds")
  for i, item in ipairs(D.workarounds) do
    local action = i18n.pick(D, "workarounds", w.lang, i) or "?"
    w.add(5, string.format("%d. %s%s", i, action,
      rate_text(w, item.success_rate, "success_rate")))
    -- Many records repeat the action as "how"; print it only when it adds
    -- something.
    if present(item.how) and item.how ~= item.action and item.how ~= action then
      w.add(10, item.how)
    end
    write_condition(w, 8, item)
  end
end


local function write_remediation(w, D)
  if not present(D.remediation) then
    return
  end
  w.blank()
  w.heading(3, "remediation")
  for i, step in ipairs(D.remediation) do
    w.add(5, string.format("%d. %s", i, present(step.title) and step.title or ""))
    for _, command in ipairs(type(step.commands) == "table" and step.commands or {}) do
      w.add(10, command)
    end
    if present(step.check) then
      w.add(8, w.label_colon("check") .. step.check)
    end
    if type(step.notes) == "table" then
      for _, note in ipairs(step.notes) do
        w.add(8, note)
      end
    elseif present(step.notes) then
      w.add(8, step.notes)
    end
  end
end


local function edge_line(w, item, kind)
  local text = item.id or "?"
  local signature = i18n.pick(item, "signature", w.lang)
  if item.known == false then
    text = text .. " (" .. w.label("not_loaded") .. ")"
  elseif present(signature) then
    text = text .. "  " .. signature
  end
  if type(item.probability) == "number" then
    text = text .. " (" .. percent(item.probability) .. ")"
  end
  if kind == "frequently_confused_with" and present(item.distinction) then
    text = text .. i18n.colon(w.lang) .. item.distinction
  elseif present(item.condition) then
    text = text .. "; " .. w.label_colon("condition") .. item.condition
  end
  return text
end


local function write_transitions(w, D)
  local transitions = type(D.transitions) == "table" and D.transitions or {}
  for _, kind in ipairs({ "leads_to", "preceded_by", "frequently_confused_with" }) do
    if present(transitions[kind]) then
      w.blank()
      w.heading(3, kind)
      for _, item in ipairs(transitions[kind]) do
        w.add(5, "- " .. edge_line(w, item, kind))
      end
    end
  end
end


local function version_text(v)
  if type(v) ~= "table" then
    return tostring(v)
  end
  local text = present(v.version) and v.version or "?"
  local extra = {}
  for _, field in ipairs({ "introduced", "deprecated", "removed", "behavior_change" }) do
    if present(v[field]) then
      extra[#extra + 1] = field .. " " .. tostring(v[field])
    end
  end
  if present(v.status) and v.status ~= "active" then
    extra[#extra + 1] = v.status
  end
  if #extra > 0 then
    text = text .. " (" .. table.concat(extra, ", ") .. ")"
  end
  return text
end


local function write_facts(w, D)
  w.blank()
  if present(D.versions) then
    local names = {}
    for i, v in ipairs(D.versions) do
      names[i] = version_text(v)
    end
    w.add(3, w.field("versions") .. table.concat(names, ", "))
  end

  if present(D.os_specific) then
    w.heading(3, "os_specific")
    local names = {}
    for name in pairs(D.os_specific) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      local value = D.os_specific[name]
      if type(value) == "table" then
        value = json.encode(value)
      end
      w.add(5, name .. ": " .. tostring(value))
    end
  end

  if present(D.official_doc_url) then
    local doc = D.official_doc_url
    if present(D.official_doc_section) then
      doc = doc .. " (" .. D.official_doc_section .. ")"
    end
    w.add(3, w.field("documentation") .. doc)
  end
  if present(D.runbook) then
    w.add(3, w.field("runbook") .. D.runbook)
  end

  local trust = {}
  if present(D.verification_tier) then
    trust[#trust + 1] = w.label_colon("verification") .. D.verification_tier
  end
  if type(D.confidence) == "number" then
    trust[#trust + 1] = w.label_colon("confidence") .. score_text(D.confidence)
  end
  if #trust > 0 then
    w.add(3, w.paint("dim", table.concat(trust, "   ")))
  end
end


local function write_notes(w, D)
  if not present(D.notes) then
    return
  end
  w.blank()
  w.heading(3, "notes")
  for _, note in ipairs(D.notes) do
    w.add(5, "- " .. tostring(note))
  end
end


local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end


-- Format a number for reading: at most four decimals, trailing zeros cut.
local function short_number(x)
  if math.type(x) == "integer" or x == math.floor(x) then
    return json.format_number(x)
  end
  local text = string.gsub(string.format("%.4f", x), "0+$", "")
  return text
end


-- Print an explanation table: one "key: value" line per entry, numbers
-- rounded to four decimals, nested objects indented below their key,
-- arrays and deeper levels as compact JSON.
local function write_tree(w, indent, t, depth)
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    local name = tostring(k)
    if type(v) == "table" and next(v) ~= nil and #v == 0 and depth < 3 then
      w.add(indent, name .. ":")
      write_tree(w, indent + 2, v, depth + 1)
    else
      local text
      if type(v) == "number" then
        text = short_number(v)
      elseif type(v) == "string" then
        text = v
      else
        text = json.encode(v)
      end
      w.add(indent, name .. ": " .. text)
    end
  end
end


local function write_explain(w, D)
  if type(D.explain) ~= "table" then
    return
  end
  w.blank()
  w.heading(3, "explain")
  write_tree(w, 5, D.explain, 1)
end


local function write_diagnosis(w, rank, D, options)
  write_header(w, rank, D)
  write_match(w, D.match)
  local cause = i18n.pick(D, "root_cause", w.lang)
  if present(cause) then
    w.add(3, w.field("root_cause") .. cause)
  end
  write_dead_ends(w, D)
  write_workarounds(w, D)
  write_remediation(w, D)
  write_transitions(w, D)
  write_notes(w, D)
  write_facts(w, D)
  if options.explain then
    write_explain(w, D)
  end
end


local function write_guesses(w, guesses, top)
  w.blank()
  w.add(0, w.paint("bold", w.label("guesses")))
  for i, D in ipairs(guesses) do
    if top and i > top then
      break
    end
    w.add(3, string.format("%d. %s  (%s %s)", i, D.id or "?", w.label("score"),
      score_text(D.score)))
    local signature = i18n.pick(D, "signature", w.lang)
    if present(signature) then
      w.add(6, signature)
    end
    local cause = i18n.pick(D, "root_cause", w.lang)
    if present(cause) then
      w.add(6, w.label_colon("root_cause") .. cause)
    end
  end
end


local function write_errors(w, errors)
  w.blank()
  w.add(0, w.paint("red", w.label_colon("errors", true)))
  for _, e in ipairs(errors) do
    w.add(3, "- " .. tostring(e.script or "?") .. ": " .. tostring(e.message or ""))
  end
end


-- Render report as text. options: lang ("en" or "zh"), color, explain,
-- top (print at most this many diagnoses and guesses; nil or 0 for all).
return function(report, options)
  options = options or {}
  local w = new_writer(options)
  local top = options.top
  if type(top) ~= "number" or top <= 0 then
    top = nil -- nil or 0 means no limit
  end
  report = {
    diagnoses = i18n.printable_tree(report.diagnoses),
    guesses = i18n.printable_tree(report.guesses),
    errors = i18n.printable_tree(report.errors),
  }

  local diagnoses = type(report.diagnoses) == "table" and report.diagnoses or {}
  for rank, D in ipairs(diagnoses) do
    if top and rank > top then
      break
    end
    w.blank()
    write_diagnosis(w, rank, D, options)
  end
  if #diagnoses == 0 then
    w.add(0, w.label("no_match"))
  end

  if present(report.guesses) then
    write_guesses(w, report.guesses, top)
  end
  if present(report.errors) then
    write_errors(w, report.errors)
  end

  while w.lines[#w.lines] == "" do
    w.lines[#w.lines] = nil
  end
  return table.concat(w.lines, "\n") .. "\n"
end
