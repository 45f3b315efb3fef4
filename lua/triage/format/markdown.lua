-- Markdown report (CommonMark): the content of the text format as headings,
-- lists and fenced code blocks, for tickets, chat and wikis.
local i18n = require "triage.i18n"
local json = require "triage.json"

local present = i18n.present


-- Escape the characters that would start emphasis, a link or HTML. An
-- underscore inside a word (smtp_auth) cannot start emphasis in CommonMark,
-- so it stays as written; "#" matters only at the start of the text.
local function escape_plain(s, at_start)
  s = string.gsub(s, "[\\%*<>%[%]]", "\\%0")
  s = string.gsub(s, "()_", function(pos)
    local before = string.sub(s, pos - 1, pos - 1)
    local after = string.sub(s, pos + 1, pos + 1)
    if string.find(before, "^%w$") and string.find(after, "^%w$") then
      return "_"
    end
    return "\\_"
  end)
  if at_start then
    s = string.gsub(s, "^(%s*)([#+%-])", "%1\\%2")
  end
  return s
end


-- Escape Markdown punctuation outside backtick code spans, so record text
-- such as "*.log" or "<user@host>" renders literally while the code spans
-- that records use for commands still render as code. Newlines become
-- spaces because the text goes into a heading or list item.
local function inline(s)
  s = string.gsub(tostring(s), "\r?\n", " ")
  local out, pos = {}, 1
  while pos <= #s do
    local open_start, open_end = string.find(s, "`+", pos)
    local plain_end = open_start and open_start - 1 or #s
    out[#out + 1] = escape_plain(string.sub(s, pos, plain_end), pos == 1)
    if not open_start then
      break
    end
    local fence = string.sub(s, open_start, open_end)
    local close_start, close_end = string.find(s, fence, open_end + 1, true)
    if close_start then
      out[#out + 1] = string.sub(s, open_start, close_end)
      pos = close_end + 1
    else
      out[#out + 1] = string.rep("\\`", #fence)
      pos = open_end + 1
    end
  end
  return table.concat(out)
end


-- Return s as an inline code span, with a fence longer than any backtick
-- run inside it.
local function code(s)
  s = string.gsub(tostring(s), "\r?\n", " ")
  local longest = 0
  for run in string.gmatch(s, "`+") do
    longest = math.max(longest, #run)
  end
  local fence = string.rep("`", longest + 1)
  local pad = (string.find(s, "^`") or string.find(s, "`$")) and " " or ""
  return fence .. pad .. s .. pad .. fence
end


local function new_writer(options)
  local w = { lines = {}, lang = i18n.normalize(options.lang) }

  function w.add(s)
    w.lines[#w.lines + 1] = s
  end

  -- Start a block: one blank line after the previous block.
  function w.block()
    if #w.lines > 0 and w.lines[#w.lines] ~= "" then
      w.lines[#w.lines + 1] = ""
    end
  end

  function w.heading(level, text)
    w.block()
    w.add(string.rep("#", level) .. " " .. text)
    w.add("")
  end

  function w.label(key)
    return i18n.label(key, w.lang)
  end

  local colon = i18n.colon(w.lang)

  -- Return the label for key, optionally followed by a qualifier, and the
  -- language's colon, as plain text ("Why it fails: ").
  function w.label_colon(key)
    return i18n.label(key, w.lang) .. colon
  end

  -- Return "**Label:** " for a fact line; the bold covers the colon.
  function w.field(key, qualifier)
    local text = i18n.label(key, w.lang)
    if qualifier then
      text = text .. " " .. qualifier
    end
    return "**" .. text .. string.gsub(colon, " $", "") .. "** "
  end

  -- Add a fenced code block indented by `indent` spaces.
  function w.fence(indent, text, info)
    local longest = 2
    for run in string.gmatch(text, "`+") do
      longest = math.max(longest, #run)
    end
    local fence = string.rep("`", longest + 1)
    local pad = string.rep(" ", indent)
    w.add(pad .. fence .. (info or ""))
    for line in string.gmatch(text .. "\n", "(.-)\r?\n") do
      w.add(line == "" and "" or pad .. line)
    end
    w.add(pad .. fence)
  end

  return w
end


local function percent(rate)
  return string.format("%d%%", math.floor(rate * 100 + 0.5))
end


local function rate_text(w, rate, key)
  if type(rate) ~= "number" then
    return ""
  end
  return " (" .. w.label(key) .. " " .. percent(rate) .. ")"
end


local function score_text(score)
  if type(score) ~= "number" then
    return "?"
  end
  return string.format("%.2f", score)
end


local function write_match(w, match)
  if type(match) ~= "table" or not present(match.text) then
    return
  end
  w.block()
  local qualifier
  if type(match.line) == "number" then
    qualifier = "(" .. w.label("line") .. " " .. json.format_number(match.line) .. ")"
  end
  w.add((string.gsub(w.field("match", qualifier), " $", "")))
  w.add("")
  w.fence(0, match.text, "text")

  local captures = type(match.captures) == "table" and match.captures or {}
  local names = {}
  for name in pairs(captures) do
    names[#names + 1] = tostring(name)
  end
  table.sort(names)
  if #names > 0 then
    w.add("")
  end
  for _, name in ipairs(names) do
    local value = captures[name] or captures[tonumber(name)]
    if present(value) then
      w.add("- " .. code(name) .. " = " .. code(value))
    end
  end
end


local function write_dead_ends(w, D)
  if not present(D.dead_ends) then
    return
  end
  w.heading(3, w.label("dead_ends"))
  for _, d in ipairs(D.dead_ends) do
    local action = i18n.pick(d, "action", w.lang) or "?"
    w.add("- " .. inline(action) .. rate_text(w, d.fail_rate, "fail_rate"))
    local why_fails = i18n.pick(d, "why_fails", w.lang)
    if present(why_fails) then
      w.add("  - " .. w.label_colon("why_fails") .. inline(why_fails))
    end
    if present(d.condition) then
      w.add("  - " .. w.label_colon("condition") .. inline(d.condition))
    end
  end
end


local function write_workarounds(w, D)
  if not present(D.workarounds) then
    return
  end
  w.heading(3, w.label("workarounds"))
  for i, item in ipairs(D.workarounds) do
    local action = i18n.pick(D, "workarounds", w.lang, i) or "?"
    w.add(string.format("%d. %s%s", i, inline(action),
      rate_text(w, item.success_rate, "success_rate")))
    if present(item.condition) then
      w.add("   - " .. w.label_colon("condition") .. inline(item.condition))
    end
    if present(item.how) and item.how ~= item.action and item.how ~= action then
      w.add("")
      w.fence(3, item.how)
      w.add("")
    end
  end
end


local function write_remediation(w, D)
  if not present(D.remediation) then
    return
  end
  w.heading(3, w.label("remediation"))
  for i, step in ipairs(D.remediation) do
    w.add(string.format("%d. %s", i, present(step.title) and inline(step.title) or ""))
    if present(step.commands) then
      w.add("")
      w.fence(3, table.concat(step.commands, "\n"), "sh")
    end
    if present(step.check) then
      w.add("")
      w.add("   " .. w.label_colon("check") .. code(step.check))
    end
    local notes = step.notes
    if type(notes) == "string" then
      notes = { notes }
    end
    for _, note in ipairs(present(notes) and notes or {}) do
      w.add("")
      w.add("   " .. inline(note))
    end
    w.add("")
  end
end


local function edge_item(w, item, kind)
  local text = "- " .. code(item.id or "?")
  local signature = i18n.pick(item, "signature", w.lang)
  if item.known == false then
    text = text .. " (" .. w.label("not_loaded") .. ")"
  elseif present(signature) then
    text = text .. " " .. inline(signature)
  end
  if type(item.probability) == "number" then
    text = text .. " (" .. percent(item.probability) .. ")"
  end
  if kind == "frequently_confused_with" and present(item.distinction) then
    text = text .. i18n.colon(w.lang) .. inline(item.distinction)
  elseif present(item.condition) then
    text = text .. "; " .. w.label_colon("condition") .. inline(item.condition)
  end
  return text
end


local function write_transitions(w, D)
  local transitions = type(D.transitions) == "table" and D.transitions or {}
  for _, kind in ipairs({ "leads_to", "preceded_by", "frequently_confused_with" }) do
    if present(transitions[kind]) then
      w.heading(3, w.label(kind))
      for _, item in ipairs(transitions[kind]) do
        w.add(edge_item(w, item, kind))
      end
    end
  end
end


local function version_text(v)
  if type(v) ~= "table" then
    return tostring(v)
  end
  local text = present(v.version) and v.version or "?"
  if present(v.status) and v.status ~= "active" then
    text = text .. " (" .. v.status .. ")"
  end
  return inline(text)
end


local function has_facts(D)
  return present(D.versions) or present(D.os_specific) or present(D.official_doc_url)
    or present(D.runbook) or present(D.verification_tier) or type(D.confidence) == "number"
end


local function write_facts(w, D)
  if not has_facts(D) then
    return
  end
  w.heading(3, w.label("details"))
  if present(D.versions) then
    local names = {}
    for i, v in ipairs(D.versions) do
      names[i] = version_text(v)
    end
    w.add("- " .. w.field("versions") .. table.concat(names, ", "))
  end
  if present(D.os_specific) then
    local names = {}
    for name in pairs(D.os_specific) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      local value = D.os_specific[name]
      value = type(value) == "table" and json.encode(value) or tostring(value)
      w.add("- " .. w.field("os_specific", inline(name)) .. inline(value))
    end
  end
  if present(D.official_doc_url) then
    local doc = "<" .. D.official_doc_url .. ">"
    if present(D.official_doc_section) then
      doc = doc .. " (" .. inline(D.official_doc_section) .. ")"
    end
    w.add("- " .. w.field("documentation") .. doc)
  end
  if present(D.runbook) then
    w.add("- " .. w.field("runbook") .. "<" .. D.runbook .. ">")
  end
  if present(D.verification_tier) then
    w.add("- " .. w.field("verification") .. inline(D.verification_tier))
  end
  if type(D.confidence) == "number" then
    w.add("- " .. w.field("confidence") .. score_text(D.confidence))
  end
end


local function write_notes(w, D)
  if not present(D.notes) then
    return
  end
  w.heading(3, w.label("notes"))
  for _, note in ipairs(D.notes) do
    w.add("- " .. inline(note))
  end
end


local function write_explain(w, D)
  if type(D.explain) ~= "table" then
    return
  end
  w.heading(3, w.label("explain"))
  w.fence(0, json.encode(D.explain, { indent = true }), "json")
end


local function write_diagnosis(w, rank, D, options)
  local title = string.format("%d. %s", rank, code(D.id or "?"))
  local signature = i18n.pick(D, "signature", w.lang)
  if present(signature) then
    title = title .. " — " .. inline(signature)
  end
  if D.guess then
    title = title .. " (" .. w.label("guess") .. ")"
  end
  w.heading(2, title)
  w.add(w.field("score") .. score_text(D.score))
  write_match(w, D.match)

  local cause = i18n.pick(D, "root_cause", w.lang)
  if present(cause) then
    w.heading(3, w.label("root_cause"))
    w.add(inline(cause))
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
  w.heading(2, inline(w.label("guesses")))
  for i, D in ipairs(guesses) do
    if top and i > top then
      break
    end
    local line = string.format("%d. %s (%s %s)", i, code(D.id or "?"),
      w.label("score"), score_text(D.score))
    local signature = i18n.pick(D, "signature", w.lang)
    if present(signature) then
      line = line .. " — " .. inline(signature)
    end
    w.add(line)
  end
end


-- Render report as Markdown. options: lang ("en" or "zh"), explain, top
-- (nil or 0 for all); color is ignored.
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

  w.add("# " .. w.label("report_title"))
  local diagnoses = type(report.diagnoses) == "table" and report.diagnoses or {}
  for rank, D in ipairs(diagnoses) do
    if top and rank > top then
      break
    end
    write_diagnosis(w, rank, D, options)
  end
  if #diagnoses == 0 then
    w.block()
    w.add(w.label("no_match"))
  end

  if present(report.guesses) then
    write_guesses(w, report.guesses, top)
  end
  if present(report.errors) then
    w.heading(2, w.label("errors"))
    for _, e in ipairs(report.errors) do
      w.add("- " .. code(e.script or "?") .. ": " .. inline(e.message or ""))
    end
  end

  while w.lines[#w.lines] == "" do
    w.lines[#w.lines] = nil
  end
  return table.concat(w.lines, "\n") .. "\n"
end
