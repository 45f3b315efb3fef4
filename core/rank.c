/*
** Ranking: order the hits of one input so the most specific record comes first.
**
** Owns: tokenisation, corpus token statistics (idf), the regex branches and
** signature patterns of each record, the score formula, the tie-break,
** line errorness for multi-line input and the fuzzy guesses. One ranker
** serves diagnose, scan and the library.
** Depends on: PCRE2 for branches and signature patterns, literals.c for
** the literal text that a branch's matches must contain.
**
** A hit's score is MATCH_FLOOR + (1 - MATCH_FLOOR) * (weighted sum of four
** parts in [0, 1]):
**   literal     how much literal text the regex branch that hit carries, so
**               a bare "503" cannot outrank a 40-character specific pattern;
**   coverage    the share of the line that the hit spans;
**   similarity  the idf-weighted token similarity of the line to the
**               signature or the closest alias (rare words count more), with
**               a share for quoting the signature;
**   confidence  the record's own confidence.
** In an input of several lines, each hit is then weighed by how much its
** line looks like an error (rank_weigh_line).
*/
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "prefilter.h"

/* Weights of the parts, chosen on the ranking benchmark (bench/ranking):
** token similarity decides most, literal text breaks its ties. */
static const double WEIGHTS[TRIAGE_SCORE_PARTS] = {
    [TRIAGE_PART_LITERAL] = 0.25,
    [TRIAGE_PART_COVERAGE] = 0.05,
    [TRIAGE_PART_SIMILARITY] = 0.65,
    [TRIAGE_PART_CONFIDENCE] = 0.05,
};

/* Literal characters at which the literal part reaches 1 - 1/e. */
#define LITERAL_SCALE 16.0
#define MAX_LINE_TOKENS RANK_LINE_TOKENS
/* Bytes of a word that its hash and the variable-word test read. */
#define WORD_MAX 64
/* Every match scores at least MATCH_FLOOR before line weighting, and a hit
** on a line that names no error keeps at least LINE_WEIGHT_FLOOR of its
** score in a multi-line input, so a guess, which scores below the product,
** can never outrank a match. */
#define MATCH_FLOOR 0.2
#define LINE_WEIGHT_FLOOR 0.6
/* Weight of a word inside a quoted name, relative to the same word outside. */
#define QUOTED_WEIGHT 0.3
/* Share of the similarity part earned by quoting the signature verbatim,
** and the part of that share earned with other variable parts. */
#define VERBATIM_SHARE 0.1
#define PATTERN_VERBATIM 0.7
/* Guesses: at most this many, each at least this similar to the input. */
#define GUESS_MAX 3
#define GUESS_THRESHOLD 0.3

/* {==== literal text of a pattern */

struct pattern_reader {
    const char *p, *end;
};

static double read_alternation(struct pattern_reader *r);

static void skip_class(struct pattern_reader *r)
{
    r->p++; /* '[' */
    if (r->p < r->end && *r->p == '^')
        r->p++;
    if (r->p < r->end && *r->p == ']')
        r->p++;
    while (r->p < r->end && *r->p != ']') {
        if (*r->p == '\\' && r->p + 1 < r->end)
            r->p++;
        else if (*r->p == '[' && r->p + 1 < r->end && r->p[1] == ':') {
            const char *close = strstr(r->p, ":]");
            if (close != NULL && close < r->end)
                r->p = close + 1;
        }
        r->p++;
    }
    if (r->p < r->end)
        r->p++;
}

static void skip_braced(struct pattern_reader *r)
{
    if (r->p < r->end && (*r->p == '{' || *r->p == '<' || *r->p == '\'')) {
        char close = *r->p == '{' ? '}' : *r->p == '<' ? '>' : '\'';
        while (r->p < r->end && *r->p != close)
            r->p++;
        if (r->p < r->end)
            r->p++;
    }
}

static double read_escape(struct pattern_reader *r)
{
    r->p++; /* '\\' */
    if (r->p >= r->end)
        return 0;
    char c = *r->p++;
    if (c == 'Q') {
        double n = 0;
        while (r->p < r->end && !(r->p[0] == '\\' && r->p + 1 < r->end && r->p[1] == 'E')) {
            if ((*r->p & 0xC0) != 0x80)
                n++;
            r->p++;
        }
        if (r->p < r->end)
            r->p += 2;
        return n;
    }
    if (c == 'x') {
        if (r->p < r->end && *r->p == '{')
            skip_braced(r);
        else
            for (int i = 0; i < 2 && r->p < r->end && strchr("0123456789abcdefABCDEF", *r->p); i++)
                r->p++;
        return 1;
    }
    if (c == 'p' || c == 'P' || c == 'k' || c == 'g') {
        skip_braced(r);
        return 0;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 0; /* \d, \s, \b, \1 and the like match a class or nothing */
    return 1;     /* an escaped metacharacter stands for itself */
}

static double read_group(struct pattern_reader *r)
{
    int counts = 1;
    r->p++; /* '(' */
    if (r->p < r->end && *r->p == '?') {
        r->p++;
        if (r->p < r->end && (*r->p == '=' || *r->p == '!'))
            counts = 0;
        else if (r->p + 1 < r->end && *r->p == '<' && (r->p[1] == '=' || r->p[1] == '!'))
            counts = 0;
        else if (r->p < r->end && (*r->p == '<' || *r->p == '\'' || *r->p == 'P')) {
            if (*r->p == 'P')
                r->p++;
            skip_braced(r);
        } else {
            /* (?: (?> (?| or inline options such as (?i) */
            while (r->p < r->end && *r->p != ':' && *r->p != ')' && *r->p != '>' && *r->p != '|')
                r->p++;
            if (r->p < r->end && *r->p == ')') {
                r->p++;
                return 0;
            }
            if (r->p < r->end)
                r->p++;
        }
    }
    double inner = read_alternation(r);
    if (r->p < r->end && *r->p == ')')
        r->p++;
    return counts ? inner : 0;
}

/* Apply a quantifier after an atom: optional atoms carry no literal text. */
static double read_quantifier(struct pattern_reader *r, double atom)
{
    if (r->p >= r->end)
        return atom;
    char c = *r->p;
    if (c == '?' || c == '*') {
        r->p++;
        atom = 0;
    } else if (c == '+') {
        r->p++;
    } else if (c == '{' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9') {
        const char *q = r->p + 1;
        long min = strtol(q, NULL, 10);
        while (r->p < r->end && *r->p != '}')
            r->p++;
        if (r->p < r->end)
            r->p++;
        if (min == 0)
            atom = 0;
    } else {
        return atom;
    }
    if (r->p < r->end && (*r->p == '?' || *r->p == '+'))
        r->p++; /* lazy or possessive */
    return atom;
}

static double read_sequence(struct pattern_reader *r)
{
    double total = 0;
    while (r->p < r->end && *r->p != '|' && *r->p != ')') {
        double atom;
        unsigned char c = (unsigned char)*r->p;
        if (c == '(')
            atom = read_group(r);
        else if (c == '[') {
            skip_class(r);
            atom = 0;
        } else if (c == '\\')
            atom = read_escape(r);
        else if (c == '.' || c == '^' || c == '$') {
            r->p++;
            atom = 0;
        } else {
            r->p++;
            atom = (c & 0xC0) == 0x80 ? 0 : 1;
            while (r->p < r->end && ((unsigned char)*r->p & 0xC0) == 0x80)
                r->p++;
        }
        total += read_quantifier(r, atom);
    }
    return total;
}

/* Literal text of an alternation is that of its weakest branch, because any
** branch may be the one that matched. */
static double read_alternation(struct pattern_reader *r)
{
    double best = -1;
    for (;;) {
        double v = read_sequence(r);
        if (best < 0 || v < best)
            best = v;
        if (r->p < r->end && *r->p == '|') {
            r->p++;
            continue;
        }
        return best;
    }
}

/* Count the characters that a pattern requires literally, as an estimate of
** how specific it is. */
double literal_chars(const char *pattern, size_t len)
{
    struct pattern_reader r = {pattern, pattern + len};
    double total = 0;
    while (r.p < r.end) {
        total += read_alternation(&r);
        if (r.p < r.end)
            r.p++; /* an unbalanced ')' */
    }
    return total;
}

/* }==== */

/* {==== tokens */

/* Classes of bytes for the tokenizer, as bits of byte_class[]. */
enum {
    B_TOKEN = 1,       /* a letter, a digit or a byte from 0x80 up */
    B_NOT_DIGIT = 2,   /* a token byte other than a digit */
    B_NOT_HEX = 4,     /* a token byte other than a hex digit in either case */
    B_DIGIT = 8,       /* 0-9 */
    B_RUN_END = 16,    /* ends a run that path_like reads: space, tab, CR, LF, ' " , ) > */
    B_SPACE = 32,      /* space, tab, CR, LF */
    B_QUOTE = 64,      /* ' " ` */
    B_PATH_MARK = 128, /* @ . / \ : which path_like counts */
};

/* The class of every byte value, one row of 16 per line (0x00-0x0F first).
** A table read is cheaper than the comparisons on a per-byte path. */
static const unsigned char byte_class[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x30, 0x00, 0x00, 0x30, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x30, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x50, 0x00, 0x10, 0x00, 0x00, 0x10, 0x00, 0x80, 0x80,
    0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x80, 0x00, 0x00, 0x00, 0x10, 0x00,
    0x80, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x00, 0x80, 0x00, 0x00, 0x00,
    0x40, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
};

static int is_token_byte(unsigned char c)
{
    return byte_class[c] & B_TOKEN;
}

static int is_space(unsigned char c)
{
    return byte_class[c] & B_SPACE;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint64_t *tokens, size_t n)
{
    /* A line has a few dozen words: insertion sort beats qsort's calls. */
    if (n <= 64) {
        for (size_t i = 1; i < n; i++) {
            uint64_t value = tokens[i];
            size_t at = i;
            for (; at > 0 && tokens[at - 1] > value; at--)
                tokens[at] = tokens[at - 1];
            tokens[at] = value;
        }
    } else {
        qsort(tokens, n, sizeof *tokens, cmp_u64);
    }
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (u == 0 || tokens[u - 1] != tokens[k])
            tokens[u++] = tokens[k];
    return u;
}

/* Length of a quoted name at text[i] (quote marks included), or 0. A name
** has no whitespace, so a quoted sentence, or a whole JSON log message,
** keeps its words. */
static size_t quoted_name(const char *text, size_t len, size_t i)
{
    char quote = text[i];
    if (quote != '\'' && quote != '"' && quote != '`')
        return 0;
    if (i > 0 && is_token_byte((unsigned char)text[i - 1]))
        return 0; /* an apostrophe inside a word such as "can't" */
    for (size_t k = i + 1; k < len && k < i + 80; k++) {
        if (text[k] == quote)
            return k > i + 1 ? k - i + 1 : 0;
        if (is_space((unsigned char)text[k]))
            return 0;
    }
    return 0;
}

/* Whether c ends a run that path_like reads. */
static int is_run_end(unsigned char c)
{
    return byte_class[c] & B_RUN_END;
}

/* Hash the word text[i..) into out[*n] unless it is a single letter or a
** variable word, and return where it ends. The word is read once: its
** lowercase form is hashed as it goes (the first WORD_MAX bytes, as the
** variable-word test reads them). quoted is 2 for a word inside a quoted
** name, else 0; it becomes bit 1 of the hash, as bit 0 marks an all-digit
** word. */
static size_t add_word(const char *text, size_t len, size_t i, uint64_t *out, size_t *n, uint64_t quoted)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t start = i, hashed_end = len - i > WORD_MAX ? i + WORD_MAX : len;
    unsigned classes = 0; /* of the hashed bytes */
    uint64_t h = HASH_SEED;
    for (; i < hashed_end; i++) {
        unsigned char c = p[i];
        unsigned cls = byte_class[c];
        if (!(cls & B_TOKEN))
            break;
        classes |= cls;
        h = hash_step(h, (unsigned char)(c + ((unsigned)(c - 'A') < 26u ? 32 : 0)));
    }
    size_t w = i - start;
    unsigned tail = 0; /* of the bytes past WORD_MAX, for the digit test */
    for (; i < len && (byte_class[p[i]] & B_TOKEN); i++)
        tail |= byte_class[p[i]];
    int digits = !((classes | tail) & B_NOT_DIGIT);
    if (w < 2 && !digits)
        return i; /* a single letter carries no meaning */
    /* A long number or a hex id names an instance: a wildcard. */
    int hex_id = !(classes & B_NOT_HEX) && (classes & B_DIGIT);
    if (digits ? w >= 4 : (w >= 6 ? hex_id : w >= 3 && p[start] == '0' && (p[start + 1] | 32) == 'x'))
        return i;
    out[(*n)++] = (h & ~3ull) | quoted | (uint64_t)digits;
    return i;
}

/* Whether text[i - 1] lets a path start at i (see path_like). */
static int path_may_start(const char *text, size_t i)
{
    if (i == 0)
        return 1;
    unsigned char c = (unsigned char)text[i - 1];
    return is_space(c) || c == '(' || c == '=' || c == '[' || c == '<';
}

/* The rest of path_like from k, the first byte after the leading word. */
static size_t path_rest(const char *text, size_t len, size_t i, size_t k)
{
    size_t slashes = 0, digit_dots = 0;
    int at = 0, mail = 0;
    for (; k < len; k++) {
        unsigned cls = byte_class[(unsigned char)text[k]];
        if (cls & B_RUN_END)
            break;
        if (!(cls & B_PATH_MARK))
            continue;
        char c = text[k];
        if (c == '@')
            at = 1;
        else if (c == '.' && at)
            mail = 1;
        if (c == '/' || c == '\\')
            slashes++;
        else if ((c == '.' || c == ':') && k > i && text[k - 1] >= '0' && text[k - 1] <= '9')
            digit_dots++;
    }
    return slashes >= 2 || digit_dots >= 3 || mail ? k - i : 0;
}

/* Length of a path, URL, e-mail or IPv4/IPv6-like address starting at
** text[i], or 0: a run without whitespace that contains at least two '/' or
** '\', an '@' followed by a '.', or three ':' or '.' between digits. */
static size_t path_like(const char *text, size_t len, size_t i)
{
    if (!path_may_start(text, i))
        return 0;
    size_t k = i;
    while (k < len && is_token_byte((unsigned char)text[k]))
        k++;
    /* A plain word, the common case, ends where the run ends. */
    if (k == len || is_run_end((unsigned char)text[k]))
        return 0;
    return path_rest(text, len, i, k);
}

/* Hash the lowercase alphanumeric runs of text into out, sorted and unique.
** Paths, addresses, long numbers and hex ids are skipped on both sides, so
** they act as wildcards. Words inside a quoted name are kept apart from the
** same words outside quotes and weigh little (see idf), because a quoted
** name is usually an instance, yet 'NoneType' still tells two records
** apart. The low bit of a hash marks an all-digit word, which weighs less. */
size_t tokenize(const char *text, size_t len, uint64_t *out, size_t max)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len && n < max) {
        unsigned char c = (unsigned char)text[i];
        if (!is_token_byte(c)) {
            size_t quoted = byte_class[c] & B_QUOTE ? quoted_name(text, len, i) : 0;
            if (quoted > 0) {
                size_t k = i + 1, end = i + quoted - 1;
                while (k < end && n < max) {
                    if (is_token_byte((unsigned char)text[k]))
                        k = add_word(text, end, k, out, &n, 2);
                    else
                        k++;
                }
                i += quoted;
                continue;
            }
            size_t skip = c == '/' || c == '\\' || c == '.' ? path_like(text, len, i) : 0;
            i += skip > 0 ? skip : 1;
            continue;
        }
        /* The word is read once; when a path goes on after it, the path
        ** wins and the word is taken back. */
        size_t before = n;
        size_t k = add_word(text, len, i, out, &n, 0);
        if (k < len && !is_run_end((unsigned char)text[k]) && path_may_start(text, i)) {
            size_t skip = path_rest(text, len, i, k);
            if (skip > 0) {
                n = before;
                i += skip;
                continue;
            }
        }
        i = k;
    }
    return sort_unique(out, n);
}

static size_t df_slot(const struct triage_engine *engine, uint64_t key)
{
    size_t mask = engine->df_cap - 1;
    size_t i = (size_t)(key ^ (key >> 29)) & mask;
    while (engine->df_keys[i] != 0 && engine->df_keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static uint32_t document_frequency(const struct triage_engine *engine, uint64_t token)
{
    if (engine->df_cap == 0)
        return 0;
    size_t slot = df_slot(engine, token | 2); /* never 0, which marks a free slot */
    return engine->df_keys[slot] != 0 ? engine->df_counts[slot] : 0;
}

/* Inverse document frequency of a token over the loaded records'
** signatures and aliases: a word in every record weighs 1, a word in none
** log(N + 1) + 1. Numbers weigh half. */
static double base_idf(const struct triage_engine *engine, uint32_t df)
{
    double n = (double)engine->record_count;
    return log((n + 1.0) / ((double)df + 1.0)) + 1.0;
}

/* The idf of a token from that of a plain word with its count. */
static double token_idf(double base, uint64_t token)
{
    double weight = base;
    if (token & 2)
        weight *= QUOTED_WEIGHT;
    return (token & 1) ? weight * 0.5 : weight;
}

static double idf_of(const struct triage_engine *engine, uint64_t token, uint32_t df)
{
    return token_idf(base_idf(engine, df), token);
}

static double idf(const struct triage_engine *engine, uint64_t token)
{
    return idf_of(engine, token, document_frequency(engine, token));
}

static int contains(const uint64_t *sorted, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sorted[mid] == key)
            return 1;
        if (sorted[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* }==== */

/* {==== per-record ranking data */

/* Patterns are compiled with the options of match.c so a branch matches
** exactly what it matches inside the whole regex. */
/* USE_OFFSET_LIMIT lets pattern_match() bound the time of a branch, which
** comes from an untrusted record as the whole regex does. */
static const uint32_t BRANCH_OPTIONS =
    PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C | PCRE2_USE_OFFSET_LIMIT;

#define MAX_BRANCHES 64
#define MAX_TEXT_TOKENS 256

/* The literal requirement of a pattern (literals.c), with only the clauses
** it has: a line that matches contains every literal of one clause. */
struct need {
    size_t count;
    struct requirement_clause clause[];
};

struct branch {
    char *pattern;
    /* Compiled on the first test of the branch or signature pattern, as
    ** most records never hit in a scan, and shared by the worker threads.
    ** NULL before, NO_CODE when the pattern does not compile alone. */
    _Atomic(pcre2_code *) code;
    struct lazy_jit jit; /* code JIT-compiled once used often (match.c) */
    int jit_ascii_only;  /* the JIT code serves ASCII subjects only (pattern_jit_ascii_only) */
    double literal;
    /* Built on the first test of the branch, since most records never hit
    ** in a scan; NO_NEED when nothing is known. Worker threads share it. */
    _Atomic(struct need *) need;
};

struct token_set {
    uint64_t *tokens;
    double *idf; /* idf of each token, set by rank_prepare */
    size_t count;
    double weight; /* sum of the idf of the tokens */
};

struct rank_record {
    struct branch *branches;
    size_t branch_count;
    struct branch signature; /* the signature as a pattern, compiled on first use like a branch */
    int signature_usable;    /* the signature is long enough to say much as a pattern */
    int signature_may_hit;   /* the signature pattern counts as a hit where the regex misses */
    char *signature_lower;   /* the signature in lowercase, to find it in a lowercased line */
    size_t signature_len;
    struct token_set *texts; /* the signature, then each alias */
    size_t text_count;
    double norm; /* Euclidean norm of the idf vector of all texts, for guesses */
};

/* Index of the ')' that closes the group opening at pattern[open], or len. */
size_t pattern_group_end(const char *pattern, size_t len, size_t open)
{
    int depth = 0, in_class = 0;
    for (size_t i = open; i < len; i++) {
        char c = pattern[i];
        if (c == '\\') {
            if (i + 1 < len && pattern[i + 1] == 'Q') {
                const char *e = strstr(pattern + i, "\\E");
                i = e != NULL && (size_t)(e - pattern) < len ? (size_t)(e - pattern) + 1 : len;
            } else {
                i++;
            }
        } else if (in_class) {
            in_class = c != ']';
        } else if (c == '[') {
            in_class = 1;
            if (i + 1 < len && pattern[i + 1] == '^')
                i++;
            if (i + 1 < len && pattern[i + 1] == ']')
                i++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            return i;
        }
    }
    return len;
}

/* Length of the opening of a plain group at pattern[0]: "(" "(?:" "(?<name>"
** "(?P<name>" or "(?'name'", or 0 for lookarounds and other constructs. */
static size_t group_opening(const char *pattern, size_t len)
{
    if (len < 2 || pattern[0] != '(')
        return 0;
    if (pattern[1] != '?')
        return 1;
    if (len > 2 && pattern[2] == ':')
        return 3;
    size_t k = 2;
    if (k < len && pattern[k] == 'P')
        k++;
    if (k < len && (pattern[k] == '<' || pattern[k] == '\'') && k + 1 < len && pattern[k + 1] != '=' &&
        pattern[k + 1] != '!') {
        char close = pattern[k] == '<' ? '>' : '\'';
        while (k < len && pattern[k] != close)
            k++;
        return k < len ? k + 1 : 0;
    }
    return 0;
}

static int add_branch(struct rank_record *rr, const char *pattern, size_t len)
{
    if (rr->branch_count == MAX_BRANCHES)
        return 0;
    struct branch *b = &rr->branches[rr->branch_count];
    b->pattern = malloc(len + 1);
    if (b->pattern == NULL)
        return -1;
    memcpy(b->pattern, pattern, len);
    b->pattern[len] = '\0';
    b->literal = literal_chars(pattern, len);
    b->jit_ascii_only = pattern_jit_ascii_only(b->pattern);
    rr->branch_count++;
    return 0;
}

/* Split pattern into its branches: the top-level alternatives, and inside
** an alternative that is one plain group, that group's alternatives, so
** "(A|B|C)" yields A, B and C. */
static int split_branches(struct rank_record *rr, const char *pattern, size_t len, int depth)
{
    size_t opening = group_opening(pattern, len);
    if (depth < 8 && opening > 0 && pattern_group_end(pattern, len, 0) == len - 1)
        return split_branches(rr, pattern + opening, len - 1 - opening, depth + 1);
    size_t begin = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && pattern[i] == '(') {
            i = pattern_group_end(pattern, len, i);
            continue;
        }
        if (i < len && pattern[i] == '\\') {
            i++;
            continue;
        }
        if (i < len && pattern[i] == '[') {
            size_t k = i + 1;
            if (k < len && pattern[k] == '^')
                k++;
            if (k < len && pattern[k] == ']')
                k++;
            while (k < len && pattern[k] != ']')
                k += pattern[k] == '\\' ? 2 : 1;
            i = k;
            continue;
        }
        if (i == len || pattern[i] == '|') {
            int rc = begin == 0 && i == len ? add_branch(rr, pattern, len)
                                            : split_branches(rr, pattern + begin, i - begin, depth + 1);
            if (rc != 0)
                return rc;
            begin = i + 1;
        }
    }
    return 0;
}

static int compile_branches(struct rank_record *rr, const struct record *record)
{
    rr->branches = calloc(MAX_BRANCHES, sizeof *rr->branches);
    if (rr->branches == NULL)
        return -1;
    if (split_branches(rr, record->regex, strlen(record->regex), 0) != 0)
        return -1;
    return 0;
}

/* The sign of a branch that does not compile alone. */
static char no_code;
#define NO_CODE ((pcre2_code *)&no_code)

/* Return the compiled code of a branch, or NULL when it does not compile
** alone, because it refers to a group of another branch. Such a branch is
** never named as the branch that hit. */
static const pcre2_code *branch_code(struct branch *b)
{
    pcre2_code *code = atomic_load_explicit(&b->code, memory_order_acquire);
    if (code == NULL) {
        int errcode;
        PCRE2_SIZE erroffset;
        pcre2_code *compiled =
            pcre2_compile((PCRE2_SPTR)b->pattern, PCRE2_ZERO_TERMINATED, BRANCH_OPTIONS, &errcode, &erroffset, NULL);
        code = compiled != NULL ? compiled : NO_CODE;
        pcre2_code *expected = NULL;
        if (!atomic_compare_exchange_strong_explicit(&b->code, &expected, code, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            pcre2_code_free(compiled);
            code = expected;
        }
    }
    return code == NO_CODE ? NULL : code;
}

/* Minimum size of a signature that is matched as a pattern of its own. */
#define SIGNATURE_MIN_TOKENS 3
#define SIGNATURE_MIN_LITERAL 16.0

static int append(char **out, size_t *n, size_t *cap, const char *text, size_t len)
{
    if (*n + len + 1 > *cap) {
        size_t grown = (*n + len + 1) * 2;
        char *p = realloc(*out, grown);
        if (p == NULL)
            return -1;
        *out = p;
        *cap = grown;
    }
    memcpy(*out + *n, text, len);
    *n += len;
    (*out)[*n] = '\0';
    return 0;
}

/* Turn a signature into a pattern that matches it with other variable
** parts. A quoted name matches any name in the same quotes, a path or
** address any run without whitespace, a number any number and whitespace
** any whitespace. The rest must be there literally. */
static char *signature_pattern(const char *signature)
{
    size_t len = strlen(signature), n = 0, cap = 0;
    char *out = NULL;
    int rc = append(&out, &n, &cap, "", 0);
    size_t i = 0;
    while (rc == 0 && i < len) {
        unsigned char c = (unsigned char)signature[i];
        size_t quoted = quoted_name(signature, len, i);
        size_t path = quoted == 0 ? path_like(signature, len, i) : 0;
        if (quoted > 0) {
            char quote[8];
            int q = snprintf(quote, sizeof quote, "\\%c", signature[i]);
            rc = append(&out, &n, &cap, quote, (size_t)q);
            rc = rc ? rc : append(&out, &n, &cap, "\\S{1,80}?", 9);
            rc = rc ? rc : append(&out, &n, &cap, quote, (size_t)q);
            i += quoted;
        } else if (path > 0) {
            rc = append(&out, &n, &cap, "\\S+", 3);
            i += path;
        } else if (c >= '0' && c <= '9' && (i == 0 || !is_token_byte((unsigned char)signature[i - 1]))) {
            while (i < len && ((signature[i] >= '0' && signature[i] <= '9') || signature[i] == '.'))
                i++;
            rc = append(&out, &n, &cap, "\\d+(?:\\.\\d+)*", 13);
        } else if (is_space(c)) {
            while (i < len && is_space((unsigned char)signature[i]))
                i++;
            rc = append(&out, &n, &cap, "\\s+", 3);
        } else if (is_token_byte(c)) {
            rc = append(&out, &n, &cap, signature + i, 1);
            i++;
        } else {
            char escaped[2] = {'\\', (char)c};
            rc = append(&out, &n, &cap, escaped, 2);
            i++;
        }
    }
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static struct match_scratch *branch_scratch(void);

/* Whether the record's own regex matches its signature, in a search as
** bounded as any match: a record's regex may backtrack without end. */
static int regex_matches_signature(const struct record *record)
{
    struct match_scratch *scratch = branch_scratch();
    size_t start, end;
    return scratch != NULL && record_match_mode(record, scratch, record->signature, strlen(record->signature),
                                                MATCH_PROBE, &start, &end) == MATCH_HIT;
}

/* A signature pattern may make a hit of its own, so a line that quotes a
** record's signature with other variable parts finds the record even where
** its regex pins one of those parts. The exception is a record with
** examples whose regex matches its signature: its regex was tested against
** real lines and near misses, so it is the authority, and a loosened
** signature would ignore its anchors and exclusions. Either way the
** pattern still measures how closely a line quotes the signature. */
static int compile_signature(struct rank_record *rr, const struct record *record)
{
    rr->signature_may_hit = !record->has_examples || !regex_matches_signature(record);
    uint64_t tokens[MAX_TEXT_TOKENS];
    size_t count = tokenize(record->signature, strlen(record->signature), tokens, MAX_TEXT_TOKENS);
    rr->signature.pattern = signature_pattern(record->signature);
    if (rr->signature.pattern == NULL)
        return -1;
    rr->signature.literal = literal_chars(rr->signature.pattern, strlen(rr->signature.pattern));
    rr->signature.jit_ascii_only = pattern_jit_ascii_only(rr->signature.pattern);
    rr->signature_usable = count >= SIGNATURE_MIN_TOKENS || rr->signature.literal >= SIGNATURE_MIN_LITERAL;
    return 0;
}

static int tokenize_set(struct token_set *set, const char *text)
{
    uint64_t buffer[MAX_TEXT_TOKENS];
    set->count = tokenize(text, strlen(text), buffer, MAX_TEXT_TOKENS);
    set->tokens = malloc((set->count ? set->count : 1) * sizeof *set->tokens);
    set->idf = calloc(set->count ? set->count : 1, sizeof *set->idf);
    if (set->tokens == NULL || set->idf == NULL)
        return -1;
    memcpy(set->tokens, buffer, set->count * sizeof *buffer);
    return 0;
}

static int build_texts(struct rank_record *rr, struct record *record)
{
    rr->signature_len = strlen(record->signature);
    rr->signature_lower = malloc(rr->signature_len + 1);
    rr->texts = calloc(1 + record->alias_count, sizeof *rr->texts);
    if (rr->texts == NULL || rr->signature_lower == NULL)
        return -1;
    lower_ascii(rr->signature_lower, record->signature, rr->signature_len + 1);
    rr->text_count = 1 + record->alias_count;
    if (tokenize_set(&rr->texts[0], record->signature) != 0)
        return -1;
    for (size_t a = 0; a < record->alias_count; a++)
        if (tokenize_set(&rr->texts[1 + a], record->aliases[a]) != 0)
            return -1;

    /* The union of all texts counts each word once per record for the
    ** document frequencies and the guesses. */
    size_t total = 0;
    for (size_t t = 0; t < rr->text_count; t++)
        total += rr->texts[t].count;
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        return -1;
    size_t n = 0;
    for (size_t t = 0; t < rr->text_count; t++) {
        memcpy(all + n, rr->texts[t].tokens, rr->texts[t].count * sizeof *all);
        n += rr->texts[t].count;
    }
    free(record->tokens);
    record->tokens = all;
    record->token_count = sort_unique(all, n);
    return 0;
}

/* {==== literal requirements of branches */

/* The need of a pattern without a known requirement. */
static struct need NO_NEED;

static void free_need(struct branch *b)
{
    struct need *need = atomic_load(&b->need);
    if (need != &NO_NEED)
        free(need);
    atomic_store(&b->need, NULL);
}

/* Return the literal requirement of the branch, building it on first use.
** Two threads may both build it; the first to publish wins. */
static const struct need *branch_need(struct branch *b)
{
    struct need *need = atomic_load_explicit(&b->need, memory_order_acquire);
    if (need != NULL)
        return need;
    struct requirement *req = malloc(sizeof *req);
    if (req == NULL)
        return &NO_NEED;
    need = &NO_NEED;
    if (pattern_requirement(b->pattern, strlen(b->pattern), 2, req) == 0 && !req->any && req->count > 0) {
        struct need *built = malloc(sizeof *built + req->count * sizeof *built->clause);
        if (built != NULL) {
            built->count = req->count;
            memcpy(built->clause, req->clause, req->count * sizeof *built->clause);
            need = built;
        }
    }
    free(req);
    struct need *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&b->need, &expected, need, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        if (need != &NO_NEED)
            free(need);
        need = expected;
    }
    return need;
}

/* Make the lowercase copy of the line, once for all the hits on it. */
static void prepare_lowered(struct rank_line *words, const char *line, size_t line_len)
{
    if (words->lowered_state != 0)
        return;
    words->lowered_state = -1;
    if (line_len > RANK_LINE_LOWERED)
        return;
    if (!is_ascii_text(line, line_len))
        return;
    lower_ascii(words->lowered_copy, line, line_len);
    pair_set_build(&words->pair_copy, words->lowered_copy, line_len);
    words->lowered = words->lowered_copy;
    words->pairs = &words->pair_copy;
    words->lowered_state = 1;
}

/* Whether the pattern of b may match the line: false when no clause of
** its requirement has all its literals in the line, so PCRE2 need not run.
** Without a lowercase copy of the line (words NULL, non-ASCII bytes or too
** long a line) it always may: PCRE2's caseless UTF mode matches the KELVIN
** SIGN with k, which a byte search would miss. */
static int may_match(struct branch *b, struct rank_line *words, const char *line, size_t line_len)
{
    if (words == NULL)
        return 1;
    prepare_lowered(words, line, line_len);
    if (words->lowered_state != 1)
        return 1;
    const struct need *need = branch_need(b);
    if (need == &NO_NEED)
        return 1;
    for (size_t c = 0; c < need->count; c++) {
        const struct requirement_clause *clause = &need->clause[c];
        unsigned t = 0;
        while (t < clause->count &&
               find_bytes_in(words->lowered, line_len, words->pairs, clause->literal[t], clause->length[t]))
            t++;
        if (t == clause->count)
            return 1;
    }
    return 0;
}

/* }==== */

static void free_rank_record(struct rank_record *rr)
{
    for (size_t i = 0; i < rr->branch_count; i++) {
        free(rr->branches[i].pattern);
        pcre2_code *code = atomic_load(&rr->branches[i].code);
        if (code != NO_CODE)
            pcre2_code_free(code);
        lazy_jit_free(&rr->branches[i].jit);
        free_need(&rr->branches[i]);
    }
    free(rr->branches);
    free(rr->signature.pattern);
    pcre2_code *signature_code = atomic_load(&rr->signature.code);
    if (signature_code != NO_CODE)
        pcre2_code_free(signature_code);
    lazy_jit_free(&rr->signature.jit);
    free_need(&rr->signature);
    for (size_t t = 0; t < rr->text_count; t++) {
        free(rr->texts[t].tokens);
        free(rr->texts[t].idf);
    }
    free(rr->texts);
    free(rr->signature_lower);
}

/* Free the ranking data of an engine; rank_prepare builds it again. */
void rank_release(struct triage_engine *engine)
{
    for (size_t r = 0; r < engine->rank_record_count; r++)
        free_rank_record(&engine->rank_records[r]);
    free(engine->rank_records);
    engine->rank_records = NULL;
    engine->rank_record_count = 0;
    free(engine->df_keys);
    free(engine->df_counts);
    free(engine->df_base);
    engine->df_keys = NULL;
    engine->df_counts = NULL;
    engine->df_base = NULL;
    engine->df_cap = 0;
}

static int count_document_frequencies(struct triage_engine *engine)
{
    size_t cap = 1024;
    while (cap < engine->record_count * 64)
        cap *= 2;
    engine->df_keys = calloc(cap, sizeof *engine->df_keys);
    engine->df_counts = calloc(cap, sizeof *engine->df_counts);
    if (engine->df_keys == NULL || engine->df_counts == NULL)
        return -1;
    engine->df_cap = cap;
    size_t used = 0;
    for (size_t r = 0; r < engine->record_count; r++) {
        const struct record *record = engine->records[r];
        for (size_t k = 0; k < record->token_count && used < cap / 2; k++) {
            size_t slot = df_slot(engine, record->tokens[k] | 2);
            if (engine->df_keys[slot] == 0) {
                engine->df_keys[slot] = record->tokens[k] | 2;
                used++;
            }
            engine->df_counts[slot]++;
        }
    }
    /* The logarithms, once per word rather than once per word of a line. */
    engine->df_base = malloc(cap * sizeof *engine->df_base);
    if (engine->df_base == NULL)
        return -1;
    for (size_t slot = 0; slot < cap; slot++)
        engine->df_base[slot] = engine->df_keys[slot] != 0 ? base_idf(engine, engine->df_counts[slot]) : 0.0;
    return 0;
}

/* Engines with fewer records than this per thread prepare them on one thread. */
#define RECORDS_PER_THREAD 64

struct prepare_work {
    struct triage_engine *engine;
    atomic_int failed;
};

/* Compile the branches and signature pattern of record r and tokenize its
** texts; runs on any thread, since records do not share this data. */
static void prepare_record(void *context, size_t r)
{
    struct prepare_work *work = context;
    struct rank_record *rr = &work->engine->rank_records[r];
    struct record *record = work->engine->records[r];
    if (compile_branches(rr, record) != 0 || build_texts(rr, record) != 0 || compile_signature(rr, record) != 0)
        atomic_store(&work->failed, 1);
}

/* Build branches, token sets and document frequencies for the loaded
** records. Called once after loading, before matching; a later load
** rebuilds them. */
int rank_prepare(struct triage_engine *engine)
{
    rank_release(engine);
    engine->rank_records = calloc(engine->record_count ? engine->record_count : 1, sizeof *engine->rank_records);
    if (engine->rank_records == NULL)
        return -1;
    engine->rank_record_count = engine->record_count;
    struct prepare_work work = {.engine = engine};
    atomic_init(&work.failed, 0);
    parallel_for(engine->record_count, RECORDS_PER_THREAD, prepare_record, &work);
    if (atomic_load(&work.failed)) {
        rank_release(engine);
        return -1;
    }
    if (count_document_frequencies(engine) != 0) {
        rank_release(engine);
        return -1;
    }
    for (size_t r = 0; r < engine->record_count; r++) {
        struct record *record = engine->records[r];
        struct rank_record *rr = &engine->rank_records[r];
        for (size_t t = 0; t < rr->text_count; t++) {
            rr->texts[t].weight = 0;
            for (size_t k = 0; k < rr->texts[t].count; k++) {
                rr->texts[t].idf[k] = idf(engine, rr->texts[t].tokens[k]);
                rr->texts[t].weight += rr->texts[t].idf[k];
            }
        }
        record->token_weight = 0;
        rr->norm = 0;
        for (size_t k = 0; k < record->token_count; k++) {
            double w = idf(engine, record->tokens[k]);
            record->token_weight += w;
            rr->norm += w * w;
        }
        rr->norm = sqrt(rr->norm);
    }
    return 0;
}

/* }==== */

/* {==== scoring */

static size_t trimmed_length(const char *line, size_t len)
{
    while (len > 0 && is_space((unsigned char)line[len - 1]))
        len--;
    size_t lead = 0;
    while (lead < len && is_space((unsigned char)line[lead]))
        lead++;
    return len - lead;
}

/* The branch that hit: among the branches that match the line, the one
** with the most literal text, because that one is the most specific about the input.
** Returns its index, or -1 when no branch matches alone. */
/* One match scratch per thread for which_branch, kept for the thread's
** life. A scratch contains a JIT stack, which costs two system calls to
** make and free, more than the branch matches themselves on a scanned line. */
static pthread_key_t branch_scratch_key;
static pthread_once_t branch_scratch_once = PTHREAD_ONCE_INIT;

static void free_branch_scratch(void *scratch)
{
    scratch_free(scratch);
}

static void make_branch_scratch_key(void)
{
    pthread_key_create(&branch_scratch_key, free_branch_scratch);
}

static struct match_scratch *branch_scratch(void)
{
    pthread_once(&branch_scratch_once, make_branch_scratch_key);
    struct match_scratch *scratch = pthread_getspecific(branch_scratch_key);
    if (scratch == NULL && (scratch = scratch_new()) != NULL && pthread_setspecific(branch_scratch_key, scratch) != 0) {
        scratch_free(scratch);
        scratch = NULL;
    }
    return scratch;
}

static int which_branch(const struct rank_record *rr, const char *line, size_t line_len, struct rank_line *words)
{
    if (rr->branch_count <= 1)
        return rr->branch_count == 1 ? 0 : -1;
    struct match_scratch *scratch = branch_scratch();
    if (scratch == NULL)
        return -1;
    int found = -1;
    for (size_t i = 0; i < rr->branch_count; i++) {
        struct branch *b = &rr->branches[i];
        if (found >= 0 && b->literal <= rr->branches[found].literal)
            continue;
        if (!may_match(b, words, line, line_len))
            continue;
        const pcre2_code *plain = branch_code(b);
        if (plain == NULL)
            continue;
        /* JIT-compiled once the branch has been tried often, as in a scan. */
        size_t start, end;
        enum match_outcome outcome =
            pattern_match(&b->jit, plain, b->jit_ascii_only, scratch, line, line_len, &start, &end);
        if (outcome == MATCH_HIT)
            found = (int)i;
        if (outcome == MATCH_LIMIT)
            break; /* a hostile branch spent a whole time budget: spend no more on this line */
    }
    return found;
}

/* Similarity of the line's tokens to one text of a record: the harmonic
** mean of recall (the idf share of the text's words found in the line) and
** precision (the idf share of the line's known words found in the text), so
** a record whose signature explains more of the line wins. */
static double text_similarity(const struct token_set *text, const uint64_t *tokens, size_t n, double line_weight)
{
    if (text->weight <= 0 || line_weight <= 0)
        return 0;
    double shared = 0;
    for (size_t k = 0; k < text->count; k++)
        if (contains(tokens, n, text->tokens[k]))
            shared += text->idf[k];
    double recall = shared / text->weight;
    double precision = fmin(1.0, shared / line_weight);
    if (recall <= 0 || precision <= 0)
        return 0;
    return 2.0 * precision * recall / (precision + recall);
}

/* Match the signature pattern on the line, in a bounded search. The
** pattern is JIT-compiled once it has been used often enough to repay the
** compile, which a one-off diagnosis of thousands of records never does. */
static int match_signature(const struct rank_record *rr, struct match_scratch *scratch, const char *line,
                           size_t line_len, struct rank_line *words, size_t *start, size_t *end)
{
    if (!rr->signature_usable || scratch == NULL)
        return 0;
    struct branch *signature = (struct branch *)&rr->signature;
    if (!may_match(signature, words, line, line_len))
        return 0;
    const pcre2_code *plain = branch_code(signature);
    if (plain == NULL)
        return 0;
    return pattern_match(&signature->jit, plain, signature->jit_ascii_only, scratch, line, line_len, start, end) ==
           MATCH_HIT;
}

static int signature_pattern_matches(const struct rank_record *rr, const char *line, size_t line_len,
                                     struct rank_line *words)
{
    size_t start, end;
    return match_signature(rr, branch_scratch(), line, line_len, words, &start, &end);
}

/* Whether line contains text, ignoring ASCII case. The first byte is
** compared inline, so strncasecmp runs only where the text may start. */
static int contains_text(const char *line, size_t line_len, const char *text)
{
    size_t n = strlen(text);
    if (n == 0)
        return 0;
    int first = tolower((unsigned char)text[0]);
    for (size_t i = 0; i + n <= line_len; i++)
        if (tolower((unsigned char)line[i]) == first && strncasecmp(line + i, text, n) == 0)
            return 1;
    return 0;
}

/* Whether the line quotes the record's signature, ignoring ASCII case:
** found in the lowercased line when there is one. */
static int quotes_signature(const struct rank_record *rr, const struct record *record, const char *line,
                            size_t line_len, struct rank_line *words)
{
    prepare_lowered(words, line, line_len);
    if (words->lowered_state != 1)
        return contains_text(line, line_len, record->signature);
    return rr->signature_len > 0 &&
           find_bytes_in(words->lowered, line_len, words->pairs, rr->signature_lower, rr->signature_len);
}

/* Tokenize the line into words once, for all the hits on it. */
static void prepare_line(const struct triage_engine *engine, struct rank_line *words, const char *line,
                         size_t line_len)
{
    if (words->ready)
        return;
    words->count = tokenize(line, line_len, words->tokens, MAX_LINE_TOKENS);
    /* Words that appear in no record (host names, logger names, ids) cannot
    ** be explained by any record, so they are left out of the precision. */
    words->weight = 0;
    for (size_t k = 0; engine->df_cap > 0 && k < words->count; k++) {
        size_t slot = df_slot(engine, words->tokens[k] | 2);
        if (engine->df_keys[slot] != 0)
            words->weight += token_idf(engine->df_base[slot], words->tokens[k]);
    }
    words->ready = 1;
}

/* Token similarity of the line to the record's signature or its closest
** alias, with a share for quoting the signature: in full for the exact
** text, PATTERN_VERBATIM of it for the signature with other variable parts
** (see signature_pattern). When two records' signatures differ only in
** their variable parts, the one that the input quotes exactly wins. */
static double similarity(const struct triage_engine *engine, const struct record *record,
                         const struct rank_record *rr, const char *line, size_t line_len, struct rank_line *words)
{
    prepare_line(engine, words, line, line_len);
    double best = 0;
    for (size_t t = 0; t < rr->text_count; t++)
        best = fmax(best, text_similarity(&rr->texts[t], words->tokens, words->count, words->weight));
    double verbatim = 0.0;
    if (quotes_signature(rr, record, line, line_len, words))
        verbatim = 1.0;
    else if (signature_pattern_matches(rr, line, line_len, words))
        verbatim = PATTERN_VERBATIM;
    return (1.0 - VERBATIM_SHARE) * best + VERBATIM_SHARE * verbatim;
}

/* Fill hit->parts, hit->score, hit->alternative and hit->pattern for a hit
** of record on line. hit->start and hit->end are offsets within the line
** here. The record must belong to engine, which rank_prepare has prepared. */
void rank_score(const struct triage_engine *engine, const struct record *record, const char *line, size_t line_len,
                struct rank_line *words, struct hit *hit)
{
    const struct rank_record *rr = &engine->rank_records[hit->record];
    double literal;
    if (hit->by_signature) {
        hit->alternative = -1;
        hit->pattern = rr->signature.pattern;
        literal = rr->signature.literal;
    } else {
        int branch = which_branch(rr, line, line_len, words);
        hit->alternative = branch;
        hit->pattern = branch >= 0 && rr->branch_count > 1 ? rr->branches[branch].pattern : record->regex;
        literal = branch >= 0 ? rr->branches[branch].literal : literal_chars(record->regex, strlen(record->regex));
    }
    hit->parts[TRIAGE_PART_LITERAL] = 1.0 - exp(-literal / LITERAL_SCALE);

    size_t trimmed = trimmed_length(line, line_len);
    double span = (double)(hit->end - hit->start);
    hit->parts[TRIAGE_PART_COVERAGE] = trimmed > 0 ? fmin(1.0, span / (double)trimmed) : 0.0;

    hit->parts[TRIAGE_PART_SIMILARITY] = similarity(engine, record, rr, line, line_len, words);
    hit->parts[TRIAGE_PART_CONFIDENCE] = fmin(1.0, fmax(0.0, record->confidence));

    double score = 0;
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++)
        score += WEIGHTS[p] * hit->parts[p];
    hit->line_weight = 1.0;
    hit->score = MATCH_FLOOR + (1.0 - MATCH_FLOOR) * fmin(1.0, fmax(0.0, score));
}

/* Number of branches of record r's regex (at least 1 once prepared). */
size_t rank_branch_count(const struct triage_engine *engine, size_t r)
{
    return r < engine->rank_record_count ? engine->rank_records[r].branch_count : 0;
}

const char *rank_branch_pattern(const struct triage_engine *engine, size_t r, size_t i)
{
    if (r >= engine->rank_record_count || i >= engine->rank_records[r].branch_count)
        return NULL;
    return engine->rank_records[r].branches[i].pattern;
}

/* Match the signature pattern of record r (see signature_pattern) against
** a line whose regex did not match. A record whose regex misses its own
** signature is still found when the input shows that signature. Returns 1
** with the span in *start and *end, or 0. */
/* The pattern that rank_signature_match matches for record r, or NULL when
** it matches nothing; the scan prefilter must find these hits too. */
const char *rank_signature_pattern(const struct triage_engine *engine, size_t r)
{
    if (engine->rank_records == NULL || r >= engine->rank_record_count)
        return NULL;
    const struct rank_record *rr = &engine->rank_records[r];
    /* NOTE: a pattern that PCRE2 rejects (only a signature too long for it
    ** could be) is still returned: its prefilter candidates never match. */
    return rr->signature_usable && rr->signature_may_hit ? rr->signature.pattern : NULL;
}

int rank_signature_match(const struct triage_engine *engine, size_t r, struct match_scratch *scratch,
                         const char *line, size_t line_len, struct rank_line *words, size_t *start, size_t *end)
{
    const struct rank_record *rr = &engine->rank_records[r];
    if (!rr->signature_may_hit)
        return 0;
    return match_signature(rr, scratch, line, line_len, words, start, end);
}

/* Copy the weights of the parts and the floor of a match's score, so that
** an explanation can show how the parts make the score:
** score = floor + (1 - floor) * sum(weight * part), times the line weight. */
void rank_weights(double weights[TRIAGE_SCORE_PARTS], double *floor)
{
    memcpy(weights, WEIGHTS, sizeof WEIGHTS);
    *floor = MATCH_FLOOR;
}

/* Best first: score, then literal part, then similarity, then id, so equal
** inputs always rank alike. */
int hit_compare(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->parts[TRIAGE_PART_LITERAL] != y->parts[TRIAGE_PART_LITERAL])
        return x->parts[TRIAGE_PART_LITERAL] > y->parts[TRIAGE_PART_LITERAL] ? -1 : 1;
    if (x->parts[TRIAGE_PART_SIMILARITY] != y->parts[TRIAGE_PART_SIMILARITY])
        return x->parts[TRIAGE_PART_SIMILARITY] > y->parts[TRIAGE_PART_SIMILARITY] ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* }==== */

/* {==== multi-line input */

static int has_word(const char *line, size_t len, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= len; i++) {
        if (strncasecmp(line + i, word, w) != 0)
            continue;
        int left = i == 0 || !isalpha((unsigned char)line[i - 1]);
        int right = i + w == len || !isalpha((unsigned char)line[i + w]);
        if (left && right)
            return 1;
    }
    return 0;
}

/* Rate how much a line looks like the one that carries an error, in
** [0, 1]: 1 when it names an error, 0.5 for an ordinary line. The frames of
** a stack trace get less, because they never carry the error's message. */
double line_errorness(const char *line, size_t len)
{
    static const char *const words[] = {
        "error", "errors", "err", "fatal", "exception", "failed", "failure", "fail", "denied", "refused",
        "timeout", "timed", "panic", "critical", "crit", "alert", "emerg", "abort", "aborted", "killed",
        "cannot", "unable", "invalid", "rejected", "unreachable", "traceback", "segfault", "oom", "warning",
        "warn", "not",
    };
    size_t lead = 0;
    while (lead < len && is_space((unsigned char)line[lead]))
        lead++;
    if ((len - lead >= 3 && strncmp(line + lead, "at ", 3) == 0) ||
        (len - lead >= 5 && strncmp(line + lead, "File ", 5) == 0))
        return 0.25;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (has_word(line, len, words[i]))
            return 1.0;
    return 0.5;
}

/* Weigh a hit on one line of a multi-line input by the line's errorness,
** so that a hit on the line that carries the error outranks a weak hit on
** the noise around it. The factor is recorded in hit->line_weight. */
void rank_weigh_line(struct hit *hit, double errorness)
{
    hit->line_weight = LINE_WEIGHT_FLOOR + (1.0 - LINE_WEIGHT_FLOOR) * errorness;
    hit->score *= hit->line_weight;
}

/* }==== */

/* {==== guesses */

struct guess_candidate {
    size_t record;
    double similarity;
};

static int cmp_guess(const void *a, const void *b)
{
    const struct guess_candidate *x = a, *y = b;
    if (x->similarity != y->similarity)
        return x->similarity > y->similarity ? -1 : 1;
    return x->record < y->record ? -1 : x->record > y->record;
}

/* Cosine similarity of the idf-weighted token vectors of a line and of a
** record's signature and aliases. */
static double cosine(const struct triage_engine *engine, size_t r, const uint64_t *tokens, size_t n,
                     double line_norm)
{
    const struct record *record = engine->records[r];
    const struct rank_record *rr = &engine->rank_records[r];
    if (rr->norm <= 0 || line_norm <= 0)
        return 0;
    double dot = 0;
    for (size_t k = 0; k < record->token_count; k++)
        if (contains(tokens, n, record->tokens[k])) {
            double w = idf(engine, record->tokens[k]);
            dot += w * w;
        }
    return dot / (rr->norm * line_norm);
}

/* Fill best[r] with the best cosine of record r over the lines of text. */
static void guess_lines(const struct triage_engine *engine, const char *text, size_t len, double *best)
{
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        uint64_t tokens[MAX_LINE_TOKENS];
        size_t n = tokenize(text + pos, end - pos, tokens, MAX_LINE_TOKENS);
        double norm = 0;
        for (size_t k = 0; k < n; k++) {
            double w = idf(engine, tokens[k]);
            norm += w * w;
        }
        norm = sqrt(norm);
        for (size_t r = 0; n > 0 && r < engine->record_count; r++)
            best[r] = fmax(best[r], cosine(engine, r, tokens, n, norm));
        pos = end + 1;
    }
}

/* Rank the records closest to text by token similarity, for input that no
** regex matched. Fills at most max entries of out, best first, each with a
** score below the lowest score of a match. Returns
** the number filled, or -1 when out of memory. */
int rank_guess(const struct triage_engine *engine, const char *text, size_t len, struct hit *out, size_t max)
{
    if (engine->record_count == 0 || max == 0)
        return 0;
    double *best = calloc(engine->record_count, sizeof *best);
    struct guess_candidate *candidates = malloc(engine->record_count * sizeof *candidates);
    if (best == NULL || candidates == NULL) {
        free(best);
        free(candidates);
        return -1;
    }
    guess_lines(engine, text, len, best);
    size_t count = 0;
    for (size_t r = 0; r < engine->record_count; r++)
        if (best[r] >= GUESS_THRESHOLD)
            candidates[count++] = (struct guess_candidate){r, best[r]};
    qsort(candidates, count, sizeof *candidates, cmp_guess);
    size_t filled = 0;
    for (; filled < count && filled < max && filled < GUESS_MAX; filled++) {
        struct hit *hit = &out[filled];
        memset(hit, 0, sizeof *hit);
        hit->record = candidates[filled].record;
        hit->id = engine->records[hit->record]->id;
        hit->alternative = -1;
        hit->line_weight = 1.0;
        hit->parts[TRIAGE_PART_SIMILARITY] = candidates[filled].similarity;
        hit->parts[TRIAGE_PART_CONFIDENCE] = fmin(1.0, fmax(0.0, engine->records[hit->record]->confidence));
        hit->score = MATCH_FLOOR * LINE_WEIGHT_FLOOR * 0.99 * candidates[filled].similarity;
    }
    free(best);
    free(candidates);
    return (int)filled;
}

/* }==== */
