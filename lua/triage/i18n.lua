-- Output labels in English and Chinese, per-field language choice, and
-- the helpers that make record and log text safe to show to a person.
--
-- Records carry Chinese text in *_zh fields (signature_zh, root_cause_zh,
-- workarounds_zh). A field without a usable Chinese value falls back to
-- English on its own, so a partly translated record still prints in full.
local json = require "triage.json"

local M = {}

M.LANGUAGES = { "en", "zh" }

M.labels = {
  en = {
    root_cause = "Root cause",
    dead_ends = "Dead ends",
    workarounds = "Workarounds",
    why_fails = "Why it fails",
    fail_rate = "fails",
    success_rate = "works",
    leads_to = "Next errors",
    preceded_by = "Previous errors",
    frequently_confused_with = "Confused with",
    versions = "Versions",
    os_specific = "OS",
    documentation = "Documentation",
    verification = "Verification",
    confidence = "Confidence",
    score = "Score",
    remediation = "Remediation",
    check = "Check",
    notes = "Notes",
    runbook = "Runbook",
    match = "Match",
    line = "line",
    captures = "Captures",
    condition = "when",
    not_loaded = "not loaded",
    no_match = "No known problem matched.",
    guesses = "No regex matched; closest signatures (guesses):",
    guess = "guess",
    explain = "Score parts",
    errors = "Script errors",
    report_title = "triage report",
    details = "Details",
  },
  zh = {
    root_cause = "根本原因",
    dead_ends = "无效尝试",
    workarounds = "解决方法",
    why_fails = "失败原因",
    fail_rate = "失败率",
    success_rate = "成功率",
    leads_to = "后续错误",
    preceded_by = "先前错误",
    frequently_confused_with = "易混淆",
    versions = "适用版本",
    os_specific = "操作系统",
    documentation = "官方文档",
    verification = "验证等级",
    confidence = "置信度",
    score = "得分",
    remediation = "修复步骤",
    check = "检查",
    notes = "备注",
    runbook = "运维手册",
    match = "匹配",
    line = "行",
    captures = "捕获",
    condition = "条件",
    not_loaded = "未加载",
    no_match = "未匹配到已知问题。",
    guesses = "没有正则表达式匹配；最接近的签名（推测）：",
    guess = "推测",
    explain = "得分构成",
    errors = "脚本错误",
    report_title = "triage 报告",
    details = "详细信息",
  },
}


-- Map a language or locale name ("zh", "zh_CN.UTF-8", "en_US") to a
-- supported language: "zh" for any Chinese locale, else "en".
function M.normalize(lang)
  if type(lang) == "string" and string.find(string.lower(lang), "^zh") then
    return "zh"
  end
  return "en"
end


-- Return the label for key in lang, falling back to English, then to the
-- key itself so a missing label shows up in the output instead of failing.
function M.label(key, lang)
  local set = M.labels[M.normalize(lang)]
  return set[key] or M.labels.en[key] or key
end


-- Return the separator between a label and its value: ": " in English,
-- the full-width "：" (no space) in Chinese.
function M.colon(lang)
  if M.normalize(lang) == "zh" then
    return "："
  end
  return ": "
end


-- Return true for a value worth printing: not nil, not JSON null (cjson
-- decodes null to a userdata sentinel), not an empty string or table.
function M.present(v)
  local kind = type(v)
  if kind == "string" then
    return v ~= ""
  elseif kind == "table" then
    return next(v) ~= nil
  end
  return kind == "number" or kind == "boolean"
end


-- Return s with the control characters a terminal would act on written as
-- visible escapes (ESC becomes \x1b, the C1 CSI U+009B becomes \u009b) and
-- invalid UTF-8 replaced by U+FFFD. Tab and newline stay; CRLF becomes LF.
-- Matched log lines can carry escape sequences, and printing them raw
-- would let a log line recolour or rewrite the operator's terminal.
function M.printable(s)
  s = string.gsub(json.sanitize_utf8(s), "\r\n", "\n")
  s = string.gsub(s, "[\0-\8\11-\31\127]", function(c)
    return string.format("\\x%02x", string.byte(c))
  end)
  s = string.gsub(s, "\194([\128-\159])", function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return s
end


-- Return a copy of v with M.printable applied to every string value
-- (keys are kept as they are).
function M.printable_tree(v, seen)
  if type(v) == "string" then
    return M.printable(v)
  elseif type(v) ~= "table" then
    return v
  end
  seen = seen or {}
  if seen[v] then
    return seen[v]
  end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do
    out[k] = M.printable_tree(x, seen)
  end
  return setmetatable(out, getmetatable(v))
end


local function workaround_action(D, i, lang)
  local zh = type(D.workarounds_zh) == "table" and D.workarounds_zh[i]
  if lang == "zh" and M.present(zh) then
    return zh
  end
  local w = type(D.workarounds) == "table" and D.workarounds[i]
  if type(w) == "table" then
    return w.action
  end
  return nil
end


-- Return field of D in lang: D[field .. "_zh"] when lang is zh and that
-- value is present, else D[field].
--
-- "workarounds" is special because workarounds_zh contains plain strings:
-- pick(D, "workarounds", lang, i) returns the action text of workaround i
-- (the zh string at index i, else the English action), and without i a
-- list of those texts, one per workaround.
function M.pick(D, field, lang, index)
  lang = M.normalize(lang)
  if field == "workarounds" then
    if index then
      return workaround_action(D, index, lang)
    end
    local out = {}
    for i = 1, #(D.workarounds or {}) do
      out[i] = workaround_action(D, i, lang)
    end
    return out
  end

  if lang == "zh" then
    local zh = D[field .. "_zh"]
    if M.present(zh) then
      return zh
    end
  end
  return D[field]
end


return M
