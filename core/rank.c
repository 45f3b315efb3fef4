/*
** Ranking: order the hits of one input so the most specific record comes first.
**
** Owns: tokenisation, corpus token statistics (idf), the score formula and
** the tie-break. One ranker serves diagnose, scan and the library.
** Depends on: match.c for which pattern alternative hit.
**
** A hit's score is a weighted sum of four parts in [0, 1]:
**   literal     how much literal text the alternative that hit carries, so a
**               bare "503" cannot outrank a 40-character specific pattern;
**   coverage    the share of the line that the hit spans;
**   similarity  idf-weighted share of the signature's (or an alias')
**               tokens found in the line: rare words count more;
**   confidence  the record's own confidence.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const double WEIGHTS[TRIAGE_SCORE_PARTS] = {
    [TRIAGE_PART_LITERAL] = 0.35,
    [TRIAGE_PART_COVERAGE] = 0.10,
    [TRIAGE_PART_SIMILARITY] = 0.40,
    [TRIAGE_PART_CONFIDENCE] = 0.15,
};

/* Literal characters at which the literal part reaches 1 - 1/e. */
#define LITERAL_SCALE 16.0
#define MAX_LINE_TOKENS 1024

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

static int is_token_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Hash the lowercase alphanumeric runs of text into out, sorted and unique.
** The low bit of a hash marks an all-digit token, which weighs less. */
size_t tokenize(const char *text, size_t len, uint64_t *out, size_t max)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len && n < max) {
        while (i < len && !is_token_byte((unsigned char)text[i]))
            i++;
        size_t begin = i;
        int digits = 1;
        char word[64];
        size_t w = 0;
        while (i < len && is_token_byte((unsigned char)text[i])) {
            unsigned char c = (unsigned char)text[i];
            if (c < '0' || c > '9')
                digits = 0;
            if (w < sizeof word)
                word[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
        }
        if (i == begin)
            break;
        if (w < 2 && !digits)
            continue; /* single letters say nothing */
        uint64_t h = hash_bytes(word, w);
        out[n++] = (h & ~1ull) | (uint64_t)digits;
    }
    qsort(out, n, sizeof *out, cmp_u64);
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (u == 0 || out[u - 1] != out[k])
            out[u++] = out[k];
    return u;
}

static size_t df_slot(const struct triage_engine *engine, uint64_t key)
{
    size_t mask = engine->df_cap - 1;
    size_t i = (size_t)(key ^ (key >> 29)) & mask;
    while (engine->df_keys[i] != 0 && engine->df_keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static double idf(const struct triage_engine *engine, uint64_t token)
{
    double n = (double)engine->record_count;
    uint32_t df = 0;
    if (engine->df_cap > 0) {
        size_t slot = df_slot(engine, token | 2); /* never 0, which marks a free slot */
        df = engine->df_keys[slot] != 0 ? engine->df_counts[slot] : 0;
    }
    double weight = log((n + 1.0) / ((double)df + 1.0)) + 1.0;
    return (token & 1) ? weight * 0.5 : weight;
}

static int record_tokens(struct record *record)
{
    size_t cap = 256;
    uint64_t *all = malloc(cap * sizeof *all);
    if (all == NULL)
        return -1;
    size_t n = tokenize(record->signature, strlen(record->signature), all, cap);
    for (size_t a = 0; a < record->alias_count && n < cap; a++)
        n += tokenize(record->aliases[a], strlen(record->aliases[a]), all + n, cap - n);
    qsort(all, n, sizeof *all, cmp_u64);
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (u == 0 || all[u - 1] != all[k])
            all[u++] = all[k];
    free(record->tokens);
    record->tokens = all;
    record->token_count = u;
    return 0;
}

/* Build token statistics for the loaded records. Called once after loading,
** before matching; repeated loads rebuild them. */
int rank_prepare(struct triage_engine *engine)
{
    size_t cap = 1024;
    while (cap < engine->record_count * 64)
        cap *= 2;
    free(engine->df_keys);
    free(engine->df_counts);
    engine->df_keys = calloc(cap, sizeof *engine->df_keys);
    engine->df_counts = calloc(cap, sizeof *engine->df_counts);
    engine->df_cap = cap;
    if (engine->df_keys == NULL || engine->df_counts == NULL) {
        engine->df_cap = 0;
        return -1;
    }
    size_t used = 0;
    for (size_t r = 0; r < engine->record_count; r++) {
        struct record *record = engine->records[r];
        if (record_tokens(record) != 0)
            return -1;
        for (size_t k = 0; k < record->token_count && used < cap / 2; k++) {
            size_t slot = df_slot(engine, record->tokens[k] | 2);
            if (engine->df_keys[slot] == 0) {
                engine->df_keys[slot] = record->tokens[k] | 2;
                used++;
            }
            engine->df_counts[slot]++;
        }
    }
    for (size_t r = 0; r < engine->record_count; r++) {
        struct record *record = engine->records[r];
        record->token_weight = 0;
        for (size_t k = 0; k < record->token_count; k++)
            record->token_weight += idf(engine, record->tokens[k]);
    }
    return 0;
}

/* }==== */

static size_t trimmed_length(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    size_t lead = 0;
    while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
        lead++;
    return len - lead;
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

/* Fill hit->parts and hit->score for a hit of record on line. hit->start
** and hit->end are offsets within the line here. */
void rank_score(const struct triage_engine *engine, const struct record *record, const char *line, size_t line_len,
                struct hit *hit)
{
    double literal = 0;
    if (hit->alternative >= 0 && (size_t)hit->alternative < record->alternative_count)
        literal = record->alternatives[hit->alternative].literal_chars;
    else if (record->alternative_count > 0)
        literal = record->alternatives[0].literal_chars;
    hit->parts[TRIAGE_PART_LITERAL] = 1.0 - exp(-literal / LITERAL_SCALE);

    size_t trimmed = trimmed_length(line, line_len);
    double span = (double)(hit->end - hit->start);
    hit->parts[TRIAGE_PART_COVERAGE] = trimmed > 0 ? fmin(1.0, span / (double)trimmed) : 0.0;

    uint64_t tokens[MAX_LINE_TOKENS];
    size_t n = tokenize(line, line_len, tokens, MAX_LINE_TOKENS);
    double shared = 0;
    for (size_t k = 0; k < record->token_count; k++)
        if (contains(tokens, n, record->tokens[k]))
            shared += idf(engine, record->tokens[k]);
    hit->parts[TRIAGE_PART_SIMILARITY] = record->token_weight > 0 ? fmin(1.0, shared / record->token_weight) : 0.0;

    hit->parts[TRIAGE_PART_CONFIDENCE] = fmin(1.0, fmax(0.0, record->confidence));

    double score = 0;
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++)
        score += WEIGHTS[p] * hit->parts[p];
    hit->score = fmin(1.0, fmax(0.0, score));
}

/* Best first: score, then literal part, then id, so equal inputs always rank alike. */
int hit_compare(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->parts[TRIAGE_PART_LITERAL] != y->parts[TRIAGE_PART_LITERAL])
        return x->parts[TRIAGE_PART_LITERAL] > y->parts[TRIAGE_PART_LITERAL] ? -1 : 1;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}
