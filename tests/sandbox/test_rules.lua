-- Tests of the shipped remediation rules in rules/, each run in the real
-- sandbox on diagnoses built from real log lines and the shipped records.
-- Run by the tests/test_sandbox.c host (it provides triage.script,
-- triage.regex, TRIAGE_DATADIR and TRIAGE_SHARED_DIR):
--   build/tests/test_sandbox tests/sandbox/test_rules.lua
local lu = require "luaunit"
local cjson = require "cjson"
local script = require "triage.script"
local regex = require "triage.regex"

local DATADIR = assert(TRIAGE_DATADIR, "run through the test_sandbox host")
local SHARED = assert(TRIAGE_SHARED_DIR)


-- ==== helpers =============================================================

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- The first line of a shared log file that contains needle.
local function log_line(file, needle)
  for line in io.lines(SHARED .. "/logs/" .. file) do
    if line:sub(1, 1) ~= "#" and line:find(needle, 1, true) then
      return line
    end
  end
  error("no line with '" .. needle .. "' in " .. file)
end

-- A diagnosis as the engine passes it to rules: the record's id and
-- signature, and the match with the named captures of the record's regex.
local function diagnosis(id, line)
  local record = cjson.decode(read(DATADIR .. "/records/" .. id .. ".json"))
  local m = regex(record.regex):match(line)
  assert(m, id .. "'s regex does not match: " .. line)
  local captures = {}
  for k, v in pairs(m) do
    if type(k) == "string" and v then
      captures[k] = v
    end
  end
  return {
    id = record.id, signature = record.signature, root_cause = record.root_cause,
    match = { text = m[0], line_text = line, captures = captures },
    notes = {}, remediation = {},
  }
end

local rules = {}

local function rule(name)
  if not rules[name] then
    local s, err = script.load(DATADIR .. "/rules/" .. name .. ".lua", { datadir = DATADIR })
    rules[name] = assert(s, err)
  end
  return rules[name]
end

-- Call a rule's remediate as the engine does and return its result.
local function remediate(name, d, vars, context)
  local s = rule(name)
  vars = vars or {}
  assert(s:control("set_vars", vars))
  local ok, result = s:call("remediate", d, vars, context or { lines = 1 })
  lu.assertTrue(ok, result)
  return result
end

local function commands_of(result)
  local out = {}
  for _, step in ipairs(result.steps or {}) do
    for _, command in ipairs(step.commands) do
      out[#out + 1] = command
    end
    out[#out + 1] = step.check
  end
  return table.concat(out, "\n")
end

local function notes_of(result)
  return table.concat(result.notes or {}, "\n")
end

-- Every step has a title, commands and a check, and its shell parses.
local function assert_well_formed(result, label)
  lu.assertEquals(type(result), "table", label)
  for i, step in ipairs(result.steps or {}) do
    local where = string.format("%s: steps[%d]", label, i)
    lu.assertTrue(type(step.title) == "string" and step.title ~= "", where .. " has a title")
    lu.assertTrue(type(step.commands) == "table" and #step.commands > 0, where .. " has commands")
    lu.assertTrue(type(step.check) == "string" and step.check ~= "", where .. " has a check")
  end
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("set -eu\n", commands_of(result), "\n")
  f:close()
  local ok = os.execute("bash -n " .. path .. " 2>/dev/null")
  os.remove(path)
  lu.assertTrue(ok, label .. ": the commands are not valid shell:\n" .. commands_of(result))
end


-- ==== rules/postfix-relay.lua =============================================

local RELAY_ID = "communication/smtp-554-5-7-0-relay-denied"

TestPostfixRelay = {}

-- The step whose title contains text, or nil.
local function step_titled(result, text)
  for _, step in ipairs(result.steps or {}) do
    if step.title:find(text, 1, true) then
      return step
    end
  end
  return nil
end

function TestPostfixRelay:test_client_outside_mynetworks()
  local d = diagnosis(RELAY_ID, log_line("fail2ban/postfix", "Relay access denied"))
  local r = remediate("postfix-relay", d, { mynetworks = "127.0.0.0/8 [::1]/128 10.20.0.0/16" })
  assert_well_formed(r, "outside")
  lu.assertStrContains(notes_of(r), "1.2.3.4 is outside mynetworks")
  -- The recipient domain comes first: an outside server delivering to a
  -- domain Postfix does not list is fixed by the domain, not the client.
  lu.assertStrContains(r.steps[1].title, "Check whether example.com is a domain")
  lu.assertStrContains(r.steps[1].check, "grep -qixF -- example.com")
  lu.assertStrContains(r.steps[2].title, "SASL submission")
  lu.assertTrue(r.steps[2].alternative, "SASL submission is an alternative")
  local mynetworks = step_titled(r, "to mynetworks")
  lu.assertEquals(r.steps[3], mynetworks, "mynetworks is the last resort")
  lu.assertTrue(mynetworks.alternative)
  lu.assertEquals(mynetworks.commands[1], "postconf -e 'mynetworks = 127.0.0.0/8 [::1]/128 10.20.0.0/16 1.2.3.4/32'")
  lu.assertStrContains(mynetworks.check, "1.2.3.4/32")
  lu.assertStrContains(commands_of(r), "submission/inet/smtpd_sasl_auth_enable=yes")
  -- helo=<198.51.100.17> is a bare address, so a note calls it a possible probe.
  lu.assertStrContains(notes_of(r), "spam bot probing for an open relay")
end

function TestPostfixRelay:test_site_domain_fixes_the_domain_not_the_client()
  local d = diagnosis(RELAY_ID, log_line("fail2ban/postfix", "Relay access denied"))
  local r = remediate("postfix-relay", d, { mynetworks = "127.0.0.0/8", domains = "example.net, Example.com" })
  assert_well_formed(r, "site domain")
  lu.assertStrContains(notes_of(r), "example.com is one of the site's domains")
  lu.assertEquals(#r.steps, 1)
  lu.assertStrContains(r.steps[1].title, "Add example.com to the Postfix domain list")
  lu.assertNotStrContains(commands_of(r), "mynetworks =")
  lu.assertNotStrContains(notes_of(r), "spam bot")
end

function TestPostfixRelay:test_outside_domain_offers_sasl_first()
  local line = "Mar  1 10:00:00 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from unknown[203.0.113.7]: "
    .. "554 5.7.1 <victim@gmail.example>: Relay access denied; from=<x@y.example> to=<victim@gmail.example> "
    .. "proto=ESMTP helo=<WIN-ABC>"
  local d = diagnosis(RELAY_ID, line)
  local r = remediate("postfix-relay", d, { mynetworks = "10.0.0.0/8", domains = "example.org" })
  assert_well_formed(r, "outside domain")
  lu.assertStrContains(notes_of(r), "gmail.example is not one of the site's domains")
  lu.assertStrContains(notes_of(r), "no verified host name (unknown[...])")
  lu.assertStrContains(r.steps[1].title, "SASL submission")
  lu.assertNil(r.steps[1].alternative)
  lu.assertStrContains(r.steps[2].title, "to mynetworks")
  lu.assertTrue(r.steps[2].alternative)
  lu.assertNil(step_titled(r, "domain"))
end

function TestPostfixRelay:test_hostile_recipient_domain_is_not_used()
  local line = "Mar  1 10:00:00 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from host.example.net[192.0.2.7]: "
    .. "554 5.7.1 <a@x.example';touch${IFS}/tmp/p;'>: Relay access denied; proto=ESMTP"
  local d = diagnosis(RELAY_ID, line)
  local r = remediate("postfix-relay", d, { mynetworks = "10.0.0.0/8" })
  assert_well_formed(r, "hostile domain")
  lu.assertNil(step_titled(r, "domain"))
  lu.assertNotStrContains(commands_of(r), "touch")
end

function TestPostfixRelay:test_client_inside_mynetworks()
  local d = diagnosis(RELAY_ID, log_line("fail2ban/postfix", "Relay access denied"))
  local r = remediate("postfix-relay", d, { mynetworks = "127.0.0.0/8, 1.2.3.0/24" })
  assert_well_formed(r, "inside")
  lu.assertStrContains(notes_of(r), "inside mynetworks (entry 1.2.3.0/24)")
  lu.assertStrContains(commands_of(r), "smtpd_relay_restrictions = permit_mynetworks")
  lu.assertStrContains(commands_of(r), "'^smtp/inet/")
  lu.assertNotStrContains(commands_of(r), "1.2.3.4/32")
end

function TestPostfixRelay:test_mynetworks_unset_uses_live_value()
  local d = diagnosis(RELAY_ID, log_line("fail2ban/postfix", "Relay access denied"))
  local r = remediate("postfix-relay", d, {})
  assert_well_formed(r, "unset")
  lu.assertEquals(step_titled(r, "to mynetworks").commands[1],
    'postconf -e "mynetworks = $(postconf -h mynetworks) 1.2.3.4/32"')
  lu.assertStrContains(notes_of(r), "vars.mynetworks is not set")
end

function TestPostfixRelay:test_ipv6_client()
  local line = "Mar  1 10:00:00 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from unknown[2001:db8::25]: "
    .. "554 5.7.1 <a@example.org>: Relay access denied; from=<b@example.com> to=<a@example.org>"
  local d = diagnosis(RELAY_ID, line)
  local outside = remediate("postfix-relay", d, { mynetworks = "[2001:db8:1::]/48" })
  assert_well_formed(outside, "ipv6 outside")
  lu.assertStrContains(step_titled(outside, "to mynetworks").commands[1], "[2001:db8::25]/128")
  local inside = remediate("postfix-relay", d, { mynetworks = "127.0.0.0/8 [2001:db8::]/32" })
  lu.assertStrContains(notes_of(inside), "inside mynetworks (entry [2001:db8::]/32)")
end

function TestPostfixRelay:test_negated_entry_and_submission_service()
  local line = "Mar  1 10:00:00 mx postfix/submission/smtpd[99]: NOQUEUE: reject: RCPT from "
    .. "host.example.net[192.0.2.7]: 554 5.7.1 <a@example.org>: Relay access denied; proto=ESMTP"
  local d = diagnosis(RELAY_ID, line)
  local excluded = remediate("postfix-relay", d, { mynetworks = "!192.0.2.7 192.0.2.0/24" })
  lu.assertStrContains(notes_of(excluded), "192.0.2.7 is outside mynetworks")
  local inside = remediate("postfix-relay", d, { mynetworks = "192.0.2.0/24" })
  lu.assertStrContains(commands_of(inside), "'^submission/inet/")
end

function TestPostfixRelay:test_hostile_client_text_gives_no_command()
  local d = diagnosis(RELAY_ID, log_line("fail2ban/postfix", "Relay access denied"))
  d.match.captures.client = "1.2.3.4'; rm -rf / #"
  local r = remediate("postfix-relay", d, { mynetworks = "10.0.0.0/8" })
  lu.assertNil(r.steps)
  lu.assertStrContains(notes_of(r), "no client address")
end


-- ==== rules/postfix-sasl.lua ==============================================

local SASL_ID = "communication/postfix-sasl-authentication-failed"

TestPostfixSasl = {}

function TestPostfixSasl:test_many_failures_read_as_attack()
  local line = log_line("fail2ban/postfix", "HOSTNAME[1.1.1.1]: SASL LOGIN")
  local text = string.rep(line .. "\n", 6)
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), { sasl_failure_threshold = 5 },
    { text = text, lines = 6 })
  assert_well_formed(r, "attack by count")
  lu.assertStrContains(notes_of(r), "Password guessing from 1.1.1.1: 6 failures in this input")
  lu.assertStrContains(commands_of(r), "fail2ban-client set postfix-sasl banip 1.1.1.1")
  lu.assertStrContains(commands_of(r), "maxretry = 5")
end

function TestPostfixSasl:test_guessed_user_reads_as_attack()
  local line = log_line("fail2ban/postfix", "sasl_username=admin")
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), {})
  assert_well_formed(r, "attack by user name")
  lu.assertStrContains(notes_of(r), "tried the user name admin")
  lu.assertStrContains(commands_of(r), "banip 192.0.2.152")
end

function TestPostfixSasl:test_login_prompt_reads_as_attack()
  local line = log_line("fail2ban/postfix", "UGFzc3dvcmQ6")
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), {})
  lu.assertStrContains(notes_of(r), "dropped the LOGIN exchange")
end

function TestPostfixSasl:test_own_client_is_broken_not_attack()
  local line = log_line("fail2ban/postfix", "[192.0.2.237]:55729")
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), { mynetworks = "192.0.2.0/24",
    mail_log = "/var/log/maillog" })
  assert_well_formed(r, "own client")
  lu.assertStrContains(notes_of(r), "A misconfigured client, not an attack")
  lu.assertNotStrContains(commands_of(r), "banip")
  lu.assertStrContains(commands_of(r), "/var/log/maillog")
end

function TestPostfixSasl:test_invalid_mechanism_is_client_config()
  local line = log_line("fail2ban/postfix", "Invalid authentication mechanism")
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), {})
  assert_well_formed(r, "mechanism")
  lu.assertStrContains(notes_of(r), "the client asked for CRAM-MD5")
  lu.assertStrContains(commands_of(r), "doveconf auth_mechanisms")
end

function TestPostfixSasl:test_lost_auth_server_is_server_side()
  local line = log_line("fail2ban/postfix", "Connection lost to authentication server")
  local r = remediate("postfix-sasl", diagnosis("communication/postfix-sasl-auth-server-connection-lost", line), {})
  assert_well_formed(r, "server side")
  lu.assertStrContains(notes_of(r), "the authentication backend failed")
  lu.assertNotStrContains(commands_of(r), "banip")
end

function TestPostfixSasl:test_single_failure_undecided()
  local line = log_line("fail2ban/postfix", "[192.0.2.237]:55729")
  local r = remediate("postfix-sasl", diagnosis(SASL_ID, line), {}, { text = line, lines = 1 })
  assert_well_formed(r, "undecided")
  lu.assertStrContains(notes_of(r), "1 failure(s) from 192.0.2.237 in this input, fewer than 5")
  lu.assertStrContains(r.steps[1].title, "Count the failures from 192.0.2.237")
end


-- ==== rules/disk-full.lua =================================================

TestDiskFull = {}

local MOUNTS = { mounts = "/ /var /var/lib/docker /srv" }

function TestDiskFull:test_path_names_mount_and_cleanup()
  local d = diagnosis("storage/no-space-left-on-device", "cp: error writing '/var/tmp/backup.tar': No space left on device")
  local r = remediate("disk-full", d, MOUNTS)
  assert_well_formed(r, "tmp file")
  lu.assertStrContains(notes_of(r), "/var/tmp/backup.tar is on the file system mounted at /var (from vars.mounts)")
  lu.assertStrContains(commands_of(r), "du -xh --max-depth=2 -- /var")
  lu.assertStrContains(commands_of(r), "find /tmp /var/tmp")
  lu.assertStrContains(r.steps[1].check, "df --output=pcent -- /var")
end

function TestDiskFull:test_postgres_relative_path_needs_pgdata()
  local line = 'Dec 04 10:15:03 db postgres[2231]: ERROR:  could not extend file "base/16384/16397": No space left on device'
  local d = diagnosis("database/postgres-no-space-left-on-device", line)
  local with = remediate("disk-full", d, { mounts = MOUNTS.mounts, pgdata = "/srv/pg/15/main/" })
  assert_well_formed(with, "postgres with pgdata")
  lu.assertStrContains(notes_of(with), "/srv/pg/15/main/base/16384/16397 is on the file system mounted at /srv")
  lu.assertStrContains(commands_of(with), "pg_replication_slots")
  local without = remediate("disk-full", d, MOUNTS)
  assert_well_formed(without, "postgres without pgdata")
  lu.assertStrContains(notes_of(without), "set vars.pgdata")
  lu.assertEquals(without.steps[1].title, "Find the full file system")
  lu.assertStrContains(commands_of(without), "pg_stat_archiver")
end

function TestDiskFull:test_docker_layer_write()
  local d = diagnosis("container/docker-no-space-left-on-device",
    "write /var/lib/docker/tmp/GetImageBlob123456: no space left on device")
  local r = remediate("disk-full", d, MOUNTS)
  assert_well_formed(r, "docker")
  lu.assertStrContains(notes_of(r), "mounted at /var/lib/docker")
  lu.assertStrContains(commands_of(r), "docker builder prune -f")
end

function TestDiskFull:test_postfix_queue_file()
  local line = "Mar 12 03:00:01 mail postfix/postdrop[1201]: warning: mail_queue_enter: create file "
    .. "maildrop/123456.1201: No space left on device"
  local r = remediate("disk-full", diagnosis("communication/postfix-no-space-left-on-device", line), MOUNTS)
  assert_well_formed(r, "postfix queue")
  lu.assertStrContains(notes_of(r), "/var/spool/postfix is on the file system mounted at /var")
  lu.assertStrContains(commands_of(r), "postqueue -p")
end

function TestDiskFull:test_inodes_and_target()
  local d = diagnosis("storage/inode-exhaustion",
    "mkdir: cannot create directory '/var/spool/app/tmp': No space left on device (out of inodes)")
  local r = remediate("disk-full", d, { mounts = MOUNTS.mounts, disk_usage_target = 80 })
  assert_well_formed(r, "inodes")
  lu.assertStrContains(commands_of(r), "df -i -- /var")
  lu.assertStrContains(r.steps[1].check, "--output=ipcent")
  lu.assertStrContains(r.steps[1].check, "-lt 80")
end

function TestDiskFull:test_local_mount_table_without_vars()
  local d = diagnosis("storage/no-space-left-on-device", "cp: error writing '/var/tmp/backup.tar': No space left on device")
  local r = remediate("disk-full", d, {})
  assert_well_formed(r, "host mounts")
  lu.assertStrContains(notes_of(r), "(from the mount table of the host running triage)")
end

function TestDiskFull:test_relative_path_not_joined_to_pgdata()
  local line = "tar: var/lib/mysql/ibdata1: Cannot write: No space left on device"
  local d = diagnosis("storage/no-space-left-on-device", line)
  local r = remediate("disk-full", d, { mounts = MOUNTS.mounts, pgdata = "/srv/pg/15/main" })
  assert_well_formed(r, "tar relative path")
  lu.assertNotStrContains(notes_of(r) .. commands_of(r), "/srv/pg/15/main/var")
  lu.assertStrContains(notes_of(r), "relative path var/lib/mysql/ibdata1")
end

function TestDiskFull:test_relative_fragment_capture_ignored()
  local line = "Mar 12 03:00:01 mail postfix/postdrop[1201]: warning: mail_queue_enter: create file "
    .. "maildrop/123456.1201: No space left on device"
  local r = remediate("disk-full", diagnosis("storage/no-space-left-on-device", line), MOUNTS)
  lu.assertNotStrContains(notes_of(r), "/123456.1201")
  lu.assertStrContains(notes_of(r), "/var/spool/postfix")
end


-- ==== rules/sshd.lua ======================================================

TestSshd = {}

local MODES_ID = "ssh/bad-ownership-or-modes"

function TestSshd:test_home_directory_modes()
  local d = diagnosis(MODES_ID, "Apr  3 12:01:15 host sshd[3321]: Authentication refused: bad ownership or modes for directory /home/deploy")
  local r = remediate("sshd", d, {})
  assert_well_formed(r, "home")
  lu.assertStrContains(commands_of(r), "chown deploy -- /home/deploy")
  lu.assertStrContains(commands_of(r), "chmod go-w -- /home/deploy")
  lu.assertStrContains(notes_of(r), "Leave StrictModes on")
end

function TestSshd:test_ssh_dir_and_key_file_modes()
  local dir = remediate("sshd", diagnosis(MODES_ID,
    "Apr  3 12:01:15 host sshd[3321]: Authentication refused: bad ownership or modes for directory /home/deploy/.ssh"), {})
  lu.assertStrContains(commands_of(dir), "chmod 700 -- /home/deploy/.ssh")
  local file = remediate("sshd", diagnosis(MODES_ID,
    "Apr  3 12:01:16 host sshd[3325]: Authentication refused: bad ownership or modes for file /root/.ssh/authorized_keys"), {})
  assert_well_formed(file, "key file")
  lu.assertStrContains(commands_of(file), "chmod 600 -- /root/.ssh/authorized_keys")
  lu.assertStrContains(commands_of(file), "chown root --")
end

function TestSshd:test_strange_path_is_quoted()
  local r = remediate("sshd", diagnosis(MODES_ID,
    "Apr  3 12:01:15 host sshd[1]: Authentication refused: bad ownership or modes for directory /home/x$(id)"), {})
  assert_well_formed(r, "quoted path")
  lu.assertStrContains(commands_of(r), "chmod go-w -- '/home/x$(id)'")
end

function TestSshd:test_failed_password_from_outside()
  local line = log_line("fail2ban/sshd", "Failed password for invalid user ROOT from 194.117.26.69")
  local r = remediate("sshd", diagnosis("ssh/failed-password", line), { ssh_service = "sshd" })
  assert_well_formed(r, "outside")
  lu.assertStrContains(notes_of(r), "194.117.26.69 is not known to this site")
  lu.assertStrContains(commands_of(r), "fail2ban-client set sshd banip 194.117.26.69")
  lu.assertStrContains(commands_of(r), "systemctl reload sshd")
end

function TestSshd:test_failed_password_from_admins()
  local line = log_line("fail2ban/sshd", "Failed password for invalid user ROOT from 194.117.26.69")
  local r = remediate("sshd", diagnosis("ssh/failed-password", line), { admin_networks = "194.117.26.0/24" })
  assert_well_formed(r, "admins")
  lu.assertStrContains(notes_of(r), "inside admin_networks (194.117.26.0/24)")
  lu.assertNotStrContains(commands_of(r), "banip")
  lu.assertStrContains(commands_of(r), "passwd -S -- ROOT")
end

function TestSshd:test_invalid_user_ipv6()
  local line = "Jan 12 10:01:02 host sshd[1402]: Invalid user oracle from 2001:db8::7 port 60112"
  local r = remediate("sshd", diagnosis("ssh/invalid-user", line), { admin_networks = "10.0.0.0/8" })
  assert_well_formed(r, "ipv6")
  lu.assertStrContains(notes_of(r), "2001:db8::7 is outside admin_networks (10.0.0.0/8)")
end


-- ==== every rule loads and declares its ids ===============================

TestRuleFiles = {}

function TestRuleFiles:test_each_shipped_rule_loads()
  local files = assert(script.list_lua_files(DATADIR .. "/rules"))
  lu.assertTrue(#files >= 4, "shipped rules found")
  for _, path in ipairs(files) do
    local s, err = script.load(path, { datadir = DATADIR })
    lu.assertNotNil(s, err)
    local value = s:result()
    lu.assertTrue(type(value.ids) == "table" and #value.ids > 0, path .. " declares ids")
    lu.assertEquals(value.remediate, script.FUNCTION, path .. " has remediate")
    s:close()
  end
end


return lu.LuaUnit.run(table.unpack(SUITE_ARGS or { "-v" }))
