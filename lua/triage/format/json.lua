-- JSON report: the whole report as one pretty-printed object
-- ({"schema": "triage.report/1", "input": ..., "diagnoses": [...]}),
-- with the key order and number format of triage.json.
local json = require "triage.json"

-- Render report as indented JSON followed by a newline. The formatter
-- options are ignored: JSON output always carries every field in every
-- language.
return function(report)
  return json.encode(report, { indent = true }) .. "\n"
end
