-- Plain-text scan summary for a person at a terminal: what was read, each
-- record found (how often, where, a sample line, the capture values seen
-- most), and the transitions between records observed in the log. ANSI
-- colour only when options.color is true.
local i18n = require "triage.i18n"

local present = i18n.present

-- The most frequent transitions shown; JSON output lists them all.
local SHOWN_TRANSITIONS = 20

local ANSI = { bold = "\27[1m", dim = "\27[2m", cyan = "\27[36m", green = "\27[32m", reset = "\27[0m" }

local LABELS = {
  en = {
    scanned = "Scanned %s lines (%s) in %s: %s diagnosed, %s truncated, %s records found.",
    nothing = "No known problem found.",
    lines = "%s lines",
    one = "1 line",
    ranked_first = "%s ranked first",
    signature = "signature",
    times = "first at %s, last at %s",
    line_range = "lines %s-%s",
    one_line = "line %s",
    sample = "sample",
    transitions = "Observed transitions (within %s):",
    more = "... and %s more (see --format json)",
    window_lines = "%s lines",
    window_seconds = "%s s",
    window_or = " or ",
    known = "known",
    new = "not in the graph",
    standard_input = "standard input",
    background = "Routine on internet-facing hosts (scanners, bots):",
    start = "Start here: triage show %s",
  },
  zh = {
    scanned = "已扫描 %s 行（%s），来源 %s：%s 行有诊断，%s 行被截断，发现 %s 条记录。",
    nothing = "未发现已知问题。",
    lines = "%s 行",
    one = "1 行",
    ranked_first = "%s 行排第一",
    signature = "特征",
    times = "最早 %s，最晚 %s",
    line_range = "第 %s-%s 行",
    one_line = "第 %s 行",
    sample = "示例",
    transitions = "观察到的转移（窗口 %s）：",
    more = "……另有 %s 条（见 --format json）",
    window_lines = "%s 行",
    window_seconds = "%s 秒",
    window_or = " 或 ",
    known = "已知",
    new = "图中没有",
    standard_input = "标准输入",
    background = "面向互联网的主机上的常规流量（扫描器、机器人）：",
    start = "从这里开始：triage show %s",
  },
}


local function number(n)
  return string.format("%d", math.floor(tonumber(n) or 0))
end


local function size(bytes)
  bytes = tonumber(bytes) or 0
  local units = { "B", "KB", "MB", "GB", "TB" }
  local u = 1
  while bytes >= 1000 and u < #units do
    bytes = bytes / 1000
    u = u + 1
  end
  return u == 1 and string.format("%d B", bytes) or string.format("%.1f %s", bytes, units[u])
end


local function new_writer(options)
  local w = { lines = {}, color = options.color == true, lang = i18n.normalize(options.lang) }
  w.labels = LABELS[w.lang] or LABELS.en

  function w.paint(style, s)
    if w.color and style then
      return ANSI[style] .. s .. ANSI.reset
    end
    return s
  end

  function w.add(indent, text)
    w.lines[#w.lines + 1] = string.rep(" ", indent) .. text
  end

  function w.say(key, ...)
    return string.format(w.labels[key], ...)
  end

  return w
end


local function sources(w, files)
  if type(files) ~= "table" or #files == 0 then
    return "-"
  end
  local names = {}
  for i, f in ipairs(files) do
    names[i] = f == "-" and w.labels.standard_input or i18n.printable(f)
  end
  return table.concat(names, ", ")
end


local function where(w, f)
  local range = f.first_line == f.last_line and w.say("one_line", number(f.first_line))
    or w.say("line_range", number(f.first_line), number(f.last_line))
  if present(f.first_time) then
    -- Lines of several sources need not be in time order, so the times
    -- are labelled rather than shown as a range.
    local times = f.first_time
    if present(f.last_time) and f.last_time ~= f.first_time then
      times = w.say("times", f.first_time, f.last_time)
    end
    range = range .. ", " .. i18n.printable(times)
  end
  return range
end


local function write_captures(w, captures)
  if type(captures) ~= "table" then
    return
  end
  local names = {}
  for name in pairs(captures) do
    names[#names + 1] = name
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local values = {}
    for i, v in ipairs(captures[name]) do
      values[i] = string.format("%s (%s)", i18n.printable(v.value), number(v.count))
    end
    w.add(3, name .. ": " .. table.concat(values, ", "))
  end
end


local function write_finding(w, rank, f)
  local count = f.count == 1 and w.labels.one or w.say("lines", number(f.count))
  -- A record also counts where another ranked above it on the line.
  local top = tonumber(f.top_count)
  if top and top < (tonumber(f.count) or 0) then
    count = count .. ", " .. w.say("ranked_first", number(top))
  end
  w.add(0, string.format("%d. %s  %s  (%s)", rank, w.paint("bold", f.id), count, where(w, f)))
  local signature = i18n.pick(f, "signature", w.lang)
  if present(signature) then
    w.add(3, w.paint("cyan", w.labels.signature .. ": " .. i18n.printable(signature)))
  end
  w.add(3, w.paint("dim", w.labels.sample .. ": " .. i18n.printable(f.sample or "")))
  write_captures(w, f.captures)
end


local function window_text(w, window)
  window = type(window) == "table" and window or {}
  local parts = {}
  if (tonumber(window.lines) or 0) > 0 then
    parts[#parts + 1] = w.say("window_lines", number(window.lines))
  end
  if (tonumber(window.seconds) or 0) > 0 then
    parts[#parts + 1] = w.say("window_seconds", number(window.seconds))
  end
  return table.concat(parts, w.labels.window_or)
end


local function write_observed(w, report)
  if not present(report.observed) then
    return
  end
  w.lines[#w.lines + 1] = ""
  w.add(0, w.paint("bold", w.say("transitions", window_text(w, report.window))))
  for i, p in ipairs(report.observed) do
    if i > SHOWN_TRANSITIONS then
      w.add(3, w.say("more", number(#report.observed - SHOWN_TRANSITIONS)))
      break
    end
    local tag = p.known and w.paint("green", "[" .. w.labels.known .. "]") or "[" .. w.labels.new .. "]"
    w.add(3, string.format("%6s  %s -> %s  %s", number(p.count), p.from, p.to, tag))
  end
end


-- Render a scan report (see triage.scan) as text.
return function(report, options)
  local w = new_writer(options or {})
  local findings = report.findings or {}
  w.add(0, w.say("scanned", number(report.lines), size(report.bytes), sources(w, report.files),
    number(report.diagnosed_lines), number(report.truncated_lines), number(#findings)))
  if #findings == 0 then
    w.add(0, w.labels.nothing)
  end
  local first, background_started = nil, false
  for i, f in ipairs(findings) do
    w.lines[#w.lines + 1] = ""
    if f.background and not background_started then
      background_started = true
      w.add(0, w.paint("dim", w.labels.background))
    end
    first = first or (not f.background and f.id or nil)
    write_finding(w, i, f)
  end
  write_observed(w, report)
  first = first or (findings[1] and findings[1].id)
  if first then
    w.lines[#w.lines + 1] = ""
    w.add(0, w.paint("bold", w.say("start", first)))
  end
  return table.concat(w.lines, "\n") .. "\n"
end
