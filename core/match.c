/*
** Matching: compile record regexes with PCRE2 and run them under limits.
**
** Owns: compile options, the JIT/interpreter choice, per-thread scratch
** (match data, match context, JIT stack), match limits and outcomes.
** Depends on: PCRE2 (8-bit).
**
** Every pattern is compiled once per engine: case-insensitive, UTF with
** invalid UTF-8 in subjects tolerated (logs carry whatever clients sent),
** \C refused because it can split a character, and a nesting limit. A
** record whose regex does not compile is rejected with PCRE2's message and
** the offset of the error.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Limits per pcre2_match call: enough for any sane log pattern, small enough
** that a pathological one fails fast. Measured as PCRE2 counts them, not in
** time. NOTE: the match counter restarts at every start position, so an
** unanchored catastrophic pattern can still cost limit x line length. */
#define MATCH_LIMIT 200000u
#define DEPTH_LIMIT 5000u
#define HEAP_LIMIT_KIB 16384u
#define JIT_STACK_MIN (32u << 10)
#define JIT_STACK_MAX (1u << 20)
#define PARENS_NEST_LIMIT 64u
/* Ovector pairs in the shared match data; patterns with more groups still
** match, only their higher groups are not reported. */
#define SCRATCH_GROUPS 128u

struct match_scratch {
    pcre2_match_data *data;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
};

/* DOTALL lets a pattern written for a multi-line message (a Go panic, a
** race report) match that message whole; on a single log line it changes
** nothing. */
static const uint32_t COMPILE_OPTIONS =
    PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;

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
        if (group <= record->group_count && record->group_names[group] == NULL)
            record->group_names[group] = dup_string((const char *)entry + 2);
    }
    return 0;
}

static void compile_alternatives(struct record *record, pcre2_compile_context *ctx)
{
    enum { MAX_ALTERNATIVES = 64 };
    size_t starts[MAX_ALTERNATIVES], lens[MAX_ALTERNATIVES];
    size_t len = strlen(record->regex);
    size_t count = split_alternatives(record->regex, len, starts, lens, MAX_ALTERNATIVES);
    if (count > MAX_ALTERNATIVES)
        count = MAX_ALTERNATIVES;
    record->alternatives = calloc(count, sizeof *record->alternatives);
    if (record->alternatives == NULL)
        return;
    record->alternative_count = count;
    for (size_t i = 0; i < count; i++) {
        struct alternative *alt = &record->alternatives[i];
        alt->pattern = malloc(lens[i] + 1);
        if (alt->pattern == NULL)
            continue;
        memcpy(alt->pattern, record->regex + starts[i], lens[i]);
        alt->pattern[lens[i]] = '\0';
        alt->literal_chars = literal_chars(alt->pattern, lens[i]);
        if (count == 1)
            continue; /* the whole pattern is the alternative */
        int errcode;
        PCRE2_SIZE erroffset;
        /* An alternative may refer to a group defined in another one and
        ** fail alone; it is then scored without telling alternatives apart. */
        alt->code = pcre2_compile((PCRE2_SPTR)alt->pattern, lens[i], COMPILE_OPTIONS, &errcode, &erroffset, ctx);
    }
}

int record_compile(struct record *record, struct problem_list *problems)
{
    const char *field = record->nested_schema ? "error.regex" : "regex";
    pcre2_compile_context *ctx = new_compile_context();
    if (ctx == NULL) {
        problem_add(problems, TRIAGE_ERROR, record->file, 0, 0, record->id, field, "out of memory");
        return -1;
    }
    int errcode;
    PCRE2_SIZE erroffset;
    record->code = pcre2_compile((PCRE2_SPTR)record->regex, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS, &errcode,
                                 &erroffset, ctx);
    if (record->code == NULL) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(errcode, message, sizeof message);
        problem_add(problems, TRIAGE_ERROR, record->file, record->regex_line, record->regex_column, record->id, field,
                    "regex does not compile: %s at offset %zu of \"%s\"", (const char *)message, (size_t)erroffset,
                    record->regex);
        pcre2_compile_context_free(ctx);
        return -1;
    }
    /* A failed JIT compile (no JIT on this CPU, or out of executable memory)
    ** leaves the interpreter in charge; results are the same. */
    record->jit = pcre2_jit_compile(record->code, PCRE2_JIT_COMPLETE) == 0;
    if (collect_group_names(record) != 0) {
        problem_add(problems, TRIAGE_ERROR, record->file, 0, 0, record->id, field, "out of memory");
        pcre2_compile_context_free(ctx);
        return -1;
    }
    compile_alternatives(record, ctx);
    pcre2_compile_context_free(ctx);
    return 0;
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
    pcre2_set_match_limit(s->context, MATCH_LIMIT);
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

static enum match_outcome classify(int rc)
{
    if (rc >= 0)
        return MATCH_HIT;
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL)
        return MATCH_NONE;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY)
        return MATCH_LIMIT;
    return MATCH_ERROR;
}

/* Match one record against one subject. On a hit, *start and *end give the
** span and the scratch holds the groups until the next call. */
enum match_outcome record_match(const struct record *record, struct match_scratch *scratch, const char *subject,
                                size_t len, size_t *start, size_t *end)
{
    if (atomic_load_explicit(&record->quarantined, memory_order_relaxed))
        return MATCH_NONE;
    int rc = pcre2_match(record->code, (PCRE2_SPTR)subject, len, 0, 0, scratch->data, scratch->context);
    enum match_outcome outcome = classify(rc);
    if (outcome == MATCH_HIT) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(scratch->data);
        *start = ov[0];
        *end = ov[1] >= ov[0] ? ov[1] : ov[0];
    } else if (outcome == MATCH_LIMIT) {
        atomic_fetch_add_explicit(&((struct record *)record)->limit_hits, 1, memory_order_relaxed);
    }
    return outcome;
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
