"""The upstream corpus lookup's ranking, re-implemented for comparison.

The deadends.dev lookup (generator/lookup.py at commit 0096dbce) scores every
record against the whole message with Python's `re` (case-insensitive): 100
for a regex hit, 50 when the lowercase signature contains the message or the
message the signature, and 5 per shared word (split on non-word characters)
that is not on its short list of stop words; every record scoring above 0 is
a result, best first, ties broken by the record's fix_success_rate. This
module reproduces that scoring from its description; the stop words below are
a list of the same kind (articles, auxiliaries, generic error words), not a
copy of upstream's.
"""
import glob
import json
import multiprocessing
import os
import re

STOP_WORDS = frozenset("""
a an the and or not no of in on at to by for from with as is are was were be been being it its this that
these those if when which while has have had do does did can could cannot error errors failed failure
exception
""".split()) | {""}

_records = None


def load(folder):
    records = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.json"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        error = data.get("error") or {}
        try:
            pattern = re.compile(error.get("regex", ""), re.IGNORECASE)
        except re.error:
            continue
        signature = (error.get("signature") or "").lower()
        verdict = data.get("verdict") or {}
        records.append((data["id"], pattern, signature, set(re.split(r"\W+", signature)) - STOP_WORDS,
                        float(verdict.get("fix_success_rate") or 0)))
    return records


def rank(text, top):
    message = text.lower()
    words = set(re.split(r"\W+", message))
    scored = []
    for order, (record_id, pattern, signature, sig_words, fix_rate) in enumerate(_records):
        score = 100 if pattern.search(text) else 0
        if signature in message or message in signature:
            score += 50
        score += 5 * len(sig_words & words)
        if score > 0:
            scored.append((-score, -fix_rate, order, record_id))
    scored.sort()
    return [s[3] for s in scored[:top]]


def _init(folder):
    global _records
    _records = load(folder)


def _rank_item(item):
    qid, text, top = item
    return qid, rank(text, top)


def rank_all(folder, items, top=10, jobs=os.cpu_count() or 1):
    """Rank items [(qid, text)]; return {qid: [ids]}."""
    with multiprocessing.Pool(jobs, initializer=_init, initargs=(folder,)) as pool:
        return dict(pool.imap_unordered(_rank_item, [(qid, text, top) for qid, text in items], chunksize=64))
