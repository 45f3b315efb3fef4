-- A site file as an operator would write it: the mail relay networks and
-- the local wording of the relay workaround.
return {
  vars = {
    mynetworks = "10.20.0.0/16, 10.30.0.0/16",
    relayhost = "[smtp.corp.example]:587",
  },
  substitute = {
    ["mynetworks = 192.168.1.0/24"] = "mynetworks = ${mynetworks}",
  },
  records = {
    ["communication/**"] = {
      notes = { "Mail team: #mail-oncall" },
      runbook = "https://wiki.corp.example/mail",
    },
    ["communication/smtp-554-5-7-0-relay-denied"] = {
      workarounds = {
        drop = { 3 },
        add = {
          { action = "Send through the corporate relay ${relayhost}",
            success_rate = 0.95,
            how = "postconf -e 'relayhost = ${relayhost}'",
            action_zh = "通过公司中继 ${relayhost} 发送" },
        },
      },
    },
  },
}
