return { vars = { x = {} } }
