-- Enrich a Prometheus Alertmanager webhook payload with diagnoses.
--
-- Reads the webhook JSON on standard input and diagnoses each alert from its
-- description and summary annotations and its label values. Every alert
-- with a diagnosis gets the annotations triage_id, triage_root_cause,
-- triage_fix (the best-ranked workaround) and triage_score. The payload is
-- printed as JSON, or unchanged when no alert had a diagnosis.
--
--   LUA_CPATH="PREFIX/lib/lua/5.4/?.so;;" lua5.4 examples/alertmanager.lua < payload.json
--
-- Exit status: 0 printed, 2 the input is not a webhook payload or the
-- engine cannot start.
local triage = require "triage"

local cjson = triage.cjson

-- Annotation and label texts worth diagnosing, one per line: the
-- description first, because it usually quotes the failing log line.
local function alert_text(alert)
  local lines = {}
  local annotations = type(alert.annotations) == "table" and alert.annotations or {}
  for _, key in ipairs({ "description", "summary", "message" }) do
    if type(annotations[key]) == "string" then
      lines[#lines + 1] = annotations[key]
    end
  end
  local labels = type(alert.labels) == "table" and alert.labels or {}
  local keys = {}
  for key, value in pairs(labels) do
    if type(value) == "string" then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys)
  for _, key in ipairs(keys) do
    lines[#lines + 1] = labels[key]
  end
  return table.concat(lines, "\n")
end

-- Add the diagnosis annotations to alert; returns true when it had one.
local function enrich(engine, alert)
  local report, err = engine:diagnose(alert_text(alert), { top = 1 })
  if not report then
    error(err, 0)
  end
  local d = report.diagnoses[1]
  if not d then
    return false
  end
  if type(alert.annotations) ~= "table" then
    alert.annotations = {}
  end
  -- Alertmanager annotations are strings only.
  alert.annotations.triage_id = d.id
  alert.annotations.triage_root_cause = d.root_cause
  alert.annotations.triage_score = string.format("%.2f", d.score)
  local fix = d.workarounds[1]
  if fix and type(fix.action) == "string" then
    alert.annotations.triage_fix = fix.action
  end
  return true
end

local function main()
  local input = io.read("a")
  local ok, payload = pcall(cjson.decode, input)
  if not ok or type(payload) ~= "table" or type(payload.alerts) ~= "table" then
    io.stderr:write("alertmanager: standard input is not a webhook payload with an 'alerts' list: ",
      ok and "no alerts" or tostring(payload), "\n")
    return 2
  end
  local engine, err = triage.open()
  if not engine then
    io.stderr:write("alertmanager: cannot open the triage engine: ", err, "\n")
    return 2
  end
  local changed = false
  for _, alert in ipairs(payload.alerts) do
    if type(alert) == "table" and enrich(engine, alert) then
      changed = true
    end
  end
  -- lua-cjson 2.1 writes an empty array as {}, so an untouched payload is
  -- passed through as read rather than encoded again.
  io.write(changed and cjson.encode(payload) or input:gsub("%s+$", ""), "\n")
  return 0
end

os.exit(main())
