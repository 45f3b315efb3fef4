-- Shell script of a report's remediation steps (--format script, and the
-- file that --emit-script writes).
--
-- The script is for an operator to read first and then run; triage never
-- runs it. It starts with `set -eu`, and each step is a commented block:
-- the diagnosis and rule it came from, its title and notes, its commands,
-- then its check, so a step that did not work stops the script. A step
-- marked as an alternative to the one before is written commented out.
-- Text that goes into comments or echo lines is flattened to one line and
-- quoted, so no record or rule text can end a comment and become a command.
-- The commands themselves are written as the rule returned them.

-- One line of printable text for a comment.
local function flat(text)
  return (tostring(text or ""):gsub("[%c]+", " "))
end

local function shell_quote(text)
  return "'" .. flat(text):gsub("'", "'\\''") .. "'"
end

local function comment_block(lines, text)
  for line in (tostring(text) .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = "#   " .. flat(line)
  end
end

local function write_step(lines, n, step, D)
  lines[#lines + 1] = ""
  local label = string.format("step %d", n)
  if step.alternative then
    label = string.format("step %d, an alternative to step %d (not run; to use it instead, comment "
      .. "out step %d and uncomment this one)", n, n - 1, n - 1)
  end
  lines[#lines + 1] = "# ---- " .. flat(label) .. ": " .. flat(step.title)
  lines[#lines + 1] = "# record: " .. flat(D.id) .. (step.rule and ("; rule: " .. flat(step.rule)) or "")
  for _, note in ipairs(type(step.notes) == "table" and step.notes or {}) do
    lines[#lines + 1] = "# note: " .. flat(note)
  end

  local body = {}
  body[#body + 1] = "printf '%s\\n' " .. shell_quote("triage " .. label:match("^step %d+") .. ": " .. step.title)
  for _, command in ipairs(step.commands or {}) do
    for line in (command .. "\n"):gmatch("([^\n]*)\n") do
      body[#body + 1] = line
    end
  end
  body[#body + 1] = "# check that the step worked:"
  body[#body + 1] = step.check
  for _, line in ipairs(body) do
    if step.alternative then
      lines[#lines + 1] = line:sub(1, 1) == "#" and line or ("# " .. line)
    else
      lines[#lines + 1] = line
    end
  end
end

-- Render report as a POSIX shell script. The options are not used.
return function(report)
  local input = type(report.input) == "table" and report.input.text or ""
  local first = tostring(input):match("^[^\n]*") or ""
  if #first > 200 then
    first = first:sub(1, 200) .. "..."
  end
  local lines = {
    "#!/bin/sh",
    "# Remediation steps proposed by triage. Read every step before you run",
    "# this script: triage proposes these commands but never runs them.",
    "# Input:",
  }
  comment_block(lines, first)
  lines[#lines + 1] = "set -eu"

  -- Two records can match the same line and get the same steps from one
  -- rule; each step is written once.
  local n, seen = 0, {}
  for _, D in ipairs(report.diagnoses or {}) do
    local steps = {}
    for _, step in ipairs(type(D.remediation) == "table" and D.remediation or {}) do
      local key = table.concat({ tostring(step.title), table.concat(step.commands or {}, "\n"),
        tostring(step.check), tostring(step.alternative) }, "\0")
      if not seen[key] then
        seen[key] = true
        steps[#steps + 1] = step
      end
    end
    if #steps > 0 then
      lines[#lines + 1] = ""
      lines[#lines + 1] = "# ==== " .. flat(D.id) .. ": " .. flat(D.signature)
      for _, step in ipairs(steps) do
        n = n + 1
        write_step(lines, n, step, D)
      end
    end
  end
  if n == 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "# No rule proposed remediation steps for this input."
  end
  return table.concat(lines, "\n") .. "\n"
end
