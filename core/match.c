/*
** Matching: compile record regexes with PCRE2 and run them under limits.
**
** Owns: compile options, the JIT/interpreter choice, per-thread scratch
** (match data, match context, JIT stack), match limits, the time budget of
** one (record, subject) pair, limit outcomes and quarantine.
** Depends on: PCRE2 (8-bit).
**
** Every pattern is compiled once per engine: case-insensitive, UTF with
** invalid UTF-8 in subjects tolerated (logs carry whatever clients sent),
** \C refused because it can split a character, (*UCP) refused, a nesting
** limit and a maximum pattern length. A record whose regex does not compile
** is rejected with PCRE2's message and the offset of the error.
*/
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Limits per start position of a pcre2_match call. PCRE2 restarts the match
** counter at every start position, so these alone do not bound a search:
** a hostile pattern can cost nearly the limit at each of thousands of
** positions. search() below bounds the whole search by windows and a clock.
** On the public corpus and shipped records, the interpreter needs at most
** about 22,000 and JIT about 5,500 on lines of up to 2.5 KiB. */
#define POSITION_MATCH_LIMIT 100000u
#define DEPTH_LIMIT 5000u
#define HEAP_LIMIT_KIB 16384u
#define JIT_STACK_MIN (32u << 10)
#define JIT_STACK_MAX (1u << 20)
#define PARENS_NEST_LIMIT 64u
/* Ovector pairs in the shared match data; patterns with more groups still
** match, only their higher groups are not reported. */
#define SCRATCH_GROUPS 128u

/* CPU-time budget of one (record, subject) pair. A search stops starting
** new windows once its thread has spent this much CPU time on it, or a
** quarter of it for the interpreter beside JIT code (search_budget). A
** pair has at most one search on each engine, so it costs at most 1.25
** times this plus two windows. The clock is the thread's CPU time, not the
** wall clock, so that other threads and a loaded machine do not turn an
** ordinary match into a time limit.
** NOTE: CPU time still varies from run to run, so a line whose search ends
** close to its budget can get a different outcome in another run. */
#define PAIR_BUDGET_NS 30000000ull
/* Match-limit units that one pcre2_match call may spend over all its start
** positions: the per-position limit is this divided by the window size. At
** about 5 ns per unit for JIT and 40 ns for the interpreter (measured on an
** x86-64 server core with PCRE2 10.42), one window costs about 10 ms. */
#define JIT_WINDOW_UNITS 2000000u
#define INTERPRETER_WINDOW_UNITS 250000u
#define FIRST_WINDOW 1024u
#define MAX_WINDOW 65536u
#define MIN_POSITION_LIMIT 16u
/* Work after which a pattern is JIT-compiled: a match costs one unit plus
** one per JIT_UNIT_BYTES of subject. The compile costs about as much as
** 32 interpreted matches of a log line. A subject of 16 KiB or more is
** matched with JIT from the start, because the interpreter would be slow
** on it and could run into the time budget where JIT does not. */
#define JIT_AFTER_UNITS 32u
#define JIT_UNIT_BYTES 512u

/* A record that hit a limit this many times is skipped for the rest of the
** engine's life: each hit may cost a full time budget.
** NOTE: the hits of all threads count together, so in a scan with several
** threads the lines that come after the tenth hit, and are skipped, can
** differ from run to run. */
#define QUARANTINE_AFTER 10u

struct match_scratch {
    pcre2_match_data *data;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
    enum match_limit_kind last_limit; /* why the last MATCH_LIMIT outcome happened */
};

/* DOTALL lets a pattern written for a multi-line message (a Go panic, a
** race report) match that message whole; on a single log line it changes
** nothing. NEVER_UCP rejects (*UCP), which pcre2(3) lists among the
** settings an application can lock out of untrusted patterns. With
** USE_OFFSET_LIMIT, search() can split a long subject into windows of
** start positions. */
static const uint32_t COMPILE_OPTIONS = PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                                        PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP | PCRE2_USE_OFFSET_LIMIT;
/* The same without UTF, for the ASCII variant of a regex that is ASCII text
** (record->ascii_code). On a subject of ASCII bytes a character is a byte
** either way, and caseless matching folds the same letters: the UTF-only
** foldings, such as U+212A KELVIN SIGN with k, need non-ASCII subjects.
** The variant still searches differently: PCRE2 computes which letters a
** match must start with or contain, which it cannot for k and s with UTF.
** So the variant tries fewer start positions (see search()) and rules out
** some subjects at once. A search that the regex with UTF abandons at the
** match limit can therefore end with a result. search_again then compiles
** the variant and decides with it, so the outcome does not depend on
** whether the variant existed when the line came. */
static const uint32_t ASCII_OPTIONS = PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_NEVER_UTF | PCRE2_NEVER_BACKSLASH_C |
                                      PCRE2_NEVER_UCP | PCRE2_USE_OFFSET_LIMIT;

/* {==== End assertions and invalid UTF-8
**
** PCRE2 10.42's interpreter, with PCRE2_MATCH_INVALID_UTF, lets \z and \Z
** assert at the end of any valid fragment of the subject. JIT code and the
** documentation assert them only at the true end, and PCRE2 10.43 fixes
** the interpreter. For example, "b\z" matched "ab\xff" followed by "c".
** The interpreter's "$" is correct, so a regex with \z or \Z is compiled
** with them spelt through "$":
**   \Z  as (?-m:$), the end or before a final newline;
**   \z  as (?![newline characters])(?-m:$), the end only, whatever newline
**       convention the pattern chose, since a "$" before a final newline
**       always has a newline character after it.
** The spelt-out text only feeds the compiler; messages, offsets and the
** prefilter still use the record's own regex. */

#define TRUE_END "(?:(?![\\n\\r\\x0b\\x0c\\x{85}\\x{2028}\\x{2029}\\x00])(?-m:$))"
#define END_OR_FINAL_NEWLINE "(?:(?-m:$))"

/* Length of the item at c that cannot hold a live \z: a \Q...\E quote, a
** (?#...) comment, a (*VERB:NAME) or a character class; 0 when c starts
** none of them. */
static size_t inert_span(const char *c)
{
    const char *end = NULL;
    if (c[0] == '\\' && c[1] == 'Q') {
        end = strstr(c + 2, "\\E");
        return end != NULL ? (size_t)(end - c) + 2 : strlen(c);
    }
    if ((c[0] == '(' && c[1] == '?' && c[2] == '#') || (c[0] == '(' && c[1] == '*')) {
        end = strchr(c, ')');
        return end != NULL ? (size_t)(end - c) + 1 : strlen(c);
    }
    if (c[0] != '[')
        return 0;
    const char *p = c + 1;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++; /* a ']' first in a class is a literal */
    while (*p != '\0' && *p != ']') {
        if (p[0] == '\\' && p[1] != '\0')
            p += 2;
        else if (p[0] == '[' && p[1] == ':' && (end = strstr(p, ":]")) != NULL)
            p = end + 2;
        else
            p++;
    }
    return *p == ']' ? (size_t)(p - c) + 1 : strlen(c);
}

/* pattern with \z and \Z spelt as above, or NULL when it has none (or
** memory ran out, which leaves the pattern as written). */
static char *spell_end_assertions(const char *pattern)
{
    size_t count = 0;
    for (const char *c = pattern; *c != '\0'; c++) {
        size_t skip = inert_span(c);
        if (skip > 0) {
            c += skip - 1;
        } else if (*c == '\\' && c[1] != '\0') {
            count += c[1] == 'z' || c[1] == 'Z';
            c++;
        }
    }
    if (count == 0)
        return NULL;
    char *out = malloc(strlen(pattern) + count * sizeof TRUE_END + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    for (const char *c = pattern; *c != '\0';) {
        size_t skip = inert_span(c);
        if (skip == 0 && *c == '\\' && (c[1] == 'z' || c[1] == 'Z')) {
            const char *spelt = c[1] == 'z' ? TRUE_END : END_OR_FINAL_NEWLINE;
            memcpy(o, spelt, strlen(spelt));
            o += strlen(spelt);
            c += 2;
            continue;
        }
        if (skip == 0)
            skip = *c == '\\' && c[1] != '\0' ? 2 : 1;
        memcpy(o, c, skip);
        o += skip;
        c += skip;
    }
    *o = '\0';
    return out;
}

static uint32_t capture_count(const pcre2_code *code)
{
    uint32_t count = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &count);
    return count;
}

/* pcre2_compile of a record pattern, with errors as pcre2_compile gives
** them for the text as written. When the spelt-out form does not compile
** or numbers its groups differently (neither should happen), the pattern
** serves as written. */
static pcre2_code *compile_pattern(const char *pattern, uint32_t options, int *errcode, PCRE2_SIZE *erroffset,
                                   pcre2_compile_context *ctx, struct regex_cache *cache)
{
    pcre2_code *code = regex_cache_compile(cache, pattern, options, ctx, errcode, erroffset);
    if (code == NULL)
        return NULL;
    char *spelt = spell_end_assertions(pattern);
    if (spelt == NULL)
        return code;
    int spelt_errcode;
    PCRE2_SIZE spelt_offset;
    pcre2_code *spelt_code = regex_cache_compile(cache, spelt, options, ctx, &spelt_errcode, &spelt_offset);
    free(spelt);
    if (spelt_code == NULL || capture_count(spelt_code) != capture_count(code)) {
        pcre2_code_free(spelt_code);
        return code;
    }
    pcre2_code_free(code);
    return spelt_code;
}

/* }==== */

static pcre2_compile_context *new_compile_context(void)
{
    pcre2_compile_context *ctx = pcre2_compile_context_create(NULL);
    if (ctx != NULL) {
        pcre2_set_max_pattern_length(ctx, RECORD_MAX_PATTERN);
        pcre2_set_parens_nest_limit(ctx, PARENS_NEST_LIMIT);
    }
    return ctx;
}

/* Split pattern at its top-level '|' so each alternative can be scored on
** its own. Escapes, \Q...\E, character classes and groups are skipped. */
static size_t split_alternatives(const char *pattern, size_t len, size_t *starts, size_t *lens, size_t max)
{
    size_t count = 0, begin = 0;
    int depth = 0, in_class = 0, quoted = 0;
    for (size_t i = 0; i < len; i++) {
        char c = pattern[i];
        if (quoted) {
            if (c == '\\' && i + 1 < len && pattern[i + 1] == 'E') {
                quoted = 0;
                i++;
            }
            continue;
        }
        if (c == '\\') {
            if (i + 1 < len && pattern[i + 1] == 'Q')
                quoted = 1;
            i++;
            continue;
        }
        if (in_class) {
            if (c == ']')
                in_class = 0;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            if (i + 1 < len && pattern[i + 1] == '^')
                i++;
            if (i + 1 < len && pattern[i + 1] == ']')
                i++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (depth > 0)
                depth--;
        } else if (c == '|' && depth == 0) {
            if (count < max) {
                starts[count] = begin;
                lens[count] = i - begin;
            }
            count++;
            begin = i + 1;
        }
    }
    if (count < max) {
        starts[count] = begin;
        lens[count] = len - begin;
    }
    return count + 1;
}

static int collect_group_names(struct record *record)
{
    uint32_t name_count = 0, entry_size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(record->code, PCRE2_INFO_CAPTURECOUNT, &record->group_count);
    pcre2_pattern_info(record->code, PCRE2_INFO_NAMECOUNT, &name_count);
    pcre2_pattern_info(record->code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(record->code, PCRE2_INFO_NAMETABLE, &table);
    record->group_names = calloc((size_t)record->group_count + 1, sizeof *record->group_names);
    if (record->group_names == NULL)
        return -1;
    for (uint32_t i = 0; i < name_count; i++) {
        const unsigned char *entry = table + (size_t)i * entry_size;
        uint32_t group = ((uint32_t)entry[0] << 8) | entry[1];
        if (group <= record->group_count && record->group_names[group] == NULL) {
            record->group_names[group] = dup_string((const char *)entry + 2);
            if (record->group_names[group] == NULL)
                return -1;
        }
    }
    return 0;
}

static int compile_alternatives(struct record *record, pcre2_compile_context *ctx)
{
    enum { MAX_ALTERNATIVES = 64 };
    size_t starts[MAX_ALTERNATIVES], lens[MAX_ALTERNATIVES];
    size_t len = strlen(record->regex);
    size_t count = split_alternatives(record->regex, len, starts, lens, MAX_ALTERNATIVES);
    if (count > MAX_ALTERNATIVES)
        count = MAX_ALTERNATIVES;
    record->alternatives = calloc(count, sizeof *record->alternatives);
    if (record->alternatives == NULL)
        return -1;
    record->alternative_count = count;
    for (size_t i = 0; i < count; i++) {
        struct alternative *alt = &record->alternatives[i];
        alt->pattern = malloc(lens[i] + 1);
        if (alt->pattern == NULL)
            return -1;
        memcpy(alt->pattern, record->regex + starts[i], lens[i]);
        alt->pattern[lens[i]] = '\0';
        alt->literal_chars = literal_chars(alt->pattern, lens[i]);
    }
    (void)ctx; /* the alternatives compile on first use, see compile_alternative_codes */
    return 0;
}

/* Compile the alternatives of a record's regex on first use: a one-off
** diagnosis never needs them, and compiling thousands costs tens of
** milliseconds. An alternative may refer to a group defined in another one
** and fail alone; it is then scored without telling alternatives apart. */
static void compile_alternative_codes(struct record *record)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (atomic_load_explicit(&record->alternatives_compiled, memory_order_acquire))
        return;
    pthread_mutex_lock(&lock);
    if (!atomic_load_explicit(&record->alternatives_compiled, memory_order_relaxed)) {
        pcre2_compile_context *ctx = new_compile_context();
        for (size_t i = 0; record->alternative_count > 1 && i < record->alternative_count; i++) {
            struct alternative *alt = &record->alternatives[i];
            int errcode;
            PCRE2_SIZE erroffset;
            alt->code = compile_pattern(alt->pattern, COMPILE_OPTIONS, &errcode, &erroffset, ctx, NULL);
        }
        pcre2_compile_context_free(ctx);
        atomic_store_explicit(&record->alternatives_compiled, 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
}

/* Whether pattern uses \G, which asserts the start offset of a call, or
** (*COMMIT) or (*SKIP), which end or steer the advance of the start
** position within one call: splitting the search into windows would change
** their meaning. */
static int is_start_sensitive(const char *pattern)
{
    int quoted = 0;
    for (const char *c = pattern; *c != '\0'; c++) {
        if (!quoted && c[0] == '(' && c[1] == '*' && (strncmp(c, "(*COMMIT", 8) == 0 || strncmp(c, "(*SKIP", 6) == 0))
            return 1;
        if (*c != '\\')
            continue;
        if (c[1] == '\0')
            break;
        if (quoted)
            quoted = c[1] != 'E';
        else if (c[1] == 'Q')
            quoted = 1;
        else if (c[1] == 'G')
            return 1;
        c++;
    }
    return 0;
}

/* Whether pattern uses \S, \D or \W outside a character class; see
** jit_ascii_only in internal.h. */
static int uses_negated_class_escape(const char *pattern)
{
    int quoted = 0, in_class = 0;
    for (const char *c = pattern; *c != '\0'; c++) {
        if (*c == '\\') {
            if (c[1] == '\0')
                break;
            if (quoted)
                quoted = c[1] != 'E';
            else if (c[1] == 'Q')
                quoted = 1;
            else if (!in_class && (c[1] == 'S' || c[1] == 'D' || c[1] == 'W'))
                return 1;
            c++;
        } else if (!quoted && !in_class && *c == '[') {
            in_class = 1;
            if (c[1] == '^')
                c++;
            if (c[1] == ']')
                c++; /* a ']' first in a class is a literal */
        } else if (!quoted && in_class && *c == '[' && c[1] == ':') {
            const char *end = strstr(c, ":]");
            if (end != NULL)
                c = end + 1;
        } else if (!quoted && in_class && *c == ']') {
            in_class = 0;
        }
    }
    return 0;
}

static int has_non_ascii(const char *text, size_t len)
{
    return !is_ascii_text(text, len);
}

/* {==== backtracking risk */

/* Backtracking risk: a heuristic scan of the pattern text for the shapes
** that make a backtracking matcher take exponential or high polynomial
** time: a repeated group that contains an unbounded repeat itself, such as
** (a+)+ or (.*a){12}, and a repeated alternation whose branches can match
** the same text, such as (a|aa)+ or (a|a?)+. Possessive repeats and atomic
** groups do not backtrack and are not flagged. It is a warning for
** 'triage check', not a proof: search() bounds the cost of every pattern. */

#define RISK_MAX_DEPTH 64

/* Length of the quantifier at p ("*", "+?", "{2,}", ...), 0 when none; sets
** *unbounded and *repeats (the maximum is above one) and *possessive. */
static size_t read_quantifier(const char *p, int *unbounded, int *repeats, int *possessive)
{
    size_t n = 0;
    *unbounded = *repeats = *possessive = 0;
    if (*p == '*' || *p == '+') {
        *unbounded = *repeats = 1;
        n = 1;
    } else if (*p == '?') {
        n = 1;
    } else if (*p == '{') {
        const char *q = p + 1;
        unsigned long low = 0, high = 0;
        int digits = 0, comma = 0, high_digits = 0;
        while (*q >= '0' && *q <= '9') {
            low = low * 10 + (unsigned long)(*q - '0');
            if (low > 100000)
                low = 100000;
            q++;
            digits++;
        }
        if (*q == ',') {
            comma = 1;
            q++;
            while (*q >= '0' && *q <= '9') {
                high = high * 10 + (unsigned long)(*q - '0');
                if (high > 100000)
                    high = 100000;
                q++;
                high_digits++;
            }
        }
        if (*q != '}' || digits == 0)
            return 0; /* a literal '{' */
        n = (size_t)(q - p) + 1;
        *unbounded = comma && high_digits == 0;
        *repeats = *unbounded || (comma ? high > 1 : low > 1);
    } else {
        return 0;
    }
    if (p[n] == '+') {
        *possessive = 1;
        n++;
    } else if (p[n] == '?') {
        n++;
    }
    return n;
}

/* Offset just past the escape at p[i] == '\\'. */
static size_t skip_escape(const char *p, size_t i, size_t len)
{
    if (i + 1 >= len)
        return len;
    char c = p[i + 1];
    if (strchr("xopPNgk", c) != NULL && i + 2 < len && (p[i + 2] == '{' || p[i + 2] == '<')) {
        char close = p[i + 2] == '{' ? '}' : '>';
        const char *end = memchr(p + i + 2, close, len - i - 2);
        return end != NULL ? (size_t)(end - p) + 1 : len;
    }
    return i + 2;
}

/* Offset just past the character class that starts at p[i] == '['. */
static size_t skip_class(const char *p, size_t i, size_t len)
{
    i++;
    if (i < len && p[i] == '^')
        i++;
    if (i < len && p[i] == ']')
        i++;
    while (i < len && p[i] != ']') {
        if (p[i] == '\\')
            i = skip_escape(p, i, len);
        else if (p[i] == '[' && i + 1 < len && p[i + 1] == ':') {
            const char *end = strstr(p + i, ":]");
            i = end != NULL ? (size_t)(end - p) + 2 : len;
        } else {
            i++;
        }
    }
    return i < len ? i + 1 : len;
}

/* A branch that can match the empty string in an obvious way: nothing, or
** one atom made optional ("a?", "x*", "\\d{0,3}"). */
static int branch_can_be_empty(const char *p, size_t start, size_t end)
{
    if (start == end)
        return 1;
    size_t atom_end = start;
    if (p[start] == '\\')
        atom_end = skip_escape(p, start, end);
    else if (p[start] == '[')
        atom_end = skip_class(p, start, end);
    else if (strchr("()|", p[start]) == NULL)
        atom_end = start + 1;
    if (atom_end == start || atom_end >= end)
        return 0;
    int unbounded, repeats, possessive;
    size_t q = read_quantifier(p + atom_end, &unbounded, &repeats, &possessive);
    return q > 0 && atom_end + q == end && (p[atom_end] == '?' || p[atom_end] == '*' || p[atom_end + 1] == '0');
}

/* Whether the branch is plain literal text: letters, digits and spaces. */
static int branch_is_literal(const char *p, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)p[i];
        int letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        if (!(letter || c >= 0x80 || c == ' ' || c == '-' || c == '_' || (c >= '0' && c <= '9')))
            return 0;
    }
    return end > start;
}

static int literal_prefix(const char *p, size_t a, size_t a_end, size_t b, size_t b_end)
{
    size_t la = a_end - a, lb = b_end - b;
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        if ((p[a + i] | 0x20) != (p[b + i] | 0x20))
            return 0;
    return 1;
}

#define RISK_BRANCHES 16

struct risk_group {
    size_t open;     /* offset of '(' */
    int atomic;      /* (?> ... ): its content does not backtrack into itself */
    int unbounded;   /* contains an unbounded repeat that can backtrack */
    int overlap;     /* two branches can match the same text, or one the empty string */
    size_t branch;   /* offset where the current branch starts */
    size_t starts[RISK_BRANCHES], ends[RISK_BRANCHES];
    size_t branches;
};

static void end_branch(const char *p, struct risk_group *g, size_t at)
{
    if (branch_can_be_empty(p, g->branch, at))
        g->overlap = 1;
    if (branch_is_literal(p, g->branch, at)) {
        for (size_t k = 0; k < g->branches && k < RISK_BRANCHES; k++)
            if (literal_prefix(p, g->starts[k], g->ends[k], g->branch, at))
                g->overlap = 1;
        if (g->branches < RISK_BRANCHES) {
            g->starts[g->branches] = g->branch;
            g->ends[g->branches] = at;
        }
    }
    g->branches++;
}

/* Whether the pattern p has a shape prone to catastrophic backtracking; when
** it has, *why gets a sentence naming the group. */
int regex_backtracking_risk(const char *p, char *why, size_t size)
{
    struct risk_group stack[RISK_MAX_DEPTH + 1];
    size_t len = strlen(p), depth = 0, i = 0;
    memset(&stack[0], 0, sizeof stack[0]);
    while (i < len) {
        char c = p[i];
        size_t atom_end;
        if (c == '\\') {
            if (i + 1 < len && p[i + 1] == 'Q') {
                const char *end = strstr(p + i + 2, "\\E");
                atom_end = end != NULL ? (size_t)(end - p) + 2 : len;
            } else {
                atom_end = skip_escape(p, i, len);
            }
        } else if (c == '[') {
            atom_end = skip_class(p, i, len);
        } else if (c == '(') {
            if (i + 2 < len && p[i + 1] == '?' && p[i + 2] == '#') {
                const char *end = memchr(p + i, ')', len - i);
                i = end != NULL ? (size_t)(end - p) + 1 : len;
                continue;
            }
            if (i + 1 < len && p[i + 1] == '*') { /* (*VERB) */
                const char *end = memchr(p + i, ')', len - i);
                i = end != NULL ? (size_t)(end - p) + 1 : len;
                continue;
            }
            if (depth == RISK_MAX_DEPTH)
                return 0; /* PCRE2 refuses deeper nesting anyway */
            depth++;
            memset(&stack[depth], 0, sizeof stack[depth]);
            stack[depth].open = i;
            stack[depth].atomic = i + 2 < len && p[i + 1] == '?' && p[i + 2] == '>';
            /* The branch starts after the group's (?...: prefix, if any. */
            size_t body = i + 1;
            if (body < len && p[body] == '?') {
                body++;
                if (body < len && (p[body] == '<' || p[body] == 'P' || p[body] == '\'') && body + 1 < len &&
                    p[body + 1] != '=' && p[body + 1] != '!') {
                    const char *end = strpbrk(p + body, ">'");
                    body = end != NULL ? (size_t)(end - p) + 1 : len;
                } else {
                    while (body < len && strchr("=!<>:|-imnsxJU^", p[body]) != NULL && p[body] != ':')
                        body++;
                    if (body < len && p[body] == ':')
                        body++;
                }
            }
            stack[depth].branch = body;
            i = body;
            continue;
        } else if (c == '|') {
            end_branch(p, &stack[depth], i);
            stack[depth].branch = i + 1;
            i++;
            continue;
        } else if (c == ')' && depth > 0) {
            struct risk_group *g = &stack[depth];
            end_branch(p, g, i);
            int unbounded, repeats, possessive;
            size_t q = read_quantifier(p + i + 1, &unbounded, &repeats, &possessive);
            depth--;
            if (q > 0 && repeats && !possessive && !g->atomic) {
                if (g->unbounded) {
                    snprintf(why, size, "the group at offset %zu repeats and holds an unbounded repeat itself, "
                             "as in (a+)+", g->open);
                    return 1;
                }
                if (g->overlap && g->branches > 1 && unbounded) {
                    snprintf(why, size, "the group at offset %zu repeats branches that can match the same text, "
                             "as in (a|aa)+", g->open);
                    return 1;
                }
            }
            if (!g->atomic && (g->unbounded || (q > 0 && unbounded && !possessive)))
                stack[depth].unbounded = 1;
            i += 1 + q;
            continue;
        } else {
            atom_end = i + 1;
        }
        int unbounded, repeats, possessive;
        size_t q = read_quantifier(p + atom_end, &unbounded, &repeats, &possessive);
        if (q > 0 && unbounded && !possessive)
            stack[depth].unbounded = 1;
        i = atom_end + q;
    }
    return 0;
}

/* }==== */

static int is_anchored(const pcre2_code *code)
{
    uint32_t all_options = 0;
    pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &all_options);
    return (all_options & PCRE2_ANCHORED) != 0;
}

/* Whether JIT can be used. TRIAGE_NO_JIT=1 in the environment leaves every
** regex to the interpreter: valgrind cannot follow JIT code and reports its
** reads as uninitialised. */
static int jit_available(void)
{
    const char *no_jit = getenv("TRIAGE_NO_JIT");
    if (no_jit != NULL && *no_jit != '\0' && strcmp(no_jit, "0") != 0)
        return 0;
    uint32_t available = 0;
    return pcre2_config(PCRE2_CONFIG_JIT, &available) >= 0 && available != 0;
}

/* Return jit_available(), asked once per process because it reads the
** environment. */
static int jit_available_once(void)
{
    static atomic_int available = -1; /* the same in every thread, so a race only repeats the query */
    int known = atomic_load_explicit(&available, memory_order_relaxed);
    if (known < 0) {
        known = jit_available();
        atomic_store_explicit(&available, known, memory_order_relaxed);
    }
    return known;
}

static char compile_salt[160];

static void make_compile_salt(void)
{
    char version[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, version);
    snprintf(compile_salt, sizeof compile_salt, "pcre2 %s options %x %x limits %d %u", version,
             (unsigned)COMPILE_OPTIONS, (unsigned)PCRE2_NO_DOTSTAR_ANCHOR, RECORD_MAX_PATTERN, PARENS_NEST_LIMIT);
}

const char *record_compile_salt(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_compile_salt);
    return compile_salt;
}

int record_compile(struct record *record, struct regex_cache *cache, struct problem_list *problems)
{
    const char *field = record->nested_schema ? "error.regex" : "regex";
    pcre2_compile_context *ctx = new_compile_context();
    if (ctx == NULL) {
        problem_add(problems, TRIAGE_ERROR, record->file, 0, 0, record->id, field, "out of memory");
        return -1;
    }
    int errcode;
    PCRE2_SIZE erroffset;
    record->code = compile_pattern(record->regex, COMPILE_OPTIONS, &errcode, &erroffset, ctx, cache);
    if (record->code == NULL) {
        PCRE2_UCHAR message[256];
        char shown[160];
        pcre2_get_error_message(errcode, message, sizeof message);
        printable_excerpt(shown, sizeof shown, record->regex, strlen(record->regex));
        problem_add(problems, TRIAGE_ERROR, record->file, record->regex_line, record->regex_column, record->id, field,
                    "regex does not compile: %s at offset %zu of \"%s\"", (const char *)message, (size_t)erroffset,
                    shown);
        pcre2_compile_context_free(ctx);
        return -1;
    }
    /* JIT compiling waits for the pattern's first uses (record_code_for);
    ** until then, and when a JIT compile fails (no JIT on this CPU, pattern
    ** too large, or out of executable memory), the interpreter serves. The
    ** results are the same: tests/test_hardening.c compares them on the
    ** corpus. */
    record->jit = jit_available_once();
    record->anchored = is_anchored(record->code);
    record->start_sensitive = is_start_sensitive(record->regex);
    record->jit_ascii_only = uses_negated_class_escape(record->regex);
    if (record->anchored) {
        record->floating_code =
            compile_pattern(record->regex, COMPILE_OPTIONS | PCRE2_NO_DOTSTAR_ANCHOR, &errcode, &erroffset, ctx, cache);
        if (record->floating_code == NULL) {
            /* The same pattern compiled a moment ago, so only memory can fail. */
            problem_add(problems, TRIAGE_ERROR, record->file, 0, 0, record->id, field,
                        "out of memory compiling the regex");
            pcre2_compile_context_free(ctx);
            return -1;
        }
        if (is_anchored(record->floating_code)) {
            pcre2_code_free(record->floating_code); /* anchored by ^ or \G, not by .* */
            record->floating_code = NULL;
        }
        if (record->floating_code != NULL)
            record->floating_jit = record->jit;
    }
    char why[160];
    if (regex_backtracking_risk(record->regex, why, sizeof why))
        problem_add(problems, TRIAGE_WARNING, record->file, record->regex_line, record->regex_column, record->id,
                    field, "regex is prone to catastrophic backtracking: %s; use a possessive repeat such as a++, "
                    "an atomic group (?>...) or a character class that cannot overlap",
                    why);
    int rc = collect_group_names(record) == 0 && compile_alternatives(record, ctx) == 0 ? 0 : -1;
    if (rc != 0)
        problem_add(problems, TRIAGE_ERROR, record->file, 0, 0, record->id, field, "out of memory compiling the regex");
    pcre2_compile_context_free(ctx);
    return rc;
}

struct match_scratch *scratch_new(void)
{
    struct match_scratch *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->data = pcre2_match_data_create(SCRATCH_GROUPS, NULL);
    s->context = pcre2_match_context_create(NULL);
    s->jit_stack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
    if (s->data == NULL || s->context == NULL || s->jit_stack == NULL) {
        scratch_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->context, POSITION_MATCH_LIMIT);
    pcre2_set_depth_limit(s->context, DEPTH_LIMIT);
    pcre2_set_heap_limit(s->context, HEAP_LIMIT_KIB);
    pcre2_jit_stack_assign(s->context, NULL, s->jit_stack);
    return s;
}

void scratch_free(struct match_scratch *s)
{
    if (s == NULL)
        return;
    pcre2_match_data_free(s->data);
    pcre2_match_context_free(s->context);
    pcre2_jit_stack_free(s->jit_stack);
    free(s);
}

enum match_limit_kind scratch_last_limit(const struct match_scratch *scratch)
{
    return scratch->last_limit;
}

const char *match_limit_name(enum match_limit_kind kind)
{
    switch (kind) {
    case LIMIT_MATCH:
        return "the PCRE2 match limit";
    case LIMIT_DEPTH:
        return "the PCRE2 depth limit";
    case LIMIT_HEAP:
        return "the PCRE2 heap limit";
    case LIMIT_JIT_STACK:
        return "the JIT stack limit";
    case LIMIT_MEMORY:
        return "an allocation failure";
    case LIMIT_TIME:
        return "the time budget of one line";
    case LIMIT_QUARANTINE:
        return "quarantine";
    case LIMIT_NONE:
        break;
    }
    return "no limit";
}

static enum match_limit_kind limit_kind_of(int rc)
{
    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
        return LIMIT_MATCH;
    case PCRE2_ERROR_DEPTHLIMIT:
        return LIMIT_DEPTH;
    case PCRE2_ERROR_HEAPLIMIT:
        return LIMIT_HEAP;
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return LIMIT_JIT_STACK;
    case PCRE2_ERROR_NOMEMORY:
        return LIMIT_MEMORY;
    }
    return LIMIT_NONE;
}

/* The pair budget in nanoseconds. TRIAGE_TIME_SCALE=N in the environment
** multiplies it, for runs under valgrind, which slows matching about 50
** times and would otherwise turn ordinary matches into time limits. */
static uint64_t pair_budget_ns(void)
{
    static _Atomic uint64_t budget;
    uint64_t value = atomic_load_explicit(&budget, memory_order_relaxed);
    if (value != 0)
        return value;
    value = PAIR_BUDGET_NS;
    const char *scale = getenv("TRIAGE_TIME_SCALE");
    if (scale != NULL) {
        long n = strtol(scale, NULL, 10);
        if (n > 1 && n <= 1000)
            value *= (uint64_t)n;
    }
    atomic_store_explicit(&budget, value, memory_order_relaxed);
    return value;
}

/* CPU time of the calling thread. Unlike CLOCK_MONOTONIC this clock is a
** system call, not a vDSO read, so search_code() reads it only once a
** search needs more than one pcre2_match call. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether text is valid UTF-8: no overlong forms, surrogates or code points
** above U+10FFFF, and no sequence cut short. */
static int is_valid_utf8(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = utf8_length(p, end);
        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* The code to match with: the JIT-compiled copy once it exists, else the
** interpreted pattern. The use that brings the work to JIT_AFTER_UNITS
** compiles the copy, and so does any use with now set, which also waits
** for a compile that another thread has begun. Only one thread compiles,
** on a copy, so threads that match the interpreted pattern meanwhile never
** see it change; the copy is published whole. */
static const pcre2_code *jit_code_for(struct lazy_jit *lazy, const pcre2_code *plain, int available, size_t len,
                                      int now, int *jit);

/* Return the JIT-compiled copy of plain once it has been used enough, else
** plain itself, and set *jit to 1 for the copy. len is the length of the
** subject about to be matched: a long one counts as many uses. Safe to call
** from several threads. */
static const pcre2_code *lazy_jit_code(struct lazy_jit *lazy, const pcre2_code *plain, size_t len, int *jit)
{
    return jit_code_for(lazy, plain, jit_available_once(), len, 0, jit);
}

void lazy_jit_free(struct lazy_jit *lazy)
{
    pcre2_code_free(atomic_exchange(&lazy->code, NULL));
}

/* The work that one match of a subject of len bytes counts toward the JIT
** compile of its pattern (see JIT_AFTER_UNITS). */
static unsigned jit_units(size_t len)
{
    return 1 + (len / JIT_UNIT_BYTES < JIT_AFTER_UNITS ? (unsigned)(len / JIT_UNIT_BYTES) : JIT_AFTER_UNITS);
}

/* Whether a subject is long enough to be matched with JIT code from the
** first use of its pattern. */
static int jit_at_once(size_t len)
{
    return jit_units(len) >= JIT_AFTER_UNITS;
}

static const pcre2_code *jit_code_for(struct lazy_jit *lazy, const pcre2_code *plain, int available, size_t len,
                                      int now, int *jit)
{
    pcre2_code *compiled = atomic_load_explicit(&lazy->code, memory_order_acquire);
    if (compiled != NULL) {
        *jit = 1;
        return compiled;
    }
    *jit = 0;
    if (!available)
        return plain;
    unsigned units = jit_units(len);
    if (!now && atomic_fetch_add_explicit(&lazy->uses, units, memory_order_relaxed) + units < JIT_AFTER_UNITS)
        return plain;
    if (atomic_exchange(&lazy->started, 1) != 0) {
        /* A compile takes about 0.1 ms, and a caller with now set waits for
        ** it only after a search that the interpreter could not finish. */
        while (now && !atomic_load_explicit(&lazy->finished, memory_order_acquire))
            sched_yield();
        compiled = atomic_load_explicit(&lazy->code, memory_order_acquire);
        *jit = compiled != NULL;
        return compiled != NULL ? compiled : plain;
    }
    pcre2_code *copy = pcre2_code_copy(plain);
    if (copy == NULL || pcre2_jit_compile(copy, PCRE2_JIT_COMPLETE) != 0) {
        pcre2_code_free(copy); /* the interpreter keeps serving */
        atomic_store_explicit(&lazy->finished, 1, memory_order_release);
        return plain;
    }
    atomic_store_explicit(&lazy->code, copy, memory_order_release);
    atomic_store_explicit(&lazy->finished, 1, memory_order_release);
    *jit = 1;
    return copy;
}

/* record_code_for, with now passed on to jit_code_for. */
static const pcre2_code *record_code_now(const struct record *record, const char *subject, size_t len, int now,
                                         int *jit)
{
    /* Matching changes only atomic members of a record: these lazy copies
    ** and the limit counters. */
    struct record *r = (struct record *)record;
    if (record->floating_code != NULL && !is_valid_utf8(subject, len))
        return jit_code_for(&r->floating_lazy_jit, record->floating_code, record->floating_jit, len, now, jit);
    return jit_code_for(&r->lazy_jit, record->code, record->jit, len, now, jit);
}

const pcre2_code *record_code_for(const struct record *record, const char *subject, size_t len, int *jit)
{
    return record_code_now(record, subject, len, 0, jit);
}

/* The sign of a record whose ASCII variant is not built (see ascii_code). */
static char no_ascii_code;
#define NO_ASCII_CODE ((pcre2_code *)&no_ascii_code)

/* Return the JIT-compiled ASCII variant of the record's regex, or NULL. It
** is built once the regex itself has been JIT-compiled, by one thread, and
** only when it compiles with the same groups and anchoring. A build that
** another thread has begun is waited for, so that every thread uses the
** variant once the regex is JIT-compiled: the two can end differently at
** a PCRE2 limit. */
static const pcre2_code *ascii_code_for(const struct record *record)
{
    struct record *r = (struct record *)record;
    pcre2_code *code = atomic_load_explicit(&r->ascii_code, memory_order_acquire);
    if (code != NULL)
        return code == NO_ASCII_CODE ? NULL : code;
    if (atomic_load_explicit(&r->lazy_jit.code, memory_order_acquire) == NULL)
        return NULL;
    if (atomic_exchange(&r->ascii_started, 1) != 0) {
        while ((code = atomic_load_explicit(&r->ascii_code, memory_order_acquire)) == NULL)
            sched_yield();
        return code == NO_ASCII_CODE ? NULL : code;
    }
    code = NULL;
    if (!has_non_ascii(record->regex, strlen(record->regex))) {
        pcre2_compile_context *ctx = new_compile_context();
        int errcode;
        PCRE2_SIZE erroffset;
        code = ctx != NULL ? compile_pattern(record->regex, ASCII_OPTIONS, &errcode, &erroffset, ctx, NULL) : NULL;
        pcre2_compile_context_free(ctx);
        if (code != NULL && (capture_count(code) != capture_count(record->code) ||
                             is_anchored(code) != record->anchored || pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) != 0)) {
            pcre2_code_free(code);
            code = NULL;
        }
    }
    atomic_store_explicit(&r->ascii_code, code != NULL ? code : NO_ASCII_CODE, memory_order_release);
    return code;
}

void record_release_jit(struct record *record)
{
    lazy_jit_free(&record->lazy_jit);
    lazy_jit_free(&record->floating_lazy_jit);
    pcre2_code *ascii = atomic_exchange(&record->ascii_code, NULL);
    if (ascii != NO_ASCII_CODE)
        pcre2_code_free(ascii);
    atomic_store(&record->ascii_started, 0);
}

static int is_continuation(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

/* Start of the window after the one ending at last: the next byte that does
** not continue a UTF-8 character, so no window starts inside a character
** (a single pcre2_match call never tries such a position either). */
static size_t next_window_start(const char *subject, size_t len, size_t last)
{
    size_t pos = last + 1;
    for (int k = 0; k < 3 && pos < len && is_continuation(subject[pos]); k++)
        pos++;
    return pos;
}

/* Search subject from its start as one pcre2_match call with
** POSITION_MATCH_LIMIT would, but in windows of start positions so that the
** whole search has a bounded cost:
**
** - A call covers `window` start positions (pcre2_set_offset_limit) with a
**   per-position match limit of the window units divided by the window
**   size, so one call costs about the same however large its window. A
**   call that hits that reduced limit is retried on a window an eighth the
**   size, down to POSITION_MATCH_LIMIT itself, so the outcome is the one
**   a single call with POSITION_MATCH_LIMIT gives.
** - The clock is read after each call; past PAIR_BUDGET_NS the search
**   stops with LIMIT_TIME.
** - A window that ran fast doubles, so a benign long line takes few calls.
**
** An anchored pattern (single) has one start position and gets one call
** with POSITION_MATCH_LIMIT. A JIT stack overflow retries the same window
** with the interpreter.
**
** A search that must not be split (can_window 0: code compiled without
** PCRE2_USE_OFFSET_LIMIT, or a regex that is start_sensitive) gets one call
** whose per-position limit shrinks with the subject length instead, so it
** is bounded too but may end in a limit where windows would not.
**
** The search stops budget nanoseconds of thread CPU time after it starts
** timing itself.
**
** Returns the pcre2_match code of the deciding call, or
** PCRE2_ERROR_MATCHLIMIT with *kind = LIMIT_TIME when the budget ran out. */
static int search_code(const pcre2_code *code, int code_jit, int single, int can_window, struct match_scratch *s,
                       const char *subject, size_t len, uint32_t options, uint64_t budget,
                       enum match_limit_kind *kind)
{
    pcre2_match_context *ctx = s->context;
    /* A subject that fits in the first window usually takes one call,
    ** whose cost the match limit bounds: the clock starts with the second
    ** call. A longer subject is timed from the start. */
    int timed = len >= FIRST_WINDOW && !single;
    uint64_t deadline = timed ? thread_cpu_ns() + budget : 0;
    size_t pos = 0, window = FIRST_WINDOW;
    int rc;
    *kind = LIMIT_NONE;
    for (;;) {
        int jit = code_jit && !(options & PCRE2_NO_JIT);
        uint32_t units = jit ? JIT_WINDOW_UNITS : INTERPRETER_WINDOW_UNITS;
        size_t positions = len - pos + 1; /* a match may start at len itself */
        PCRE2_SIZE offset_limit = PCRE2_UNSET;
        if (single) {
            positions = 1;
        } else if (can_window && positions > window) {
            positions = window;
            offset_limit = pos + window - 1;
        }
        uint32_t limit = POSITION_MATCH_LIMIT;
        if (positions > units / POSITION_MATCH_LIMIT)
            limit = (uint32_t)(units / positions);
        if (limit < MIN_POSITION_LIMIT)
            limit = MIN_POSITION_LIMIT;
        pcre2_set_offset_limit(ctx, offset_limit);
        pcre2_set_match_limit(ctx, limit);
        uint64_t began = timed ? thread_cpu_ns() : 0;
        rc = pcre2_match(code, (PCRE2_SPTR)subject, len, pos, options, s->data, ctx);
        uint64_t now = timed ? thread_cpu_ns() : 0;

        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit) {
            options |= PCRE2_NO_JIT;
        } else if (rc == PCRE2_ERROR_MATCHLIMIT && limit < POSITION_MATCH_LIMIT && can_window) {
            /* An eighth of the positions this call covered, which can be
            ** fewer than the window near the end of the subject. */
            window = positions / 8 > 0 ? positions / 8 : 1;
        } else if (rc == PCRE2_ERROR_NOMATCH && offset_limit != PCRE2_UNSET) {
            pos = next_window_start(subject, len, offset_limit);
            if (now - began < pair_budget_ns() / 64 && window < MAX_WINDOW)
                window *= 2;
        } else {
            break;
        }
        if (!timed) {
            timed = 1;
            now = thread_cpu_ns();
            deadline = now + budget;
        }
        if (now >= deadline) {
            *kind = LIMIT_TIME;
            rc = PCRE2_ERROR_MATCHLIMIT;
            break;
        }
    }
    pcre2_set_offset_limit(ctx, PCRE2_UNSET);
    pcre2_set_match_limit(ctx, POSITION_MATCH_LIMIT);
    if (*kind == LIMIT_NONE)
        *kind = limit_kind_of(rc);
    return rc;
}

/* The time budget of one search. The interpreter gets a quarter of the
** pair's budget when JIT code serves the regex too, ahead of it or after
** it: JIT code runs about eight times as fast, so it should decide what
** the interpreter cannot decide soon (search_again). */
static uint64_t search_budget(int interpreter_beside_jit)
{
    return interpreter_beside_jit ? pair_budget_ns() / 4 : pair_budget_ns();
}

/* The engine that a search of a record ran on. */
enum search_engine {
    ENGINE_INTERPRETER,       /* JIT cannot serve this subject or regex */
    ENGINE_INTERPRETER_AHEAD, /* the interpreter, ahead of JIT code that could serve too */
    ENGINE_JIT
};

/* Search one record's regex in a subject. PCRE2 10.42's JIT code fails on
** subjects with invalid UTF-8 where the interpreter succeeds. It misses
** "(a|)a+a" in "xaa\xaf\xf2aa", finds empty matches on continuation bytes,
** and starts (*COMMIT), (*SKIP) and \G searches at other positions.
** Such lines are rare in logs, so they all go to the interpreter, whose
** one known fault there (\z and \Z) record_compile spells around. JIT
** also fails on \S, \D and \W over multibyte characters (jit_ascii_only).
** With now set, the regex is JIT-compiled first if it can be (see
** jit_code_for). after_jit tells that JIT code searched the subject before
** (search_budget). *engine receives the engine that ran. */
static int search(const struct record *record, struct match_scratch *s, const char *subject, size_t len,
                  uint32_t options, int now, int after_jit, enum search_engine *engine, enum match_limit_kind *kind)
{
    int code_jit;
    const pcre2_code *code = record_code_now(record, subject, len, now, &code_jit);
    int ascii = !has_non_ascii(subject, len);
    /* The copy skips start positions that the regex with UTF tries, as k
    ** and s fold with non-ASCII letters there: a regex whose result
    ** depends on the start positions tried keeps its own code. */
    const pcre2_code *fast =
        ascii && !record->start_sensitive && !(options & PCRE2_NO_JIT) ? ascii_code_for(record) : NULL;
    if (fast != NULL) {
        *engine = ENGINE_JIT;
        return search_code(fast, 1, record->anchored, !record->start_sensitive, s, subject, len, options,
                           search_budget(0), kind);
    }
    int invalid = !ascii && !is_valid_utf8(subject, len);
    /* The floating code of a .*-anchored regex has many start positions. */
    int floating = record->floating_code != NULL && invalid;
    int single = record->anchored && !floating;
    if (invalid || (record->jit_ascii_only && !ascii))
        options |= PCRE2_NO_JIT;
    if (options & PCRE2_NO_JIT)
        *engine = ENGINE_INTERPRETER;
    else if (code_jit)
        *engine = ENGINE_JIT;
    else
        *engine = (floating ? record->floating_jit : record->jit) ? ENGINE_INTERPRETER_AHEAD : ENGINE_INTERPRETER;
    int beside_jit = *engine == ENGINE_INTERPRETER_AHEAD || (after_jit && *engine == ENGINE_INTERPRETER);
    return search_code(code, code_jit, single, !record->start_sensitive, s, subject, len, options,
                       search_budget(beside_jit), kind);
}

/* Whether a search ended at one of PCRE2's own limits, which JIT code and
** the interpreter reach differently: the interpreter has a depth limit
** that JIT code lacks, and they count the match limit differently. */
static int is_engine_limit(enum match_limit_kind kind)
{
    return kind == LIMIT_MATCH || kind == LIMIT_DEPTH || kind == LIMIT_HEAP;
}

/* Whether a first search that ended with kind, at an engine limit or out
** of time, gets a second one on the other engine. interpreter_ahead: the
** interpreter ran ahead of JIT code. jit_ran: JIT code ran. A subject that
** gets JIT code from its first use (jit_at_once) always starts with JIT
** code, so after JIT code ran out of time the interpreter would only add
** its time to a spent budget. */
static int second_search_due(enum match_limit_kind kind, int interpreter_ahead, int jit_ran, size_t len)
{
    if (!is_engine_limit(kind) && kind != LIMIT_TIME)
        return 0;
    return interpreter_ahead || (jit_ran && !(jit_at_once(len) && kind == LIMIT_TIME));
}

/* Combine a first search that did not decide (rc, *kind) with a second
** one on the other engine: the second's outcome when it decided, else the
** limit that the JIT search reached. */
static int settle(int rc, enum match_limit_kind *kind, int again, enum match_limit_kind again_kind, int first_jit)
{
    if (again_kind == LIMIT_NONE || !first_jit) {
        *kind = again_kind;
        return again;
    }
    return rc;
}

/* Search again after a first search that did not decide, on the other
** engine: JIT code after the interpreter, compiling the regex now, or the
** interpreter after JIT code. Each search runs as it would have run
** first, with its own budget (search_budget). So the outcome is decided
** when either engine decides, whichever ran first, and a line gets the
** same outcome whether or not the regex was JIT-compiled when it came, as
** in a scan against a one-off diagnosis. The caller checks
** second_search_due first. */
static int search_again(const struct record *record, struct match_scratch *s, const char *subject, size_t len,
                        enum search_engine engine, int rc, enum match_limit_kind *kind)
{
    uint32_t options = PCRE2_NO_JIT;
    if (engine == ENGINE_INTERPRETER_AHEAD) {
        int ready;
        record_code_now(record, subject, len, 1, &ready);
        if (!ready)
            return rc; /* the JIT compile failed: the interpreter decides alone */
        options = 0;
    }
    enum search_engine again_engine;
    enum match_limit_kind again_kind;
    int again = search(record, s, subject, len, options, options == 0, engine == ENGINE_JIT, &again_engine,
                       &again_kind);
    return settle(rc, kind, again, again_kind, engine == ENGINE_JIT);
}

/* The outcome of a search and, on a hit, the span from the scratch. */
static enum match_outcome outcome_of(int rc, enum match_limit_kind kind, struct match_scratch *scratch,
                                     size_t *start, size_t *end)
{
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(scratch->data);
        *start = ov[0];
        *end = ov[1] >= ov[0] ? ov[1] : ov[0]; /* \K in a lookahead can end a match before its start */
        return MATCH_HIT;
    }
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL)
        return MATCH_NONE;
    if (kind == LIMIT_NONE)
        return MATCH_ERROR;
    scratch->last_limit = kind;
    return MATCH_LIMIT;
}

int pattern_jit_ascii_only(const char *pattern)
{
    return uses_negated_class_escape(pattern);
}

enum match_outcome pattern_match(struct lazy_jit *lazy, const pcre2_code *plain, int jit_ascii_only,
                                 struct match_scratch *scratch, const char *subject, size_t len, size_t *start,
                                 size_t *end)
{
    int jit;
    const pcre2_code *code = lazy_jit_code(lazy, plain, len, &jit);
    uint32_t all_options = 0, arg_options = 0;
    pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &all_options);
    pcre2_pattern_info(code, PCRE2_INFO_ARGOPTIONS, &arg_options);
    int single = (all_options & PCRE2_ANCHORED) != 0, can_window = (arg_options & PCRE2_USE_OFFSET_LIMIT) != 0;
    enum match_limit_kind kind;
    scratch->last_limit = LIMIT_NONE;
    uint32_t options =
        has_non_ascii(subject, len) && (jit_ascii_only || !is_valid_utf8(subject, len)) ? PCRE2_NO_JIT : 0;
    int ahead = !jit && !(options & PCRE2_NO_JIT) && jit_available_once();
    int rc =
        search_code(code, jit, single, can_window, scratch, subject, len, options, search_budget(ahead), &kind);
    /* The other engine searches again, as in search_again. */
    int jit_ran = jit && !(options & PCRE2_NO_JIT);
    if (second_search_due(kind, ahead, jit_ran, len)) {
        int again_jit = 0;
        const pcre2_code *again_code = ahead ? jit_code_for(lazy, plain, 1, len, 1, &again_jit) : code;
        if (!ahead || again_jit) {
            enum match_limit_kind again_kind;
            int again = search_code(again_code, again_jit, single, can_window, scratch, subject, len,
                                    ahead ? 0 : PCRE2_NO_JIT, search_budget(!ahead), &again_kind);
            rc = settle(rc, &kind, again, again_kind, jit_ran);
        }
    }
    return outcome_of(rc, kind, scratch, start, end);
}

static void count_limit(const struct record *record, enum match_limit_kind kind)
{
    /* The counters live in the record so that the matches of every thread
    ** add up; they are atomic, and nothing else of the record changes. */
    struct record *r = (struct record *)record;
    int none = LIMIT_NONE;
    atomic_compare_exchange_strong(&r->first_limit, &none, (int)kind);
    if (atomic_fetch_add(&r->limit_hits, 1) + 1 >= QUARANTINE_AFTER)
        atomic_store(&r->quarantined, 1);
}

enum match_outcome record_match_mode(const struct record *record, struct match_scratch *scratch,
                                     const char *subject, size_t len, enum match_mode mode, size_t *start,
                                     size_t *end)
{
    scratch->last_limit = LIMIT_NONE;
    if (atomic_load_explicit(&record->quarantined, memory_order_relaxed)) {
        scratch->last_limit = LIMIT_QUARANTINE;
        return MATCH_LIMIT;
    }
    enum match_limit_kind kind;
    enum search_engine engine;
    int rc = search(record, scratch, subject, len, mode == MATCH_INTERPRETER ? PCRE2_NO_JIT : 0, 0, 0, &engine, &kind);
    if (mode != MATCH_INTERPRETER &&
        second_search_due(kind, engine == ENGINE_INTERPRETER_AHEAD, engine == ENGINE_JIT, len))
        rc = search_again(record, scratch, subject, len, engine, rc, &kind);
    enum match_outcome outcome = outcome_of(rc, kind, scratch, start, end);
    if (outcome == MATCH_LIMIT && mode != MATCH_PROBE)
        count_limit(record, kind);
    return outcome;
}

/* Match one record against one subject. On a hit, *start and *end give the
** span and the scratch holds the groups until the next call. */
enum match_outcome record_match(const struct record *record, struct match_scratch *scratch, const char *subject,
                                size_t len, size_t *start, size_t *end)
{
    return record_match_mode(record, scratch, subject, len, MATCH_AUTO, start, end);
}

/* Add one warning per record whose regex hit a limit since the last call,
** and one more when it was quarantined. Threads that match at once may all
** call this, so additions to the problem list are serialised. */
void engine_report_limits(struct triage_engine *engine)
{
    pthread_mutex_lock(&engine->prepare_lock);
    for (size_t i = 0; i < engine->record_count; i++) {
        struct record *record = engine->records[i];
        unsigned hits = atomic_load(&record->limit_hits);
        int reported = atomic_load(&record->limit_reported);
        const char *field = record->nested_schema ? "error.regex" : "regex";
        if (hits > 0 && reported == 0) {
            enum match_limit_kind first = (enum match_limit_kind)atomic_load(&record->first_limit);
            problem_add(&engine->problems, TRIAGE_WARNING, record->file, record->regex_line, record->regex_column,
                        record->id, field,
                        "regex hit %s, so whether it matches that input is unknown; nested or adjacent "
                        "unbounded repeats such as (a+)+ or .*x.*y backtrack without end, and 'triage check' "
                        "warns about them",
                        match_limit_name(first));
            reported = 1;
        }
        if (atomic_load(&record->quarantined) && reported < 2) {
            problem_add(&engine->problems, TRIAGE_WARNING, record->file, record->regex_line, record->regex_column,
                        record->id, field,
                        "regex hit limits on %u inputs and is quarantined: it is not matched again in this run",
                        hits);
            reported = 2;
        }
        atomic_store(&record->limit_reported, reported);
    }
    pthread_mutex_unlock(&engine->prepare_lock);
}

int scratch_group(const struct match_scratch *scratch, uint32_t group, size_t *start, size_t *end)
{
    if (group >= pcre2_get_ovector_count(scratch->data))
        return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(scratch->data);
    if (ov[2 * group] == PCRE2_UNSET || ov[2 * group + 1] < ov[2 * group])
        return -1;
    *start = ov[2 * group];
    *end = ov[2 * group + 1];
    return 0;
}

/* Index of the matching top-level alternative with the most literal text,
** or -1. Uses its own match data so the groups of the main hit stay intact. */
int record_which_alternative(const struct record *record, struct match_scratch *scratch, const char *subject,
                             size_t len)
{
    if (record->alternative_count <= 1)
        return 0;
    compile_alternative_codes((struct record *)record);
    pcre2_match_data *data = pcre2_match_data_create(1, NULL);
    if (data == NULL)
        return -1;
    int found = -1;
    for (size_t i = 0; i < record->alternative_count; i++) {
        const struct alternative *alt = &record->alternatives[i];
        if (alt->code == NULL || (found >= 0 && alt->literal_chars <= record->alternatives[found].literal_chars))
            continue;
        if (pcre2_match(alt->code, (PCRE2_SPTR)subject, len, 0, 0, data, scratch->context) >= 0)
            found = (int)i;
    }
    pcre2_match_data_free(data);
    return found;
}
