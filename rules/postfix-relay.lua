-- Postfix "Relay access denied": is the client inside mynetworks, and is
-- the recipient's domain one this server should receive mail for?
--
-- Outside mynetworks, the same line has three common causes, which the
-- recipient domain and the client distinguish:
--   * an outside server delivers to a domain of the site that Postfix does
--     not list (mydestination, virtual_*_domains, relay_domains): add the
--     domain, never the sender;
--   * a user's mail client or a host of the site sends without SASL: SASL
--     submission on port 587, or, for a trusted server with a fixed
--     address, mynetworks;
--   * a spam bot probes for an open relay (often unknown[...] or a bare IP
--     in HELO): the rejection is right and nothing should change.
-- Adding the client to mynetworks lets it relay anywhere unauthenticated,
-- so it is offered last and never first. Inside mynetworks:
-- permit_mynetworks should have accepted it, so a restriction list rejects
-- first, or the service that rejected the mail overrides mynetworks or its
-- restrictions in master.cf.
--
-- Site variables: mynetworks (Postfix's value, as `postconf -h mynetworks`
-- prints it); when it is not set, the client is taken to be outside and
-- the mynetworks command extends the live value. domains (the mail domains
-- the site receives for, a space or comma separated list): when set, the
-- rule reports whether the recipient domain is one of them.

local cidr = triage.cidr
local q = triage.shell_quote

-- The client as smtpd logs it: "RCPT from host.example[192.0.2.1]:".
local RCPT_CLIENT = triage.regex("(?:RCPT|connect) from [^\\[\\s]*\\[(?<client>[^\\]]+)\\]")
-- The syslog name of the smtpd that rejected: postfix/smtpd, postfix/submission/smtpd.
local SMTPD = triage.regex("\\b(?<syslog>postfix[\\w.-]*(?:/[\\w.-]+)*?)/smtpd\\[")

-- The recipient, as in "<alice@example.org>: Relay access denied" or
-- "to=<alice@example.org>".
local RECIPIENT = triage.regex("<[^<>@\\s]+@(?<domain>[^<>@\\s]+)>: Relay access denied|\\bto=<[^<>@\\s]+@(?<to>[^<>@\\s]+)>")
local CLIENT_NAME = triage.regex("(?:RCPT|connect) from (?<name>[^\\[\\s]*)\\[")
local HELO = triage.regex("\\bhelo=<(?<helo>[^<>\\s]*)>")
-- Text that may stand in a shell command: a domain name.
local DOMAIN_NAME = "^[%w][%w.-]*%.[%a][%w-]*$"

local function line_of(d)
  local match = d.match or {}
  return match.line_text or match.text or ""
end

local function recipient_domain(d)
  local m = RECIPIENT:match(line_of(d))
  local domain = m and (m.domain or m.to)
  if type(domain) ~= "string" or not domain:match(DOMAIN_NAME) then
    return nil
  end
  return domain:lower()
end

-- Why the client looks like a relay probe rather than a host of the site,
-- or nil.
local function probe_signs(d)
  local line = line_of(d)
  local signs = {}
  local name = CLIENT_NAME:match(line)
  if name and name.name == "unknown" then
    signs[#signs + 1] = "its address has no verified host name (unknown[...])"
  end
  local helo = HELO:match(line)
  if helo and (helo.helo:match("^%d+%.%d+%.%d+%.%d+$") or helo.helo:match("^%[")) then
    signs[#signs + 1] = "it greets with a bare IP address (helo=<" .. helo.helo .. ">)"
  end
  if #signs == 0 then
    return nil
  end
  return table.concat(signs, " and ")
end

-- Whether domain is in the site's list vars.domains; nil when the list is not set.
local function site_domain(vars, domain)
  local list = vars.domains
  if type(list) ~= "string" or list == "" then
    return nil
  end
  for entry in list:gmatch("[^%s,]+") do
    if entry:lower() == domain then
      return true
    end
  end
  return false
end

local function client_of(d)
  local match = d.match or {}
  local captures = match.captures or {}
  if type(captures.client) == "string" and captures.client ~= "" then
    return captures.client
  end
  local m = RCPT_CLIENT:match(match.line_text or match.text or "")
  return m and m.client or nil
end

-- The master.cf service whose smtpd rejected: "submission" for
-- postfix/submission/smtpd, "smtp" for plain postfix/smtpd.
local function service_of(d)
  local match = d.match or {}
  local m = SMTPD:match(match.line_text or match.text or "")
  local syslog = m and m.syslog or "postfix"
  return syslog:match("^[^/]+/([^/]+)$") or "smtp"
end

-- The step that shows whether Postfix receives mail for domain.
local function domain_step(domain, ours)
  local hint = ours == nil and " Set vars.domains in your site file to the domains the site "
    .. "receives mail for, and this rule tells these cases apart." or ""
  local lists = "mydestination virtual_mailbox_domains virtual_alias_domains relay_domains"
  return {
    title = ours and ("Add " .. domain .. " to the Postfix domain list that fits it")
      or ("Check whether " .. domain .. " is a domain this server receives mail for"),
    commands = { "postconf -x " .. lists },
    check = "postconf -hx " .. lists .. " | tr ', ' '\\n\\n' | grep -qixF -- " .. q(domain),
    notes = {
      (ours and "Postfix lists it nowhere, so add it: " or "If it should be and no list has it: ")
        .. "virtual_mailbox_domains for mailboxes on this "
        .. "server, relay_domains when this server forwards to an inner mail server (with "
        .. "transport_maps), mydestination for local Unix accounts; then postfix reload. "
        .. "The client needs no change then." .. hint,
    },
  }
end

local function outside(client, networks, decided, d, vars)
  local host = cidr.host_network(client)
  local domain = recipient_domain(d)
  local ours = domain and site_domain(vars, domain)
  local probe = probe_signs(d)
  local notes = {}
  local new_value
  if networks then
    local sep = networks:find(",", 1, true) and ", " or " "
    new_value = q("mynetworks = " .. networks .. sep .. host)
    notes[#notes + 1] = string.format("%s is outside mynetworks (%s)%s.", client, networks,
      decided and "" or "; some entries could not be evaluated here, so check them on the server")
  else
    new_value = "\"mynetworks = $(postconf -h mynetworks) " .. host .. "\""
    notes[#notes + 1] = string.format("vars.mynetworks is not set, so %s is taken to be outside "
      .. "mynetworks; set it in your site file to the value of `postconf -h mynetworks`.", client)
  end
  notes[#notes + 1] = string.format("Postfix refused to relay for %s because it is neither in "
    .. "mynetworks nor authenticated with SASL%s.", client,
    domain and (", and " .. domain .. " is not a domain it receives mail for") or "")
  if ours then
    notes[#notes + 1] = string.format("%s is one of the site's domains (vars.domains), so Postfix "
      .. "lacks it in its domain lists: fix the domain, not the client.", domain)
  elseif ours == false then
    notes[#notes + 1] = string.format("%s is not one of the site's domains (vars.domains): the client "
      .. "asked this server to pass mail on to an outside domain.", domain)
  end
  if probe and not ours then
    notes[#notes + 1] = string.format("%s looks like a spam bot probing for an open relay: %s. "
      .. "If so, the rejection is right and nothing should change; fail2ban's postfix filter "
      .. "blocks repeat offenders.", client, probe)
  end

  local steps = {}
  if domain and ours ~= false then
    steps[#steps + 1] = domain_step(domain, ours)
  end
  if ours then
    return { notes = notes, steps = steps }
  end
  steps[#steps + 1] = {
    title = (#steps > 0 and "Or have " or "Have ") .. client .. " authenticate: SASL submission on port 587",
    commands = {
      "postconf -Me " .. q("submission/inet=submission inet n - y - - smtpd"),
      "postconf -Pe " .. q("submission/inet/syslog_name=postfix/submission")
        .. " " .. q("submission/inet/smtpd_tls_security_level=encrypt")
        .. " " .. q("submission/inet/smtpd_sasl_auth_enable=yes")
        .. " " .. q("submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject"),
      "postfix reload",
      "# then set the mail client on " .. client .. " to port 587, STARTTLS and its own account",
    },
    check = "postconf -P submission/inet/smtpd_sasl_auth_enable | grep -q '= yes$'",
    notes = {
      "For a user's mail client or an application that sends as a user.",
      "Needs a SASL backend: smtpd_sasl_type and smtpd_sasl_path, e.g. Dovecot's auth socket.",
    },
  }
  steps[#steps + 1] = {
    title = "Or let " .. client .. " relay without authenticating: add " .. host .. " to mynetworks",
    commands = { "postconf -e " .. new_value, "postfix reload" },
    check = "postconf -h mynetworks | grep -qF -- " .. q(host),
    notes = {
      "Only for a server of yours with a fixed address that you trust to send mail anywhere: "
        .. "clients in mynetworks relay without authenticating. Never for an address you do not run.",
      networks and "Add " .. host .. " to vars.mynetworks in your site file too." or nil,
    },
  }
  for i = 2, #steps do
    steps[i].alternative = true
  end
  return { notes = notes, steps = steps }
end

local function inside(client, entry, service)
  local notes = {
    string.format("%s is inside mynetworks (entry %s), so permit_mynetworks should have let it "
      .. "relay.", client, entry),
    "Either a restriction list rejects before permit_mynetworks, or the " .. service
      .. " service overrides mynetworks or its restrictions in master.cf, or the running "
      .. "Postfix was not reloaded after mynetworks changed.",
  }
  local restrictions = service .. "/inet/(mynetworks|smtpd_relay_restrictions|smtpd_recipient_restrictions)"
  local steps = {
    {
      title = "Compare the live mynetworks and restrictions with the site's",
      commands = {
        "postconf mynetworks smtpd_relay_restrictions smtpd_recipient_restrictions",
        "postconf -P | grep -E -- " .. q("^" .. restrictions .. " ") .. " || true",
      },
      check = "postconf -h mynetworks | grep -qF -- " .. q(entry),
      notes = { "A master.cf override listed by postconf -P wins over main.cf for that service." },
    },
    {
      title = "Put permit_mynetworks before the relay check",
      commands = {
        "postconf -e " .. q("smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
          .. "defer_unauth_destination"),
        "postfix reload",
      },
      check = "postconf -h smtpd_relay_restrictions | grep -q '^permit_mynetworks'",
      notes = {
        "This is Postfix's default since 2.10. If smtpd_recipient_restrictions lists "
          .. "reject_unauth_destination, permit_mynetworks must come before it there too.",
      },
    },
  }
  return { notes = notes, steps = steps }
end

return {
  ids = { "communication/smtp-554-5-7-0-relay-denied", "**relay-denied**", "**relay-access-denied**" },
  description = "Postfix relay denied: a missing domain, SASL submission or mynetworks for the client, or the restriction order",

  remediate = function(d, vars)
    local client = client_of(d)
    if not client or not cidr.parse_address(client) then
      return { notes = { "The line names no client address, so no address-specific change is proposed." } }
    end
    client = cidr.format(client)
    local networks = vars.mynetworks
    if networks == nil or networks == "" then
      return outside(client, nil, false, d, vars)
    end
    networks = tostring(networks)
    local result = cidr.match_list(networks, client)
    if result.inside then
      return inside(client, result.entry, service_of(d))
    end
    return outside(client, networks, result.certain, d, vars)
  end,
}
