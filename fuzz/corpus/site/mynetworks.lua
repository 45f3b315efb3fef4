-- A site whose mail relays live in two private ranges.
return {
  vars = { mynetworks = "10.20.0.0/16, 10.30.0.0/16" },
  substitute = { ["mynetworks = 192.168.1.0/24"] = "mynetworks = ${mynetworks}" },
}
