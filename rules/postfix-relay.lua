-- Postfix "Relay access denied": is the client inside mynetworks?
--
-- Outside: propose the exact postconf change that lets that one address
-- relay, or, as the alternative, SASL-authenticated submission on port 587
-- for the client. Inside: permit_mynetworks should have accepted it, so a
-- restriction list rejects first, or the service that rejected the mail
-- overrides mynetworks or its restrictions in master.cf.
--
-- Site variables: mynetworks (Postfix's value, as `postconf -h mynetworks`
-- prints it). When it is not set, the client is taken to be outside and
-- the command extends the live value.

local cidr = triage.cidr
local q = triage.shell_quote

-- The client as smtpd logs it: "RCPT from host.example[192.0.2.1]:".
local RCPT_CLIENT = triage.regex("(?:RCPT|connect) from [^\\[\\s]*\\[(?<client>[^\\]]+)\\]")
-- The syslog name of the smtpd that rejected: postfix/smtpd, postfix/submission/smtpd.
local SMTPD = triage.regex("\\b(?<syslog>postfix[\\w.-]*(?:/[\\w.-]+)*?)/smtpd\\[")

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

local function outside(client, networks, decided)
  local host = cidr.host_network(client)
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
    .. "mynetworks nor authenticated with SASL.", client)

  local steps = {
    {
      title = "Let " .. client .. " relay: add " .. host .. " to mynetworks",
      commands = { "postconf -e " .. new_value, "postfix reload" },
      check = "postconf -h mynetworks | grep -qF -- " .. q(host),
      notes = {
        "Only for a host you trust to send mail anywhere: clients in mynetworks relay "
          .. "without authenticating.",
        networks and "Add " .. host .. " to vars.mynetworks in your site file too." or nil,
      },
    },
    {
      title = "Or have " .. client .. " authenticate: SASL submission on port 587",
      alternative = true,
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
        "Needs a SASL backend: smtpd_sasl_type and smtpd_sasl_path, e.g. Dovecot's auth socket.",
      },
    },
  }
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
  description = "Postfix relay denied: add the client to mynetworks, or fix the restriction order",

  remediate = function(d, vars)
    local client = client_of(d)
    if not client or not cidr.parse_address(client) then
      return { notes = { "The line names no client address, so no address-specific change is proposed." } }
    end
    client = cidr.format(client)
    local networks = vars.mynetworks
    if networks == nil or networks == "" then
      return outside(client, nil, false)
    end
    networks = tostring(networks)
    local result = cidr.match_list(networks, client)
    if result.inside then
      return inside(client, result.entry, service_of(d))
    end
    return outside(client, networks, result.certain)
  end,
}
