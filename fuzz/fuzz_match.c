/*
** Fuzz target: the matcher. The input is FLAGS PATTERN '\0' SUBJECT: one
** flag byte, a regex (compiled as a record regex) and a subject. With flag
** bit 0 the subject is repeated to at least 2 KiB, so that the search is
** split into windows of start positions.
**
** Checked, besides crashes and undefined behaviour:
** - JIT and the interpreter agree: when both give a hit or both give no
**   hit, the outcome and the span are the same (a limit is allowed to hit
**   one and not the other, because they count differently);
** - the windowed, time-bounded search gives what one plain pcre2_match call
**   with the same per-position limit gives, whenever it finished quickly
**   enough for that plain call to be affordable.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_common.h"
#include "internal.h"

/* Keep in step with POSITION_MATCH_LIMIT, DEPTH_LIMIT and HEAP_LIMIT_KIB in core/match.c. */
#define REFERENCE_MATCH_LIMIT 100000u
#define REFERENCE_DEPTH_LIMIT 5000u
#define REFERENCE_HEAP_LIMIT_KIB 16384u

static struct match_scratch *scratch;
static pcre2_match_context *reference_context;
static pcre2_match_data *reference_data;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    scratch = scratch_new();
    reference_context = pcre2_match_context_create(NULL);
    reference_data = pcre2_match_data_create(1, NULL);
    if (scratch == NULL || reference_context == NULL || reference_data == NULL)
        abort();
    pcre2_set_match_limit(reference_context, REFERENCE_MATCH_LIMIT);
    pcre2_set_depth_limit(reference_context, REFERENCE_DEPTH_LIMIT);
    pcre2_set_heap_limit(reference_context, REFERENCE_HEAP_LIMIT_KIB);
    return 0;
}

/* Make the matches below run JIT code. JIT compiling waits for a pattern's
** first uses (JIT_AFTER_USES in core/match.c), so this requests the plain
** and the floating code more often than that. */
static void warm_up_jit(const struct record *record)
{
    int jit;
    for (int i = 0; i < 256; i++) {
        record_code_for(record, "", 0, &jit);
        record_code_for(record, "\xff", 1, &jit);
    }
}

static struct record *compile(const char *pattern)
{
    struct record *record = calloc(1, sizeof *record);
    struct problem_list problems = {0};
    if (record == NULL)
        abort();
    record->id = dup_string("fuzz/pattern");
    record->file = dup_string("fuzz.json");
    record->regex = dup_string(pattern);
    if (record->id == NULL || record->file == NULL || record->regex == NULL)
        abort();
    int rc = record_compile(record, NULL, &problems);
    if (rc != 0 && problems.count == 0)
        abort(); /* a rejected pattern must be reported */
    problem_list_free(&problems);
    if (rc != 0) {
        record_free(record);
        return NULL;
    }
    warm_up_jit(record);
    return record;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int decided(enum match_outcome outcome)
{
    return outcome == MATCH_HIT || outcome == MATCH_NONE;
}

/* One plain pcre2_match call; MATCH_LIMIT for any error. */
static enum match_outcome reference_match(const struct record *record, const char *subject, size_t len,
                                          uint32_t options, size_t *start, size_t *end)
{
    int jit;
    const pcre2_code *code = record_code_for(record, subject, len, &jit);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, len, 0, options, reference_data, reference_context);
    if (rc == PCRE2_ERROR_NOMATCH)
        return MATCH_NONE;
    if (rc < 0)
        return MATCH_LIMIT;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(reference_data);
    *start = ov[0];
    *end = ov[1] >= ov[0] ? ov[1] : ov[0];
    return MATCH_HIT;
}

static int is_ascii(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return 0;
    return 1;
}

static int is_valid_utf8(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = fuzz_utf8_sequence(p, end);
        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* Compare two outcomes of one subject. PCRE2 10.42 JIT and interpreter
** disagree about empty matches next to invalid bytes ("$" on "a\xb9": JIT
** at 2, the interpreter none). So on a subject with invalid UTF-8 an empty
** match is not compared, while every non-empty match still is. */
static void compare(const char *what, int valid, enum match_outcome a, size_t a_start, size_t a_end,
                    enum match_outcome b, size_t b_start, size_t b_end)
{
    if (!decided(a) || !decided(b))
        return;
    if (!valid && ((a == MATCH_HIT && a_start == a_end) || (b == MATCH_HIT && b_start == b_end)))
        return;
    if (a != b || (a == MATCH_HIT && (a_start != b_start || a_end != b_end))) {
        fprintf(stderr, "fuzz: %s disagree: %d [%zu, %zu) against %d [%zu, %zu)\n", what, a, a_start, a_end, b, b_start,
                b_end);
        abort();
    }
}

static void check_subject(const struct record *record, const char *subject, size_t len)
{
    size_t jit_start = 0, jit_end = 0, int_start = 0, int_end = 0, ref_start = 0, ref_end = 0;
    double began = now_ms();
    enum match_outcome jit = record_match_mode(record, scratch, subject, len, MATCH_AUTO, &jit_start, &jit_end);
    double jit_ms = now_ms() - began;
    began = now_ms();
    enum match_outcome interp =
        record_match_mode(record, scratch, subject, len, MATCH_INTERPRETER, &int_start, &int_end);
    double interp_ms = now_ms() - began;
    int valid = is_valid_utf8(subject, len);
    compare("JIT and interpreter", valid, jit, jit_start, jit_end, interp, int_start, int_end);

    /* A plain call has no time bound, so it runs only where the bounded
    ** search decided fast. There it does no more work than that search
    ** did; after a limit outcome it could backtrack for minutes. */
    if (decided(interp) && interp_ms < 2.0) {
        enum match_outcome ref = reference_match(record, subject, len, PCRE2_NO_JIT, &ref_start, &ref_end);
        compare("windowed and plain interpreter", valid, interp, int_start, int_end, ref, ref_start, ref_end);
    }
    /* A plain JIT call is no reference where record_match avoids JIT on
    ** purpose: on invalid UTF-8, and for jit_ascii_only regexes on non-ASCII
    ** text (see search() in core/match.c). */
    int jit_avoided = !valid || (record->jit_ascii_only && !is_ascii(subject, len));
    if (record->jit && !jit_avoided && decided(jit) && jit_ms < 2.0) {
        enum match_outcome ref = reference_match(record, subject, len, 0, &ref_start, &ref_end);
        compare("windowed and plain JIT", valid, jit, jit_start, jit_end, ref, ref_start, ref_end);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    const char *nul = memchr(rest, '\0', rest_len);
    size_t pattern_len = nul != NULL ? (size_t)(nul - rest) : rest_len;
    char *pattern = malloc(pattern_len + 1);
    if (pattern == NULL)
        abort();
    memcpy(pattern, rest, pattern_len);
    pattern[pattern_len] = '\0';
    struct record *record = compile(pattern);
    free(pattern);
    if (record == NULL)
        return 0;

    const char *subject = nul != NULL ? nul + 1 : "";
    size_t subject_len = nul != NULL ? rest_len - pattern_len - 1 : 0;
    check_subject(record, subject, subject_len);
    if ((flags & 1) && subject_len > 0) {
        size_t copies = 2048 / subject_len + 1, long_len = copies * subject_len;
        char *repeated = malloc(long_len);
        if (repeated == NULL)
            abort();
        for (size_t i = 0; i < copies; i++)
            memcpy(repeated + i * subject_len, subject, subject_len);
        check_subject(record, repeated, long_len);
        free(repeated);
    }
    record_free(record);
    return 0;
}
