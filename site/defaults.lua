-- Installed defaults: the lowest site layer. /etc/triage/site.lua, the
-- user's ~/.config/triage/site.lua and each --site file override these
-- values; `triage site --show` prints the effective ones and where each
-- comes from. The shipped rules in rules/ read these variables.
return {
  vars = {
    -- Mail log that commands in remediation steps search (Debian; RHEL:
    -- /var/log/maillog; journal-only hosts: leave it and use journalctl).
    mail_log = "/var/log/mail.log",

    -- SASL authentication failures from one address, within one input, at
    -- which rules/postfix-sasl.lua calls it a password-guessing attack
    -- rather than a misconfigured client.
    sasl_failure_threshold = 5,

    -- systemd unit of the OpenSSH server: "ssh" on Debian and Ubuntu,
    -- "sshd" on RHEL, Fedora and SUSE.
    ssh_service = "ssh",

    -- A file system counts as full again above this usage in percent; the
    -- checks of rules/disk-full.lua test for less.
    disk_usage_target = 90,

    -- Site values with no sensible default, set them in a site file:
    --   mynetworks      Postfix's mynetworks, as `postconf -h mynetworks` prints it
    --   domains         mail domains the site receives mail for (relay denied: domain or client?)
    --   admin_networks  networks your administrators log in from (ssh), CIDR list
    --   mounts          mount points to consider instead of this host's mount table
    --   pgdata          PostgreSQL data directory, for relative paths in its errors
  },
}
