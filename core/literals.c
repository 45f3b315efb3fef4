/*
** Literal requirements: the literal text that every match of a pattern
** must contain, so a fast multi-literal search can rule a pattern out of a
** line before PCRE2 runs.
**
** Owns: a reader for the subset of PCRE2 syntax that record patterns use,
** and the algebra of requirements in disjunctive normal form.
** Depends on: nothing but libc.
**
** The result must never be stronger than the pattern: when a line matches
** the pattern, the line contains every literal of at least one clause. Every
** simplification below therefore only weakens a requirement (drops a term
** of a clause, or gives up and returns "any"). Syntax the reader does not
** follow makes it give up rather than guess.
**
** Matching is caseless and literals are lowercase ASCII. Under PCRE2's
** caseless UTF mode two non-ASCII characters also match ASCII letters:
** U+212A KELVIN SIGN matches k and U+017F LATIN SMALL LETTER LONG S matches
** s. The scanner maps both to their ASCII letter before searching, which
** keeps the ASCII literals sound on such lines.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "prefilter.h"

struct reader {
    const char *p, *end;
    int depth;
    int failed; /* syntax the reader does not follow */
};

/* Most strings a literal set holds: a product of optional characters and
** small alternations that grows beyond this is cut into separate runs. */
#define SET_MAX 8

/* The strings that a part of a pattern can match, when they are few and
** all literal: "timed? ?out" is {timeout, time out, timedout, timed out}. */
struct literal_set {
    size_t count;
    unsigned char len[SET_MAX];
    char text[SET_MAX][REQUIREMENT_MAX_LITERAL];
};

/* The reader's knowledge of a group, an alternative or an alternation:
** literals that every match contains, and, when exact is set, the whole
** set of strings it matches. */
struct part {
    struct requirement req;
    int exact;
    struct literal_set set;
};

/* An atom of a sequence: one literal character, a group, anything else
** that consumes text, or a zero-width item. */
enum atom_kind { ATOM_CHAR, ATOM_GROUP, ATOM_OTHER, ATOM_EMPTY };

struct atom {
    enum atom_kind kind;
    char bytes[4];      /* ATOM_CHAR: the character in UTF-8, lowercase if ASCII */
    unsigned char len;
    struct part *group; /* ATOM_GROUP: owned by the atom */
};

/* A quantifier: at least min and at most max times, max -1 for no limit. */
struct quantifier {
    long min, max;
};

static struct part *read_alternation(struct reader *r);

/* {==== requirement algebra */

static struct part *part_new(void)
{
    struct part *part = calloc(1, sizeof *part);
    if (part != NULL)
        part->req.any = 1;
    return part;
}

static void set_any(struct requirement *req)
{
    req->any = 1;
    req->count = 0;
}

/* Length of the longest literal of a clause: how selective it is. */
static size_t clause_strength(const struct requirement_clause *clause)
{
    size_t best = 0;
    for (unsigned t = 0; t < clause->count; t++)
        if (clause->length[t] > best)
            best = clause->length[t];
    return best;
}

/* Selectivity of a requirement: the strength of its weakest clause,
** because a line needs to satisfy only one clause. */
size_t requirement_strength(const struct requirement *req)
{
    if (req->any || req->count == 0)
        return 0;
    size_t weakest = SIZE_MAX;
    for (size_t i = 0; i < req->count; i++) {
        size_t s = clause_strength(&req->clause[i]);
        if (s < weakest)
            weakest = s;
    }
    return weakest;
}

static int contains_literal(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len > hay_len)
        return 0;
    for (size_t i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            return 1;
    return 0;
}

/* Add a literal to a clause. A literal contained in another one of the
** clause is implied by it and dropped. Beyond the clause's capacity the
** shortest literal goes, which weakens the clause. */
static void clause_add(struct requirement_clause *clause, const char *text, size_t len)
{
    for (unsigned t = 0; t < clause->count; t++)
        if (contains_literal(clause->literal[t], clause->length[t], text, len))
            return;
    for (unsigned t = 0; t < clause->count;) {
        if (contains_literal(text, len, clause->literal[t], clause->length[t])) {
            clause->count--;
            memmove(&clause->literal[t], &clause->literal[clause->count], sizeof clause->literal[t]);
            clause->length[t] = clause->length[clause->count];
        } else {
            t++;
        }
    }
    unsigned slot = clause->count;
    if (slot == REQUIREMENT_MAX_TERMS) {
        slot = 0;
        for (unsigned t = 1; t < clause->count; t++)
            if (clause->length[t] < clause->length[slot])
                slot = t;
        if (clause->length[slot] >= len)
            return;
    } else {
        clause->count++;
    }
    memcpy(clause->literal[slot], text, len);
    clause->length[slot] = (unsigned char)len;
}

/* Whether every literal of b occurs in a literal of a, so a line that
** satisfies clause a also satisfies clause b. */
static int clause_implies(const struct requirement_clause *a, const struct requirement_clause *b)
{
    for (unsigned j = 0; j < b->count; j++) {
        unsigned i = 0;
        while (i < a->count && !contains_literal(a->literal[i], a->length[i], b->literal[j], b->length[j]))
            i++;
        if (i == a->count)
            return 0;
    }
    return 1;
}

/* Drop clauses that imply another one: in "timeout|timeouterror" a line
** with "timeouterror" already has "timeout". */
static void drop_implied_clauses(struct requirement *req)
{
    for (size_t i = 0; i < req->count;) {
        size_t j = 0;
        while (j < req->count && (j == i || !clause_implies(&req->clause[i], &req->clause[j])))
            j++;
        if (j < req->count) {
            req->clause[i] = req->clause[--req->count];
            continue;
        }
        i++;
    }
}

/* dst := src, copying only the clauses in use: a requirement has room for
** REQUIREMENT_MAX_CLAUSES and seldom contains more than a few. */
static void requirement_copy(struct requirement *dst, const struct requirement *src)
{
    dst->any = src->any;
    dst->count = src->count;
    memcpy(dst->clause, src->clause, src->count * sizeof *src->clause);
}

/* a := a OR b. When the clauses do not fit, those implied by another
** clause of their side go first, because an alternation of many branches
** repeats clauses that a shorter one covers. Unless that leaves half the
** room free, the result weakens to "any". A search for implied clauses is
** quadratic, and between two of them at least REQUIREMENT_MAX_CLAUSES / 2
** clauses are added. Returns -1 when out of memory. */
static int requirement_or(struct requirement *a, const struct requirement *b)
{
    if (a->any)
        return 0;
    if (b->any) {
        set_any(a);
        return 0;
    }
    const struct requirement *add = b;
    struct requirement *reduced = NULL;
    size_t room = REQUIREMENT_MAX_CLAUSES;
    if (a->count + b->count > room) {
        reduced = malloc(sizeof *reduced);
        if (reduced == NULL)
            return -1;
        requirement_copy(reduced, b);
        drop_implied_clauses(reduced);
        drop_implied_clauses(a);
        add = reduced;
        room = REQUIREMENT_MAX_CLAUSES / 2;
    }
    if (a->count + add->count > room) {
        set_any(a);
    } else {
        memcpy(&a->clause[a->count], add->clause, add->count * sizeof *add->clause);
        a->count += add->count;
    }
    free(reduced);
    return 0;
}

/* a := a AND b, as the cross product of the clauses. When the product would
** hold too many clauses, the weaker side is dropped: a requirement implies
** each of its conjuncts. Returns -1 when out of memory. */
static int requirement_and(struct requirement *a, const struct requirement *b)
{
    if (b->any)
        return 0;
    if (a->any) {
        requirement_copy(a, b);
        return 0;
    }
    if (a->count * b->count > REQUIREMENT_MAX_CLAUSES) {
        if (requirement_strength(b) > requirement_strength(a))
            requirement_copy(a, b);
        return 0;
    }
    /* Each clause of the product starts as a copy of one of a's. */
    struct requirement *product = malloc(sizeof *product);
    if (product == NULL)
        return -1;
    product->any = 0;
    product->count = 0;
    for (size_t i = 0; i < a->count; i++)
        for (size_t j = 0; j < b->count; j++) {
            struct requirement_clause *clause = &product->clause[product->count++];
            *clause = a->clause[i];
            for (unsigned t = 0; t < b->clause[j].count; t++)
                clause_add(clause, b->clause[j].literal[t], b->clause[j].length[t]);
        }
    requirement_copy(a, product);
    free(product);
    return 0;
}

/* }==== */

/* {==== pattern reader */

static int at_end(const struct reader *r)
{
    return r->p >= r->end;
}

static void give_up(struct reader *r)
{
    r->failed = 1;
    r->p = r->end;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* A character that a literal may hold: printable ASCII. Anything else is
** read as some other atom, which only weakens the requirement. */
static int literal_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x7F;
}

static void set_char(struct atom *atom, char c)
{
    atom->kind = ATOM_CHAR;
    atom->bytes[0] = lower(c);
    atom->len = 1;
}

/* Whether PCRE2's caseless mode matches a code point only with itself, so
** its UTF-8 bytes can be searched as they are. Only scripts without case
** are listed: Hebrew, Arabic, the Indic scripts, Thai, Lao, Hangul, kana,
** CJK ideographs and punctuation, and general punctuation. */
static int caseless_invariant(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x0590, 0x06FF}, {0x0750, 0x077F}, {0x0900, 0x0DFF}, {0x0E00, 0x0EFF}, {0x1100, 0x11FF},
        {0x2000, 0x206F}, {0x2E80, 0x2FDF}, {0x3000, 0x30FF}, {0x3130, 0x318F}, {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF}, {0xAC00, 0xD7AF}, {0xF900, 0xFAFF}, {0x20000, 0x2FA1F},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return 1;
    return 0;
}

/* Read the rest of a multibyte character whose lead byte is already read.
** It is one atom, so a quantifier after it applies to all of it. It is a
** literal character only when caseless matching cannot change it. */
static void read_multibyte(struct reader *r, struct atom *atom, char lead)
{
    unsigned char c = (unsigned char)lead;
    size_t need = 0; /* continuation bytes */
    uint32_t cp = c & 0x1Fu;
    if (c >= 0xF0) {
        need = 3;
        cp = c & 0x07u;
    } else if (c >= 0xE0) {
        need = 2;
        cp = c & 0x0Fu;
    } else if (c >= 0xC0) {
        need = 1;
    }
    atom->bytes[0] = lead;
    size_t n = 1;
    while (!at_end(r) && ((unsigned char)*r->p & 0xC0) == 0x80) {
        if (n < sizeof atom->bytes)
            atom->bytes[n] = *r->p;
        cp = (cp << 6) | ((unsigned char)*r->p & 0x3Fu);
        n++;
        r->p++;
    }
    if (need > 0 && n == need + 1 && caseless_invariant(cp)) {
        atom->kind = ATOM_CHAR;
        atom->len = (unsigned char)n;
    }
}

/* Skip a name or argument in braces, angle brackets or quotes after an
** escape such as \k<name>, \g{-1} or \p{Greek}. */
static void skip_delimited(struct reader *r)
{
    if (at_end(r))
        return;
    char close;
    switch (*r->p) {
    case '{': close = '}'; break;
    case '<': close = '>'; break;
    case '\'': close = '\''; break;
    default: return;
    }
    const char *q = memchr(r->p + 1, close, (size_t)(r->end - r->p - 1));
    if (q == NULL) {
        give_up(r);
        return;
    }
    r->p = q + 1;
}

/* \x: two hex digits at most, or any number in braces. */
static struct atom read_hex_escape(struct reader *r)
{
    struct atom atom = {ATOM_OTHER, {0}, 0, NULL};
    unsigned long value = 0;
    if (!at_end(r) && *r->p == '{') {
        const char *q = r->p + 1;
        while (q < r->end && hex_digit_value((unsigned char)*q) >= 0 && value < 0x110000)
            value = value * 16 + (unsigned long)hex_digit_value((unsigned char)*q++);
        if (q >= r->end || *q != '}') {
            give_up(r);
            return atom;
        }
        r->p = q + 1;
    } else {
        for (int i = 0; i < 2 && !at_end(r) && hex_digit_value((unsigned char)*r->p) >= 0; i++)
            value = value * 16 + (unsigned long)hex_digit_value((unsigned char)*r->p++);
    }
    if (value < 0x80 && literal_byte((unsigned char)value))
        set_char(&atom, (char)value);
    return atom;
}

/* Read the escape after a backslash. */
static struct atom read_escape(struct reader *r)
{
    struct atom atom = {ATOM_OTHER, {0}, 0, NULL};
    if (at_end(r)) {
        give_up(r);
        return atom;
    }
    char c = *r->p++;
    if (!is_alnum(c)) {
        if (literal_byte((unsigned char)c))
            set_char(&atom, c);
        else if ((unsigned char)c >= 0x80)
            read_multibyte(r, &atom, c);
        return atom;
    }
    switch (c) {
    case 'b': case 'B': case 'A': case 'Z': case 'z': case 'G': case 'K': case 'E':
        atom.kind = ATOM_EMPTY;
        return atom;
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S': case 'h': case 'H':
    case 'v': case 'V': case 'R': case 'X': case 'a': case 'e': case 'f': case 'n':
    case 'r': case 't':
        return atom;
    case 'N':
        if (!at_end(r) && *r->p == '{')
            skip_delimited(r);
        return atom;
    case 'x':
        return read_hex_escape(r);
    case 'c':
        if (at_end(r))
            give_up(r);
        else
            r->p++;
        return atom;
    case 'o': case 'p': case 'P':
        if (!at_end(r) && *r->p == '{')
            skip_delimited(r);
        else if (c != 'o' && !at_end(r))
            r->p++; /* one-letter property such as \pL */
        else
            give_up(r);
        return atom;
    case 'g': case 'k':
        if (!at_end(r) && (*r->p == '{' || *r->p == '<' || *r->p == '\'')) {
            skip_delimited(r);
            return atom;
        }
        if (c == 'k') {
            give_up(r);
            return atom;
        }
        if (!at_end(r) && (*r->p == '+' || *r->p == '-'))
            r->p++;
        while (!at_end(r) && is_digit(*r->p))
            r->p++;
        return atom;
    default:
        if (is_digit(c)) {
            /* A back reference or an octal escape: either way not literal. */
            while (!at_end(r) && is_digit(*r->p))
                r->p++;
            return atom;
        }
        give_up(r); /* \Q is handled by the caller; other letters are errors in PCRE2 */
        return atom;
    }
}

/* Read a character class; the opening '[' is already read. A class of one
** character, or of one letter in both cases such as [Hh], matches like
** that character in caseless mode and is read as it. */
static struct atom read_class(struct reader *r)
{
    struct atom atom = {ATOM_OTHER, {0}, 0, NULL};
    const char *start = r->p;
    int negated = 0, simple = 1;
    if (!at_end(r) && *r->p == '^') {
        negated = 1;
        r->p++;
    }
    if (!at_end(r) && *r->p == ']')
        r->p++;
    while (!at_end(r) && *r->p != ']') {
        if (*r->p == '\\') {
            simple = 0;
            r->p++;
            if (!at_end(r) && *r->p == 'Q') {
                const char *q = r->p + 1;
                while (q + 1 < r->end && !(q[0] == '\\' && q[1] == 'E'))
                    q++;
                if (q + 1 >= r->end) {
                    give_up(r);
                    return atom;
                }
                r->p = q + 2;
                continue;
            }
            if (!at_end(r))
                r->p++;
            continue;
        }
        if (*r->p == '[' && r->p + 1 < r->end && (r->p[1] == ':' || r->p[1] == '.' || r->p[1] == '=')) {
            char kind = r->p[1];
            const char *q = r->p + 2;
            while (q + 1 < r->end && !(q[0] == kind && q[1] == ']'))
                q++;
            if (q + 1 >= r->end) {
                give_up(r);
                return atom;
            }
            r->p = q + 2;
            simple = 0;
            continue;
        }
        if (*r->p == '-' || !literal_byte((unsigned char)*r->p))
            simple = 0;
        r->p++;
    }
    if (at_end(r)) {
        give_up(r);
        return atom;
    }
    const char *stop = r->p++;
    if (negated || !simple || stop == start)
        return atom;
    for (const char *c = start; c < stop; c++)
        if (lower(*c) != lower(*start))
            return atom;
    set_char(&atom, *start);
    return atom;
}

/* Read the group body up to its ')'. */
static struct part *read_group_body(struct reader *r)
{
    if (++r->depth > 64) {
        give_up(r);
        return part_new();
    }
    struct part *part = read_alternation(r);
    r->depth--;
    if (at_end(r) || *r->p != ')')
        give_up(r);
    else
        r->p++;
    return part;
}

/* Skip inline option letters as in (?i) or (?-s:; extended mode changes
** how the rest of the pattern reads, so it makes the reader give up. */
static int read_options(struct reader *r)
{
    while (!at_end(r) && (is_alnum(*r->p) || *r->p == '-' || *r->p == '^')) {
        if (*r->p == 'x')
            return -1;
        r->p++;
    }
    return 0;
}

/* Read a group; the '(' is already read. */
static struct atom read_group(struct reader *r)
{
    struct atom atom = {ATOM_OTHER, {0}, 0, NULL};
    if (!at_end(r) && *r->p == '*') {
        give_up(r); /* verbs such as (*UTF) or (*SKIP) */
        return atom;
    }
    if (at_end(r) || *r->p != '?') {
        atom.kind = ATOM_GROUP;
        atom.group = read_group_body(r);
        return atom;
    }
    r->p++;
    if (at_end(r)) {
        give_up(r);
        return atom;
    }
    char c = *r->p;
    if (c == ':' || c == '|' || c == '>') {
        r->p++;
        atom.kind = ATOM_GROUP;
        atom.group = read_group_body(r);
        return atom;
    }
    int lookbehind = c == '<' && r->p + 1 < r->end && (r->p[1] == '=' || r->p[1] == '!' || r->p[1] == '*');
    if (c == '=' || c == '!' || c == '*' || lookbehind) {
        /* A lookaround consumes nothing; its body is read only to find its end. */
        r->p += lookbehind ? 2 : 1;
        free(read_group_body(r));
        atom.kind = ATOM_EMPTY;
        return atom;
    }
    if (c == '#') {
        const char *q = memchr(r->p, ')', (size_t)(r->end - r->p));
        if (q == NULL)
            give_up(r);
        else
            r->p = q + 1;
        atom.kind = ATOM_EMPTY;
        return atom;
    }
    if (c == '<' || c == '\'' || (c == 'P' && r->p + 1 < r->end && r->p[1] == '<')) {
        if (c == 'P')
            r->p++;
        skip_delimited(r);
        atom.kind = ATOM_GROUP;
        atom.group = read_group_body(r);
        return atom;
    }
    if (c == 'P' && r->p + 1 < r->end && r->p[1] == '=') {
        const char *q = memchr(r->p, ')', (size_t)(r->end - r->p));
        if (q == NULL)
            give_up(r);
        else
            r->p = q + 1;
        return atom; /* a back reference by name */
    }
    if (is_alnum(c) || c == '-' || c == '^') {
        if (c == 'R' || c == 'C' || is_digit(c) || read_options(r) != 0) {
            give_up(r); /* recursion, callouts and extended mode */
            return atom;
        }
        if (!at_end(r) && *r->p == ')') {
            r->p++;
            atom.kind = ATOM_EMPTY;
            return atom;
        }
        if (!at_end(r) && *r->p == ':') {
            r->p++;
            atom.kind = ATOM_GROUP;
            atom.group = read_group_body(r);
            return atom;
        }
    }
    give_up(r); /* conditionals, subroutine calls and the rest */
    return atom;
}

/* Read a quantifier if one follows and return whether there was one; q is
** {1, 1} when there is none. A brace that PCRE2 versions
** disagree on ({,3}, { 2 }) is read as {0,}, which is safe either way. */
static int read_quantifier(struct reader *r, struct quantifier *q)
{
    q->min = q->max = 1;
    if (at_end(r))
        return 0;
    char c = *r->p;
    if (c == '?' || c == '*' || c == '+') {
        q->min = c == '+' ? 1 : 0;
        q->max = c == '?' ? 1 : -1;
        r->p++;
    } else if (c == '{') {
        const char *end = r->p + 1;
        while (end < r->end && (is_digit(*end) || *end == ',' || *end == ' '))
            end++;
        if (end >= r->end || *end != '}' || end == r->p + 1)
            return 0; /* a literal '{' */
        char *after;
        const char *d = r->p + 1;
        if (is_digit(*d)) {
            q->min = strtol(d, &after, 10);
            if (after == end)
                q->max = q->min;
            else if (*after == ',' && after + 1 == end)
                q->max = -1;
            else if (*after == ',' && is_digit(after[1]))
                q->max = strtol(after + 1, &after, 10);
            if (after != end) {
                q->min = 0;
                q->max = -1;
            }
        } else {
            q->min = 0;
            q->max = -1;
        }
        r->p = end + 1;
    } else {
        return 0;
    }
    if (!at_end(r) && (*r->p == '?' || *r->p == '+'))
        r->p++; /* lazy or possessive */
    return 1;
}

/* Read the next atom of a sequence. */
static struct atom read_atom(struct reader *r)
{
    struct atom atom = {ATOM_OTHER, {0}, 0, NULL};
    unsigned char c = (unsigned char)*r->p++;
    switch (c) {
    case '\\':
        return read_escape(r);
    case '(':
        return read_group(r);
    case '[':
        return read_class(r);
    case '.':
        return atom;
    case '^': case '$':
        atom.kind = ATOM_EMPTY;
        return atom;
    default:
        if (literal_byte(c))
            set_char(&atom, (char)c);
        else if (c >= 0x80)
            read_multibyte(r, &atom, (char)c);
        return atom;
    }
}

/* {==== literal sets */

static void set_clear(struct literal_set *set)
{
    set->count = 1;
    set->len[0] = 0;
}

static int set_has_empty(const struct literal_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->len[i] == 0)
            return 1;
    return 0;
}

/* req := req AND (one of the strings of set). A set holding the empty
** string requires nothing. */
static int require_set(struct requirement *req, const struct literal_set *set)
{
    if (set->count == 0 || set_has_empty(set))
        return 0;
    struct requirement *alternatives = malloc(sizeof *alternatives);
    if (alternatives == NULL)
        return -1;
    alternatives->any = 0;
    alternatives->count = set->count;
    for (size_t i = 0; i < set->count; i++) {
        alternatives->clause[i].count = 0;
        clause_add(&alternatives->clause[i], set->text[i], set->len[i]);
    }
    int rc = requirement_and(req, alternatives);
    free(alternatives);
    return rc;
}

/* Replace set by the concatenations of its strings with those of suffixes.
** Returns -1, leaving set unchanged, when the result would hold too many
** or too long strings. */
static int set_product(struct literal_set *set, const struct literal_set *suffixes)
{
    if (set->count * suffixes->count > SET_MAX)
        return -1;
    struct literal_set out = {0};
    for (size_t i = 0; i < set->count; i++)
        for (size_t j = 0; j < suffixes->count; j++) {
            size_t len = (size_t)set->len[i] + suffixes->len[j];
            if (len > REQUIREMENT_MAX_LITERAL)
                return -1;
            size_t k = out.count;
            memcpy(out.text[k], set->text[i], set->len[i]);
            memcpy(out.text[k] + set->len[i], suffixes->text[j], suffixes->len[j]);
            out.len[k] = (unsigned char)len;
            size_t d = 0;
            while (d < k && !(out.len[d] == len && memcmp(out.text[d], out.text[k], len) == 0))
                d++;
            if (d == k)
                out.count++;
        }
    *set = out;
    return 0;
}

static void set_of_atom(struct literal_set *set, const struct atom *atom, int optional)
{
    set->count = 1;
    set->len[0] = atom->len;
    memcpy(set->text[0], atom->bytes, atom->len);
    if (optional) {
        set->len[1] = 0;
        set->count = 2;
    }
}

/* }==== */

/* {==== sequences and alternations */

/* The state of a sequence being read: its requirement so far, the strings
** the text since the last break can be (runs), and whether the whole
** sequence so far is exactly those strings. */
struct sequence {
    struct part *part;
    struct literal_set runs;
};

/* End the current runs: one of them is required, and what follows is not
** adjacent to them. */
static int break_runs(struct sequence *seq, int exact_lost)
{
    int rc = require_set(&seq->part->req, &seq->runs);
    set_clear(&seq->runs);
    if (exact_lost)
        seq->part->exact = 0;
    return rc;
}

/* Continue the runs with the strings of suffixes; when the product grows
** too large the runs so far are required and the suffixes start anew. */
static int extend_runs(struct sequence *seq, const struct literal_set *suffixes)
{
    if (set_product(&seq->runs, suffixes) == 0)
        return 0;
    if (break_runs(seq, 1) != 0)
        return -1;
    if (set_product(&seq->runs, suffixes) == 0)
        return 0;
    return 0; /* the suffixes alone are too long to keep: drop them */
}

static int apply_char(struct sequence *seq, const struct atom *atom, const struct quantifier *q)
{
    struct literal_set one;
    if (q->min == 1 && q->max == 1) {
        set_of_atom(&one, atom, 0);
        return extend_runs(seq, &one);
    }
    if (q->min == 0 && q->max == 1) {
        set_of_atom(&one, atom, 1);
        return extend_runs(seq, &one);
    }
    if (q->min == 0)
        return break_runs(seq, 1);
    /* c+ or c{2,}: the runs end with one c, and the text after the repeats
    ** starts right after another c. */
    set_of_atom(&one, atom, 0);
    if (extend_runs(seq, &one) != 0 || break_runs(seq, 1) != 0)
        return -1;
    return extend_runs(seq, &one);
}

static int apply_group(struct sequence *seq, struct part *group, const struct quantifier *q)
{
    int single = q->min == 1 && q->max == 1, optional = q->min == 0 && q->max == 1;
    if (group->exact && (single || optional)) {
        struct literal_set suffixes = group->set;
        if (optional && !set_has_empty(&suffixes) && suffixes.count < SET_MAX)
            suffixes.len[suffixes.count++] = 0;
        if (!optional || set_has_empty(&suffixes)) {
            if (set_product(&seq->runs, &suffixes) == 0)
                return 0;
        }
    }
    if (break_runs(seq, 1) != 0)
        return -1;
    if (q->min == 0)
        return 0;
    return requirement_and(&seq->part->req, &group->req);
}

/* Apply an atom and the quantifier after it to the sequence so far. */
static int apply_atom(struct sequence *seq, struct atom *atom, const struct quantifier *q)
{
    int rc = 0;
    switch (atom->kind) {
    case ATOM_CHAR:
        rc = apply_char(seq, atom, q);
        break;
    case ATOM_GROUP:
        rc = apply_group(seq, atom->group, q);
        free(atom->group);
        atom->group = NULL;
        break;
    case ATOM_OTHER:
        rc = break_runs(seq, 1);
        break;
    case ATOM_EMPTY:
        break; /* consumes nothing: the text on both sides is adjacent */
    }
    return rc;
}

/* Characters of \Q...\E, each an atom of its own so a quantifier after
** \E applies to the last one only. Applies all but the last character and
** leaves that one as the returned atom. */
static int read_quoted(struct reader *r, struct sequence *seq, struct atom *last)
{
    static const struct quantifier once = {1, 1};
    const char *q = r->p;
    while (q + 1 < r->end && !(q[0] == '\\' && q[1] == 'E'))
        q++;
    const char *stop = q + 1 < r->end ? q : r->end;
    struct reader inner = {r->p, stop, r->depth, 0};
    last->kind = ATOM_EMPTY;
    while (!at_end(&inner)) {
        if (apply_atom(seq, last, &once) != 0)
            return -1;
        memset(last, 0, sizeof *last);
        last->kind = ATOM_OTHER;
        char c = *inner.p++;
        if (literal_byte((unsigned char)c))
            set_char(last, c);
        else if ((unsigned char)c >= 0x80)
            read_multibyte(&inner, last, c);
    }
    r->p = stop < r->end ? stop + 2 : r->end;
    return 0;
}

/* Read one alternative up to '|', ')' or the end. */
static struct part *read_sequence(struct reader *r)
{
    struct sequence seq = {part_new(), {0}};
    if (seq.part == NULL) {
        give_up(r);
        return NULL;
    }
    seq.part->exact = 1;
    set_clear(&seq.runs);
    while (!at_end(r) && *r->p != '|' && *r->p != ')') {
        struct atom atom;
        if (r->p + 1 < r->end && r->p[0] == '\\' && r->p[1] == 'Q') {
            r->p += 2;
            if (read_quoted(r, &seq, &atom) != 0) {
                give_up(r);
                break;
            }
        } else {
            atom = read_atom(r);
        }
        if (atom.kind == ATOM_GROUP && atom.group == NULL)
            give_up(r);
        struct quantifier q, again;
        if (read_quantifier(r, &q) && read_quantifier(r, &again))
            give_up(r); /* a quantified quantifier: not a form this reader knows */
        if (apply_atom(&seq, &atom, &q) != 0)
            give_up(r);
    }
    if (seq.part->exact)
        seq.part->set = seq.runs;
    if (break_runs(&seq, 0) != 0)
        give_up(r);
    return seq.part;
}

/* Add the strings of b to a, or return -1 when they do not fit. */
static int set_union(struct literal_set *a, const struct literal_set *b)
{
    for (size_t j = 0; j < b->count; j++) {
        size_t d = 0;
        while (d < a->count && !(a->len[d] == b->len[j] && memcmp(a->text[d], b->text[j], b->len[j]) == 0))
            d++;
        if (d < a->count)
            continue;
        if (a->count == SET_MAX)
            return -1;
        memcpy(a->text[a->count], b->text[j], b->len[j]);
        a->len[a->count++] = b->len[j];
    }
    return 0;
}

static struct part *read_alternation(struct reader *r)
{
    struct part *part = read_sequence(r);
    while (part != NULL && !r->failed && !at_end(r) && *r->p == '|') {
        r->p++;
        struct part *next = read_sequence(r);
        if (next == NULL) {
            free(part);
            return NULL;
        }
        if (requirement_or(&part->req, &next->req) != 0) {
            free(next);
            free(part);
            return NULL;
        }
        if (part->exact && (!next->exact || set_union(&part->set, &next->set) != 0))
            part->exact = 0;
        free(next);
    }
    return part;
}

/* }==== */

/* Drop literals shorter than min_length from every clause: a short literal
** occurs in nearly every line and only costs time. A clause left empty
** makes the whole requirement "any". */
static void drop_short_literals(struct requirement *req, size_t min_length)
{
    for (size_t i = 0; i < req->count && !req->any; i++) {
        struct requirement_clause *clause = &req->clause[i];
        unsigned kept = 0;
        for (unsigned t = 0; t < clause->count; t++)
            if (clause->length[t] >= min_length) {
                if (kept != t) {
                    memcpy(clause->literal[kept], clause->literal[t], clause->length[t]);
                    clause->length[kept] = clause->length[t];
                }
                kept++;
            }
        clause->count = kept;
        if (kept == 0)
            set_any(req);
    }
}

int pattern_requirement(const char *pattern, size_t len, size_t min_length, struct requirement *out)
{
    struct reader r = {pattern, pattern + len, 0, 0};
    struct part *part = read_alternation(&r);
    if (part == NULL || r.failed || !at_end(&r)) {
        free(part);
        memset(out, 0, sizeof *out);
        out->any = 1;
        return -1;
    }
    drop_short_literals(&part->req, min_length);
    if (!part->req.any)
        drop_implied_clauses(&part->req);
    requirement_copy(out, &part->req);
    free(part);
    return 0;
}
