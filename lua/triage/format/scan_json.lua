-- JSON scan summary: the whole report as one pretty-printed object,
-- {"schema": "triage.scan/1", "lines": N, "findings": [...], "observed": [...]},
-- with the key order and number format of triage.json.
local json = require "triage.json"

-- An observed transition reads best as "from", "to", then the counts. No
-- other object of the report has these keys, so they can lead the order.
local KEY_ORDER = { "from", "to" }
for _, key in ipairs(json.key_order) do
  KEY_ORDER[#KEY_ORDER + 1] = key
end

-- The formatter options are ignored: JSON carries every field.
return function(report)
  return json.encode(report, { indent = true, key_order = KEY_ORDER }) .. "\n"
end
