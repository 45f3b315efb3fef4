"""Build ranking benchmark queries from a corpus of deadends-schema records.

Each record yields queries of two kinds:
  exact   the record's signature as written;
  varied  the signature with its variable parts (quoted names, numbers,
          paths, IP addresses, hex ids, e-mail addresses) replaced by other
          values of the same shape.
Each kind is put into every wrapper: plain, syslog, a JSON log line, Java,
Python and Go logger formats, and two multi-line traces with the error line
in the middle.

The replacement is deterministic: a record's id seeds its random generator.
"""
import glob
import json
import os
import random
import re
import zlib

NAMES = ["orders_v2", "billing-api", "ReportCache", "tenant42", "sessions", "invoice_items",
         "warehouse", "payments-db", "UserProfile", "checkout", "ledger", "inventory_sync"]
DIRS = ["/srv/app/current", "/opt/acme/releases/2024", "/var/lib/worker/jobs", "/home/deploy/site",
        "/data/shards/07"]
EXTENSIONS = ["log", "py", "conf", "json", "txt"]

QUOTED = re.compile(r"""(?<![A-Za-z])(['"])([^'"\n]{1,120}?)\1(?![A-Za-z])""")
# Quoted words that are part of the message itself rather than a name.
FIXED_WORDS = {"undefined", "null", "none", "never", "any", "string", "number", "object", "true", "false",
               "self", "this", "nonetype", "str", "int", "float", "list", "dict"}
PATH = re.compile(r"(?<![\w.:/])(/[\w.@+-]+){2,}/?")
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b")
NUMBER = re.compile(r"(?<![\w.\-])\d+(?:\.\d+)?(?![\w.]*\w)")
# Numbers that name the error rather than an instance of it stay: errno
# values, SQL error numbers, enhanced mail status codes, HTTP and SMTP
# status codes (100-599) and exit codes.
KEEP_AFTER = re.compile(r"(errno|error|code|status|signal|sqlstate|exit|http|smtp|rfc|section|ora)[\s:=#\[(-]*$",
                        re.IGNORECASE)


def seeded(record_id):
    return random.Random(zlib.crc32(record_id.encode()))


def other_number(rng, text):
    if "." in text:
        whole, frac = text.split(".", 1)
        return "%d.%0*d" % (rng.randint(1, 99), len(frac), rng.randint(0, 10 ** len(frac) - 1))
    if len(text) == 1:
        return str((int(text) + rng.randint(1, 8)) % 10 or 7)
    low = 10 ** (len(text) - 1)
    value = rng.randint(low, low * 10 - 1)
    while str(value) == text:
        value = rng.randint(low, low * 10 - 1)
    return str(value)


def other_path(rng, path):
    base = os.path.basename(path.rstrip("/"))
    ext = base.rsplit(".", 1)[1] if "." in base else rng.choice(EXTENSIONS)
    return "%s/%s.%s" % (rng.choice(DIRS), rng.choice(NAMES).lower(), ext)


def other_hex(rng, text):
    if text.lower().startswith("0x"):
        return "0x" + "".join(rng.choice("0123456789abcdef") for _ in text[2:])
    return "".join(rng.choice("0123456789abcdef") for _ in text)


def other_name(rng, name):
    if PATH.fullmatch(name):
        return other_path(rng, name)
    if "." in name and " " not in name:
        return "com.acme.%s" % rng.choice(NAMES).replace("-", "_").lower()
    replacement = rng.choice(NAMES)
    return replacement if replacement != name else rng.choice(NAMES[::-1])


def is_status_code(text, before):
    return len(text) == 3 and 100 <= int(text) <= 599 or KEEP_AFTER.search(before) is not None


def vary(record_id, signature):
    """Return the signature with its variable parts replaced."""
    rng = seeded(record_id)
    protected = []

    def protect(value):
        protected.append(value)
        return "\0%d\0" % (len(protected) - 1)

    def quoted(m):
        inner = m.group(2)
        if not re.search(r"[A-Za-z0-9]", inner) or len(inner) > 60 or inner.lower() in FIXED_WORDS:
            return m.group(0)
        if inner.isupper() or inner.startswith(".") or inner.isdigit():
            return m.group(0)
        return m.group(1) + protect(other_name(rng, inner)) + m.group(1)

    text = QUOTED.sub(quoted, signature)
    text = EMAIL.sub(lambda m: protect("ops%d@example.net" % rng.randint(1, 99)), text)
    text = PATH.sub(lambda m: protect(other_path(rng, m.group(0))), text)
    text = IPV4.sub(lambda m: protect("10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255),
                                                      rng.randint(1, 254))), text)
    text = HEX.sub(lambda m: protect(other_hex(rng, m.group(0))), text)

    def number(m):
        value = m.group(0)
        if "\0" in text[max(0, m.start() - 1):m.start()]:
            return value
        if is_status_code(value.split(".")[0], text[max(0, m.start() - 12):m.start()]):
            return value
        return other_number(rng, value)

    text = NUMBER.sub(number, text)
    return re.sub(r"\0(\d+)\0", lambda m: protected[int(m.group(1))], text)


def json_string(text):
    return json.dumps(text, ensure_ascii=False)


WRAPPERS = {
    "plain": lambda m: m,
    "syslog": lambda m: "Mar 14 03:12:45 web-01 worker[2314]: " + m,
    "json": lambda m: ('{"ts":"2024-03-14T03:12:45.123Z","level":"error","logger":"app.worker","msg":%s,'
                       '"trace_id":"4bf92f3577b34da6"}' % json_string(m)),
    "java": lambda m: "2024-03-14 03:12:45,123 ERROR [pool-3-thread-7] com.acme.orders.Worker - " + m
                      + " [requestId=7f3a9c1e]",
    "python": lambda m: "2024-03-14 03:12:45,123 - app.worker - ERROR - " + m + " (job 8841)",
    "go": lambda m: "2024/03/14 03:12:45 worker.go:87: " + m + " attempt=3",
    "java-trace": lambda m: "\n".join([
        "2024-03-14 03:12:44,901 INFO  [main] com.acme.orders.Worker - polling queue orders",
        "2024-03-14 03:12:45,101 DEBUG [main] com.acme.orders.Worker - job 8841 picked up by worker 3",
        m,
        "\tat com.acme.orders.Worker.handle(Worker.java:142)",
        "\tat com.acme.orders.Worker.run(Worker.java:88)",
        "\tat java.base/java.lang.Thread.run(Thread.java:833)",
        "2024-03-14 03:12:46,002 INFO  [main] com.acme.orders.Worker - retrying in 5 s",
    ]),
    "python-trace": lambda m: "\n".join([
        "Mar 14 03:12:45 web-01 worker[2314]: INFO starting job 8841",
        "Traceback (most recent call last):",
        '  File "/srv/app/worker.py", line 88, in run',
        "    result = handler(job)",
        '  File "/srv/app/handlers.py", line 41, in handle',
        "    return client.fetch(job.url)",
        m,
        "Mar 14 03:12:46 web-01 worker[2314]: INFO job 8841 will be retried",
    ]),
}


def load_corpus(folder):
    """Return [(id, signature)] of every record below folder, sorted by id."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.json"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        error = record.get("error") or {}
        signature = error.get("signature") or record.get("signature")
        if record.get("id") and signature:
            out.append((record["id"], signature))
    out.sort()
    return out


def build(corpus):
    """Yield (kind, wrapper, record_id, text) for every record, kind and wrapper."""
    for record_id, signature in corpus:
        for kind, message in (("exact", signature), ("varied", vary(record_id, signature))):
            for wrapper, wrap in WRAPPERS.items():
                yield kind, wrapper, record_id, wrap(message)
