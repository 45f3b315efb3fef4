-- Newline-delimited JSON: one compact object per diagnosed input line,
--   {"line": N, "text": "...", "diagnoses": [{"id": ..., "score": ...}, ...]}
-- in ascending line order, diagnoses in report order (the report ranks
-- them). Lines without a diagnosis and guesses are not printed. The line
-- text is match.line_text when the diagnosis carries it, else that line of
-- input.text, else the matched text.
local json = require "triage.json"


-- Split text into lines, dropping a "\r" before each "\n".
local function split_lines(text)
  local lines = {}
  if type(text) ~= "string" then
    return lines
  end
  for line in string.gmatch(text .. "\n", "(.-)\r?\n") do
    lines[#lines + 1] = line
  end
  return lines
end


-- Return the line number of diagnosis D: match.line, or 1 when the match
-- carries none (a single-message diagnosis).
local function line_of(D)
  local match = type(D.match) == "table" and D.match or {}
  local line = tonumber(match.line)
  if line and line >= 1 and line == math.floor(line) then
    return math.tointeger(line)
  end
  return 1
end


-- Render report as NDJSON. Returns "" when nothing was diagnosed, because
-- an NDJSON stream with no records has no lines. options.top (nil or 0 for
-- no limit) limits the diagnoses listed per line.
return function(report, options)
  options = options or {}
  local top = options.top
  if type(top) ~= "number" or top <= 0 then
    top = nil -- nil or 0 means no limit
  end
  local input = type(report.input) == "table" and report.input or {}
  local source_lines = split_lines(input.text)

  local groups, numbers = {}, {}
  for _, D in ipairs(type(report.diagnoses) == "table" and report.diagnoses or {}) do
    local n = line_of(D)
    if not groups[n] then
      local match = type(D.match) == "table" and D.match or {}
      local text = match.line_text or source_lines[n] or match.text
      groups[n] = { line = n, text = text or "", diagnoses = json.array() }
      numbers[#numbers + 1] = n
    end
    local list = groups[n].diagnoses
    if not top or #list < top then
      list[#list + 1] = { id = D.id, score = D.score }
    end
  end
  table.sort(numbers)

  local out = {}
  for i, n in ipairs(numbers) do
    out[i] = json.encode(groups[n]) .. "\n"
  end
  return table.concat(out)
end
