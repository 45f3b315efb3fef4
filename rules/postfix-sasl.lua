-- Postfix SASL authentication failures from one address: password
-- guessing, or a client of ours with a stale password or mechanism?
--
-- The evidence, strongest first:
--  - the reason Postfix logged: a lost connection to the auth server is the
--    server's fault, and an invalid mechanism the client's configuration;
--  - whether the address is inside mynetworks, that is one of our clients;
--  - how many failures the same address has in the input;
--  - whether it tried a user name that attackers try.
--
-- Site variables: mynetworks, sasl_failure_threshold (failures that read
-- as an attack, 5 by default), mail_log (the log that the commands read).

local cidr = triage.cidr
local q = triage.shell_quote

local FAILED = triage.regex("\\[(?<client>[0-9A-Fa-f.:]+)\\](?::\\d+)?: SASL (?<mechanism>[\\w-]+) "
  .. "authentication failed:?(?<reason>[^,\\n]*)(?:, sasl_username=(?<user>\\S+))?")

-- Names that password-guessing bots try on mail servers.
local GUESSED_USERS = {
  admin = true, administrator = true, test = true, user = true, info = true, root = true,
  postmaster = true, webmaster = true, support = true, sales = true, office = true, mail = true,
}

-- The LOGIN prompts "Username:" and "Password:", in base64 or decoded: a client that
-- gave up in the middle of the exchange, as scanners do.
local LOGIN_PROMPTS = {
  ["VXNlcm5hbWU6"] = true, ["UGFzc3dvcmQ6"] = true, ["Username:"] = true, ["Password:"] = true,
}

local function trim(s)
  return (tostring(s or ""):match("^%s*(.-)%s*$"))
end

local function parse(d)
  local match = d.match or {}
  local captures = match.captures or {}
  local m = FAILED:match(match.line_text or match.text or "") or {}
  return {
    client = captures.client or m.client,
    mechanism = m.mechanism,
    reason = trim(m.reason),
    user = captures.user or m.user,
  }
end

-- Failures of the same address in the whole input, when the engine passed it.
local function count_failures(context, client)
  if type(context) ~= "table" or type(context.text) ~= "string" then
    return nil
  end
  local n = 0
  for line in context.text:gmatch("[^\n]+") do
    if line:find("[" .. client .. "]", 1, true) then
      local m = FAILED:match(line)
      if m and m.client == client then
        n = n + 1
      end
    end
  end
  return n
end

local function no_new_failures_check(log, client)
  return "! tail -n 5000 " .. q(log) .. " | grep -F -- " .. q("[" .. client .. "]")
    .. " | grep -q 'SASL .* authentication failed'"
end

local function server_side(facts, log)
  return {
    notes = {
      "Postfix lost its connection to the SASL server: the authentication backend failed, "
        .. "not the client at " .. facts.client .. ". Every client fails until it is back.",
    },
    steps = {
      {
        title = "Bring the SASL backend that Postfix uses back",
        commands = {
          "postconf smtpd_sasl_type smtpd_sasl_path",
          "systemctl status dovecot --no-pager || systemctl status saslauthd --no-pager",
          "systemctl restart dovecot    # or saslauthd, as smtpd_sasl_type says",
        },
        check = no_new_failures_check(log, facts.client),
        notes = { "With Dovecot, smtpd_sasl_path must match the auth socket in its 10-master.conf." },
      },
    },
  }
end

local function broken_client(facts, cause, log)
  local find_account = "grep -F -- " .. q("[" .. facts.client .. "]") .. " " .. q(log)
    .. " | grep -o 'sasl_username=[^,]*' | sort | uniq -c"
  local steps = {
    {
      title = "Fix the account settings of the client at " .. facts.client,
      commands = {
        find_account,
        "# then set the current password" .. (facts.user and (" of " .. facts.user) or "")
          .. " in that client's mail settings",
      },
      check = no_new_failures_check(log, facts.client),
    },
  }
  if cause == "mechanism" then
    steps[1] = {
      title = "Make the client at " .. facts.client .. " use a mechanism the server offers",
      commands = {
        "postconf smtpd_sasl_type smtpd_sasl_security_options smtpd_tls_auth_only",
        "doveconf auth_mechanisms    # with smtpd_sasl_type = dovecot",
        "# then set the client to PLAIN or LOGIN over TLS, not " .. (facts.mechanism or "its current one"),
      },
      check = no_new_failures_check(log, facts.client),
    }
  end
  local reason = cause == "mechanism"
    and ("the client asked for " .. (facts.mechanism or "a mechanism") .. ", which the server refused")
    or (facts.client .. " is inside mynetworks, one of your own clients")
  return {
    notes = { "A misconfigured client, not an attack: " .. reason .. "." },
    steps = steps,
  }
end

local function attack(facts, evidence, threshold)
  local client = facts.client
  return {
    notes = { "Password guessing from " .. client .. ": " .. table.concat(evidence, "; ") .. "." },
    steps = {
      {
        title = "Ban repeat offenders with fail2ban's postfix-sasl jail",
        commands = {
          "cat > /etc/fail2ban/jail.d/postfix-sasl.local <<'CONF'\n[postfix-sasl]\nenabled  = true\n"
            .. "maxretry = " .. threshold .. "\nfindtime = 10m\nbantime  = 1h\nCONF",
          "fail2ban-client reload",
        },
        check = "fail2ban-client status postfix-sasl",
        notes = { "On hosts that log to the journal only, add backend = systemd to the jail." },
      },
      {
        title = "Ban " .. client .. " now",
        commands = { "fail2ban-client set postfix-sasl banip " .. q(client) },
        check = "fail2ban-client status postfix-sasl | grep -qF -- " .. q(client),
      },
      {
        title = "Limit AUTH commands per client in Postfix",
        commands = {
          "postconf -e 'smtpd_client_auth_rate_limit = 10'",
          "postfix reload",
        },
        check = "postconf -h smtpd_client_auth_rate_limit | grep -qx 10",
        notes = { "Postfix 3.1 and later; counted per anvil_rate_time_unit (60 s by default)." },
      },
    },
  }
end

local function undecided(facts, count, threshold, log)
  local counted = count and string.format("%d failure(s) from %s in this input, fewer than %d",
    count, facts.client, threshold) or ("one failure from " .. facts.client)
  return {
    notes = {
      counted .. ": not enough to tell password guessing from a client with a stale password.",
    },
    steps = {
      {
        title = "Count the failures from " .. facts.client .. " in the mail log",
        commands = {
          "grep -F -- " .. q("[" .. facts.client .. "]") .. " " .. q(log)
            .. " | grep -c 'SASL .* authentication failed' || true",
        },
        check = no_new_failures_check(log, facts.client),
        notes = { string.format("%d or more read as an attack: run triage on the log with this rule "
          .. "again to get the ban steps.", threshold) },
      },
    },
  }
end

return {
  ids = {
    "communication/postfix-sasl-authentication-failed",
    "communication/postfix-sasl-auth-server-connection-lost",
    "**postfix-sasl-auth**",
  },
  description = "SASL authentication failures: password guessing or a broken client",

  remediate = function(d, vars, context)
    local facts = parse(d)
    if not facts.client or not cidr.parse_address(facts.client) then
      return { notes = { "The line names no client address; nothing address-specific to propose." } }
    end
    facts.client = cidr.format(facts.client)
    local log = tostring(vars.mail_log or "/var/log/mail.log")
    local threshold = math.tointeger(tonumber(vars.sasl_failure_threshold)) or 5
    local reason = facts.reason:lower()

    if reason:find("authentication server", 1, true) or reason:find("connect to", 1, true) then
      return server_side(facts, log)
    end
    if reason:find("mechanism", 1, true) then
      return broken_client(facts, "mechanism", log)
    end
    if vars.mynetworks and cidr.match_list(tostring(vars.mynetworks), facts.client).inside then
      return broken_client(facts, "trusted", log)
    end

    local evidence = {}
    local count = count_failures(context, facts.client)
    if count and count >= threshold then
      evidence[#evidence + 1] = string.format("%d failures in this input", count)
    end
    if facts.user and GUESSED_USERS[facts.user:lower()] then
      evidence[#evidence + 1] = "it tried the user name " .. facts.user
    end
    if LOGIN_PROMPTS[facts.reason] then
      evidence[#evidence + 1] = "it dropped the LOGIN exchange at a prompt, as scanners do"
    end
    if #evidence > 0 then
      return attack(facts, evidence, threshold)
    end
    return undecided(facts, count, threshold, log)
  end,
}
