-- Tests for triage.graph, transition-graph traversal.
-- Run from the repository root: lua5.4 tests/lua/test_graph.lua
package.path = "lua/?.lua;tests/lua/?.lua;" .. package.path

local lu = require "luaunit"
local cjson = require "cjson"
local graph = require "triage.graph"


local function record(id, signature, edges)
  return {
    id = id,
    signature = signature,
    signature_zh = signature and (signature .. " (zh)") or nil,
    transition_graph = edges or {},
  }
end


-- A small mail graph:
--   a -> b (0.6), a -> c (0.3), b -> d (0.5), c -> d (0.9), d -> a (cycle),
--   a -> x (unknown id), c -> e (no probability).
local function mail_records()
  local list = {
    record("mail/a", "A happened", {
      leads_to = { { error_id = "mail/b", probability = 0.6, condition = "on retry" },
        { error_id = "mail/c", probability = 0.3 }, "mail/x" },
      preceded_by = { { error_id = "mail/d", probability = 0.4 } },
      frequently_confused_with = {
        { error_id = "mail/c", distinction = "C names the recipient" } },
    }),
    record("mail/b", "B happened", {
      leads_to = { { error_id = "mail/d", probability = 0.5 } },
      preceded_by = { "mail/a" },
    }),
    record("mail/c", "C happened", {
      leads_to = { { error_id = "mail/d", probability = 0.9 }, "mail/e" },
      preceded_by = { { error_id = "mail/a", probability = 0.3 } },
      frequently_confused_with = { "mail/a" },
    }),
    record("mail/d", "D happened", {
      leads_to = { { error_id = "mail/a", probability = 0.4 } },
      preceded_by = { "mail/b", "mail/c" },
    }),
    record("mail/e", "E happened", { preceded_by = { "mail/c" } }),
  }
  local by_id = {}
  for _, r in ipairs(list) do
    by_id[r.id] = r
  end
  return by_id
end


local function new_graph(records)
  records = records or mail_records()
  return graph.new(function(id) return records[id] end), records
end


TestGraphNew = {}

function TestGraphNew:test_rejects_non_function()
  local ok, err = pcall(graph.new, {})
  lu.assertFalse(ok, "a table is not a lookup function")
  lu.assertStrContains(err, "expected a lookup function, got table", false, "message")
end


TestGraphEdges = {}

function TestGraphEdges:test_normalises_both_forms()
  local g, records = new_graph()
  local edges = g:edges(records["mail/a"], "leads_to")
  lu.assertEquals(#edges, 3, "three well-formed edges")
  lu.assertEquals(edges[1], { id = "mail/b", probability = 0.6, condition = "on retry", index = 1 },
    "object form")
  lu.assertEquals(edges[2], { id = "mail/c", probability = 0.3, index = 2 },
    "object form without condition")
  lu.assertEquals(edges[3], { id = "mail/x", index = 3 }, "string form")
end

function TestGraphEdges:test_confused_with_distinction()
  local g, records = new_graph()
  local edges = g:edges(records["mail/a"], "frequently_confused_with")
  lu.assertEquals(edges[1].distinction, "C names the recipient", "distinction kept")
end

function TestGraphEdges:test_skips_malformed()
  local g = new_graph()
  local r = record("m/r", "R", { leads_to = {
    42, "", { probability = 0.5 }, { error_id = 7 },
    { error_id = "m/p", probability = 1.5 }, { error_id = "m/q", probability = "high" },
    { error_id = "m/ok", probability = cjson.null, condition = cjson.null },
    "m/ok", "m/second",
  } })
  local cases = {
    { 1, "m/ok", "JSON null probability and condition count as absent" },
    { 2, "m/second", "duplicate id skipped, next edge kept" },
  }
  local edges = g:edges(r, "leads_to")
  lu.assertEquals(#edges, 2, "only two usable edges")
  for _, case in ipairs(cases) do
    lu.assertEquals(edges[case[1]].id, case[2], case[3])
  end
  lu.assertNil(edges[1].probability, "null probability is nil")
  lu.assertNil(edges[1].condition, "null condition is nil")
end

function TestGraphEdges:test_missing_graph_and_bad_kind()
  local g = new_graph()
  lu.assertEquals(g:edges({ id = "m/none" }, "leads_to"), {}, "no transition_graph")
  lu.assertEquals(g:edges(record("m/n", "N", { leads_to = cjson.null }), "leads_to"), {},
    "null edge list")
  local ok, err = pcall(g.edges, g, {}, "causes")
  lu.assertFalse(ok, "unknown kind raises")
  lu.assertStrContains(err, "unknown edge kind 'causes'", false, "message names the kind")
end


TestGraphResolve = {}

function TestGraphResolve:test_sorted_and_resolved()
  local g, records = new_graph()
  local t = g:resolve(records["mail/a"])
  local leads = t.leads_to
  lu.assertEquals(#leads, 3, "all edges kept")
  local cases = {
    { 1, "mail/b", true, "B happened", 0.6 },
    { 2, "mail/c", true, "C happened", 0.3 },
    { 3, "mail/x", false, nil, nil },
  }
  for _, case in ipairs(cases) do
    local item = leads[case[1]]
    local context = "leads_to[" .. case[1] .. "] "
    lu.assertEquals(item.id, case[2], context .. "id")
    lu.assertEquals(item.known, case[3], context .. "known")
    lu.assertEquals(item.signature, case[4], context .. "signature")
    lu.assertEquals(item.probability, case[5], context .. "probability")
  end
  lu.assertEquals(leads[1].condition, "on retry", "condition carried")
  lu.assertEquals(leads[1].signature_zh, "B happened (zh)", "zh signature carried")
end

function TestGraphResolve:test_all_kinds_present()
  local g, records = new_graph()
  local t = g:resolve(records["mail/e"])
  lu.assertEquals(t.leads_to, {}, "no leads_to")
  lu.assertEquals(#t.preceded_by, 1, "one preceded_by")
  lu.assertEquals(t.frequently_confused_with, {}, "no confused-with")
end

function TestGraphResolve:test_confused_with_uses_distinction()
  local g, records = new_graph()
  local item = g:resolve(records["mail/a"]).frequently_confused_with[1]
  lu.assertEquals(item.distinction, "C names the recipient", "distinction")
  lu.assertNil(item.condition, "no condition field on confused-with")
end

function TestGraphResolve:test_ties_break_by_id()
  local g = new_graph()
  local r = record("m/t", "T", { leads_to = { "m/z", "m/b",
    { error_id = "m/y", probability = 0.5 }, { error_id = "m/a", probability = 0.5 } } })
  local ids = {}
  for i, item in ipairs(g:resolve(r).leads_to) do
    ids[i] = item.id
  end
  lu.assertEquals(ids, { "m/a", "m/y", "m/b", "m/z" },
    "equal probabilities by id, edges without probability last")
end


TestGraphWalk = {}

local function walk_ids(steps)
  local out = {}
  for i, s in ipairs(steps) do
    out[i] = string.format("%s@%d<%s", s.id, s.depth, s.via)
  end
  return out
end

function TestGraphWalk:test_breadth_first_with_cycle()
  local g = new_graph()
  local steps = g:walk("mail/a", "leads_to")
  lu.assertEquals(walk_ids(steps),
    { "mail/b@1<mail/a", "mail/c@1<mail/a", "mail/x@1<mail/a", "mail/d@2<mail/b", "mail/e@2<mail/c" },
    "each node once, in visit order; the cycle back to mail/a is not followed")
  lu.assertAlmostEquals(steps[4].probability, 0.3, 1e-12, "0.6 * 0.5 along a -> b -> d")
  lu.assertAlmostEquals(steps[5].probability, 0.3, 1e-12, "missing probability counts as 1")
  lu.assertFalse(steps[3].known, "unknown id is listed as not known")
  lu.assertTrue(steps[1].known, "loaded id is known")
end

function TestGraphWalk:test_cycle_terminates_without_start()
  local records = {
    ["c/1"] = record("c/1", "one", { leads_to = { "c/2" } }),
    ["c/2"] = record("c/2", "two", { leads_to = { "c/1", "c/2" } }),
  }
  local g = new_graph(records)
  local steps = g:walk("c/1", "leads_to", { max_depth = 50 })
  lu.assertEquals(walk_ids(steps), { "c/2@1<c/1" }, "two-node cycle and self-loop")
end

function TestGraphWalk:test_limits()
  local g = new_graph()
  local cases = {
    { { max_depth = 1 }, { "mail/b@1<mail/a", "mail/c@1<mail/a", "mail/x@1<mail/a" }, "depth 1" },
    { { max_depth = 0 }, {}, "depth 0 lists nothing" },
    -- mail/x has no probability, counts as 1 and passes any threshold.
    { { min_probability = 0.35 }, { "mail/b@1<mail/a", "mail/x@1<mail/a" },
      "paths below 0.35 are cut (c at 0.3, d at 0.6 * 0.5)" },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(walk_ids(g:walk("mail/a", "leads_to", case[1])), case[2], case[3])
  end
end

function TestGraphWalk:test_preceded_by()
  local g = new_graph()
  local steps = g:walk("mail/d", "preceded_by", { max_depth = 2 })
  lu.assertEquals(walk_ids(steps), { "mail/b@1<mail/d", "mail/c@1<mail/d", "mail/a@2<mail/b" },
    "causes walked backwards")
end

function TestGraphWalk:test_unknown_start_and_bad_options()
  local g = new_graph()
  lu.assertEquals(g:walk("mail/none", "leads_to"), {}, "unknown start reaches nothing")
  local cases = {
    { "frequently_confused_with", nil, "unknown edge kind", "confused-with is not walkable" },
    { "leads_to", { max_depth = -1 }, "max_depth must be a non-negative integer", "negative depth" },
    { "leads_to", { max_depth = 1.5 }, "max_depth must be a non-negative integer", "fractional depth" },
    { "leads_to", { min_probability = 2 }, "min_probability must be a number in [0, 1]", "threshold above 1" },
  }
  for _, case in ipairs(cases) do
    local ok, err = pcall(g.walk, g, "mail/a", case[1], case[2])
    lu.assertFalse(ok, case[4] .. " raises")
    lu.assertStrContains(err, case[3], false, case[4])
  end
end


TestGraphProblems = {}

local function problem_keys(problems)
  local out = {}
  for i, p in ipairs(problems) do
    out[i] = p.id .. " " .. p.field .. " " .. p.severity
  end
  return out
end

function TestGraphProblems:test_consistent_graph_has_only_unknown_id()
  local g = new_graph()
  local problems = g:problems({ "mail/a", "mail/b", "mail/c", "mail/d", "mail/e" })
  lu.assertEquals(problem_keys(problems), {
    "mail/a transition_graph.leads_to[2] warning",
  }, "only the edge to mail/x is reported")
  lu.assertStrContains(problems[1].message, "'mail/x' is not a loaded record", false, "message")
end

function TestGraphProblems:test_missing_reverse_edges()
  local records = {
    ["r/a"] = record("r/a", "A", {
      leads_to = { "r/b" },
      frequently_confused_with = { "r/b" },
    }),
    ["r/b"] = record("r/b", "B", {
      preceded_by = { "r/c" },
    }),
    ["r/c"] = record("r/c", "C", {}),
  }
  local g = new_graph(records)
  local problems = g:problems({ "r/a", "r/b", "r/c" })
  local cases = {
    { "r/a", "transition_graph.leads_to[0]", "'r/b' has no preceded_by edge back to 'r/a'",
      "leads_to without the reverse preceded_by" },
    { "r/a", "transition_graph.frequently_confused_with[0]",
      "'r/b' has no frequently_confused_with edge back to 'r/a'", "one-sided confused-with" },
    { "r/b", "transition_graph.preceded_by[0]", "'r/c' has no leads_to edge back to 'r/b'",
      "preceded_by without the reverse leads_to" },
  }
  lu.assertEquals(#problems, #cases, "one problem per missing reverse edge")
  for i, case in ipairs(cases) do
    lu.assertEquals(problems[i].id, case[1], case[4] .. ": id")
    lu.assertEquals(problems[i].field, case[2], case[4] .. ": field")
    lu.assertEquals(problems[i].message, case[3], case[4] .. ": message")
    lu.assertEquals(problems[i].severity, "warning", case[4] .. ": severity")
  end
end

function TestGraphProblems:test_malformed_duplicate_self_and_missing()
  local records = {
    ["p/a"] = record("p/a", "A", {
      leads_to = { 5, "p/b", "p/b" },
      frequently_confused_with = { "p/a" },
    }),
    ["p/b"] = record("p/b", "B", { preceded_by = { "p/a" } }),
  }
  local g = new_graph(records)
  local problems = g:problems({ "p/a", "p/gone" })
  local cases = {
    { "p/a", "transition_graph.leads_to[0]", "error", "invalid edge: expected an id string" },
    { "p/a", "transition_graph.leads_to[2]", "warning", "duplicate edge to 'p/b' (first at transition_graph.leads_to[1])" },
    { "p/a", "transition_graph.frequently_confused_with[0]", "warning", "confused with itself" },
    { "p/gone", "id", "error", "record 'p/gone' is not loaded" },
  }
  lu.assertEquals(#problems, #cases, "problem count")
  for i, case in ipairs(cases) do
    lu.assertEquals(problems[i].id, case[1], "problem " .. i .. " id")
    lu.assertEquals(problems[i].field, case[2], "problem " .. i .. " field")
    lu.assertEquals(problems[i].severity, case[3], "problem " .. i .. " severity")
    lu.assertStrContains(problems[i].message, case[4], false, "problem " .. i .. " message")
  end
end

os.exit(lu.LuaUnit.run())
