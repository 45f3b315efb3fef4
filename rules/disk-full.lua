-- "No space left on device": which mount is full, and what to clean there.
--
-- The path comes from the record's captures (path) or from the line; a
-- PostgreSQL path relative to the data directory is joined to pgdata, and
-- another relative path is left out, since the line does not say what it
-- is relative to. The
-- mount is the longest mount point that contains the path, from vars.mounts
-- or else the mount table of the host running triage. What to clean
-- depends on what fills it: container images and build cache, PostgreSQL
-- WAL held by a replication slot or a failing archive_command, the
-- journal and rotated logs, the package cache, or the mail queue.
--
-- Site variables: mounts (mount points, a list), pgdata, disk_usage_target
-- (the checks require usage below this percentage, 90 by default).

local q = triage.shell_quote

-- An absolute path in the line, quoted or not, before the error text.
local LINE_PATH = triage.regex("(?:^|[\\s'\"(=])(?<path>/[^\\s'\"():,\\[\\]]{1,512})[)'\"]?:?\\s"
  .. "[^\\n]{0,80}?no space left on device")
-- A PostgreSQL file path, relative to its data directory.
local PG_PATH = triage.regex("could not (?:extend|write to|create) file \"(?<path>[^\"]{1,512})\"")

-- True when path starts a word of line, not the middle of a relative path
-- such as maildrop/123 or base/16384.
local function starts_word(line, path)
  local at = line:find(path, 1, true)
  return at ~= nil and (at == 1 or line:sub(at - 1, at - 1):find("[%s'\"(=]") ~= nil)
end

local function path_of(d)
  local match = d.match or {}
  local captures = match.captures or {}
  local line = match.line_text or match.text or ""
  local pg = PG_PATH:match(line)
  if pg then
    return pg.path, line
  end
  local path = captures.path or captures.mount
  if path and path:sub(1, 1) == "/" and not starts_word(line, path) then
    path = nil
  end
  if not path then
    local m = LINE_PATH:match(line)
    path = m and m.path
  end
  return path, line
end

local function usage_check(mount, target)
  return string.format("test \"$(df --output=pcent -- %s | tail -n 1 | tr -dc 0-9)\" -lt %d", q(mount), target)
end

local function kind_of(d, path, line)
  local id = d.id or ""
  if id:find("postgres", 1, true) or line:find("postgres", 1, true) then
    return "postgres"
  end
  if id:find("docker", 1, true) or path:find("^/var/lib/docker") or path:find("^/var/lib/containerd") then
    return "containers"
  end
  if id:find("postfix", 1, true) or path:find("^/var/spool/postfix") or line:find("postfix/", 1, true) then
    return "mail"
  end
  if path:find("^/var/log") then
    return "logs"
  end
  if path:find("^/var/cache/apt") or path:find("^/var/lib/apt") then
    return "packages"
  end
  if path:find("^/tmp") or path:find("^/var/tmp") then
    return "tmp"
  end
  return "other"
end

local CLEANUP = {
  containers = {
    title = "Remove unused container data: build cache and dangling images",
    commands = {
      "docker system df",
      "docker builder prune -f",
      "docker image prune -f",
      "# images that no container uses as well: docker image prune -a -f",
    },
  },
  postgres = {
    title = "Find what PostgreSQL keeps: WAL held by a slot or a failing archive",
    commands = {
      "psql -X -c 'SELECT slot_name, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), "
        .. "restart_lsn)) AS retained FROM pg_replication_slots'",
      "psql -X -c 'SELECT failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver'",
      "# drop an inactive slot that retains WAL: psql -c \"SELECT pg_drop_replication_slot('NAME')\"",
    },
    notes = {
      "Never delete files in pg_wal by hand: the cluster will not start without them.",
      "A query spilling temporary files shows in pg_stat_activity; temp_file_limit caps them.",
    },
  },
  mail = {
    title = "See what fills the mail queue and the mailboxes",
    commands = {
      "postqueue -p | tail -n 1",
      "du -xsh /var/spool/postfix/* /var/mail 2>/dev/null | sort -h",
      "# delete the deferred queue only after reading it: postsuper -d ALL deferred",
    },
  },
  logs = {
    title = "Shrink the journal and remove old rotated logs",
    commands = {
      "journalctl --vacuum-size=500M",
      "find /var/log -xdev -type f -name '*.[0-9].gz' -mtime +30 -print -delete",
    },
  },
  packages = {
    title = "Empty the package cache",
    commands = { "apt-get clean    # RHEL, Fedora: dnf clean all" },
  },
  tmp = {
    title = "List old temporary files",
    commands = { "find /tmp /var/tmp -xdev -type f -atime +7 -size +10M -print" },
  },
}

return {
  ids = {
    "storage/no-space-left-on-device",
    "storage/inode-exhaustion",
    "database/postgres-no-space-left-on-device",
    "container/docker-no-space-left-on-device",
    "communication/postfix-no-space-left-on-device",
    "communication/postfix-insufficient-system-storage",
    "**no-space-left**",
    "**disk-full**",
  },
  description = "Disk full: name the full mount and what to clean on it",

  remediate = function(d, vars)
    local target = math.tointeger(tonumber(vars.disk_usage_target)) or 90
    local path, line = path_of(d)
    local relative = nil
    if path and path:sub(1, 1) ~= "/" then
      local postgres = PG_PATH:match(line) or (d.id or ""):find("postgres", 1, true) or line:find("postgres", 1, true)
      if postgres and vars.pgdata then
        path = tostring(vars.pgdata):gsub("/$", "") .. "/" .. path
      else
        relative = not postgres and path or nil
        path = nil
      end
    end
    if not path and ((d.id or ""):find("postfix", 1, true) or line:find("postfix/", 1, true)) then
      path = "/var/spool/postfix" -- queue files are named relative to it
    end

    local mounts = vars.mounts and triage.list(vars.mounts) or triage.mounts()
    local mount = path and triage.mount_of(path, mounts)
    local inodes = (d.id or ""):find("inode", 1, true) ~= nil
    local notes, steps = {}, {}

    if mount then
      notes[#notes + 1] = string.format("%s is on the file system mounted at %s%s.", path, mount,
        vars.mounts and " (from vars.mounts)" or " (from the mount table of the host running triage)")
    elseif path then
      notes[#notes + 1] = "No mount point holds " .. path .. "; `df` below names the file system."
      mount = path
    elseif relative then
      notes[#notes + 1] = "The line names the relative path " .. relative .. ", and not what it is "
        .. "relative to; `df` below lists every file system."
    else
      notes[#notes + 1] = "The line names no path; for PostgreSQL set vars.pgdata to its data directory."
    end

    local kind = kind_of(d, path or mount or "", line)
    if not mount then
      local check = "! df --output=pcent -x tmpfs -x devtmpfs | tail -n +2 | tr -dc '0-9\\n' | grep -qx 100"
      steps[1] = {
        title = "Find the full file system",
        commands = { "df -h -x tmpfs -x devtmpfs", "df -i -x tmpfs -x devtmpfs" },
        check = check,
      }
      local cleanup = CLEANUP[kind]
      if cleanup then
        steps[2] = { title = cleanup.title, commands = cleanup.commands, check = check, notes = cleanup.notes }
      end
      return { notes = notes, steps = steps }
    end

    local check = usage_check(mount, target)
    steps[#steps + 1] = {
      title = string.format("See what fills %s%s", mount, inodes and " (inodes: many small files)" or ""),
      commands = inodes and {
        "df -i -- " .. q(mount),
        "find " .. q(mount) .. " -xdev -type d -size +1M -print    # directories with very many entries",
      } or {
        "df -h -- " .. q(mount),
        "du -xh --max-depth=2 -- " .. q(mount) .. " 2>/dev/null | sort -h | tail -n 20",
        "lsof -nP +L1 2>/dev/null | grep -F -- " .. q(mount) .. " || true    # deleted files still held open",
      },
      check = inodes and string.format("test \"$(df --output=ipcent -- %s | tail -n 1 | tr -dc 0-9)\" -lt %d",
        q(mount), target) or check,
      notes = { "A deleted file that a process holds open keeps its space until that process restarts." },
    }

    local cleanup = CLEANUP[kind]
    if cleanup then
      steps[#steps + 1] = {
        title = cleanup.title,
        commands = cleanup.commands,
        check = check,
        notes = cleanup.notes,
      }
    end
    return { notes = notes, steps = steps }
  end,
}
