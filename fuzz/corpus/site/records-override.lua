return {
  vars = { relay = "mx1.example.net", runbook = "https://wiki.example.net/mail" },
  substitute = { ["Restart the widget"] = "Restart ${relay}" },
  records = {
    ["mail/widget-failure"] = {
      workarounds = { add = { { action = "Call ${relay}", success_rate = 0.5 } }, drop = { 2 }, order = { 2, 1 } },
      dead_ends = { replace = { [1] = { fail_rate = 0.95 } } },
      notes = { "see ${runbook}" },
      runbook = "${runbook}",
      confidence = 0.9,
    },
    ["mail/*"] = { notes = { "glob" } },
  },
}
