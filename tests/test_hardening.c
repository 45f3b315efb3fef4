/*
** Hardening tests: hostile record files, hostile regexes and hostile input.
**
** Record files: every rejection names FILE:LINE:COLUMN, the id, the field
** and the problem, and the other records still load. Regexes: a pattern
** that backtracks without end costs a bounded time per line, its limit
** hits are reported once and it is quarantined, and JIT and the
** interpreter agree on the public corpus. Input: invalid UTF-8, NUL bytes,
** CR-only and CRLF lines, long lines and random bytes are matched without
** error, matches in the valid parts are found and JSON output stays valid.
**
** TRIAGE_TEST_QUICK=1 (set for the valgrind run) shrinks the corpus
** comparison; TRIAGE_TEST_TIME_SCALE multiplies every time bound, for
** slow builds.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "json.h"

#define SOURCE TRIAGE_TEST_SOURCE_DIR
#define GOOD SOURCE "/tests/fixtures/records/good"
#define HOSTILE SOURCE "/tests/fixtures/hostile"
#define GOOD_LINE "app: widget frobnication failed for queue 7"

/* The time bound of one (record, line) pair. */
#define PAIR_BOUND_MS 50.0

static double time_scale = 1.0;
static int quick;

/* CPU time of this thread: the time limits bound the work of the calling
** thread, and a loaded machine must not fail these checks. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static triage_engine *open_engine(unsigned flags)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS | flags, SOURCE};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL)
        fprintf(stderr, "triage_open: %s\n", triage_last_error());
    return engine;
}

/* The first problem whose file name ends with file_end, or NULL. */
static const triage_problem *problem_for(const triage_engine *engine, const char *file_end)
{
    size_t n = strlen(file_end);
    for (size_t i = 0; i < triage_problem_count(engine); i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        size_t k = strlen(p->file);
        if (k >= n && strcmp(p->file + k - n, file_end) == 0)
            return p;
    }
    return NULL;
}

static size_t problems_matching(const triage_engine *engine, const char *id, const char *text)
{
    size_t count = 0;
    for (size_t i = 0; i < triage_problem_count(engine); i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        if (strcmp(p->id, id) == 0 && strstr(p->message, text) != NULL)
            count++;
    }
    return count;
}

/* Whether triage_match finds record id in text. */
static int finds(triage_engine *engine, const char *text, size_t len, const char *id)
{
    triage_hit hits[16];
    int n = triage_match(engine, text, len, hits, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (strcmp(hits[i].id, id) == 0)
            return 1;
    return 0;
}

/* {==== record files */

static const struct {
    const char *file;
    unsigned line, column;
    const char *id, *field, *message;
} REJECTIONS[] = {
    {"beyond-2-53.json", 5, 21, "hostile/beyond-2-53", "evidence_count", "beyond 2^53"},
    {"byte-f5.json", 5, 22, "hostile/byte-f5", "root_cause", "invalid UTF-8 byte 0xf5"},
    {"byte-ff.json", 5, 22, "hostile/byte-ff", "root_cause", "invalid UTF-8 byte 0xff"},
    {"control-character.json", 5, 21, "hostile/control-character", "root_cause", "control character 0x09"},
    {"deep-nesting.json", 5, 42, "hostile/deep-nesting", "tags[0][0]", "nesting deeper than 32 levels"},
    {"duplicate-key.json", 5, 3, "hostile/duplicate-key", "signature", "duplicate key \"signature\""},
    {"empty.json", 1, 1, "-", "-", "unexpected end of input"},
    {"escaped-surrogate.json", 5, 18, "hostile/escaped-surrogate", "root_cause", "unpaired high surrogate"},
    {"hex-number.json", 5, 21, "hostile/hex-number", "evidence_count", "hexadecimal"},
    {"id-control-character.json", 2, 9, "hostile/new\\x0aline\\x3a\\x20forged", "id", "invalid id"},
    {"id-dot-segment.json", 2, 9, "hostile/../etc", "id", "invalid id \"hostile/../etc\""},
    {"id-four-segments.json", 2, 9, "hostile/a/b/c", "id", "invalid id"},
    {"id-missing.json", 1, 1, "-", "id", "missing: required field"},
    {"id-one-segment.json", 2, 9, "hostile", "id", "invalid id"},
    {"id-uppercase.json", 2, 9, "Hostile/Upper", "id", "invalid id"},
    {"nan.json", 5, 17, "hostile/nan", "confidence", "NaN and Infinity"},
    {"negative-infinity.json", 5, 17, "hostile/negative-infinity", "confidence", "NaN and Infinity"},
    {"not-an-object.json", 1, 1, "-", "-", "expected a JSON object"},
    {"overlong-utf8.json", 5, 22, "hostile/overlong-utf8", "root_cause", "invalid UTF-8 byte 0xc0"},
    {"regex-backslash-c.json", 4, 12, "hostile/regex-backslash-c", "regex", "\\C is disabled"},
    {"regex-deep-parens.json", 4, 12, "hostile/regex-deep-parens", "regex", "too deeply nested at offset 65"},
    {"regex-too-long.json", 4, 12, "hostile/regex-too-long", "regex", "longer than the limit of 8192"},
    {"regex-ucp.json", 4, 12, "hostile/regex-ucp", "regex", "UCP is disabled"},
    {"regex-unclosed.json", 4, 12, "hostile/regex-unclosed", "regex", "missing closing parenthesis at offset 15"},
    {"surrogate-utf8.json", 5, 22, "hostile/surrogate-utf8", "root_cause", "invalid UTF-8 byte 0xed"},
    {"trailing-text.json", 6, 3, "hostile/trailing-text", "-", "unexpected text after the JSON value"},
    {"truncated.json", 3, 16, "hostile/truncated", "signature", "unterminated string"},
    {"wrong-type-rate.json", 5, 57, "hostile/wrong-type-rate", "workarounds[0].success_rate", "got string"},
    {"wrong-type-signature.json", 3, 16, "hostile/wrong-type-signature", "signature", "expected string, got number"},
    {"wrong-type-workarounds.json", 5, 18, "hostile/wrong-type-workarounds", "workarounds", "expected array"},
};

static void test_hostile_records_rejected_others_load(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    CHECK(triage_load_records(engine, HOSTILE "/reject") == 0);
    size_t loaded, rejected;
    triage_load_counts(engine, &loaded, &rejected);
    CHECK(loaded == 2);
    CHECK(rejected == sizeof REJECTIONS / sizeof *REJECTIONS);
    for (size_t i = 0; i < sizeof REJECTIONS / sizeof *REJECTIONS; i++) {
        const triage_problem *p = problem_for(engine, REJECTIONS[i].file);
        if (p == NULL) {
            fprintf(stderr, "no problem reported for %s\n", REJECTIONS[i].file);
            CHECK(p != NULL);
            continue;
        }
        if (p->line != REJECTIONS[i].line || p->column != REJECTIONS[i].column || strcmp(p->id, REJECTIONS[i].id) ||
            strncmp(p->field, REJECTIONS[i].field, strlen(REJECTIONS[i].field)) != 0)
            fprintf(stderr, "%s: got %u:%u: %s: %s: %s\n", REJECTIONS[i].file, p->line, p->column, p->id, p->field,
                    p->message);
        CHECK(p->severity == TRIAGE_ERROR);
        CHECK(p->line == REJECTIONS[i].line);
        CHECK(p->column == REJECTIONS[i].column);
        CHECK(strcmp(p->id, REJECTIONS[i].id) == 0);
        CHECK(strncmp(p->field, REJECTIONS[i].field, strlen(REJECTIONS[i].field)) == 0);
        CHECK_STR_CONTAINS(p->message, REJECTIONS[i].message);
    }
    CHECK(finds(engine, GOOD_LINE, strlen(GOOD_LINE), "mail/widget-failure"));
    triage_close(&engine);
}

static void test_strict_load_fails_on_rejection(void)
{
    triage_engine *engine = open_engine(TRIAGE_STRICT);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    CHECK(triage_load_records(engine, HOSTILE "/reject") == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "rejected");
    triage_close(&engine);
}

/* A folder under $TMPDIR for files that are too large, too odd or too
** slow to check in; removed by remove_scratch_folder. */
static char scratch_folder[256];

static int make_scratch_folder(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch_folder, sizeof scratch_folder, "%s/triage-hardening-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(scratch_folder) != NULL ? 0 : -1;
}

static char *scratch_path(const char *name)
{
    return dup_printf("%s/%s", scratch_folder, name);
}

static int write_text(const char *name, const char *text, size_t len)
{
    char *path = scratch_path(name);
    FILE *f = path ? fopen(path, "wb") : NULL;
    free(path);
    if (f == NULL)
        return -1;
    size_t written = fwrite(text, 1, len, f);
    return fclose(f) == 0 && written == len ? 0 : -1;
}

static void remove_scratch_folder(void)
{
    static const char *const names[] = {"deep.json", "huge.json", "fifo.json", "values.json", "keys.json",
                                        "loop/loop", "loop"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *path = scratch_path(names[i]);
        if (path != NULL && remove(path) != 0 && errno != ENOENT)
            fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
        free(path);
    }
    rmdir(scratch_folder);
}

/* A 200,000-deep array, a sparse file over 64 MiB, a FIFO, a symbolic link
** loop, a million values and an object of 200,000 keys: each is rejected
** or read in bounded time, and the good records still load beside them. */
static void test_generated_hostile_files(void)
{
    if (make_scratch_folder() != 0) {
        CHECK(!"cannot create a scratch folder");
        return;
    }
    size_t depth = 200000;
    char *deep = malloc(2 * depth);
    if (deep == NULL)
        return;
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    CHECK(write_text("deep.json", deep, 2 * depth) == 0);
    free(deep);

    char *huge = scratch_path("huge.json");
    int fd = huge ? open(huge, O_CREAT | O_WRONLY | O_TRUNC, 0600) : -1;
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(ftruncate(fd, (off_t)RECORD_MAX_FILE_SIZE + 1) == 0);
        close(fd);
    }
    free(huge);

    char *fifo = scratch_path("fifo.json");
    CHECK(fifo != NULL);
    CHECK(fifo == NULL || mkfifo(fifo, 0600) == 0);
    free(fifo);

    char *loop = scratch_path("loop");
    char *link_path = scratch_path("loop/loop");
    CHECK(loop != NULL && link_path != NULL);
    if (loop != NULL && link_path != NULL) {
        CHECK(mkdir(loop, 0700) == 0);
        CHECK(symlink("..", link_path) == 0);
    }
    free(loop);
    free(link_path);

    /* A million and one values: "[0,0,...]". */
    size_t values = JSON_MAX_VALUES + 1, n = 0;
    char *many = malloc(2 * values + 2);
    if (many == NULL)
        return;
    many[n++] = '[';
    for (size_t i = 0; i < values; i++) {
        many[n++] = '0';
        many[n++] = i + 1 < values ? ',' : ']';
    }
    CHECK(write_text("values.json", many, n) == 0);
    free(many);

    /* A valid record with 200,000 extra keys on one line: the duplicate
    ** key check and the column count must stay linear. */
    size_t keys = 200000, cap = keys * 24 + 256;
    char *wide = malloc(cap);
    if (wide == NULL)
        return;
    n = (size_t)snprintf(wide, cap, "{\"id\": \"hostile/wide\", \"signature\": \"wide record\", \"regex\": \"wide\"");
    for (size_t i = 0; i < keys; i++)
        n += (size_t)snprintf(wide + n, cap - n, ", \"k%zu\": %zu", i, i);
    n += (size_t)snprintf(wide + n, cap - n, "}");
    CHECK(write_text("keys.json", wide, n) == 0);
    free(wide);

    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    double began = cpu_ms();
    CHECK(triage_load_records(engine, scratch_folder) == 1);
    double took = cpu_ms() - began;
    if (took > 5000 * time_scale)
        fprintf(stderr, "loading the generated files took %.0f ms\n", took);
    CHECK(took < 5000 * time_scale);

    const triage_problem *p = problem_for(engine, "deep.json");
    CHECK(p != NULL);
    CHECK(p == NULL || p->line == 1);
    CHECK(p == NULL || p->column == 33);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "nesting deeper than 32 levels");
    p = problem_for(engine, "huge.json");
    CHECK_STR_CONTAINS(p ? p->message : NULL, "larger than the limit of 67108864 bytes");
    p = problem_for(engine, "fifo.json");
    CHECK_STR_CONTAINS(p ? p->message : NULL, "not a regular file");
    p = problem_for(engine, "values.json");
    CHECK_STR_CONTAINS(p ? p->message : NULL, "more than 1000000 values");
    p = problem_for(engine, "/loop/loop");
    CHECK(p == NULL || p->severity == TRIAGE_WARNING);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "already read");
    size_t loaded, rejected;
    triage_load_counts(engine, &loaded, &rejected);
    CHECK(loaded == 3);
    CHECK(rejected == 4);
    CHECK(finds(engine, GOOD_LINE, strlen(GOOD_LINE), "mail/widget-failure"));
    CHECK(finds(engine, "the wide record", 15, "hostile/wide"));
    triage_close(&engine);
    remove_scratch_folder();
}

/* }==== */

/* {==== regex limits */

/* Subjects that make the hostile patterns backtrack: all of them 30,000
** characters, as long lines in real logs get. */
enum { SUBJECT_LEN = 30000, SUBJECTS = 5 };

static char *make_subject(int kind)
{
    char *s = malloc(SUBJECT_LEN + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < SUBJECT_LEN; i++) {
        switch (kind) {
        case 0: /* all 'a' */
            s[i] = 'a';
            break;
        case 1: /* 'a' then one '!' at the end */
            s[i] = i + 1 == SUBJECT_LEN ? '!' : 'a';
            break;
        case 2: /* runs of 16 'a' between '!': each start position costs just under the limit */
            s[i] = i % 17 == 16 ? '!' : 'a';
            break;
        case 3: /* runs of 12 'a' */
            s[i] = i % 13 == 12 ? '!' : 'a';
            break;
        default: /* words "aaaa " */
            s[i] = i % 5 == 4 ? ' ' : 'a';
            break;
        }
    }
    s[SUBJECT_LEN] = '\0';
    return s;
}

static void test_backtracking_pairs_bounded(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, HOSTILE "/backtrack") == 9);
    struct match_scratch *scratch = scratch_new();
    double worst = 0;
    for (int kind = 0; kind < SUBJECTS && scratch != NULL; kind++) {
        char *subject = make_subject(kind);
        for (size_t r = 0; subject != NULL && r < engine->record_count; r++) {
            for (int mode = 0; mode < 2; mode++) {
                struct record *record = engine->records[r];
                size_t start, end;
                /* Measure every pair: no quarantine from earlier pairs. */
                atomic_store(&record->limit_hits, 0);
                atomic_store(&record->quarantined, 0);
                double began = cpu_ms();
                enum match_outcome outcome = record_match_mode(record, scratch, subject, SUBJECT_LEN,
                                                               mode ? MATCH_INTERPRETER : MATCH_AUTO, &start, &end);
                double took = cpu_ms() - began;
                if (took > worst)
                    worst = took;
                if (took > PAIR_BOUND_MS * time_scale)
                    fprintf(stderr, "%s on subject %d (%s): %.1f ms, outcome %d\n", record->id, kind,
                            mode ? "interpreter" : "JIT", took, outcome);
                CHECK(took <= PAIR_BOUND_MS * time_scale);
                CHECK(outcome != MATCH_ERROR);
            }
        }
        free(subject);
    }
    printf("slowest hostile (record, line) pair: %.1f ms\n", worst);
    scratch_free(scratch);
    triage_close(&engine);
}

/* A backtracking record beside a good one: the good one matches on every
** line, the limit hit is a warning naming the record once, and after
** repeated hits the record is quarantined and reported once more. */
static void test_limit_hits_reported_and_quarantined(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    CHECK(triage_load_records(engine, HOSTILE "/backtrack/nested-repeat.json") == 1);
    char *hostile = make_subject(2);
    if (hostile == NULL)
        return;
    size_t line_len = strlen(GOOD_LINE);
    size_t text_len = SUBJECT_LEN + 1 + line_len;
    char *text = malloc(text_len + 1);
    if (text == NULL)
        return;
    memcpy(text, hostile, SUBJECT_LEN);
    text[SUBJECT_LEN] = '\n';
    memcpy(text + SUBJECT_LEN + 1, GOOD_LINE, line_len + 1);

    const char *id = "hostile/nested-repeat";
    size_t warnings_before = problems_matching(engine, id, "hit");
    CHECK(finds(engine, text, text_len, "mail/widget-failure"));
    const struct record *record = engine_find(engine, id);
    CHECK(record != NULL);
    if (record == NULL)
        return;
    CHECK(atomic_load(&record->limit_hits) == 1);
    CHECK(problems_matching(engine, id, "hit the time budget") + problems_matching(engine, id, "hit the PCRE2") ==
          warnings_before + 1);
    const triage_problem *p = problem_for(engine, "nested-repeat.json");
    CHECK(p != NULL);
    CHECK(p == NULL || p->line == 4);
    CHECK(p == NULL || p->column == 12);
    CHECK(p == NULL || strcmp(p->field, "regex") == 0);

    /* Hits on later inputs add no second warning until quarantine. */
    for (int i = 0; i < 12; i++)
        CHECK(finds(engine, text, text_len, "mail/widget-failure"));
    CHECK(atomic_load(&record->quarantined));
    CHECK(problems_matching(engine, id, "hit the") == warnings_before + 1);
    CHECK(problems_matching(engine, id, "quarantined") == 1);

    /* A quarantined record is not matched again: the limit outcome comes at once. */
    struct match_scratch *scratch = scratch_new();
    size_t start, end;
    double began = cpu_ms();
    CHECK(scratch != NULL);
    if (scratch != NULL) {
        CHECK(record_match(record, scratch, hostile, SUBJECT_LEN, &start, &end) == MATCH_LIMIT);
        CHECK(scratch_last_limit(scratch) == LIMIT_QUARANTINE);
        CHECK(cpu_ms() - began < 5 * time_scale);
    }
    scratch_free(scratch);
    CHECK(problems_matching(engine, id, "quarantined") == 1);
    free(text);
    free(hostile);
    triage_close(&engine);
}

/* A regex whose easy branch hits at once while another branch backtracks:
** ranking matches each branch again to tell which one hit, and those
** matches are bounded as well. */
static void test_backtracking_branch_bounded(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, HOSTILE "/backtrack/easy-branch.json") == 1);
    char *hostile = make_subject(2);
    size_t len = 10 + SUBJECT_LEN;
    char *line = malloc(len + 1);
    if (hostile != NULL && line != NULL) {
        memcpy(line, "xq marker ", 10);
        memcpy(line + 10, hostile, SUBJECT_LEN + 1);
        double began = cpu_ms();
        CHECK(finds(engine, line, len, "hostile/easy-branch"));
        double took = cpu_ms() - began;
        if (took > 4 * PAIR_BOUND_MS * time_scale)
            fprintf(stderr, "the easy-branch line took %.0f ms\n", took);
        CHECK(took <= 4 * PAIR_BOUND_MS * time_scale);
    }
    free(line);
    free(hostile);
    triage_close(&engine);
}

/* Preparing the ranking matches each regex on its own signature, and
** 'triage explain' matches parts of a regex on the message: both are
** bounded like any match when the regex backtracks without end. */
static void test_signature_and_explain_bounded(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, HOSTILE "/signature") == 1);
    triage_hit hits[2];
    double began = cpu_ms();
    CHECK(triage_match(engine, "nothing", 7, hits, 2) == 0);
    double took = cpu_ms() - began;
    if (took > 2 * PAIR_BOUND_MS * time_scale)
        fprintf(stderr, "preparing the backtracking signature took %.0f ms\n", took);
    CHECK(took <= 2 * PAIR_BOUND_MS * time_scale);
    /* The engine matched on its own account, not on input: no limit hit
    ** counts toward quarantine. */
    for (size_t i = 0; i < engine->record_count; i++)
        CHECK(atomic_load(&engine->records[i]->limit_hits) == 0);

    char *subject = make_subject(2);
    if (subject != NULL) {
        triage_why why;
        began = cpu_ms();
        CHECK(triage_why_not(engine, "hostile/backtracking-signature", subject, SUBJECT_LEN, &why) == 0);
        took = cpu_ms() - began;
        triage_why_free(&why);
        if (took > 4 * PAIR_BOUND_MS * time_scale)
            fprintf(stderr, "explaining the backtracking record took %.0f ms\n", took);
        CHECK(took <= 4 * PAIR_BOUND_MS * time_scale);
    }
    free(subject);
    triage_close(&engine);
}

/* The backtracking warning of 'triage check': the shapes that explode are
** flagged, their possessive, atomic and unambiguous forms are not. */
static void test_backtracking_risk_patterns(void)
{
    static const struct {
        const char *pattern;
        int risky;
    } cases[] = {
        {"(a+)+$", 1},          {"^(a+)+$", 1},        {"(a|aa)+$", 1},        {"(.*a){12}", 1},
        {"(\\w+\\s?)*$", 1},    {"(a|a?)+$", 1},       {"(?:x+|y)*z", 1},      {"(?<name>a+)+", 1},
        {"(a++)+$", 0},         {"(?>a+)+$", 0},       {"(ab|cd)+", 0},        {"foo.*bar.*baz", 0},
        {"a{2,}", 0},           {"[(]+(a)", 0},        {"\\Q(a+)+\\E", 0},     {"(?#(a+)+)x", 0},
        {"status=(\\d+)", 0}, {"(?:error|warn)ing", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char why[160] = "";
        int risky = regex_backtracking_risk(cases[i].pattern, why, sizeof why);
        if (risky != cases[i].risky)
            fprintf(stderr, "%s: risk %d, expected %d\n", cases[i].pattern, risky, cases[i].risky);
        CHECK(risky == cases[i].risky);
        if (risky)
            CHECK_STR_CONTAINS(why, "the group at offset");
    }
}

/* Lines of the shared logs: every step-th line, at most max. */
static char **read_log_lines(const char *path, size_t step, size_t max, size_t *count)
{
    char **lines = NULL;
    *count = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    lines = calloc(max, sizeof *lines);
    char buf[8192];
    size_t seen = 0;
    while (lines != NULL && *count < max && fgets(buf, sizeof buf, f) != NULL) {
        if (seen++ % step != 0)
            continue;
        buf[strcspn(buf, "\r\n")] = '\0';
        lines[*count] = dup_string(buf);
        if (lines[*count] != NULL)
            (*count)++;
    }
    fclose(f);
    return lines;
}

static void free_lines(char **lines, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
}

static const char *const LOG_FILES[] = {
    "logs/loghub/OpenSSH_2k.log", "logs/loghub/Apache_2k.log",    "logs/loghub/Linux_2k.log",
    "logs/loghub/Hadoop_2k.log",  "logs/loghub/OpenStack_2k.log", "logs/loghub/Android_2k.log",
    "logs/loghub/HDFS_2k.log",    "logs/loghub/Spark_2k.log",     "logs/loghub/Thunderbird_2k.log",
    "logs/loghub/Windows_2k.log", "logs/loghub/Zookeeper_2k.log", "logs/loghub/Mac_2k.log",
};

/* Subjects for the corpus comparison: record signatures and real log lines. */
static char **corpus_subjects(const triage_engine *engine, size_t *count)
{
    size_t per_file = quick ? 4 : 40, max = engine->record_count + 16 * per_file;
    char **subjects = calloc(max, sizeof *subjects);
    *count = 0;
    if (subjects == NULL)
        return NULL;
    for (size_t r = 0; r < engine->record_count; r++)
        subjects[(*count)++] = dup_string(engine->records[r]->signature);
    for (size_t f = 0; f < sizeof LOG_FILES / sizeof *LOG_FILES; f++) {
        char *path = dup_printf("%s/%s", TRIAGE_TEST_SHARED_DIR, LOG_FILES[f]);
        size_t n = 0;
        char **lines = path ? read_log_lines(path, 2000 / per_file, per_file, &n) : NULL;
        free(path);
        for (size_t i = 0; i < n && *count < max; i++) {
            subjects[(*count)++] = lines[i];
            lines[i] = NULL;
        }
        free_lines(lines, n);
    }
    return subjects;
}

/* JIT against the interpreter, and the windowed search against one plain
** call, on corpus signatures and real log lines: the same outcome and span
** for every (record, subject) pair, and no limit hit on this benign input.
** Each record meets its own signature, a rotating sample of other
** signatures and every log line, plus one line of 4 KiB of joined log
** lines that the windowed search splits. Longer lines are left out: there
** the interpreter needs more than the time budget for some corpus
** patterns such as us.*bank.*account, and a limit is not a disagreement. */
static void test_jit_interpreter_agree_on_corpus(void)
{
    char *canons = dup_printf("%s/corpora/deadends/canons", TRIAGE_TEST_SHARED_DIR);
    if (canons == NULL || !path_is_dir(canons)) {
        printf("skipped the corpus comparison: %s not found\n", canons ? canons : "(null)");
        free(canons);
        return;
    }
    triage_engine *engine = open_engine(0);
    if (engine == NULL) {
        free(canons);
        return;
    }
    triage_load_records(engine, canons);
    triage_load_default_records(engine);
    free(canons);
    size_t subject_count = 0;
    char **subjects = corpus_subjects(engine, &subject_count);
    struct match_scratch *scratch = scratch_new();
    pcre2_match_data *plain_data = pcre2_match_data_create(1, NULL);
    pcre2_match_context *plain_context = pcre2_match_context_create(NULL);
    if (subjects == NULL || scratch == NULL || plain_data == NULL || plain_context == NULL)
        goto done;

    size_t records = quick ? 50 : engine->record_count, signatures = engine->record_count;
    size_t sampled = quick ? 5 : 40, pairs = 0, hits = 0, disagreements = 0, limits = 0, long_limits = 0;
    char long_line[4096];
    size_t long_len = 0;
    for (size_t i = signatures; i < subject_count && long_len + 1 < sizeof long_line; i++) {
        size_t n = strlen(subjects[i]);
        if (long_len + n + 2 >= sizeof long_line)
            break;
        memcpy(long_line + long_len, subjects[i], n);
        long_len += n;
        long_line[long_len++] = ' ';
    }

    for (size_t r = 0; r < records; r++) {
        const struct record *record = engine->records[r];
        /* JIT compiling waits for a pattern's first uses; ask for the code
        ** until it exists, so that every comparison below runs JIT code:
        ** on ASCII subjects that of the regex compiled without UTF. */
        int jit_ready = 0;
        for (int i = 0; i < 256 && !jit_ready; i++)
            record_code_for(record, "", 0, &jit_ready);
        for (size_t k = 0; k < sampled + (subject_count - signatures) + 1; k++) {
            const char *subject;
            size_t len;
            int is_long = k == sampled + (subject_count - signatures);
            if (is_long) {
                subject = long_line;
                len = long_len;
            } else {
                size_t s = k < sampled ? (r + k * 61) % signatures : signatures + (k - sampled);
                subject = subjects[s];
                len = strlen(subject);
            }
            size_t a_start = 0, a_end = 0, b_start = 0, b_end = 0;
            enum match_outcome a = record_match_mode(record, scratch, subject, len, MATCH_AUTO, &a_start, &a_end);
            enum match_outcome b =
                record_match_mode(record, scratch, subject, len, MATCH_INTERPRETER, &b_start, &b_end);
            int jit;
            const pcre2_code *code = record_code_for(record, subject, len, &jit);
            /* The plain call avoids JIT where record_match does (jit_ascii_only). */
            uint32_t plain_options = 0;
            for (size_t i = 0; record->jit_ascii_only && i < len; i++)
                if ((unsigned char)subject[i] >= 0x80)
                    plain_options = PCRE2_NO_JIT;
            int rc = pcre2_match(code, (PCRE2_SPTR)subject, len, 0, plain_options, plain_data, plain_context);
            enum match_outcome c = MATCH_LIMIT;
            size_t c_start = 0, c_end = 0;
            if (rc == PCRE2_ERROR_NOMATCH) {
                c = MATCH_NONE;
            } else if (rc >= 0) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(plain_data);
                c = MATCH_HIT;
                c_start = ov[0];
                c_end = ov[1] > ov[0] ? ov[1] : ov[0];
            }
            pairs++;
            hits += a == MATCH_HIT;
            size_t pair_limits = (size_t)(a == MATCH_LIMIT) + (b == MATCH_LIMIT) + (c == MATCH_LIMIT);
            if (is_long)
                long_limits += pair_limits;
            else
                limits += pair_limits;
            /* A limit may end one search and not another; decided outcomes must agree. */
            int decided = pair_limits == 0;
            int same = a == b && b == c && a_start == b_start && a_end == b_end && b_start == c_start &&
                       b_end == c_end;
            if (!same && (decided || !is_long)) {
                if (disagreements < 5)
                    fprintf(stderr, "%s on \"%.60s\": JIT %d [%zu,%zu), interpreter %d [%zu,%zu), plain %d\n",
                            record->id, subject, a, a_start, a_end, b, b_start, b_end, c);
                disagreements++;
            }
        }
    }
    printf("corpus comparison: %zu records, %zu pairs, %zu hits, %zu disagreements, %zu limit hits, %zu on the "
           "4 KiB line\n",
           records, pairs, hits, disagreements, limits, long_limits);
    CHECK(pairs > 0);
    CHECK(hits > 0);
    CHECK(disagreements == 0);
    CHECK(limits == 0);
done:
    pcre2_match_data_free(plain_data);
    pcre2_match_context_free(plain_context);
    scratch_free(scratch);
    for (size_t i = 0; subjects != NULL && i < subject_count; i++)
        free(subjects[i]);
    free(subjects);
    triage_close(&engine);
}

/* One regex on one subject, in both modes (JIT when it is ready, and the
** interpreter): a hit at [start, end) when hit is set, no hit otherwise.
** The regex is JSON string content, so \\S stands for \S. */
struct mode_case {
    const char *regex;
    const char *subject;
    int hit;
    size_t start, end;
};

static void check_both_modes(const struct mode_case *c, int ascii_only_jit, struct match_scratch *scratch)
{
    struct problem_list problems = {0};
    char *json = dup_printf("{\"id\": \"t/modes\", \"signature\": \"x\", \"regex\": \"%s\"}", c->regex);
    struct record *record = json ? record_from_json("t.json", json, strlen(json), NULL, &problems) : NULL;
    CHECK(record != NULL);
    if (record == NULL) {
        problem_list_free(&problems);
        return;
    }
    CHECK(record->jit_ascii_only == ascii_only_jit);
    int jit_ready = 0;
    for (int k = 0; k < 256 && !jit_ready; k++)
        record_code_for(record, "", 0, &jit_ready);
    size_t len = strlen(c->subject);
    enum match_outcome expected = c->hit ? MATCH_HIT : MATCH_NONE;
    for (int mode = 0; mode < 2; mode++) {
        size_t start = 99, end = 99;
        enum match_outcome outcome =
            record_match_mode(record, scratch, c->subject, len, mode ? MATCH_INTERPRETER : MATCH_AUTO, &start, &end);
        int right = outcome == expected && (!c->hit || (start == c->start && end == c->end));
        if (!right)
            fprintf(stderr, "%s (%s): outcome %d [%zu, %zu), expected %d [%zu, %zu)\n", c->regex,
                    mode ? "interpreter" : "JIT", outcome, start, end, expected, c->start, c->end);
        CHECK(right);
    }
    record_free(record);
    problem_list_free(&problems);
}

/* Check that a record's first match of a subject that takes the
** interpreter far longer than its budget, and JIT code far less, is a hit:
** bangs '!', then runs a's, then the tail. */
static void check_handed_to_jit(const char *regex, size_t bangs, size_t runs, const char *tail,
                                struct problem_list *problems, struct match_scratch *scratch)
{
    char *json = dup_printf("{\"id\": \"t/timed\", \"signature\": \"x\", \"regex\": \"%s\"}", regex);
    struct record *record = json != NULL ? record_from_json("t.json", json, strlen(json), NULL, problems) : NULL;
    size_t len = bangs + runs + strlen(tail);
    char *subject = malloc(len + 1);
    CHECK(record != NULL);
    CHECK(subject != NULL);
    if (record != NULL && subject != NULL) {
        memset(subject, '!', bangs);
        memset(subject + bangs, 'a', runs);
        memcpy(subject + bangs + runs, tail, strlen(tail) + 1);
        size_t start = 0, end = 0;
        enum match_outcome outcome = record_match(record, scratch, subject, len, &start, &end);
        if (outcome != MATCH_HIT)
            fprintf(stderr, "%s on %zu bytes: outcome %d, limit %s\n", regex, len, outcome,
                    match_limit_name(scratch_last_limit(scratch)));
        CHECK(outcome == MATCH_HIT);
        CHECK(end == len);
        CHECK(atomic_load(&record->limit_hits) == 0);
    }
    free(subject);
    record_free(record);
}

/* A subject on which the interpreter reaches its depth limit and JIT code
** does not: (a|ab)*c on 3,000 a's and a c. A record's first matches run
** on the interpreter, so the outcome must not depend on whether the regex
** was JIT-compiled yet, as in a scan against diagnosing the line alone.
** The same holds for a pattern matched through pattern_match (ranking),
** and for a subject that takes the interpreter too long. */
static void test_limit_decided_by_other_engine(void)
{
    enum { RUN = 3000 };
    char *subject = malloc(RUN + 2);
    struct match_scratch *scratch = scratch_new();
    struct problem_list problems = {0};
    /* The record takes the text over. */
    char *json = dup_printf("{\"id\": \"t/limits\", \"signature\": \"x\", \"regex\": \"(a|ab)*c\"}");
    struct record *record = json != NULL ? record_from_json("t.json", json, strlen(json), NULL, &problems) : NULL;
    CHECK(subject != NULL);
    CHECK(scratch != NULL);
    CHECK(record != NULL);
    if (subject == NULL || scratch == NULL || record == NULL)
        goto done;
    memset(subject, 'a', RUN);
    subject[RUN] = 'c';
    subject[RUN + 1] = '\0';

    size_t cold_start = 0, cold_end = 0, start = 0, end = 0;
    enum match_outcome cold = record_match(record, scratch, subject, RUN + 1, &cold_start, &cold_end);
    /* The case is only a test while the interpreter alone cannot decide it. */
    CHECK(record_match_mode(record, scratch, subject, RUN + 1, MATCH_INTERPRETER, &start, &end) == MATCH_LIMIT);
    CHECK(scratch_last_limit(scratch) == LIMIT_DEPTH);
    int jit_ready = 0;
    for (int k = 0; k < 256 && !jit_ready; k++)
        record_code_for(record, "", 0, &jit_ready);
    enum match_outcome warm = record_match(record, scratch, subject, RUN + 1, &start, &end);
    CHECK(warm == cold);
    CHECK(start == cold_start);
    CHECK(end == cold_end);
    if (jit_ready) {
        CHECK(cold == MATCH_HIT);
        CHECK(cold_start == 0);
        CHECK(cold_end == RUN + 1);
        CHECK(atomic_load(&record->limit_hits) == 1); /* the interpreter-only match above */
    } else {
        CHECK(cold == MATCH_LIMIT); /* without JIT the interpreter decides alone */
    }

    /* A plain pcre2_match of a.{0,300}q on 12,000 a's and a q took 35-37
    ** ms with the interpreter and 2.1 ms with JIT code, on an Intel Xeon
    ** server core. The interpreter hands over to JIT code within the budget. */
    if (jit_ready) {
        check_handed_to_jit("a.{0,300}q", 0, 12000, "q", &problems, scratch);
        /* 1,000 '!', 440 a's and "cb": a plain pcre2_match took 1.5 s on the interpreter, 0.2 ms on JIT code. */
        check_handed_to_jit("a*a*a*b", 1000, 440, "cb", &problems, scratch);
    }

    int errcode;
    PCRE2_SIZE erroffset;
    pcre2_code *plain = pcre2_compile((PCRE2_SPTR) "(a|ab)*c", PCRE2_ZERO_TERMINATED,
                                      PCRE2_CASELESS | PCRE2_UTF | PCRE2_USE_OFFSET_LIMIT, &errcode, &erroffset, NULL);
    CHECK(plain != NULL);
    if (plain != NULL) {
        struct lazy_jit lazy = {0};
        enum match_outcome first = pattern_match(&lazy, plain, 0, scratch, subject, RUN + 1, &start, &end);
        CHECK(first == (jit_ready ? MATCH_HIT : MATCH_LIMIT));
        lazy_jit_free(&lazy);
        pcre2_code_free(plain);
    }
done:
    record_free(record);
    problem_list_free(&problems);
    scratch_free(scratch);
    free(subject);
}

/* \S, \D and \W on multibyte characters: JIT code of PCRE2 10.42 gets
** them wrong, so such subjects go to the interpreter and both modes agree. */
static void test_negated_escapes_on_multibyte(void)
{
    static const struct mode_case cases[] = {
        {"user (\\\\S+) failed", "user \xc3\xa9lise failed", 1, 0, 18},
        {"x \\\\S+ y", "x \xf0\x9f\x98\x80 y", 1, 0, 8},
        {"^\\\\D+$", "\xe4\xb8\xad\xe6\x96\x87", 1, 0, 6},
        {"id=\\\\W\\\\w+", "id=\xc2\xa7" "abc", 1, 0, 8},
    };
    struct match_scratch *scratch = scratch_new();
    CHECK(scratch != NULL);
    for (size_t i = 0; scratch != NULL && i < sizeof cases / sizeof *cases; i++)
        check_both_modes(&cases[i], 1, scratch);
    scratch_free(scratch);
}

/* \z and \Z with an invalid byte in the subject: PCRE2 10.42's interpreter
** took the end of the valid text before the byte for the end of the
** subject. Both modes must assert only at the true end, and JIT code, which
** missed other matches on such subjects, is not used on them. */
static void test_end_assertions_across_invalid_bytes(void)
{
    static const struct mode_case cases[] = {
        {"b\\\\z", "ab\xff" "c", 0, 0, 0},
        {"b\\\\z", "ab\xff" "b", 1, 3, 4},
        {"b\\\\z", "ab\xff" "b\n", 0, 0, 0},
        {"b\\\\Z", "ab\xff" "c", 0, 0, 0},
        {"b\\\\Z", "ab\xff" "b\n", 1, 3, 4},
        {"(?m)b\\\\Z", "ab\n\xff" "c", 0, 0, 0},
        {"(*CRLF)b\\\\z", "ab\xff" "b\r\n", 0, 0, 0},
        {"[\\\\\\\\z]?b\\\\Qx\\\\z\\\\E", "b\xff" "zbx\\z", 1, 2, 7},
        /* JIT code found nothing here at all. */
        {"(a|)a+a", "xaa\xaf\xf2" "aa", 1, 1, 3},
        {"(a|)a+a$", "xaa\xaf\xf2" "aa", 1, 5, 7},
    };
    struct match_scratch *scratch = scratch_new();
    CHECK(scratch != NULL);
    for (size_t i = 0; scratch != NULL && i < sizeof cases / sizeof *cases; i++)
        check_both_modes(&cases[i], 0, scratch);
    scratch_free(scratch);
}

/* A leading .* anchors a DOTALL pattern to the start of the subject; an
** invalid byte before the match must not hide it from JIT. */
static void test_dot_star_after_invalid_utf8(void)
{
    struct problem_list problems = {0};
    static const char json[] = "{\"id\": \"t/dotstar\", \"signature\": \"x\", \"regex\": \"(.*a){3}\"}";
    struct record *record = record_from_json("t.json", dup_string(json), strlen(json), NULL, &problems);
    CHECK(record != NULL);
    CHECK(record == NULL || record->floating_code != NULL);
    struct match_scratch *scratch = scratch_new();
    static const char subject[] = "aaaa\x85zzaaa";
    for (int mode = 0; record != NULL && scratch != NULL && mode < 2; mode++) {
        size_t start = 0, end = 0;
        CHECK(record_match_mode(record, scratch, subject, sizeof subject - 1, mode ? MATCH_INTERPRETER : MATCH_AUTO,
                                &start, &end) == MATCH_HIT);
        CHECK(start == 0);
        CHECK(end == 4);
        CHECK(record_match_mode(record, scratch, subject + 2, sizeof subject - 3,
                                mode ? MATCH_INTERPRETER : MATCH_AUTO, &start, &end) == MATCH_HIT);
        CHECK(start == 3);
        CHECK(end == 8);
    }
    scratch_free(scratch);
    record_free(record);
    problem_list_free(&problems);
}

/* }==== */

/* {==== hostile input */

/* Whether text is valid UTF-8 (no overlong forms, surrogates or bytes F5-FF). */
static int valid_utf8(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        size_t need = 0;
        if (c < 0x80)
            need = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            need = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 4;
        if (need == 0 || (size_t)(end - p) < need)
            return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF4)
            hi = 0x8F;
        if (need > 1 && (p[1] < lo || p[1] > hi))
            return 0;
        for (size_t i = 2; i < need; i++)
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        p += need;
    }
    return 1;
}

/* Diagnose text as JSON; the output must be valid UTF-8 and valid JSON,
** and mention id when id is not NULL. */
static void check_json_report(triage_engine *engine, const char *text, size_t len, const char *id)
{
    triage_render_options options = {0};
    options.format = "json";
    char *out = NULL;
    size_t out_len = 0;
    int n = triage_diagnose(engine, text, len, &options, &out, &out_len);
    if (n < 0)
        fprintf(stderr, "triage_diagnose: %s\n", triage_last_error());
    CHECK(n >= 0);
    if (out == NULL)
        return;
    CHECK(valid_utf8(out, out_len));
    struct json_doc doc;
    struct json_error err;
    int parsed = json_parse(out, out_len, &doc, &err);
    if (parsed != 0 && strstr(err.message, "\\u0000") == NULL)
        fprintf(stderr, "JSON report does not parse: %u:%u: %s\n", err.line, err.column, err.message);
    CHECK(parsed == 0 || strstr(err.message, "\\u0000") != NULL);
    if (parsed == 0)
        json_free(&doc);
    if (id != NULL)
        CHECK_STR_CONTAINS(out, id);
    triage_free(out);
}

static void test_invalid_utf8_and_control_bytes(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    static const struct {
        const char *name;
        const char *text;
        size_t len;
    } cases[] = {
        {"overlong", "\xC0\xAF\xE0\x80\xAF " GOOD_LINE " \xC1\xBF", 0},
        {"surrogates", "\xED\xA0\x80\xED\xBF\xBF " GOOD_LINE, 0},
        {"bytes F5-FF", "\xF5\xF8\xFC\xFE\xFF " GOOD_LINE " \xFF", 0},
        {"stray continuation", "\x80\xBF" GOOD_LINE "\x85", 0},
        {"cut at the end", GOOD_LINE " \xE2\x82", 0},
        {"cut four-byte", GOOD_LINE " \xF0\x9F\x98", 0},
        {"NUL bytes", "before\0" GOOD_LINE "\0after", sizeof("before\0" GOOD_LINE "\0after") - 1},
        {"CR-only lines", "first\r" GOOD_LINE "\rthird", 0},
        {"CRLF lines", "first\r\n" GOOD_LINE "\r\nthird\r\n", 0},
        {"form feed and escape", "\f\x1B[31m" GOOD_LINE "\x1B[0m", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int found = finds(engine, cases[i].text, len, "mail/widget-failure");
        if (!found)
            fprintf(stderr, "no match in the %s case\n", cases[i].name);
        CHECK(found);
        check_json_report(engine, cases[i].text, len, "mail/widget-failure");
    }

    /* Line numbers follow CR-only and CRLF line ends. */
    triage_hit hit = {0};
    CHECK(triage_match(engine, "first\r" GOOD_LINE, strlen("first\r" GOOD_LINE), &hit, 1) >= 1);
    CHECK(hit.line == 2);
    CHECK(triage_match(engine, "a\r\nb\r\n" GOOD_LINE, strlen("a\r\nb\r\n" GOOD_LINE), &hit, 1) >= 1);
    CHECK(hit.line == 3);
    triage_close(&engine);
}

/* xorshift64: reproducible bytes without depending on the C library's rand. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Random bytes with the good line embedded on a line of its own, and one
** long line: the match is found, the time is bounded and the JSON report
** stays valid. */
static void test_random_bytes_and_long_lines(void)
{
    triage_engine *engine = open_engine(0);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, GOOD) == 2);
    CHECK(triage_load_records(engine, HOSTILE "/backtrack") == 9);
    size_t len = quick ? (64u << 10) : (2u << 20);
    char *text = malloc(len);
    if (text == NULL)
        return;
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = next_random(&state);
        memcpy(text + i, &r, len - i < 8 ? len - i : 8);
    }
    size_t at = len / 2, line_len = strlen(GOOD_LINE);
    text[at] = '\n';
    memcpy(text + at + 1, GOOD_LINE, line_len);
    text[at + 1 + line_len] = '\n';
    double began = cpu_ms();
    CHECK(finds(engine, text, len, "mail/widget-failure"));
    double took = cpu_ms() - began;
    printf("random bytes: %zu bytes matched in %.0f ms\n", len, took);
    CHECK(took < (quick ? 20000 : 60000) * time_scale);
    check_json_report(engine, text, len, "mail/widget-failure");

    /* One line of 1 MiB that starts with the message: matched on its first part. */
    size_t long_len = 1u << 20;
    char *line = malloc(long_len);
    if (line != NULL) {
        memset(line, 'x', long_len);
        memcpy(line, GOOD_LINE, line_len);
        CHECK(finds(engine, line, long_len, "mail/widget-failure"));
    }
    free(line);
    free(text);
    triage_close(&engine);
}

/* }==== */

int main(void)
{
    const char *scale = getenv("TRIAGE_TEST_TIME_SCALE");
    if (scale != NULL && atof(scale) >= 1.0)
        time_scale = atof(scale);
    quick = getenv("TRIAGE_TEST_QUICK") != NULL;
    test_hostile_records_rejected_others_load();
    test_strict_load_fails_on_rejection();
    test_generated_hostile_files();
    test_backtracking_pairs_bounded();
    test_limit_hits_reported_and_quarantined();
    test_dot_star_after_invalid_utf8();
    test_negated_escapes_on_multibyte();
    test_limit_decided_by_other_engine();
    test_end_assertions_across_invalid_bytes();
    test_backtracking_risk_patterns();
    test_backtracking_branch_bounded();
    test_signature_and_explain_bounded();
    test_jit_interpreter_agree_on_corpus();
    test_invalid_utf8_and_control_bytes();
    test_random_bytes_and_long_lines();
    return check_summary();
}
