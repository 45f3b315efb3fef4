"""Measure how well triage ranks records, on corpus queries and on labelled real log lines.

usage (from the repository root, after building):
  python3 bench/ranking/run.py --driver BUILD/bench/ranking/rank_bench [--baseline] [--corpus DIR]
  python3 bench/ranking/run.py --driver BUILD/bench/ranking/rank_bench --labels-only [--check]

Corpus part: queries.py builds exact and varied queries in every wrapper from
the corpus (default ../shared/corpora/deadends/canons); rank_bench ranks them
with the corpus loaded; a query is found at rank k when the record
at rank k has the query record's DOMAIN/SLUG or the same signature. When no
regex matches, triage's guesses are the ranking (they are shown to the user
in their place), and the share of queries answered that way is reported.
--baseline also ranks the queries with the upstream lookup's scoring as
re-implemented in baseline.py, for comparison.

Labels part: labels.tsv names real lines of ../shared/logs (FILE:LINE) with
the record of records/ that each should get, or "none"; rank_bench ranks them
with records/ loaded and without guesses. Precision is the share of
diagnosed lines whose first diagnosis is the expected record; recall is the
share of lines that expect a record whose first diagnosis is that record.
--check exits 1 when precision < 0.95 or recall < 0.9.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import queries  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def run_driver(driver, records, items, guess, top, jobs=os.cpu_count() or 1):
    """Rank items [(qid, text)] with rank_bench in jobs processes; return {qid: (source, [ids])}."""
    command = [driver, "--top", str(top)] + (["--guess"] if guess else []) + records
    processes = []
    with tempfile.TemporaryDirectory() as folder:
        for j in range(jobs):
            path = os.path.join(folder, "queries-%d.tsv" % j)
            with open(path, "w", encoding="utf-8") as f:
                f.writelines("%s\t%s\n" % (qid, escape(text)) for qid, text in items[j::jobs])
            stdin = open(path, "rb")
            stdout = open(path + ".out", "w+b")
            processes.append((subprocess.Popen(command, stdin=stdin, stdout=stdout), stdin, stdout))
        out = {}
        for process, stdin, stdout in processes:
            process.wait()
            stdin.close()
            if process.returncode != 0:
                raise SystemExit("rank_bench failed with status %d" % process.returncode)
            stdout.seek(0)
            for line in stdout.read().decode().splitlines():
                fields = line.split("\t")
                out[fields[0]] = (fields[1], fields[2:])
            stdout.close()
    return out


def slug(record_id):
    return "/".join(record_id.split("/")[:2])


def rank_of(expected, ranked, signatures):
    """1-based rank of the first relevant record in ranked, or None."""
    for i, rid in enumerate(ranked):
        if slug(rid) == slug(expected) or signatures.get(rid) == signatures[expected]:
            return i + 1
    return None


class Table:
    def __init__(self):
        self.rows = collections.OrderedDict()

    def add(self, key, rank, guessed):
        row = self.rows.setdefault(key, {"n": 0, "p1": 0, "p3": 0, "rr": 0.0, "guessed": 0})
        row["n"] += 1
        row["p1"] += rank == 1
        row["p3"] += rank is not None and rank <= 3
        row["rr"] += 1.0 / rank if rank else 0.0
        row["guessed"] += guessed

    def metrics(self, key):
        row = self.rows[key]
        n = row["n"]
        return n, row["p1"] / n, row["p3"] / n, row["rr"] / n, row["guessed"] / n


def corpus_bench(args):
    corpus = queries.load_corpus(args.corpus)
    signatures = dict(corpus)
    items, meta = [], {}
    for i, (kind, wrapper, record_id, text) in enumerate(queries.build(corpus[::args.sample])):
        if args.wrappers and wrapper not in args.wrappers.split(","):
            continue
        qid = "q%d" % i
        items.append((qid, text))
        meta[qid] = (kind, wrapper, record_id)
    started = time.time()
    ranked = run_driver(args.driver, [args.corpus], items, guess=True, top=10)
    elapsed = time.time() - started

    table = Table()
    misses = []
    for qid, (kind, wrapper, record_id) in meta.items():
        source, ids = ranked[qid]
        rank = rank_of(record_id, ids, signatures)
        table.add((kind, wrapper), rank, source == "guess")
        if rank != 1:
            misses.append((kind, wrapper, record_id, source, ids[:3]))

    base = None
    if args.baseline:
        import baseline
        sampled = set(record_id for record_id, _ in corpus[::args.baseline_sample])
        base_items = [(qid, text) for qid, text in items if meta[qid][2] in sampled]
        base = baseline.rank_all(args.corpus, base_items, top=10)

    print("Corpus: %d records, %d queries, ranked in %.1f s by rank_bench." % (len(corpus), len(items), elapsed))
    if base is not None:
        print("Upstream columns: the queries of every %s record (%d queries), ranked by baseline.py."
              % (ordinal(args.baseline_sample), len(base)))
    print()
    header = "| kind | wrapper | queries | P@1 | P@3 | MRR | by guess |"
    if base is not None:
        header += " upstream P@1 | upstream P@3 | upstream MRR |"
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    base_table = Table()
    if base is not None:
        for qid, ids in base.items():
            kind, wrapper, record_id = meta[qid]
            base_table.add((kind, wrapper), rank_of(record_id, ids, signatures), False)
    for key in table.rows:
        n, p1, p3, mrr, guessed = table.metrics(key)
        line = "| %s | %s | %d | %.4f | %.4f | %.4f | %.3f |" % (key[0], key[1], n, p1, p3, mrr, guessed)
        if base is not None:
            _, bp1, bp3, bmrr, _ = base_table.metrics(key)
            line += " %.3f | %.3f | %.3f |" % (bp1, bp3, bmrr)
        print(line)
    if args.misses:
        with open(args.misses, "w", encoding="utf-8") as f:
            for kind, wrapper, record_id, source, ids in misses:
                f.write("%s\t%s\t%s\t%s\t%s\n" % (kind, wrapper, record_id, source, " ".join(ids)))


def ordinal(n):
    return {1: "", 2: "2nd", 3: "3rd"}.get(n, "%dth" % n)


def read_labels(path):
    """Return [(file, line_number, expected)] from labels.tsv."""
    labels = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 2 or ":" not in fields[0]:
                raise SystemExit("%s:%d: expected FILE:LINE<TAB>ID-or-none, got %r" % (path, n, line))
            where, expected = fields[0], fields[1]
            name, number = where.rsplit(":", 1)
            labels.append((name, int(number), expected))
    return labels


def log_line(name, number, cache):
    if name not in cache:
        with open(os.path.join(SHARED, "logs", name), encoding="utf-8", errors="replace") as f:
            cache[name] = f.read().split("\n")
    return cache[name][number - 1]


def labels_bench(args):
    labels = read_labels(args.labels)
    cache = {}
    items = [("l%d" % i, log_line(name, number, cache)) for i, (name, number, _) in enumerate(labels)]
    ranked = run_driver(args.driver, [args.records], items, guess=False, top=3)
    diagnosed = correct = expecting = found = 0
    errors = []
    for i, (name, number, expected) in enumerate(labels):
        source, ids = ranked["l%d" % i]
        top = ids[0] if source == "match" and ids else None
        if top is not None:
            diagnosed += 1
            correct += top == expected
        if expected != "none":
            expecting += 1
            found += top == expected
        if top != (None if expected == "none" else expected):
            errors.append("%s:%d expected %s, got %s" % (name, number, expected, top or "none"))
    precision = correct / diagnosed if diagnosed else 1.0
    recall = found / expecting if expecting else 1.0
    print("Labelled lines: %d (%d expect a record, %d expect none); records loaded from %s.\n"
          % (len(labels), expecting, len(labels) - expecting, os.path.relpath(args.records, ROOT)))
    print("| lines | diagnosed | correct first diagnosis | precision | recall |")
    print("|---|---|---|---|---|")
    print("| %d | %d | %d | %.3f | %.3f |" % (len(labels), diagnosed, correct, precision, recall))
    for e in errors:
        print("  miss: " + e, file=sys.stderr)
    return 0 if not args.check or (precision >= 0.95 and recall >= 0.9) else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--driver", required=True, help="path to the built rank_bench")
    parser.add_argument("--corpus", default=os.path.join(SHARED, "corpora", "deadends", "canons"))
    parser.add_argument("--records", default=os.path.join(ROOT, "records"))
    parser.add_argument("--labels", default=os.path.join(HERE, "labels.tsv"))
    parser.add_argument("--baseline", action="store_true", help="also rank with the upstream scoring")
    parser.add_argument("--baseline-sample", type=int, default=4,
                        help="rank the queries of every Nth record with the upstream scoring (default 4)")
    parser.add_argument("--labels-only", action="store_true")
    parser.add_argument("--corpus-only", action="store_true")
    parser.add_argument("--sample", type=int, default=1, help="use every Nth corpus record as a query (default 1)")
    parser.add_argument("--wrappers", help="comma-separated wrappers to use (default all)")
    parser.add_argument("--check", action="store_true", help="fail when the labelled lines miss the targets")
    parser.add_argument("--misses", help="write the corpus queries not ranked first to this file")
    args = parser.parse_args()
    rc = 0
    if not args.labels_only:
        corpus_bench(args)
        print()
    if not args.corpus_only:
        rc = labels_bench(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
