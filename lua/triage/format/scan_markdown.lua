-- Markdown scan summary (CommonMark): a table of the records found and a
-- list of the transitions observed, for tickets, chat and wikis.
local i18n = require "triage.i18n"

local present = i18n.present

-- The most frequent transitions listed; the JSON summary has them all.
local SHOWN_TRANSITIONS = 20


-- Text for a table cell: no line breaks, pipes and Markdown punctuation
-- escaped, terminal escapes made visible.
local function cell(s)
  s = i18n.printable(tostring(s or ""))
  s = string.gsub(s, "\r?\n", " ")
  s = string.gsub(s, "[\\|%*_`<>%[%]]", "\\%0")
  return s
end


-- An inline code span with a fence longer than any backtick run inside.
local function code(s)
  s = string.gsub(i18n.printable(tostring(s or "")), "\r?\n", " ")
  local longest = 0
  for run in string.gmatch(s, "`+") do
    longest = math.max(longest, #run)
  end
  local fence = string.rep("`", longest + 1)
  local pad = (string.find(s, "^`") or string.find(s, "`$")) and " " or ""
  -- A pipe would end the table cell even inside a code span.
  return (string.gsub(fence .. pad .. s .. pad .. fence, "|", "\\|"))
end


local function number(n)
  return string.format("%d", math.floor(tonumber(n) or 0))
end


local function top_captures(captures)
  if type(captures) ~= "table" then
    return ""
  end
  local names = {}
  for name in pairs(captures) do
    names[#names + 1] = name
  end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do
    local first = captures[name][1]
    if first then
      parts[#parts + 1] = cell(name) .. ": " .. code(first.value) .. " (" .. number(first.count) .. ")"
    end
  end
  return table.concat(parts, "<br>")
end


local function where(f)
  local text = number(f.first_line) .. "-" .. number(f.last_line)
  if present(f.first_time) then
    text = text .. " (" .. cell(f.first_time)
    if present(f.last_time) and f.last_time ~= f.first_time then
      text = text .. " first, " .. cell(f.last_time) .. " last"
    end
    text = text .. ")"
  end
  return text
end


-- Render a scan report (see triage.scan) as Markdown.
return function(report, options)
  options = options or {}
  local lang = i18n.normalize(options.lang)
  local out = {}
  local function add(s)
    out[#out + 1] = s
  end
  local findings = report.findings or {}
  add("# triage scan")
  add("")
  add(string.format("%s lines scanned, %s diagnosed, %s truncated; %d records found.",
    number(report.lines), number(report.diagnosed_lines), number(report.truncated_lines), #findings))
  if #findings > 0 then
    add("")
    add("| Record | Lines | Where | Signature | Sample | Captures |")
    add("| --- | ---: | --- | --- | --- | --- |")
    for _, f in ipairs(findings) do
      local count = number(f.count)
      local top = tonumber(f.top_count)
      if top and top < (tonumber(f.count) or 0) then
        count = count .. " (" .. number(top) .. " first)"
      end
      local id = code(f.id) .. (f.background and " (background: scanners, bots)" or "")
      add(string.format("| %s | %s | %s | %s | %s | %s |", id, count, where(f),
        cell(i18n.pick(f, "signature", lang) or ""), code(f.sample), top_captures(f.captures)))
    end
  end
  if present(report.observed) then
    add("")
    add("## Observed transitions")
    add("")
    for i, p in ipairs(report.observed) do
      if i > SHOWN_TRANSITIONS then
        add(string.format("- ... and %d more (see the JSON summary)", #report.observed - SHOWN_TRANSITIONS))
        break
      end
      add(string.format("- %s → %s: %s times%s", code(p.from), code(p.to), number(p.count),
        p.known and " (known edge)" or " (not in the transition graph)"))
    end
  end
  return table.concat(out, "\n") .. "\n"
end
