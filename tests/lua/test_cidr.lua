-- Tests for triage.cidr: IPv4 and IPv6 parsing, network membership and
-- Postfix-style network lists.
-- Run from the repository root: lua5.4 tests/lua/test_cidr.lua
package.path = "lua/?.lua;" .. package.path

local lu = require "luaunit"
local cidr = require "triage.cidr"

TestCidrParse = {}

function TestCidrParse:test_addresses()
  local cases = {
    { "192.0.2.1", "192.0.2.1" },
    { " 10.0.0.255 ", "10.0.0.255" },
    { "2001:db8::1", "2001:db8::1" },
    { "[2001:DB8:0:0:0:0:0:1]", "2001:db8::1" },
    { "::", "::" },
    { "::1", "::1" },
    { "fe80::1%eth0", "fe80::1" },
    { "2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1" },
    { "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },
    { "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8" },
    { "::ffff:192.0.2.1", "::ffff:c000:201" },
  }
  for _, case in ipairs(cases) do
    local addr, err = cidr.parse_address(case[1])
    lu.assertNotNil(addr, err)
    lu.assertEquals(cidr.format(addr), case[2], case[1])
  end
end

function TestCidrParse:test_invalid_addresses()
  for _, text in ipairs({ "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.x", "1::2::3",
      "12345::1", "1:2:3:4:5:6:7:8:9", "host.example.com", ":1:2", "1.2.3.4/24" }) do
    lu.assertNil(cidr.parse_address(text), text)
  end
end

function TestCidrParse:test_networks()
  local net = assert(cidr.parse("192.0.2.77/24"))
  lu.assertEquals(net.prefix, 24)
  lu.assertEquals(net.bytes, { 192, 0, 2, 0 }, "host bits cleared")
  lu.assertEquals(assert(cidr.parse("[2001:db8::]/32")).prefix, 32)
  lu.assertEquals(assert(cidr.parse("192.0.2.1")).prefix, 32)
  lu.assertEquals(assert(cidr.parse("2001:db8::1")).prefix, 128)
  lu.assertNil(cidr.parse("192.0.2.0/33"))
  lu.assertNil(cidr.parse("2001:db8::/129"))
  lu.assertNil(cidr.parse("hash:/etc/postfix/network_table"))
end

TestCidrContains = {}

function TestCidrContains:test_contains()
  local cases = {
    { "10.0.0.0/8", "10.255.1.2", true },
    { "10.0.0.0/8", "11.0.0.1", false },
    { "192.0.2.128/25", "192.0.2.127", false },
    { "192.0.2.128/25", "192.0.2.200", true },
    { "0.0.0.0/0", "203.0.113.9", true },
    { "2001:db8::/32", "2001:db8:ffff::1", true },
    { "2001:db8::/32", "2001:db9::1", false },
    { "[2001:db8::]/33", "2001:db8:8000::1", false },
    { "192.0.2.0/24", "::ffff:192.0.2.9", true },
    { "192.0.2.0/24", "2001:db8::1", false },
    { "2001:db8::/32", "192.0.2.1", false },
    { "192.0.2.1", "192.0.2.1", true },
  }
  for _, case in ipairs(cases) do
    lu.assertEquals(cidr.contains(case[1], case[2]), case[3], case[1] .. " holds " .. case[2])
  end
end

function TestCidrContains:test_contains_reports_bad_input()
  local ok, err = cidr.contains("10.0.0.0/8", "not-an-ip")
  lu.assertNil(ok)
  lu.assertStrContains(err, "not-an-ip")
end

function TestCidrContains:test_host_network()
  lu.assertEquals(cidr.host_network("192.0.2.5"), "192.0.2.5/32")
  lu.assertEquals(cidr.host_network("2001:DB8::5"), "[2001:db8::5]/128")
  lu.assertEquals(cidr.host_network("::ffff:192.0.2.5"), "192.0.2.5/32")
end

TestCidrList = {}

function TestCidrList:test_match_list()
  local list = "127.0.0.0/8, [::1]/128 !192.0.2.7 192.0.2.0/24 hash:/etc/postfix/nets"
  local r = cidr.match_list(list, "192.0.2.9")
  lu.assertTrue(r.inside)
  lu.assertEquals(r.entry, "192.0.2.0/24")
  lu.assertTrue(r.certain)

  r = cidr.match_list(list, "192.0.2.7")
  lu.assertFalse(r.inside, "a negated entry excludes")
  lu.assertEquals(r.entry, "!192.0.2.7")

  r = cidr.match_list(list, "203.0.113.1")
  lu.assertFalse(r.inside)
  lu.assertNil(r.entry)
  lu.assertFalse(r.certain, "a lookup table could still hold it")
  lu.assertEquals(r.unknown, { "hash:/etc/postfix/nets" })

  lu.assertTrue(cidr.match_list({ "10.0.0.0/8" }, "10.1.1.1").inside, "a list table")
  lu.assertFalse(cidr.match_list(nil, "10.1.1.1").inside, "no list")
end

function TestCidrList:test_split()
  lu.assertEquals(cidr.split(" a, b\tc ,,d "), { "a", "b", "c", "d" })
end

os.exit(lu.LuaUnit.run())
