-- Transition-graph traversal over loaded records.
--
-- A record's transition_graph lists the errors that usually follow it
-- (leads_to), come before it (preceded_by) and look like it
-- (frequently_confused_with). An edge is either an id string or an object
-- { error_id =, probability =, condition = } (distinction instead of
-- condition for confused-with). The graph object only reads records through
-- the lookup function it is given, so it works on any loaded set.
local M = {}

local N = "triage.graph"

local KINDS = { "leads_to", "preceded_by", "frequently_confused_with" }

local KIND_SET = {
  leads_to = true, preceded_by = true, frequently_confused_with = true,
}

-- The edge list that must point back for each kind.
local REVERSE = {
  leads_to = "preceded_by",
  preceded_by = "leads_to",
  frequently_confused_with = "frequently_confused_with",
}

local Graph = {}
Graph.__index = Graph

M.KINDS = KINDS


local function is_text(v)
  return type(v) == "string" and v ~= ""
end


-- Return the optional string field of an edge object, or nil for absent,
-- JSON null and non-strings.
local function optional_text(v)
  if type(v) == "string" then
    return v
  end
  return nil
end


-- Return the raw edge list of kind in record, or an empty table.
local function raw_edges(record, kind)
  local graph = type(record) == "table" and record.transition_graph
  if type(graph) ~= "table" then
    return {}
  end
  local list = graph[kind]
  if type(list) ~= "table" then
    return {}
  end
  return list
end


-- Normalise one raw edge. Returns the edge table, or nil and the reason it
-- is malformed.
local function normalise_edge(raw, index)
  if is_text(raw) then
    return { id = raw, index = index }
  end
  if type(raw) ~= "table" then
    return nil, "expected an id string or an object with error_id, got "
      .. type(raw)
  end
  if not is_text(raw.error_id) then
    return nil, "edge object has no error_id string"
  end

  local p = raw.probability
  if type(p) == "number" then
    if p ~= p or p < 0 or p > 1 then
      return nil, string.format("probability %s is outside [0, 1]", tostring(p))
    end
  elseif p ~= nil and type(p) ~= "userdata" then
    -- userdata is cjson.null, which means "no probability given"
    return nil, "probability must be a number, got " .. type(p)
  else
    p = nil
  end

  return {
    id = raw.error_id,
    probability = p,
    condition = optional_text(raw.condition),
    distinction = optional_text(raw.distinction),
    index = index,
  }
end


local function check_kind(kind, allowed)
  if not (allowed or KIND_SET)[kind] then
    error(string.format("%s: unknown edge kind '%s'", N, tostring(kind)), 3)
  end
end


-- Create a graph over the records that lookup(id) returns (nil when the id
-- is not loaded).
function M.new(lookup)
  if type(lookup) ~= "function" then
    error(N .. ".new: expected a lookup function, got " .. type(lookup), 2)
  end
  return setmetatable({ lookup = lookup }, Graph)
end


-- Return the well-formed edges of kind in record as
-- { {id=, probability=, condition=, distinction=, index=} ... } in record
-- order. index is the entry's 1-based position in the record's list.
-- Malformed entries and repeated ids (after the first) are skipped;
-- problems() reports them.
function Graph:edges(record, kind)
  check_kind(kind)
  local out, seen = {}, {}
  for i, raw in ipairs(raw_edges(record, kind)) do
    local edge = normalise_edge(raw, i)
    if edge and not seen[edge.id] then
      seen[edge.id] = true
      out[#out + 1] = edge
    end
  end
  return out
end


-- Order edges by probability, highest first. Edges without a probability
-- sort after all that have one; ties are broken by id.
local function by_probability(a, b)
  local pa, pb = a.probability or -1, b.probability or -1
  if pa ~= pb then
    return pa > pb
  end
  return a.id < b.id
end


-- Return the edges of record resolved against the loaded set:
-- { leads_to = {...}, preceded_by = {...}, frequently_confused_with = {...} }
-- Each item is { id=, known=, signature=, signature_zh=, probability=,
-- condition= } (distinction instead of condition for confused-with).
-- Unknown ids stay in the list with known = false and no signature.
function Graph:resolve(record)
  local result = {}
  for _, kind in ipairs(KINDS) do
    local items = {}
    for _, edge in ipairs(self:edges(record, kind)) do
      local target = self.lookup(edge.id)
      local item = {
        id = edge.id,
        known = target ~= nil,
        probability = edge.probability,
      }
      if target then
        item.signature = optional_text(target.signature)
        item.signature_zh = optional_text(target.signature_zh)
      end
      if kind == "frequently_confused_with" then
        item.distinction = edge.distinction or edge.condition
      else
        item.condition = edge.condition
      end
      items[#items + 1] = item
    end
    table.sort(items, by_probability)
    result[kind] = items
  end
  return result
end


local function walk_options(opts)
  opts = opts or {}
  local max_depth = opts.max_depth or 3
  local min_probability = opts.min_probability or 0
  if math.type(max_depth) ~= "integer" or max_depth < 0 then
    error(N .. ":walk: max_depth must be a non-negative integer, got "
      .. tostring(max_depth), 3)
  end
  if type(min_probability) ~= "number" or min_probability < 0
      or min_probability > 1 then
    error(N .. ":walk: min_probability must be a number in [0, 1], got "
      .. tostring(min_probability), 3)
  end
  return max_depth, min_probability
end


-- Walk the leads_to or preceded_by chain from id breadth-first and return
-- the nodes reached, in visit order, as
-- { {id=, depth=, probability=, via=, known=} ... }.
-- probability is the product of the edge probabilities along the path (an
-- edge without one counts as 1). Each node appears once, at the first path
-- that reaches it; the start node is not listed. Paths whose probability
-- falls below opts.min_probability (default 0) are cut, and so are paths
-- longer than opts.max_depth edges (default 3). Unknown ids are listed with
-- known = false and not expanded.
function Graph:walk(id, kind, opts)
  check_kind(kind, { leads_to = true, preceded_by = true })
  local max_depth, min_probability = walk_options(opts)

  local visited = { [id] = true }
  local queue = { { id = id, depth = 0, probability = 1 } }
  local out = {}
  local head = 1

  while head <= #queue do
    local node = queue[head]
    head = head + 1
    local record = self.lookup(node.id)
    if record and node.depth < max_depth then
      local edges = self:edges(record, kind)
      table.sort(edges, by_probability)
      for _, edge in ipairs(edges) do
        local p = node.probability * (edge.probability or 1)
        if not visited[edge.id] and p >= min_probability then
          visited[edge.id] = true
          local reached = {
            id = edge.id,
            depth = node.depth + 1,
            probability = p,
            via = node.id,
            known = self.lookup(edge.id) ~= nil,
          }
          out[#out + 1] = reached
          queue[#queue + 1] = reached
        end
      end
    end
  end
  return out
end


local function field_name(kind, index)
  return string.format("transition_graph.%s[%d]", kind, index - 1)
end


-- Return true when record lists target under kind.
local function lists(self, record, kind, target)
  for _, edge in ipairs(self:edges(record, kind)) do
    if edge.id == target then
      return true
    end
  end
  return false
end


local function edge_problems(self, id, record, kind, out)
  local first = {}
  for i, raw in ipairs(raw_edges(record, kind)) do
    local edge, reason = normalise_edge(raw, i)
    local field = field_name(kind, i)
    local function add(severity, message)
      out[#out + 1] = { id = id, field = field, severity = severity,
        message = message }
    end

    if not edge then
      add("error", "invalid edge: " .. reason)
    elseif first[edge.id] then
      add("warning", string.format("duplicate edge to '%s' (first at %s)",
        edge.id, field_name(kind, first[edge.id])))
    else
      first[edge.id] = i
      local target = self.lookup(edge.id)
      local reverse = REVERSE[kind]
      if edge.id == id and kind == "frequently_confused_with" then
        add("warning", "record is listed as confused with itself")
      elseif target == nil then
        add("warning", string.format("'%s' is not a loaded record", edge.id))
      elseif not lists(self, target, reverse, id) then
        add("warning", string.format(
          "'%s' has no %s edge back to '%s'", edge.id, reverse, id))
      end
    end
  end
end


-- Check the transition graphs of the records with the given ids and return
-- a list of { id=, field=, severity=, message= }.
-- Malformed edges, and entries of ids that lookup does not find, get
-- severity "error".
-- Severity "warning" covers edges to ids that are not loaded, duplicate
-- edges, and edges that the other record does not return: A leads_to B
-- without B preceded_by A, the other way round, and one-sided confused-with.
-- field is a JSON path with 0-based indices, such as
-- transition_graph.leads_to[0]. Problems come in the order of ids, then
-- kind, then position.
function Graph:problems(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local record = self.lookup(id)
    if record == nil then
      out[#out + 1] = { id = id, field = "id", severity = "error",
        message = string.format("record '%s' is not loaded", id) }
    else
      for _, kind in ipairs(KINDS) do
        edge_problems(self, id, record, kind, out)
      end
    end
  end
  return out
end


return M
