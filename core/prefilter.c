/*
** Prefilter: Vectorscan databases that find the candidate records of a line.
**
** Owns: the split of records into three groups, the databases, their disk
** cache, and the per-line candidate search.
** Depends on: literals.c, Vectorscan (libhs), zlib (crc32), internal.h for
** the records and rank.c for the signature patterns ranking matches too.
**
** A record hits a line when its regex or its signature pattern matches
** (rank_signature_pattern). Records are found in one of three ways:
**   literal  every hit contains literal text (literals.c). A record is a
**            candidate when every literal of one of its clauses occurs.
**            Vectorscan searches for one literal of each clause, its
**            anchor; the others are checked in the line when it occurs. A
**            search for literals runs near memory speed, which matching
**            the regexes themselves, even in Vectorscan, does not.
**   pattern  no useful literal: the regex and signature pattern go into
**            the database themselves, compiled in prefilter mode, which
**            may report false positives but never misses a match.
**   always   neither works: PCRE2 runs on every line.
** The anchors and the pattern records share one database, so a line costs
** one Vectorscan call.
**
** Vectorscan reads bytes and PCRE2 reads UTF-8 characters, so a line with
** bytes above 0x7F is searched as an ASCII stand-in with one byte per
** character: valid multibyte characters and invalid bytes become 0x1A,
** except U+212A KELVIN SIGN and U+017F LONG S, which PCRE2's caseless UTF
** mode matches with k and s and which therefore become 'k' and 's'. On
** ASCII text the byte and character readings agree. Anchors that hold
** non-ASCII text (scripts without case only, see literals.c) are searched
** in the line's own bytes by a second, small database. Pattern records
** whose regex could tell the stand-in byte from the character (non-ASCII
** text, escapes by code point, \h, \v, \R, \p, [:cntrl:] and the like)
** are matched with PCRE2 on such lines instead.
*/
#include <errno.h>
#include <fcntl.h>
#include <hs/hs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "prefilter.h"

/* Literals shorter than MIN_ANCHOR occur in nearly every line, so they are
** never searched for: a regex with a clause whose literals are all shorter
** goes into the pattern database. Literals of MIN_EXTRA or more characters
** still count as extras of a clause, checked once its anchor occurs: in
** "nz.*eta" the "nz" cuts down the lines that "eta" alone would let by. */
#define MIN_ANCHOR 3
#define MIN_EXTRA 2
/* Bump when the layout or anything that decides the databases changes:
** literals.c, the grouping of records, or the Vectorscan flags. */
#define CACHE_FORMAT 7u
#define CACHE_MAGIC "TRIAGEPF"
/* Cache entries kept in the folder; older ones are removed. */
#define CACHE_KEEP 8
/* The byte that stands for a non-ASCII character on a mapped line. */
#define STAND_IN 0x1A
/* Literals of a clause besides its anchor. */
#define EXTRAS (REQUIREMENT_MAX_TERMS - 1)

/* Anchors go without HS_FLAG_SINGLEMATCH. Measured on the corpus and
** real logs, a call per line is then cheaper, even with the repeated
** reports that on_match has to drop. */
static const unsigned LITERAL_FLAGS = HS_FLAG_CASELESS;
static const unsigned PATTERN_FLAGS = HS_FLAG_PREFILTER | HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL;

/* {==== Vectorscan's code for this CPU
**
** Vectorscan built for x86 (as Debian builds it) carries one copy of its
** scanning code per CPU generation, and hs_scan runs the newest one that
** the CPU supports. In Vectorscan 5.4.9, the AVX2 and AVX-512 copies miss
** matches. The test was random databases of a few short literals or
** patterns, on lines with long runs of one letter, against PCRE2. There
** the AVX-512 copy missed 79-173 of about 100,000 true pattern matches and
** 1-5 of 23,000 literal matches, and the AVX2 copy 0-8 pattern matches.
** The SSE4.2 copy ("corei7") missed none, and it searches the corpus
** anchors as fast (0.40-0.47 us a line for all three). So the databases
** are compiled for a CPU without AVX2 and searched with corei7_hs_scan,
** which the library exports beside hs_scan. Where it does not (another
** build, or another architecture), hs_scan serves.
** NOTE: corei7_hs_scan is not part of Vectorscan's documented API. Once a
** release with the fixes serves, this choice should go. */

typedef hs_error_t (*scan_function)(const hs_database_t *db, const char *data, unsigned length, unsigned flags,
                                    hs_scratch_t *scratch, match_event_handler on_event, void *context);

/* A weak reference: it resolves against the shared library and against a
** static libhs.a alike, and is NULL where the library lacks the symbol. */
#if defined(__x86_64__) || defined(__i386__)
extern hs_error_t corei7_hs_scan(const hs_database_t *db, const char *data, unsigned length, unsigned flags,
                                 hs_scratch_t *scratch, match_event_handler on_event, void *context)
    __attribute__((weak));
#endif

struct scanner {
    scan_function scan;
    const hs_platform_info_t *platform; /* what the databases are compiled for; NULL for this CPU */
    const char *name;                   /* for the cache key */
};

static hs_platform_info_t sse42_platform;
static struct scanner chosen_scanner;
static pthread_once_t scanner_once = PTHREAD_ONCE_INIT;

/* Return the SSE4.2 scanner when the library has it and the CPU can run
** it, else NULL. */
static scan_function find_sse42_scan(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (corei7_hs_scan == NULL || !__builtin_cpu_supports("sse4.2") || !__builtin_cpu_supports("popcnt"))
        return NULL;
    return corei7_hs_scan;
#else
    return NULL;
#endif
}

/* Pick the scanner and the platform to compile for, once per process. */
static void choose_scanner(void)
{
    chosen_scanner = (struct scanner){hs_scan, NULL, "hs_scan"};
    scan_function scan = find_sse42_scan();
    if (scan == NULL || hs_populate_platform(&sse42_platform) != HS_SUCCESS)
        return;
    sse42_platform.cpu_features = 0;
    chosen_scanner = (struct scanner){scan, &sse42_platform, "corei7_hs_scan"};
}

/* Return the scanner that this process uses. */
static const struct scanner *scanner(void)
{
    pthread_once(&scanner_once, choose_scanner);
    return &chosen_scanner;
}

/* }==== */

struct prefilter {
    size_t record_count;
    scan_function scan; /* the scanner that the databases were compiled for */

    /* Literal search. Only one literal of each clause, its anchor, goes
    ** into the database: the longest, so usually the rarest. A common
    ** short word such as "error" then seldom costs a database match.
    ** Literal i anchors the clauses postings[posting_start[i] ..
    ** posting_start[i + 1]). Clause c belongs to record clause_record[c]
    ** and needs clause_extra[c] more literals, checked in the lowercased
    ** line once its anchor is found: extra k of clause c is literal
    ** clause_extras[c * EXTRAS + k], the text pool[extra_offset[i]] of
    ** extra_length[i] bytes. Many clauses share extras, so a line checks
    ** each extra at most once. */
    hs_database_t *db;      /* ASCII anchors (ids < literal_count) and pattern records
                            ** (id literal_count + record) */
    hs_database_t *wide_db; /* anchors with non-ASCII bytes, ids as in db */
    uint32_t literal_count;
    uint32_t *posting_start;
    uint32_t *postings;
    uint32_t posting_count;
    uint32_t *clause_record;
    uint8_t *clause_extra;
    uint32_t *clause_extras;
    uint32_t clause_count;
    uint32_t *extra_offset;
    uint8_t *extra_length;
    uint32_t extra_count;
    char *pool;
    uint32_t pool_len;

    uint32_t *always; /* records matched on every line */
    uint32_t always_count;
    uint32_t *utf; /* pattern records also matched on every non-ASCII line */
    uint32_t utf_count;

    uint32_t literal_records, pattern_records;
    struct prefilter_info info;
};

struct prefilter_scratch {
    const struct prefilter *prefilter;
    hs_scratch_t *hs; /* serves both databases */
    uint32_t *found;          /* the anchors found on this line */
    uint8_t *is_found;        /* per anchor: 1 when in found */
    size_t found_count, found_cap;
    uint8_t *extra_state;     /* per extra literal: 0 not checked yet, 1 in the line, 2 not */
    uint32_t *checked;        /* extras with a state on this line */
    size_t checked_count;
    char *lowered;            /* the line in lowercase, built when a clause needs it */
    size_t lowered_cap;
    size_t lowered_len;
    int lowered_ready;
    struct pair_set pairs; /* of the lowercased line */
    int line_ascii;        /* the last line has ASCII bytes only, so lowered is the line's */
    uint8_t *is_candidate;    /* per record */
    uint32_t *candidates;
    size_t candidate_count;
    char *mapped;             /* the ASCII stand-in of a non-ASCII line */
    size_t mapped_cap;
    char *folded;             /* the line with KELVIN SIGN and LONG S as k and s */
    size_t folded_cap;
};

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* {==== grouping the records */

/* Whether a pattern reads the same on the ASCII stand-in of a line as PCRE2
** reads the line: no non-ASCII or control bytes, no escapes by code point,
** and no class that treats the stand-in byte apart from other characters.
** The stand-in also turns U+017F and U+212A into the word characters s and
** k. A pattern with \W, a word boundary or a negated class may match those
** letters on the line and not on the stand-in, so it reads differently. */
static int reads_alike_on_stand_in(const char *pattern)
{
    static const char *const risky[] = {"[:cntrl:]", "[:^cntrl:]", "\\W", "\\b", "\\B", "[^", "[:^"};
    for (const unsigned char *p = (const unsigned char *)pattern; *p; p++) {
        if (*p >= 0x80 || *p < 0x20 || *p == 0x7F)
            return 0;
        if (*p == '\\' && p[1] != '\0') {
            p++;
            if (strchr("xocNhvRpPX0123456789", (char)*p) != NULL)
                return 0;
        }
    }
    for (size_t i = 0; i < sizeof risky / sizeof *risky; i++)
        if (strstr(pattern, risky[i]) != NULL)
            return 0;
    return 1;
}

static int has_non_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80)
            return 1;
    return 0;
}

/* Vectorscan flags for a pattern record. The scanned text is always ASCII,
** so UTF-8 mode, which needs valid UTF-8 input, is safe and lets a
** quantifier after a non-ASCII character apply to the whole character. */
static unsigned pattern_flags(const char *regex)
{
    return PATTERN_FLAGS | (has_non_ascii(regex) ? HS_FLAG_UTF8 : 0);
}

struct literal_table {
    char **text;
    size_t *length;
    size_t count, cap;
    uint32_t *slots; /* open addressing, UINT32_MAX when free */
    size_t slot_cap;
    /* (anchor literal, clause) pairs in the order they were found */
    uint32_t *pair_literal, *pair_clause;
    size_t pair_count, pair_cap;
};

static int grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *grown = realloc(*items, n * size);
    if (grown == NULL)
        return -1;
    *items = grown;
    *cap = n;
    return 0;
}

static int literal_rehash(struct literal_table *t)
{
    size_t cap = t->slot_cap ? t->slot_cap * 2 : 1024;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (slots == NULL)
        return -1;
    memset(slots, 0xFF, cap * sizeof *slots);
    for (size_t i = 0; i < t->count; i++) {
        size_t s = (size_t)hash_bytes(t->text[i], t->length[i]) & (cap - 1);
        while (slots[s] != UINT32_MAX)
            s = (s + 1) & (cap - 1);
        slots[s] = (uint32_t)i;
    }
    free(t->slots);
    t->slots = slots;
    t->slot_cap = cap;
    return 0;
}

/* Id of a literal, added when new; -1 when out of memory. */
static long literal_id(struct literal_table *t, const char *text, size_t len)
{
    if ((t->count + 1) * 2 > t->slot_cap && literal_rehash(t) != 0)
        return -1;
    size_t s = (size_t)hash_bytes(text, len) & (t->slot_cap - 1);
    while (t->slots[s] != UINT32_MAX) {
        uint32_t i = t->slots[s];
        if (t->length[i] == len && memcmp(t->text[i], text, len) == 0)
            return i;
        s = (s + 1) & (t->slot_cap - 1);
    }
    size_t cap = t->cap;
    if (grow((void **)&t->text, &cap, t->count + 1, sizeof *t->text) != 0 ||
        grow((void **)&t->length, &t->cap, t->count + 1, sizeof *t->length) != 0)
        return -1;
    t->text[t->count] = malloc(len + 1);
    if (t->text[t->count] == NULL)
        return -1;
    memcpy(t->text[t->count], text, len);
    t->text[t->count][len] = '\0';
    t->length[t->count] = len;
    t->slots[s] = (uint32_t)t->count;
    return (long)t->count++;
}

static void literal_table_free(struct literal_table *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->text[i]);
    free(t->text);
    free(t->length);
    free(t->slots);
    free(t->pair_literal);
    free(t->pair_clause);
}

/* Capacities of the growing arrays while building. */
struct build_caps {
    size_t clauses, pool, extras;
};

static int grow_clauses(struct prefilter *pf, struct build_caps *caps)
{
    if (pf->clause_count + 1 <= caps->clauses)
        return 0;
    size_t cap = caps->clauses ? caps->clauses * 2 : 1024;
    uint32_t *records = realloc(pf->clause_record, cap * sizeof *records);
    if (records == NULL)
        return -1;
    pf->clause_record = records;
    uint8_t *extra = realloc(pf->clause_extra, cap);
    if (extra == NULL)
        return -1;
    pf->clause_extra = extra;
    uint32_t *extras = realloc(pf->clause_extras, cap * EXTRAS * sizeof *extras);
    if (extras == NULL)
        return -1;
    pf->clause_extras = extras;
    caps->clauses = cap;
    return 0;
}

/* Id of an extra literal, added to the pool when new; -1 when out of
** memory. The table t only finds texts already added. */
static long extra_id(struct prefilter *pf, struct literal_table *t, struct build_caps *caps, const char *text,
                     size_t len)
{
    size_t before = t->count;
    long id = literal_id(t, text, len);
    if (id < 0 || (size_t)id < before)
        return id;
    size_t cap = caps->extras;
    if (grow((void **)&pf->pool, &caps->pool, (size_t)pf->pool_len + len, 1) != 0 ||
        grow((void **)&pf->extra_offset, &cap, (size_t)id + 1, sizeof *pf->extra_offset) != 0 ||
        grow((void **)&pf->extra_length, &caps->extras, (size_t)id + 1, sizeof *pf->extra_length) != 0)
        return -1;
    memcpy(pf->pool + pf->pool_len, text, len);
    pf->extra_offset[id] = pf->pool_len;
    pf->extra_length[id] = (uint8_t)len;
    pf->pool_len += (uint32_t)len;
    pf->extra_count = (uint32_t)id + 1;
    return id;
}

/* Words found in most logs whatever went wrong. A clause is anchored on a
** literal that is not one of them when it has one, so a common word does
** not wake up every clause that mentions it. The common word is then
** checked as an extra. Only speed depends on this list, never which
** records match. */
static const char *const COMMON_WORDS[] = {
    "error", "errors", "failed", "failure", "fail", "time", "timeout", "timed", "client", "server",
    "connection", "connect", "connected", "received", "receive", "request", "response", "not", "found",
    "invalid", "denied", "refused", "unable", "cannot", "could", "warning", "info", "debug", "user",
    "users", "session", "service", "status", "state", "process", "file", "files", "open", "close",
    "closed", "start", "started", "stop", "stopped", "read", "write", "data", "message", "system",
    "network", "host", "port", "address", "version", "value", "default", "config", "configuration",
    "exception", "code", "null", "true", "false", "type", "name", "new", "from", "with", "for", "the",
    "and", "this", "that", "auth", "authentication", "password", "login", "root", "kernel", "disk",
    "memory", "block", "lock", "worker", "thread", "task", "job", "http", "https", "www", "com", "org",
    "net", "get", "post", "set", "add", "remove", "update", "delete", "create", "send", "sent", "load",
    "loaded", "run", "running", "exit", "exited", "missing", "limit", "exceeded", "out", "end", "all",
    "any", "one", "two",
};

static int is_common_word(const char *literal, size_t len)
{
    while (len > 0 && !((unsigned char)literal[0] >= 'a' && (unsigned char)literal[0] <= 'z')) {
        literal++;
        len--;
    }
    while (len > 0 && !((unsigned char)literal[len - 1] >= 'a' && (unsigned char)literal[len - 1] <= 'z'))
        len--;
    for (size_t i = 0; i < sizeof COMMON_WORDS / sizeof *COMMON_WORDS; i++)
        if (strlen(COMMON_WORDS[i]) == len && memcmp(COMMON_WORDS[i], literal, len) == 0)
            return 1;
    return 0;
}

/* Pick the literal of a clause to search for: the longest that is not a
** common word, because the longest is usually the rarest. The clause must
** have a literal of MIN_ANCHOR characters or more. */
static unsigned choose_anchor(const struct requirement_clause *clause)
{
    unsigned best = 0;
    int best_common = 1, found = 0;
    for (unsigned k = 0; k < clause->count; k++) {
        if (clause->length[k] < MIN_ANCHOR)
            continue;
        int common = is_common_word(clause->literal[k], clause->length[k]);
        if (!found || (best_common && !common) ||
            (common == best_common && clause->length[k] > clause->length[best])) {
            best = k;
            best_common = common;
            found = 1;
        }
    }
    return best;
}

/* Add the clauses of one record's requirement: the anchor of each to the
** anchor table, the other literals to the extra table. */
static int add_literal_record(struct prefilter *pf, struct literal_table *anchors, struct literal_table *extras,
                              struct build_caps *caps, uint32_t record, const struct requirement *req)
{
    for (size_t c = 0; c < req->count; c++) {
        const struct requirement_clause *clause = &req->clause[c];
        if (grow_clauses(pf, caps) != 0)
            return -1;
        uint32_t id = pf->clause_count++;
        pf->clause_record[id] = record;
        unsigned anchor = choose_anchor(clause);
        /* Extras longest first: a long literal is the likeliest to be
        ** missing, which ends the check of the clause early. */
        unsigned order[REQUIREMENT_MAX_TERMS], extra = 0;
        for (unsigned k = 0; k < clause->count; k++) {
            if (k == anchor)
                continue;
            unsigned at = extra++;
            while (at > 0 && clause->length[order[at - 1]] < clause->length[k]) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = k;
        }
        for (unsigned k = 0; k < extra; k++) {
            long e = extra_id(pf, extras, caps, clause->literal[order[k]], clause->length[order[k]]);
            if (e < 0)
                return -1;
            pf->clause_extras[(size_t)id * EXTRAS + k] = (uint32_t)e;
        }
        pf->clause_extra[id] = (uint8_t)extra;
        long lit = literal_id(anchors, clause->literal[anchor], clause->length[anchor]);
        size_t pair_cap = anchors->pair_cap;
        if (lit < 0 ||
            grow((void **)&anchors->pair_literal, &pair_cap, anchors->pair_count + 1, sizeof *anchors->pair_literal) != 0 ||
            grow((void **)&anchors->pair_clause, &anchors->pair_cap, anchors->pair_count + 1,
                 sizeof *anchors->pair_clause) != 0)
            return -1;
        anchors->pair_literal[anchors->pair_count] = (uint32_t)lit;
        anchors->pair_clause[anchors->pair_count] = id;
        anchors->pair_count++;
    }
    return 0;
}

/* Lay the (anchor literal, clause) pairs out as posting lists per literal. */
static int build_postings(struct prefilter *pf, const struct literal_table *t)
{
    pf->literal_count = (uint32_t)t->count;
    pf->posting_count = (uint32_t)t->pair_count;
    pf->posting_start = calloc(t->count + 1, sizeof *pf->posting_start);
    pf->postings = malloc((t->pair_count ? t->pair_count : 1) * sizeof *pf->postings);
    if (pf->posting_start == NULL || pf->postings == NULL)
        return -1;
    for (size_t i = 0; i < t->pair_count; i++)
        pf->posting_start[t->pair_literal[i] + 1]++;
    for (size_t i = 0; i < t->count; i++)
        pf->posting_start[i + 1] += pf->posting_start[i];
    uint32_t *fill = malloc((t->count ? t->count : 1) * sizeof *fill);
    if (fill == NULL)
        return -1;
    memcpy(fill, pf->posting_start, t->count * sizeof *fill);
    for (size_t i = 0; i < t->pair_count; i++)
        pf->postings[fill[t->pair_literal[i]]++] = t->pair_clause[i];
    free(fill);
    return 0;
}

static int is_wide(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return 1;
    return 0;
}

/* Compile the anchors with non-ASCII bytes on their own, matched on the
** line's bytes (the stand-in replaces those bytes). */
static int compile_wide_literals(struct prefilter *pf, const struct literal_table *t)
{
    const char **texts = malloc((t->count ? t->count : 1) * sizeof *texts);
    size_t *lengths = malloc((t->count ? t->count : 1) * sizeof *lengths);
    unsigned *flags = malloc((t->count ? t->count : 1) * sizeof *flags);
    unsigned *ids = malloc((t->count ? t->count : 1) * sizeof *ids);
    int rc = -1;
    if (texts == NULL || lengths == NULL || flags == NULL || ids == NULL) {
        set_error("out of memory building the literal database");
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (!is_wide(t->text[i], t->length[i]))
            continue;
        texts[n] = t->text[i];
        lengths[n] = t->length[i];
        flags[n] = LITERAL_FLAGS;
        ids[n++] = (unsigned)i;
    }
    rc = 0;
    if (n == 0)
        goto done;
    hs_compile_error_t *error = NULL;
    if (hs_compile_lit_multi(texts, flags, ids, lengths, (unsigned)n, HS_MODE_BLOCK, scanner()->platform,
                             &pf->wide_db, &error) != HS_SUCCESS) {
        set_error("Vectorscan could not compile %zu literals: %s", n, error != NULL ? error->message : "unknown error");
        hs_free_compile_error(error);
        rc = -1;
    }
done:
    free(texts);
    free(lengths);
    free(flags);
    free(ids);
    return rc;
}

/* A literal as a Vectorscan expression: every byte but letters and digits
** escaped. */
static char *escape_literal(const char *text, size_t len)
{
    char *out = malloc(len * 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            *o++ = (char)c;
        else
            o += sprintf(o, "\\x%02x", c);
    }
    *o = '\0';
    return out;
}

static int push_u32(uint32_t **list, uint32_t *count, uint32_t value)
{
    uint32_t *grown = realloc(*list, ((size_t)*count + 1) * sizeof **list);
    if (grown == NULL)
        return -1;
    grown[(*count)++] = value;
    *list = grown;
    return 0;
}

/* A pattern of a record for the pattern database: its regex, or the
** signature pattern that ranking also matches (rank_signature_pattern). */
struct expression {
    uint32_t record;
    const char *pattern;
};

/* Move every expression of record out of the list, from index i on. */
static size_t drop_record(struct expression *list, size_t count, uint32_t record)
{
    size_t kept = 0;
    for (size_t i = 0; i < count; i++)
        if (list[i].record != record)
            list[kept++] = list[i];
    return kept;
}

static int in_list(const uint32_t *list, uint32_t count, uint32_t value)
{
    for (uint32_t i = 0; i < count; i++)
        if (list[i] == value)
            return 1;
    return 0;
}

/* Compile the database of ASCII anchors and pattern records. A pattern
** record with an expression that Vectorscan rejects even in prefilter mode
** moves to the always group. */
static int compile_database(struct prefilter *pf, const struct literal_table *t, struct expression *list,
                            size_t count)
{
    size_t max = t->count + count;
    const char **patterns = calloc(max ? max : 1, sizeof *patterns);
    unsigned *flags = malloc((max ? max : 1) * sizeof *flags);
    unsigned *ids = malloc((max ? max : 1) * sizeof *ids);
    size_t literals = 0;
    int rc = -1;
    if (patterns == NULL || flags == NULL || ids == NULL)
        goto oom;
    for (size_t i = 0; i < t->count; i++) {
        if (is_wide(t->text[i], t->length[i]))
            continue;
        if ((patterns[literals] = escape_literal(t->text[i], t->length[i])) == NULL)
            goto oom;
        flags[literals] = LITERAL_FLAGS;
        ids[literals++] = (unsigned)i;
    }
    /* Checking each expression alone is fast and keeps one bad one from
    ** failing the whole compile below. */
    for (size_t i = 0; i < count;) {
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *error = NULL;
        if (hs_expression_info(list[i].pattern, pattern_flags(list[i].pattern), &info, &error) == HS_SUCCESS) {
            free(info);
            i++;
            continue;
        }
        hs_free_compile_error(error);
        uint32_t record = list[i].record;
        if (push_u32(&pf->always, &pf->always_count, record) != 0)
            goto oom;
        count = drop_record(list, count, record);
        i = 0;
    }
    while (literals + count > 0) {
        for (size_t i = 0; i < count; i++) {
            patterns[literals + i] = list[i].pattern;
            flags[literals + i] = pattern_flags(list[i].pattern);
            ids[literals + i] = (unsigned)(t->count + list[i].record);
        }
        hs_compile_error_t *error = NULL;
        if (hs_compile_multi(patterns, flags, ids, (unsigned)(literals + count), HS_MODE_BLOCK, scanner()->platform,
                             &pf->db, &error) == HS_SUCCESS)
            break;
        int bad = error != NULL ? error->expression : -1;
        if (bad < (int)literals || (size_t)bad >= literals + count) {
            set_error("Vectorscan could not compile %zu literals and %zu patterns: %s", literals, count,
                      error != NULL ? error->message : "unknown error");
            hs_free_compile_error(error);
            goto done;
        }
        hs_free_compile_error(error);
        uint32_t record = list[(size_t)bad - literals].record;
        if (push_u32(&pf->always, &pf->always_count, record) != 0)
            goto oom;
        count = drop_record(list, count, record);
    }
    for (size_t i = 0; i < count; i++) {
        if (reads_alike_on_stand_in(list[i].pattern) || in_list(pf->utf, pf->utf_count, list[i].record))
            continue;
        if (push_u32(&pf->utf, &pf->utf_count, list[i].record) != 0)
            goto oom;
    }
    for (size_t i = 0; i < count; i++)
        if (i == 0 || !in_list(ids + literals, (uint32_t)i, (uint32_t)(t->count + list[i].record)))
            pf->pattern_records++;
    rc = 0;
    goto done;
oom:
    set_error("out of memory building the pattern database");
done:
    for (size_t i = 0; patterns != NULL && i < literals; i++)
        free((char *)patterns[i]);
    free(patterns);
    free(flags);
    free(ids);
    return rc;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int build(struct prefilter *pf, const struct triage_engine *engine)
{
    struct literal_table table = {0}, extras = {0};
    struct requirement *req = malloc(sizeof *req);
    struct expression *expressions = malloc((engine->record_count ? engine->record_count : 1) * 2 *
                                            sizeof *expressions);
    size_t expression_count = 0;
    struct build_caps caps = {0, 0, 0};
    int rc = -1;
    if (req == NULL || expressions == NULL) {
        set_error("out of memory building the prefilter");
        goto done;
    }
    for (size_t r = 0; r < engine->record_count; r++) {
        const char *regex = engine->records[r]->regex;
        const char *signature = rank_signature_pattern(engine, r);
        if (signature == NULL) {
            pattern_requirement(regex, strlen(regex), MIN_EXTRA, req);
        } else {
            /* A record hits when its regex or its signature pattern matches. */
            char *either = dup_printf("(?:%s)|(?:%s)", regex, signature);
            if (either == NULL) {
                set_error("out of memory building the prefilter");
                goto done;
            }
            pattern_requirement(either, strlen(either), MIN_EXTRA, req);
            free(either);
        }
        if (req->any || requirement_strength(req) < MIN_ANCHOR) {
            expressions[expression_count++] = (struct expression){(uint32_t)r, regex};
            if (signature != NULL)
                expressions[expression_count++] = (struct expression){(uint32_t)r, signature};
            continue;
        }
        if (add_literal_record(pf, &table, &extras, &caps, (uint32_t)r, req) != 0) {
            set_error("out of memory building the literal database");
            goto done;
        }
        pf->literal_records++;
    }
    if (build_postings(pf, &table) != 0) {
        set_error("out of memory building the literal database");
        goto done;
    }
    if (table.count > UINT32_MAX - engine->record_count) {
        set_error("too many literals: %zu", table.count);
        goto done;
    }
    if (compile_wide_literals(pf, &table) != 0 || compile_database(pf, &table, expressions, expression_count) != 0)
        goto done;
    if (pf->always_count > 1)
        qsort(pf->always, pf->always_count, sizeof *pf->always, compare_u32);
    if (pf->utf_count > 1)
        qsort(pf->utf, pf->utf_count, sizeof *pf->utf, compare_u32);
    rc = 0;
done:
    literal_table_free(&table);
    literal_table_free(&extras);
    free(req);
    free(expressions);
    return rc;
}

/* }==== */

/* {==== disk cache */

struct cache_header {
    char magic[8];
    uint32_t format;
    uint32_t header_size;
    uint64_t key[2];
    uint64_t payload_size;
    uint32_t payload_crc;
    uint32_t reserved;
};

struct buffer {
    unsigned char *data;
    size_t len, cap;
    int failed;
};

static void put_bytes(struct buffer *b, const void *data, size_t len)
{
    if (b->failed || grow((void **)&b->data, &b->cap, b->len + len, 1) != 0) {
        b->failed = 1;
        return;
    }
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_u64(struct buffer *b, uint64_t v)
{
    put_bytes(b, &v, sizeof v);
}

static void put_array(struct buffer *b, const void *data, size_t count, size_t size)
{
    put_u64(b, count);
    put_bytes(b, data, count * size);
}

static void put_database(struct buffer *b, const hs_database_t *db)
{
    char *bytes = NULL;
    size_t len = 0;
    if (db != NULL && hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) {
        b->failed = 1;
        return;
    }
    put_array(b, bytes, len, 1);
    free(bytes);
}

/* Hash of everything that decides the databases: the regexes and
** signature patterns in load order, the flags, the format, the Vectorscan
** version and the code it scans with. */
static void cache_key(const struct triage_engine *engine, uint64_t key[2])
{
    uint64_t h1 = 1469598103934665603ull, h2 = 0x9ae16a3b2f90404full;
    char head[256];
    const struct scanner *sc = scanner();
    int n = snprintf(head, sizeof head, "triage-prefilter %u %s %d %u %u %zu %s %llu", CACHE_FORMAT, hs_version(),
                     MIN_ANCHOR * 100 + MIN_EXTRA, LITERAL_FLAGS, PATTERN_FLAGS, engine->record_count, sc->name,
                     sc->platform != NULL ? sc->platform->cpu_features : ~0ull);
    /* The head, then per record its regex and its signature pattern, each
    ** with its NUL so that no two lists run together alike. */
    for (size_t part = 0; part < 1 + 2 * engine->record_count; part++) {
        const char *text = head;
        size_t len = (size_t)n;
        if (part > 0) {
            size_t r = (part - 1) / 2;
            text = part % 2 == 1 ? engine->records[r]->regex : rank_signature_pattern(engine, r);
            if (text == NULL)
                text = "";
            len = strlen(text) + 1;
        }
        const unsigned char *p = (const unsigned char *)text;
        for (size_t i = 0; i < len; i++) {
            h1 = (h1 ^ p[i]) * 1099511628211ull;
            h2 = (h2 ^ p[i]) * 0x100000001b3ull;
            h2 ^= h2 >> 29;
        }
    }
    key[0] = h1;
    key[1] = h2;
}

static char *cache_path(const char *dir, const uint64_t key[2])
{
    return dup_printf("%s/prefilter-%016llx%016llx.db", dir, (unsigned long long)key[0],
                      (unsigned long long)key[1]);
}

/* Write the prefilter to the cache: a temporary file renamed into place, so
** a reader never sees half a file. Failure only costs the next run time. */
static int save_cache(struct prefilter *pf, const char *dir, const uint64_t key[2])
{
    struct buffer b = {0};
    uint64_t counts[] = {pf->record_count, pf->literal_records, pf->pattern_records};
    put_bytes(&b, counts, sizeof counts);
    put_array(&b, pf->posting_start, (size_t)pf->literal_count + 1, sizeof *pf->posting_start);
    put_array(&b, pf->postings, pf->posting_count, sizeof *pf->postings);
    put_array(&b, pf->clause_record, pf->clause_count, sizeof *pf->clause_record);
    put_array(&b, pf->clause_extra, pf->clause_count, sizeof *pf->clause_extra);
    put_array(&b, pf->clause_extras, (size_t)pf->clause_count * EXTRAS, sizeof *pf->clause_extras);
    put_array(&b, pf->extra_offset, pf->extra_count, sizeof *pf->extra_offset);
    put_array(&b, pf->extra_length, pf->extra_count, sizeof *pf->extra_length);
    put_array(&b, pf->pool, pf->pool_len, 1);
    put_array(&b, pf->always, pf->always_count, sizeof *pf->always);
    put_array(&b, pf->utf, pf->utf_count, sizeof *pf->utf);
    put_database(&b, pf->db);
    put_database(&b, pf->wide_db);
    if (b.failed || make_folders(dir) != 0) {
        free(b.data);
        return -1;
    }
    struct cache_header header = {0};
    memcpy(header.magic, CACHE_MAGIC, sizeof header.magic);
    header.format = CACHE_FORMAT;
    header.header_size = sizeof header;
    header.key[0] = key[0];
    header.key[1] = key[1];
    header.payload_size = b.len;
    header.payload_crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b.data, (uInt)b.len);

    char *path = cache_path(dir, key);
    int rc = path != NULL ? write_cache_file(path, &header, sizeof header, b.data, b.len) : -1;
    if (rc == 0) {
        snprintf(pf->info.cache_path, sizeof pf->info.cache_path, "%s", path);
        prune_cache_files(dir, "prefilter-", ".db", CACHE_KEEP);
    }
    free(path);
    free(b.data);
    return rc;
}

struct reader_state {
    const unsigned char *p, *end;
    int failed;
};

static const void *take(struct reader_state *r, size_t len)
{
    if (r->failed || (size_t)(r->end - r->p) < len) {
        r->failed = 1;
        return NULL;
    }
    const void *at = r->p;
    r->p += len;
    return at;
}

/* Read a counted array into a new allocation; want is the expected count,
** or SIZE_MAX to accept any. */
/* Read a 64-bit number; the entry has no alignment, so it is copied. */
static int take_u64(struct reader_state *r, uint64_t *value)
{
    const void *at = take(r, sizeof *value);
    if (at == NULL)
        return -1;
    memcpy(value, at, sizeof *value);
    return 0;
}

static void *take_array(struct reader_state *r, size_t size, size_t want, uint32_t *count_out)
{
    uint64_t count;
    if (take_u64(r, &count) != 0 || count > UINT32_MAX || (want != SIZE_MAX && count != want) ||
        count > (uint64_t)(r->end - r->p) / (size ? size : 1)) {
        r->failed = 1;
        return NULL;
    }
    size_t bytes = (size_t)count * size;
    const void *data = take(r, bytes);
    void *copy = malloc(bytes ? bytes : 1);
    if (data == NULL || copy == NULL) {
        free(copy);
        r->failed = 1;
        return NULL;
    }
    memcpy(copy, data, bytes);
    if (count_out != NULL)
        *count_out = (uint32_t)count;
    return copy;
}

static hs_database_t *take_database(struct reader_state *r)
{
    uint64_t len;
    if (take_u64(r, &len) != 0 || len > (uint64_t)(r->end - r->p)) {
        r->failed = 1;
        return NULL;
    }
    if (len == 0)
        return NULL;
    const char *bytes = take(r, (size_t)len);
    hs_database_t *db = NULL;
    if (bytes == NULL || hs_deserialize_database(bytes, (size_t)len, &db) != HS_SUCCESS) {
        r->failed = 1;
        return NULL;
    }
    return db;
}

/* Check that every index read from the cache is in range, so a damaged
** entry that still passes the checksum cannot lead outside an array. */
static int indexes_valid(const struct prefilter *pf)
{
    if (pf->posting_start[0] != 0 || pf->posting_start[pf->literal_count] != pf->posting_count)
        return 0;
    for (uint32_t i = 0; i < pf->literal_count; i++)
        if (pf->posting_start[i] > pf->posting_start[i + 1])
            return 0;
    for (uint32_t i = 0; i < pf->posting_count; i++)
        if (pf->postings[i] >= pf->clause_count)
            return 0;
    for (uint32_t i = 0; i < pf->clause_count; i++) {
        if (pf->clause_record[i] >= pf->record_count || pf->clause_extra[i] > EXTRAS)
            return 0;
        for (unsigned k = 0; k < pf->clause_extra[i]; k++)
            if (pf->clause_extras[(size_t)i * EXTRAS + k] >= pf->extra_count)
                return 0;
    }
    for (uint32_t i = 0; i < pf->extra_count; i++)
        if (pf->extra_offset[i] > pf->pool_len || pf->extra_length[i] > pf->pool_len - pf->extra_offset[i])
            return 0;
    for (uint32_t i = 0; i < pf->always_count; i++)
        if (pf->always[i] >= pf->record_count)
            return 0;
    for (uint32_t i = 0; i < pf->utf_count; i++)
        if (pf->utf[i] >= pf->record_count)
            return 0;
    return 1;
}

static void release(struct prefilter *pf)
{
    hs_free_database(pf->db);
    hs_free_database(pf->wide_db);
    free(pf->posting_start);
    free(pf->postings);
    free(pf->clause_record);
    free(pf->clause_extra);
    free(pf->clause_extras);
    free(pf->extra_offset);
    free(pf->extra_length);
    free(pf->pool);
    free(pf->always);
    free(pf->utf);
    size_t record_count = pf->record_count;
    memset(pf, 0, sizeof *pf);
    pf->record_count = record_count;
}

/* Load a cache entry. Returns 0, or -1 when it is missing, stale, damaged
** or built for another CPU; the caller then builds and saves a new one. */
static int load_cache(struct prefilter *pf, const char *path, const uint64_t key[2])
{
    char *data;
    size_t len;
    if (read_cache_file(path, (size_t)1 << 30, &data, &len) != 0)
        return -1;
    struct cache_header header;
    int rc = -1;
    if (len < sizeof header)
        goto done;
    memcpy(&header, data, sizeof header);
    if (memcmp(header.magic, CACHE_MAGIC, sizeof header.magic) != 0 || header.format != CACHE_FORMAT ||
        header.header_size != sizeof header || header.key[0] != key[0] || header.key[1] != key[1] ||
        header.payload_size != len - sizeof header)
        goto done;
    const unsigned char *payload = (const unsigned char *)data + sizeof header;
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), payload, (uInt)header.payload_size) != header.payload_crc)
        goto done;

    struct reader_state r = {payload, payload + header.payload_size, 0};
    uint64_t counts[3];
    if (take_u64(&r, &counts[0]) != 0 || take_u64(&r, &counts[1]) != 0 || take_u64(&r, &counts[2]) != 0 ||
        counts[0] != pf->record_count)
        goto done;
    pf->literal_records = (uint32_t)counts[1];
    pf->pattern_records = (uint32_t)counts[2];
    uint32_t starts = 0, extras = 0;
    pf->posting_start = take_array(&r, sizeof *pf->posting_start, SIZE_MAX, &starts);
    pf->literal_count = starts > 0 ? starts - 1 : 0;
    pf->postings = take_array(&r, sizeof *pf->postings, SIZE_MAX, &pf->posting_count);
    pf->clause_record = take_array(&r, sizeof *pf->clause_record, SIZE_MAX, &pf->clause_count);
    pf->clause_extra = take_array(&r, 1, pf->clause_count, &extras);
    pf->clause_extras = take_array(&r, sizeof *pf->clause_extras, (size_t)pf->clause_count * EXTRAS, NULL);
    pf->extra_offset = take_array(&r, sizeof *pf->extra_offset, SIZE_MAX, &pf->extra_count);
    pf->extra_length = take_array(&r, 1, pf->extra_count, NULL);
    pf->pool = take_array(&r, 1, SIZE_MAX, &pf->pool_len);
    pf->always = take_array(&r, sizeof *pf->always, SIZE_MAX, &pf->always_count);
    pf->utf = take_array(&r, sizeof *pf->utf, SIZE_MAX, &pf->utf_count);
    pf->db = take_database(&r);
    pf->wide_db = take_database(&r);
    if (r.failed || r.p != r.end || starts == 0 || !indexes_valid(pf) ||
        (pf->db == NULL && pf->wide_db == NULL && (pf->literal_count > 0 || pf->pattern_records > 0)))
        goto done;
    rc = 0;
done:
    if (rc != 0)
        release(pf);
    free(data);
    return rc;
}

/* }==== */

char *prefilter_default_cache_dir(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return dup_printf("%s/triage", xdg);
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0')
        return dup_printf("%s/.cache/triage", home);
    return NULL;
}

struct prefilter *prefilter_open(const struct triage_engine *engine, const char *cache_dir)
{
    double started = seconds_now();
    struct prefilter *pf = calloc(1, sizeof *pf);
    if (pf == NULL) {
        set_error("out of memory creating the prefilter");
        return NULL;
    }
    pf->record_count = engine->record_count;
    uint64_t key[2];
    cache_key(engine, key);
    char *path = cache_dir != NULL ? cache_path(cache_dir, key) : NULL;
    if (path != NULL && load_cache(pf, path, key) == 0) {
        pf->info.origin = PREFILTER_FROM_CACHE;
        snprintf(pf->info.cache_path, sizeof pf->info.cache_path, "%s", path);
        /* A fresh mtime keeps an entry in use from being pruned. */
        utimensat(AT_FDCWD, path, NULL, 0);
    } else {
        if (build(pf, engine) != 0) {
            free(path);
            prefilter_free(pf);
            return NULL;
        }
        pf->info.origin = PREFILTER_BUILT;
        if (cache_dir != NULL && save_cache(pf, cache_dir, key) == 0)
            pf->info.origin = PREFILTER_BUILT_AND_CACHED;
    }
    free(path);
    pf->scan = scanner()->scan;
    pf->info.literal_records = pf->literal_records;
    pf->info.pattern_records = pf->pattern_records;
    pf->info.always_records = pf->always_count;
    pf->info.utf_records = pf->utf_count;
    pf->info.seconds = seconds_now() - started;
    return pf;
}

void prefilter_free(struct prefilter *pf)
{
    if (pf == NULL)
        return;
    release(pf);
    free(pf);
}

void prefilter_describe(const struct prefilter *pf, struct prefilter_info *info)
{
    *info = pf->info;
}

size_t prefilter_record_count(const struct prefilter *pf)
{
    return pf->record_count;
}

/* {==== per-line search */

struct prefilter_scratch *prefilter_scratch_new(const struct prefilter *pf)
{
    struct prefilter_scratch *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->prefilter = pf;
    s->extra_state = calloc(pf->extra_count ? pf->extra_count : 1, 1);
    s->checked = malloc((pf->extra_count ? pf->extra_count : 1) * sizeof *s->checked);
    s->found_cap = 64;
    s->found = malloc(s->found_cap * sizeof *s->found);
    s->is_candidate = calloc(pf->record_count ? pf->record_count : 1, 1);
    s->is_found = calloc(pf->literal_count ? pf->literal_count : 1, 1);
    s->candidates = malloc((pf->record_count ? pf->record_count : 1) * sizeof *s->candidates);
    int ok = s->found && s->is_found && s->extra_state && s->checked && s->is_candidate && s->candidates;
    if (ok && pf->db != NULL)
        ok = hs_alloc_scratch(pf->db, &s->hs) == HS_SUCCESS;
    if (ok && pf->wide_db != NULL)
        ok = hs_alloc_scratch(pf->wide_db, &s->hs) == HS_SUCCESS;
    if (!ok) {
        prefilter_scratch_free(s);
        return NULL;
    }
    return s;
}

void prefilter_scratch_free(struct prefilter_scratch *s)
{
    if (s == NULL)
        return;
    hs_free_scratch(s->hs);
    free(s->found);
    free(s->is_found);
    free(s->extra_state);
    free(s->checked);
    free(s->lowered);
    free(s->is_candidate);
    free(s->candidates);
    free(s->mapped);
    free(s->folded);
    free(s);
}

static void add_candidate(struct prefilter_scratch *s, uint32_t record)
{
    if (s->is_candidate[record])
        return;
    s->is_candidate[record] = 1;
    s->candidates[s->candidate_count++] = record;
}

static void add_candidate(struct prefilter_scratch *s, uint32_t record);

/* A database match: a pattern record is a candidate at once; anchors are
** collected, each once, and their clauses judged after the scan. */
static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                    void *context)
{
    (void)from, (void)to, (void)flags;
    struct prefilter_scratch *s = context;
    if (id >= s->prefilter->literal_count) {
        add_candidate(s, id - s->prefilter->literal_count);
        return 0;
    }
    if (s->is_found[id])
        return 0;
    if (s->found_count == s->found_cap) {
        uint32_t *grown = realloc(s->found, s->found_cap * 2 * sizeof *grown);
        if (grown == NULL)
            return 1; /* ends the scan with an error: every record is then matched */
        s->found = grown;
        s->found_cap *= 2;
    }
    s->is_found[id] = 1;
    s->found[s->found_count++] = id;
    return 0;
}

static int reserve(char **buffer, size_t *cap, size_t len);

/* Whether the line contains extra literal e. The lowercased line is built on
** first use for the line and each answer is kept for the line. */
static int line_has_extra(const struct prefilter *pf, struct prefilter_scratch *s, const char *text, size_t len,
                          uint32_t e)
{
    if (s->extra_state[e] != 0)
        return s->extra_state[e] == 1;
    if (!s->lowered_ready) {
        if (reserve(&s->lowered, &s->lowered_cap, len) != 0)
            return 1; /* keeping the clause is always safe */
        lower_ascii(s->lowered, text, len);
        pair_set_build(&s->pairs, s->lowered, len);
        s->lowered_len = len;
        s->lowered_ready = 1;
    }
    /* Most extras checked are absent, which their byte pairs mostly show. */
    int found = find_bytes_in(s->lowered, s->lowered_len, &s->pairs, pf->pool + pf->extra_offset[e], pf->extra_length[e]);
    s->extra_state[e] = found ? 1 : 2;
    s->checked[s->checked_count++] = e;
    return found;
}

static void judge_clauses(const struct prefilter *pf, struct prefilter_scratch *s, const char *text, size_t len)
{
    for (size_t f = 0; f < s->found_count; f++) {
        uint32_t literal = s->found[f];
        for (uint32_t k = pf->posting_start[literal]; k < pf->posting_start[literal + 1]; k++) {
            uint32_t clause = pf->postings[k];
            uint32_t record = pf->clause_record[clause];
            if (s->is_candidate[record])
                continue;
            const uint32_t *extras = &pf->clause_extras[(size_t)clause * EXTRAS];
            unsigned n = pf->clause_extra[clause], i = 0;
            while (i < n && line_has_extra(pf, s, text, len, extras[i]))
                i++;
            if (i == n)
                add_candidate(s, record);
        }
    }
}


/* Length of the valid UTF-8 character at p (2-4 bytes), or 0 when the
** bytes there are not one: overlong forms, surrogates and code points
** above U+10FFFF are invalid, as PCRE2 treats them. *code_point receives
** the character. */
static size_t utf8_char(const unsigned char *p, size_t avail, uint32_t *code_point)
{
    unsigned char c = p[0];
    size_t need;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *code_point = cp;
    return need;
}

static int reserve(char **buffer, size_t *cap, size_t len)
{
    if (len <= *cap)
        return 0;
    char *grown = realloc(*buffer, len);
    if (grown == NULL)
        return -1;
    *buffer = grown;
    *cap = len;
    return 0;
}

/* Whether the line contains U+212A (E2 84 AA) or U+017F (C5 BF). Both lead
** bytes start a character, so every occurrence of these bytes is one of
** the two characters. */
static int has_folding_letter(const char *line, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c == 0xE2 && i + 2 < len && (unsigned char)line[i + 1] == 0x84 && (unsigned char)line[i + 2] == 0xAA) ||
            (c == 0xC5 && (unsigned char)line[i + 1] == 0xBF))
            return 1;
    }
    return 0;
}

/* Copy the line with KELVIN SIGN and LONG S replaced by k and s, the ASCII
** letters that PCRE2's caseless mode matches them with, for the literal
** search. Returns the new length, or SIZE_MAX when out of memory. */
static size_t fold_line(struct prefilter_scratch *s, const char *line, size_t len)
{
    if (reserve(&s->folded, &s->folded_cap, len) != 0)
        return SIZE_MAX;
    const unsigned char *p = (const unsigned char *)line;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (p[i] == 0xE2 && i + 2 < len && p[i + 1] == 0x84 && p[i + 2] == 0xAA) {
            s->folded[n++] = 'k';
            i += 3;
        } else if (p[i] == 0xC5 && i + 1 < len && p[i + 1] == 0xBF) {
            s->folded[n++] = 's';
            i += 2;
        } else {
            s->folded[n++] = (char)p[i++];
        }
    }
    return n;
}

/* Map a line with non-ASCII bytes to its ASCII stand-in (see the file
** comment). Returns the stand-in's length, or SIZE_MAX when out of memory. */
static size_t map_line(struct prefilter_scratch *s, const char *line, size_t len)
{
    if (reserve(&s->mapped, &s->mapped_cap, len) != 0)
        return SIZE_MAX;
    const unsigned char *p = (const unsigned char *)line;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            s->mapped[n++] = (char)p[i++];
            continue;
        }
        uint32_t cp = 0;
        size_t width = utf8_char(p + i, len - i, &cp);
        if (width == 0) {
            s->mapped[n++] = STAND_IN;
            i++;
            continue;
        }
        char c = STAND_IN;
        if (cp == 0x212A)
            c = 'k';
        else if (cp == 0x017F)
            c = 's';
        s->mapped[n++] = c;
        i += width;
    }
    return n;
}

static void reset(struct prefilter_scratch *s)
{
    for (size_t i = 0; i < s->found_count; i++)
        s->is_found[s->found[i]] = 0;
    s->found_count = 0;
    for (size_t i = 0; i < s->checked_count; i++)
        s->extra_state[s->checked[i]] = 0;
    s->checked_count = 0;
    for (size_t i = 0; i < s->candidate_count; i++)
        s->is_candidate[s->candidates[i]] = 0;
    s->candidate_count = 0;
}

int prefilter_lowered(const struct prefilter_scratch *s, const char **lowered, const struct pair_set **pairs)
{
    if (!s->line_ascii || !s->lowered_ready)
        return 0;
    *lowered = s->lowered;
    *pairs = &s->pairs;
    return 1;
}

size_t prefilter_candidates(const struct prefilter *pf, struct prefilter_scratch *s, const char *line, size_t len,
                            const uint32_t **records)
{
    reset(s);
    s->lowered_ready = 0;
    int ascii = is_ascii_text(line, len);
    s->line_ascii = ascii;
    const char *text = line; /* what the database reads */
    size_t text_len = len;
    const char *words = line; /* where extras are looked for */
    size_t words_len = len;
    if (!ascii) {
        text_len = map_line(s, line, len);
        if (text_len == SIZE_MAX)
            return SIZE_MAX;
        text = s->mapped;
        if (has_folding_letter(line, len)) {
            words_len = fold_line(s, line, len);
            if (words_len == SIZE_MAX)
                return SIZE_MAX;
            words = s->folded;
        }
    }
    if (pf->db != NULL && pf->scan(pf->db, text, (unsigned)text_len, 0, s->hs, on_match, s) != HS_SUCCESS)
        return SIZE_MAX;
    if (!ascii && pf->wide_db != NULL &&
        pf->scan(pf->wide_db, line, (unsigned)len, 0, s->hs, on_match, s) != HS_SUCCESS)
        return SIZE_MAX;
    judge_clauses(pf, s, words, words_len);
    for (uint32_t i = 0; i < pf->always_count; i++)
        add_candidate(s, pf->always[i]);
    if (!ascii)
        for (uint32_t i = 0; i < pf->utf_count; i++)
            add_candidate(s, pf->utf[i]);
    /* Insertion sort: a line has a handful of candidates. */
    for (size_t i = 1; i < s->candidate_count; i++) {
        uint32_t value = s->candidates[i];
        size_t at = i;
        for (; at > 0 && s->candidates[at - 1] > value; at--)
            s->candidates[at] = s->candidates[at - 1];
        s->candidates[at] = value;
    }
    *records = s->candidates;
    return s->candidate_count;
}

/* }==== */
