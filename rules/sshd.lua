-- OpenSSH server: refused keys because of file modes, and failed logins.
--
-- "bad ownership or modes": sshd's StrictModes rejects a home directory,
-- ~/.ssh or authorized_keys that others may write. The rule proposes the
-- chown and chmod for the exact path in the line.
-- Failed passwords and invalid users: from inside admin_networks it is one
-- of your own people with a wrong password or key; from outside it is
-- password guessing, answered with a fail2ban ban and key-only logins.
--
-- Site variables: admin_networks (networks your administrators log in
-- from), ssh_service (the systemd unit: "ssh" on Debian, "sshd" on RHEL).

local cidr = triage.cidr
local q = triage.shell_quote

local MODES = triage.regex("bad ownership or modes for (?<kind>directory|file) (?<path>\\S+)")
local CLIENT = triage.regex("from (?<client>[0-9A-Fa-f.:]*[0-9A-Fa-f])(?: port \\d+)?")
local USER = triage.regex("(?:for|user) (?:invalid user )?(?<user>\\S+) from ")

local function line_of(d)
  local match = d.match or {}
  return match.line_text or match.text or ""
end

-- The account that owns path: /home/NAME/..., /root, or nil.
local function owner_of(path)
  if path == "/root" or path:find("^/root/") then
    return "root"
  end
  return path:match("^/home/([^/]+)")
end

local function fix_modes(d)
  local captures = (d.match or {}).captures or {}
  local m = MODES:match(line_of(d)) or {}
  local path = captures.path or m.path
  if not path or path:sub(1, 1) ~= "/" then
    return { notes = { "The line names no absolute path; run `namei -l` on the user's ~/.ssh/authorized_keys." } }
  end
  local is_dir = (m.kind or ""):lower() == "directory" or not path:find("authorized_keys", 1, true)
  local owner = owner_of(path)
  local commands = { "namei -l -- " .. q(path) }
  if owner then
    commands[#commands + 1] = "chown " .. q(owner) .. " -- " .. q(path)
  end
  if is_dir and path:match("/%.ssh$") then
    commands[#commands + 1] = "chmod 700 -- " .. q(path)
  elseif is_dir then
    commands[#commands + 1] = "chmod go-w -- " .. q(path)
  else
    commands[#commands + 1] = "chmod 600 -- " .. q(path)
  end
  commands[#commands + 1] = "restorecon -Rv -- " .. q(path) .. " 2>/dev/null || true    # SELinux hosts"
  return {
    notes = {
      "sshd (StrictModes) refuses keys while " .. path .. " is writable by group or others"
        .. (owner and (" or not owned by " .. owner) or "") .. ".",
      "Leave StrictModes on: turning it off lets any user who can write there log in as this one.",
    },
    steps = {
      {
        title = "Make " .. path .. " writable by its owner only",
        commands = commands,
        check = "test -z \"$(find " .. q(path) .. " -maxdepth 0 -perm /022)\"",
      },
    },
  }
end

local function failed_login(d, vars)
  local captures = (d.match or {}).captures or {}
  local line = line_of(d)
  local client = captures.client or (CLIENT:match(line) or {}).client
  if not client or not cidr.parse_address(client) then
    return { notes = { "The line names no client address; nothing address-specific to propose." } }
  end
  client = cidr.format(client)
  local user = captures.user or (USER:match(line) or {}).user
  local service = tostring(vars.ssh_service or "ssh")
  local admins = vars.admin_networks and cidr.match_list(tostring(vars.admin_networks), client)

  if admins and admins.inside then
    return {
      notes = {
        string.format("%s is inside admin_networks (%s): one of your own people with a wrong password "
          .. "or key%s, not an attack.", client, admins.entry, user and (" for " .. user) or ""),
      },
      steps = {
        {
          title = "Check the account" .. (user and (" " .. user) or "") .. " and the client's key",
          commands = {
            user and ("passwd -S -- " .. q(user)) or "# name the account: passwd -S USER",
            user and ("faillock --user " .. q(user) .. " || true") or "# faillock --user USER",
            "journalctl -u " .. q(service) .. " --since -1h | grep -F -- " .. q(client) .. " | tail -n 20",
          },
          check = "journalctl -u " .. q(service) .. " --since -10min | grep -F -- " .. q(client)
            .. " | grep -q Accepted",
        },
      },
    }
  end

  local outside_note = vars.admin_networks
    and (client .. " is outside admin_networks (" .. tostring(vars.admin_networks) .. ")")
    or (client .. " is not known to this site (set vars.admin_networks to tell your own networks apart)")
  return {
    notes = { outside_note .. ": treat failed logins from it as password guessing." },
    steps = {
      {
        title = "Ban " .. client .. " with fail2ban's sshd jail",
        commands = { "fail2ban-client set sshd banip " .. q(client) },
        check = "fail2ban-client status sshd | grep -qF -- " .. q(client),
        notes = { "Enable the jail first if it is off: [sshd] enabled = true in /etc/fail2ban/jail.d/sshd.local." },
      },
      {
        title = "Allow key logins only",
        commands = {
          "printf '%s\\n' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' "
            .. "> /etc/ssh/sshd_config.d/50-keys-only.conf",
          "sshd -t",
          "systemctl reload " .. q(service),
        },
        check = "sshd -T | grep -qx 'passwordauthentication no'",
        notes = { "Make sure your own key works in a second session before you close the first." },
      },
    },
  }
end

return {
  ids = {
    "ssh/bad-ownership-or-modes",
    "ssh/failed-password",
    "ssh/invalid-user",
    "ssh/maximum-authentication-attempts-exceeded",
  },
  description = "sshd: fix file modes for StrictModes; tell own users from password guessing",

  remediate = function(d, vars)
    if d.id == "ssh/bad-ownership-or-modes" then
      return fix_modes(d)
    end
    return failed_login(d, vars)
  end,
}
