-- Tests for triage.json, the deterministic JSON encoder.
-- Run from the repository root: lua5.4 tests/lua/test_json.lua
package.path = "lua/?.lua;tests/lua/?.lua;" .. package.path

local lu = require "luaunit"
local cjson = require "cjson"
local json = require "triage.json"
local fixtures = require "fixtures.report"


TestJsonEncode = {}

function TestJsonEncode:test_scalars()
  local cases = {
    { nil, "null", "nil" },
    { cjson.null, "null", "cjson.null sentinel" },
    { true, "true", "boolean true" },
    { false, "false", "boolean false" },
    { 42, "42", "integer" },
    { -7, "-7", "negative integer" },
    { 1.0, "1", "integral float prints without fraction" },
    { -3.0, "-3", "negative integral float" },
    { 1e15, "1000000000000000", "large integral float has no exponent" },
    { 0.85, "0.85", "short decimal keeps its short form" },
    { 1 / 3, "0.3333333333333333", "16 digits when 15 do not round-trip" },
    { 0.1 + 0.2, "0.30000000000000004", "17 digits when needed to round-trip" },
    { 1e300, "1e+300", "huge float uses an exponent" },
    { 0 / 0, "null", "NaN" },
    { math.huge, "null", "+inf" },
    { -math.huge, "null", "-inf" },
    { "", '""', "empty string" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(json.encode(case[1]), case[2], case[3])
  end
end

function TestJsonEncode:test_repeated_values_encode_alike()
  -- The encoder reuses the text of a value it met before in the same call.
  -- Values that compare or hash alike but print apart must not share it.
  local cases = {
    { { 0, -0.0 }, "[0,-0]", "zero, then negative zero" },
    { { -0.0, 0 }, "[-0,0]", "negative zero, then zero" },
    { { 2, 2.0, 2 }, "[2,2,2]", "an integer and the same float" },
    { { 2 ^ 60 + 0.0, 1 << 60 }, "[1.152921504606847e+18,1152921504606846976]",
      "a float past 2^53, then the integer of the same value" },
    { { 1 << 60, 2 ^ 60 + 0.0 }, "[1152921504606846976,1.152921504606847e+18]",
      "an integer past 2^53, then the float of the same value" },
    { { math.mininteger, -2 ^ 63 }, "[-9223372036854775808,-9.223372036854776e+18]",
      "the smallest integer, then the float of the same value" },
    { { 0 / 0, 1, 0 / 0 }, "[null,1,null]", "NaN twice" },
    { { "a\n", "a\n", "b" }, '["a\\n","a\\n","b"]', "a string with an escape twice" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(json.encode(case[1]), case[2], case[3])
  end
end

function TestJsonEncode:test_numbers_round_trip()
  local values = { 0.1, 1 / 3, 2 / 3, 123.456, 1e-7, 5e-324, 1.7976931348623157e308, 0.92 }
  for _, v in ipairs(values) do
    local text = json.encode(v)
    lu.assertEquals(cjson.decode("[" .. text .. "]")[1], v, "round trip of " .. text)
  end
end

function TestJsonEncode:test_string_escapes()
  local cases = {
    { 'say "hi"', '"say \\"hi\\""', "double quote" },
    { "back\\slash", '"back\\\\slash"', "backslash" },
    { "a\nb\tc\rd", '"a\\nb\\tc\\rd"', "newline, tab, carriage return" },
    { "\b\f", '"\\b\\f"', "backspace and form feed" },
    { "nul\0byte", '"nul\\u0000byte"', "NUL byte" },
    { "\1\31", '"\\u0001\\u001f"', "other control characters" },
    { "del\127", '"del\127"', "DEL needs no escape" },
    { "a/b", '"a/b"', "slash is not escaped" },
    { "中继", '"中继"', "valid UTF-8 passes through" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(json.encode(case[1]), case[2], case[3])
  end
end

function TestJsonEncode:test_invalid_utf8_replaced()
  local fffd = "\239\191\189"
  local cases = {
    { "a\255b", "a" .. fffd .. "b", "byte 0xFF" },
    { "\128", fffd, "lone continuation byte" },
    { "end\195", "end" .. fffd, "truncated two-byte sequence" },
    { "\226\130", fffd, "truncated three-byte sequence is one U+FFFD" },
    { "\192\128", fffd .. fffd, "overlong NUL" },
    { "\237\160\128", fffd .. fffd .. fffd, "UTF-16 surrogate" },
    { "\244\144\128\128", fffd .. fffd .. fffd .. fffd, "above U+10FFFF" },
    { "ok\240\159\152\128", "ok\240\159\152\128", "valid four-byte sequence" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(json.sanitize_utf8(case[1]), case[2], case[3])
    local text = json.encode(case[1])
    lu.assertNotNil(utf8.len(text), "output is valid UTF-8: " .. case[3])
    lu.assertEquals(cjson.decode(text), case[2], "decodes to the repaired text: " .. case[3])
  end
end

function TestJsonEncode:test_arrays_and_objects()
  local cases = {
    { {}, "{}", "empty unmarked table is an object" },
    { json.array(), "[]", "marked empty table is an array" },
    { json.array({ 1, 2 }), "[1,2]", "marked non-empty array" },
    { json.array({ [1] = "a", [3] = "c" }), '["a",null,"c"]', "holes in a marked array are null" },
    { json.array({ "a", x = 1 }), '["a"]', "non-index keys of a marked array are left out" },
    { { 1, 2, 3 }, "[1,2,3]", "sequence is an array" },
    { { 1, nil, 3 }, '{"1":1,"3":3}', "table with a hole is an object" },
    { { [1] = "a", x = 1 }, '{"1":"a","x":1}', "mixed keys make an object" },
    { { [2] = "b" }, '{"2":"b"}', "sequence not starting at 1 is an object" },
    { { sources = {} }, '{"sources":[]}', "empty table under an array key" },
    { { captures = {} }, '{"captures":{}}', "empty table under an object key" },
    { { 1.5, "x", true, cjson.null }, '[1.5,"x",true,null]', "mixed array values" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(json.encode(case[1]), case[2], case[3])
  end
end

function TestJsonEncode:test_key_order()
  local D = {
    zeta = 1, alpha = 2, workarounds = json.array(), score = 0.5, id = "x/y",
    signature = "s", root_cause = "r", dead_ends = json.array(),
    match = { captures = {}, ["end"] = 9, start = 1, text = "t", line = 3 },
  }
  lu.assertEquals(json.encode(D),
    '{"id":"x/y","score":0.5,"signature":"s","root_cause":"r","dead_ends":[],'
    .. '"workarounds":[],"match":{"line":3,"text":"t","start":1,"end":9,"captures":{}},'
    .. '"alpha":2,"zeta":1}',
    "contract keys first in contract order, then the rest sorted")

  local report = { errors = json.array(), diagnoses = json.array(), input = {}, schema = "s" }
  lu.assertEquals(json.encode(report),
    '{"schema":"s","input":{},"diagnoses":[],"errors":[]}', "report keys")

  local line = { diagnoses = json.array(), text = "t", line = 1 }
  lu.assertEquals(json.encode(line), '{"line":1,"text":"t","diagnoses":[]}', "ndjson keys")

  lu.assertEquals(json.encode({ b = 1, a = 2 }, { key_order = { "b" } }), '{"b":1,"a":2}',
    "opts.key_order replaces the default order")
end

function TestJsonEncode:test_numeric_keys_sorted_as_strings()
  lu.assertEquals(json.encode({ [10] = "x", [2] = "y", k = "z" }),
    '{"10":"x","2":"y","k":"z"}', "numeric keys become strings and sort with the rest")
end

function TestJsonEncode:test_indent()
  local value = { id = "a", list = { 1, 2 }, empty = json.array(), obj = {} }
  local expected = table.concat({
    "{",
    '  "id": "a",',
    '  "empty": [],',
    '  "list": [',
    "    1,",
    "    2",
    "  ],",
    '  "obj": {}',
    "}",
  }, "\n")
  lu.assertEquals(json.encode(value, { indent = true }), expected, "two-space indent")
  lu.assertStrContains(json.encode(value, { indent = 4 }), '\n    "id": "a"',
    "numeric indent is a count of spaces")
end

function TestJsonEncode:test_errors_name_the_path()
  local cyclic = {}
  cyclic.self = cyclic
  local cases = {
    { { a = { print } }, "$.a[1]: value of type function", "function value" },
    { { a = { 1, { b = { x = 1, y = { z = print } } } } }, "$.a[2].b.y.z: value of type function",
      "deep path" },
    { { a = { [7] = { [true] = 1 }, k = 1 } }, "$.a.7: object key of type boolean", "numeric key in a path" },
    { cyclic, "$.self: table contains itself", "cycle" },
    { { [true] = 1 }, "object key of type boolean", "boolean key" },
    { { [1] = "a", ["1"] = "b", x = 0 }, "both encode as \"1\"", "colliding keys" },
  }
  for _, case in ipairs(cases) do
    local ok, err = pcall(json.encode, case[1])
    lu.assertFalse(ok, case[3] .. " must raise")
    lu.assertStrContains(err, case[2], false, case[3])
  end
end

function TestJsonEncode:test_deterministic()
  local a = json.encode(fixtures.report(), { indent = true })
  for _ = 1, 5 do
    lu.assertEquals(json.encode(fixtures.report(), { indent = true }), a,
      "same report, same bytes")
  end
end

function TestJsonEncode:test_report_round_trip()
  local report = fixtures.report()
  local decoded = cjson.decode(json.encode(report))
  lu.assertEquals(decoded.schema, "triage.report/1", "schema")
  lu.assertEquals(#decoded.diagnoses, 3, "diagnosis count")
  local D = decoded.diagnoses[1]
  lu.assertEquals(D.id, report.diagnoses[1].id, "id")
  lu.assertEquals(D.score, 0.92, "score")
  lu.assertEquals(D.workarounds[2].success_rate, 0.9, "nested rate")
  lu.assertEquals(D.match.captures.client_ip, "203.0.113.9", "capture")
  lu.assertEquals(D.official_doc_section, "3.6", "string field")
  lu.assertEquals(D.dead_ends[1].sources, {}, "empty sources survive")
  lu.assertStrContains(json.encode(report), '"sources":[]', false,
    "empty sources encode as an array")
end

function TestJsonEncode:test_decode_is_cjson()
  lu.assertIs(json.decode, cjson.decode, "json.decode is cjson.decode")
  lu.assertIs(json.null, cjson.null, "json.null is cjson.null")
end

os.exit(lu.LuaUnit.run())
