/*
** Explanations of a match or a non-match ("why not"): how far a record's
** pattern gets on an input and which pattern element fails.
**
** Owns: splitting a pattern into elements, the longest matching prefix
** search, PCRE2 partial matching of a whole line, triage_why_not().
** Depends on: rank.c for the branches of a regex, match.c for the match.
**
** A branch is cut into elements (a run of literal characters, an escape, a
** class, a group, each with its quantifier). Every prefix made of whole
** elements is a valid pattern. If a prefix matches somewhere on the line,
** every shorter one does too, so a binary search finds the longest prefix
** that still matches. The element after it is the one that failed.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Same options as match.c, so a prefix matches what it matches inside the regex. */
static const uint32_t PREFIX_OPTIONS = PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;

#define MAX_ELEMENTS 1024

/* Byte length of the escape at pattern[i] ('\\' included). */
static size_t escape_length(const char *pattern, size_t len, size_t i)
{
    size_t k = i + 1;
    if (k >= len)
        return 1;
    char c = pattern[k++];
    if (c == 'Q') {
        const char *e = strstr(pattern + k, "\\E");
        return e != NULL && (size_t)(e - pattern) < len ? (size_t)(e - pattern) + 2 - i : len - i;
    }
    if ((c == 'x' || c == 'p' || c == 'P' || c == 'g' || c == 'k' || c == 'N') && k < len &&
        (pattern[k] == '{' || pattern[k] == '<' || pattern[k] == '\'')) {
        char close = pattern[k] == '{' ? '}' : pattern[k] == '<' ? '>' : '\'';
        while (k < len && pattern[k] != close)
            k++;
        return (k < len ? k + 1 : len) - i;
    }
    if (c == 'x') {
        for (int d = 0; d < 2 && k < len && strchr("0123456789abcdefABCDEF", pattern[k]); d++)
            k++;
    }
    return k - i;
}

static size_t class_end(const char *pattern, size_t len, size_t i)
{
    size_t k = i + 1;
    if (k < len && pattern[k] == '^')
        k++;
    if (k < len && pattern[k] == ']')
        k++;
    while (k < len && pattern[k] != ']') {
        if (pattern[k] == '\\')
            k++;
        else if (pattern[k] == '[' && k + 1 < len && pattern[k + 1] == ':') {
            const char *close = strstr(pattern + k, ":]");
            if (close != NULL && (size_t)(close - pattern) < len)
                k = (size_t)(close - pattern) + 1;
        }
        k++;
    }
    return k < len ? k + 1 : len;
}

static size_t quantifier_end(const char *pattern, size_t len, size_t k)
{
    if (k >= len)
        return k;
    if (pattern[k] == '?' || pattern[k] == '*' || pattern[k] == '+') {
        k++;
    } else if (pattern[k] == '{' && k + 1 < len && pattern[k + 1] >= '0' && pattern[k + 1] <= '9') {
        size_t q = k + 1;
        while (q < len && ((pattern[q] >= '0' && pattern[q] <= '9') || pattern[q] == ','))
            q++;
        if (q >= len || pattern[q] != '}')
            return k; /* a literal '{' */
        k = q + 1;
    } else {
        return k;
    }
    if (k < len && (pattern[k] == '?' || pattern[k] == '+'))
        k++; /* lazy or possessive */
    return k;
}

static int is_plain(char c)
{
    return strchr("()[]\\.^$|?*+{", c) == NULL;
}

/* Fill ends[] with the end offset of each element of a branch (a pattern
** without top-level '|'); returns the number of elements. A run of literal
** characters is one element, so a failure names a word, not a letter. */
static size_t split_elements(const char *pattern, size_t len, size_t *ends, size_t max)
{
    size_t n = 0, i = 0;
    int previous_plain = 0;
    while (i < len && n < max) {
        size_t k;
        if (is_plain(pattern[i])) {
            k = i + 1;
            while (k < len && ((unsigned char)pattern[k] & 0xC0) == 0x80)
                k++; /* the rest of a UTF-8 character */
            size_t q = quantifier_end(pattern, len, k);
            if (q == k && previous_plain) {
                ends[n - 1] = k; /* extend the literal run */
                i = k;
                continue;
            }
            previous_plain = q == k;
            ends[n++] = q;
            i = q;
            continue;
        }
        previous_plain = 0;
        if (pattern[i] == '(')
            k = pattern_group_end(pattern, len, i) + 1;
        else if (pattern[i] == '[')
            k = class_end(pattern, len, i);
        else if (pattern[i] == '\\')
            k = i + escape_length(pattern, len, i);
        else
            k = i + 1;
        if (k > len)
            k = len;
        k = quantifier_end(pattern, len, k);
        ends[n++] = k;
        i = k;
    }
    return n;
}

/* Match units that one explaining pcre2_match call may spend over all its
** start positions, as a scan's window does (see match.c). A pattern that
** backtracks without end then fails only that step of the explanation. */
#define EXPLAIN_MATCH_UNITS 2000000u
#define EXPLAIN_HEAP_KIB 16384u

/* pcre2_match with the match limit of one position shrunk by the number
** of start positions, so the call is bounded whatever the pattern. */
static int bounded_match(const pcre2_code *code, const char *subject, size_t len, uint32_t options,
                         pcre2_match_data *data)
{
    pcre2_match_context *context = pcre2_match_context_create(NULL);
    if (context == NULL)
        return PCRE2_ERROR_NOMEMORY;
    size_t limit = EXPLAIN_MATCH_UNITS / (len + 1);
    pcre2_set_match_limit(context, limit < 100 ? 100 : (uint32_t)limit);
    pcre2_set_heap_limit(context, EXPLAIN_HEAP_KIB);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, len, 0, options, data, context);
    pcre2_match_context_free(context);
    return rc;
}

/* Whether the first len bytes of pattern match somewhere in subject; on a
** match *end receives the end of the leftmost match. A prefix that does
** not compile alone (a back reference to a later group) counts as failing. */
static int prefix_matches(const char *pattern, size_t len, const char *subject, size_t subject_len, size_t *start,
                          size_t *end)
{
    if (len == 0) {
        *start = *end = 0;
        return 1;
    }
    int errcode;
    PCRE2_SIZE erroffset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, PREFIX_OPTIONS, &errcode, &erroffset, NULL);
    if (code == NULL)
        return 0;
    pcre2_match_data *data = pcre2_match_data_create_from_pattern(code, NULL);
    int found = 0;
    if (data != NULL && bounded_match(code, subject, subject_len, 0, data) >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(data);
        *start = ov[0];
        *end = ov[1] >= ov[0] ? ov[1] : ov[0];
        found = 1;
    }
    pcre2_match_data_free(data);
    pcre2_code_free(code);
    return found;
}

/* Whether the element pattern[begin, end) may match nothing: it ends in
** '*' or '?' (lazy or possessive included) or has a {0,...} quantifier. */
static int is_optional(const char *pattern, size_t begin, size_t end)
{
    while (end > begin && (pattern[end - 1] == '?' || pattern[end - 1] == '+') && end - 1 > begin &&
           strchr("*?+}", pattern[end - 2]) != NULL)
        end--; /* a lazy or possessive marker */
    if (end == begin)
        return 0;
    char last = pattern[end - 1];
    if (last == '*' || last == '?')
        return 1;
    if (last == '}') {
        const char *open = memchr(pattern + begin, '{', end - begin);
        return open != NULL && open[1] == '0';
    }
    return 0;
}

/* How far one branch gets on one line. */
struct attempt {
    size_t line, line_start;
    size_t branch;
    const char *pattern;
    size_t pattern_ok, failed_end; /* prefix bytes that match, end of the element after them */
    size_t solid_ok;               /* pattern_ok without trailing optional elements such as ".*" */
    double literal;                /* literal characters of the matching prefix */
    size_t start, end;             /* within the line */
};

static void try_branch(const char *pattern, const char *line, size_t line_len, struct attempt *a)
{
    size_t len = strlen(pattern);
    size_t *ends = malloc(MAX_ELEMENTS * sizeof *ends);
    if (ends == NULL)
        return;
    size_t count = split_elements(pattern, len, ends, MAX_ELEMENTS);
    size_t lo = 0, hi = count; /* the longest matching prefix, in elements, is in [lo, hi] */
    size_t best_start = 0, best_end = 0;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2, start, end;
        if (prefix_matches(pattern, ends[mid - 1], line, line_len, &start, &end)) {
            lo = mid;
            best_start = start;
            best_end = end;
        } else {
            hi = mid - 1;
        }
    }
    a->pattern = pattern;
    a->pattern_ok = lo > 0 ? ends[lo - 1] : 0;
    a->failed_end = lo < count ? ends[lo] : len;
    a->literal = literal_chars(pattern, a->pattern_ok);
    a->start = best_start;
    a->end = best_end;

    /* A trailing ".*" of the prefix runs to the end of the line; the text
    ** where the next element was needed starts where the prefix without its
    ** trailing optional elements ends. */
    size_t solid = lo;
    while (solid > 0 && is_optional(pattern, solid >= 2 ? ends[solid - 2] : 0, ends[solid - 1]))
        solid--;
    a->solid_ok = solid > 0 ? ends[solid - 1] : 0;
    if (solid < lo && solid > 0) {
        size_t start, end;
        if (prefix_matches(pattern, ends[solid - 1], line, line_len, &start, &end)) {
            a->start = start;
            a->end = end;
        }
    } else if (solid == 0 && lo > 0) {
        a->end = a->start;
    }
    free(ends);
}

static int better(const struct attempt *a, const struct attempt *b)
{
    if (a->literal != b->literal)
        return a->literal > b->literal;
    return a->pattern_ok > b->pattern_ok;
}

/* Bytes of a partial match at the end of a line that count as a cut: fewer
** could be chance, such as a last "s" that a word starting with s would match. */
#define MIN_CUT_BYTES 3

/* If pattern[i] starts a repeated wildcard, such as "[^\n]{0,80}?", ".*"
** or "\S+", the offset after it, else i. */
static size_t wildcard_end(const char *pattern, size_t len, size_t i)
{
    size_t atom;
    if (pattern[i] == '.')
        atom = i + 1;
    else if (pattern[i] == '[')
        atom = class_end(pattern, len, i);
    else if (pattern[i] == '\\' && i + 1 < len && strchr("sSwWdDNhHvV", pattern[i + 1]) != NULL)
        atom = i + 2;
    else
        return i;
    size_t end = quantifier_end(pattern, len, atom);
    if (end == atom || pattern[atom] == '?')
        return i; /* one character, or at most one: it cannot run on */
    return end;
}

/* The element without its repeated wildcards, for the cut test: a
** wildcard can stretch to the end of any line, so a partial match through
** it proves nothing about a cut, while the text around it does. NULL when
** out of memory. */
static char *without_wildcards(const char *element, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t end = wildcard_end(element, len, i);
        if (end > i) {
            i = end;
            continue;
        }
        size_t step = element[i] == '\\' ? escape_length(element, len, i)
                      : element[i] == '[' ? class_end(element, len, i) - i
                                          : 1;
        memcpy(out + n, element + i, step);
        n += step;
        i += step;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Whether the line ends inside the element that failed: a partial match
** (PCRE2_PARTIAL_HARD) of the element that runs into the end of the line
** means the element would match if the line went on, as with a message cut
** short by a log shipper. The element is anchored where the prefix ended,
** unless the prefix ends in an optional element such as ".*", which lets
** it start anywhere. */
static int cut_short(const char *element, size_t element_len, int anchored, const char *rest, size_t rest_len)
{
    if (element_len == 0 || rest_len == 0)
        return 0;
    size_t solid_len;
    char *solid = without_wildcards(element, element_len, &solid_len);
    if (solid == NULL)
        return 0;
    if (solid_len < element_len)
        anchored = 0; /* the text a wildcard stood for is gone */
    int errcode;
    PCRE2_SIZE erroffset;
    pcre2_code *code = solid_len == 0 ? NULL
                                      : pcre2_compile((PCRE2_SPTR)solid, solid_len,
                                                      PREFIX_OPTIONS | (anchored ? PCRE2_ANCHORED : 0), &errcode,
                                                      &erroffset, NULL);
    free(solid);
    if (code == NULL)
        return 0;
    pcre2_match_data *data = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = data != NULL ? bounded_match(code, rest, rest_len, PCRE2_PARTIAL_HARD, data) : -1;
    int cut = 0;
    if (rc == PCRE2_ERROR_PARTIAL) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(data);
        cut = rest_len - ov[0] >= MIN_CUT_BYTES || ov[0] == 0;
    }
    pcre2_match_data_free(data);
    pcre2_code_free(code);
    return cut;
}

static char *dup_range(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, text, len);
        out[len] = '\0';
    }
    return out;
}

/* Look for a match of record r on each line; 1 with *why filled on a hit. */
static int find_match(const struct triage_engine *engine, size_t r, const char *text, size_t len, triage_why *why)
{
    const struct record *record = engine->records[r];
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL)
        return -1;
    int found = 0;
    size_t pos = 0, line_no = 0;
    struct line_view view = {0};
    while (!found && (pos < len || (pos == 0 && len == 0))) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        size_t line_len = end - pos, start, stop;
        if (line_len > 0 && text[pos + line_len - 1] == '\r')
            line_len--;
        /* A JSON log line is matched on its view, as a diagnosis does. */
        const char *line = text + pos;
        int viewed = line_len > 0 ? line_view_make(&view, line, line_len) : 0;
        if (viewed < 0) {
            found = -1; /* out of memory, which the caller reports */
            break;
        }
        if (viewed) {
            line = view.text;
            line_len = view.len;
        }
        if (record_match(record, scratch, line, line_len, &start, &stop) == MATCH_HIT)
            found = 1;
        else if (rank_signature_match(engine, r, scratch, line, line_len, NULL, &start, &stop))
            found = why->by_signature = 1;
        if (found && viewed) {
            start = line_view_offset(&view, start);
            stop = line_view_offset(&view, stop);
        }
        if (found) {
            why->matched = 1;
            why->line = line_no;
            why->start = pos + start;
            why->end = pos + stop;
        }
        pos = end + 1;
        if (len == 0)
            break;
    }
    line_view_free(&view);
    scratch_free(scratch);
    return found;
}

/* Find the branch and line on which the pattern of record r gets furthest.
** A JSON log line is tried on its view (line_view.c), as find_match and a
** diagnosis match it, and the span maps back to the line. */
static int find_furthest(const struct triage_engine *engine, size_t r, const char *text, size_t len,
                         triage_why *why)
{
    const struct record *record = engine->records[r];
    size_t branches = rank_branch_count(engine, r);
    struct attempt best = {0}, attempt;
    int have = 0;
    size_t pos = 0, line_no = 0;
    struct line_view view = {0};
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        size_t line_len = end - pos;
        if (line_len > 0 && text[pos + line_len - 1] == '\r')
            line_len--;
        const char *line = text + pos;
        int viewed = line_len > 0 ? line_view_make(&view, line, line_len) : 0;
        if (viewed < 0) {
            line_view_free(&view);
            return -1;
        }
        if (viewed) {
            line = view.text;
            line_len = view.len;
        }
        for (size_t b = 0; b < (branches > 0 ? branches : 1); b++) {
            memset(&attempt, 0, sizeof attempt);
            const char *pattern = branches > 1 ? rank_branch_pattern(engine, r, b) : record->regex;
            try_branch(pattern, line, line_len, &attempt);
            if (viewed) {
                attempt.start = line_view_offset(&view, attempt.start);
                attempt.end = line_view_offset(&view, attempt.end);
            }
            attempt.line = line_no;
            attempt.line_start = pos;
            attempt.branch = b;
            if (!have || better(&attempt, &best)) {
                best = attempt;
                have = 1;
            }
        }
        pos = end + 1;
    }
    line_view_free(&view);
    if (!have) {
        try_branch(branches > 1 ? rank_branch_pattern(engine, r, 0) : record->regex, "", 0, &best);
        best.line = 1;
    }
    why->line = best.line;
    why->start = best.line_start + best.start;
    why->end = best.line_start + best.end;
    why->branch = branches > 1 ? (int)best.branch + 1 : 0;
    why->pattern = dup_string(best.pattern);
    why->pattern_ok = best.pattern_ok;
    why->failed = dup_range(best.pattern + best.pattern_ok, best.failed_end - best.pattern_ok);
    size_t line_end = why->end;
    while (line_end < len && text[line_end] != '\n' && text[line_end] != '\r')
        line_end++;
    int anchored = best.pattern_ok == best.solid_ok;
    why->partial = cut_short(best.pattern + best.pattern_ok, best.failed_end - best.pattern_ok, anchored,
                             text + why->end, line_end - why->end);
    return why->pattern != NULL && why->failed != NULL ? 0 : -1;
}

int triage_why_not(triage_engine *engine, const char *id, const char *text, size_t len, triage_why *why)
{
    if (engine == NULL || id == NULL || why == NULL || (text == NULL && len > 0)) {
        set_error("triage_why_not: engine, id, text and why are required");
        return -1;
    }
    memset(why, 0, sizeof *why);
    size_t r = engine_find_index(engine, id);
    if (r == SIZE_MAX) {
        set_error("record '%s' is not loaded; 'triage check PATH' lists the ids of a folder", id);
        return -1;
    }
    if (engine_prepare(engine) != 0)
        return -1;
    if (text == NULL)
        text = "";
    size_t branches = rank_branch_count(engine, r);
    why->branch_count = branches > 1 ? (int)branches : 1;
    int found = find_match(engine, r, text, len, why);
    if (found < 0) {
        set_error("out of memory matching record '%s'", id);
        return -1;
    }
    if (found) {
        const char *signature = rank_signature_pattern(engine, r);
        why->pattern = dup_string(why->by_signature && signature != NULL ? signature : engine->records[r]->regex);
        why->pattern_ok = why->pattern ? strlen(why->pattern) : 0;
        return 1;
    }
    if (find_furthest(engine, r, text, len, why) != 0) {
        triage_why_free(why);
        set_error("out of memory explaining record '%s'", id);
        return -1;
    }
    return 0;
}

void triage_why_free(triage_why *why)
{
    if (why == NULL)
        return;
    free(why->pattern);
    free(why->failed);
    why->pattern = NULL;
    why->failed = NULL;
}
