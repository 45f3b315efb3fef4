return { vars = { x = string.rep("x", 1 << 31) } }
