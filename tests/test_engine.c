/* Unit tests of record loading, validation and matching through the public API. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "scratch_files.h"
#include "triage.h"

#define FIXTURES TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/records"

static triage_engine *open_engine(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, TRIAGE_TEST_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL)
        fprintf(stderr, "triage_open: %s\n", triage_last_error());
    return engine;
}

/* The problem whose file name contains file_part, or NULL. */
static const triage_problem *problem_for(const triage_engine *engine, const char *file_part)
{
    for (size_t i = 0; i < triage_problem_count(engine); i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        if (strstr(p->file, file_part) != NULL)
            return p;
    }
    return NULL;
}

static void test_good_records_load(void)
{
    triage_engine *engine = open_engine();
    CHECK(engine != NULL);
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, FIXTURES "/good") == 2);
    CHECK(triage_record_count(engine) == 2);
    CHECK(triage_problem_count(engine) == 0);
    triage_close(&engine);
    CHECK(engine == NULL);
}

static void test_bad_records_reported_and_skipped(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, FIXTURES "/good") == 2);
    CHECK(triage_load_records(engine, FIXTURES "/bad") == 0);
    size_t loaded, rejected;
    triage_load_counts(engine, &loaded, &rejected);
    CHECK(loaded == 2);
    CHECK(rejected == 7);

    const triage_problem *p = problem_for(engine, "invalid-json.json");
    CHECK(p != NULL && p->line == 4 && p->column == 16);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "invalid JSON");

    p = problem_for(engine, "missing-id.json");
    CHECK(p != NULL && strcmp(p->field, "id") == 0);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "missing");

    p = problem_for(engine, "missing-regex.json");
    CHECK(p != NULL && strcmp(p->id, "bad/no-regex") == 0 && strcmp(p->field, "regex") == 0);

    p = problem_for(engine, "broken-regex.json");
    CHECK(p != NULL && strcmp(p->field, "regex") == 0);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "missing closing parenthesis at offset 8");

    p = problem_for(engine, "rate-out-of-range.json");
    CHECK(p != NULL && strcmp(p->field, "workarounds[0].success_rate") == 0);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "1.5 is outside [0, 1]");

    p = problem_for(engine, "zz-duplicate-id.json");
    CHECK(p != NULL && strcmp(p->id, "mail/widget-failure") == 0);
    CHECK_STR_CONTAINS(p ? p->message : NULL, "duplicate id");

    p = problem_for(engine, "invalid-id.json");
    CHECK_STR_CONTAINS(p ? p->message : NULL, "invalid id \"Bad ID\"");
    triage_close(&engine);
}

#define BULK_FILES 300

static int write_bulk_record(const char *dir, int i)
{
    char path[512];
    snprintf(path, sizeof path, "%s/r%03d.json", dir, i);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    if (i == 150)
        fputs("{\"id\": \"bulk/broken\",", f); /* cut short: invalid JSON */
    else
        fprintf(f, "{\"id\": \"bulk/r%03d\", \"signature\": \"bulk failure %d\", \"regex\": \"bulk failure %d\\\\b\"}",
                i == 200 ? 100 : i, i, i);
    return fclose(f);
}

/* A folder large enough to be read on several threads loads as a
** one-by-one load would: problems in file order, and of two records with
** one id the first file's. */
static void test_large_folder_loads_in_order(void)
{
    char dir[] = "/tmp/triage-bulk-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    for (int i = 0; i < BULK_FILES; i++)
        CHECK(write_bulk_record(dir, i) == 0);
    triage_engine *engine = open_engine();
    if (engine != NULL) {
        CHECK(triage_load_records(engine, dir) == BULK_FILES - 2);
        CHECK(triage_problem_count(engine) == 2);
        const triage_problem *broken = triage_problem_at(engine, 0);
        const triage_problem *duplicate = triage_problem_at(engine, 1);
        CHECK_STR_CONTAINS(broken ? broken->file : NULL, "r150.json");
        CHECK_STR_CONTAINS(duplicate ? duplicate->file : NULL, "r200.json");
        CHECK_STR_CONTAINS(duplicate ? duplicate->message : NULL, "r100.json");
        /* Every signature matches the other numbers too; the record whose
        ** regex hits ranks first. */
        triage_hit hits[4];
        CHECK(triage_match(engine, "bulk failure 100", 16, hits, 4) >= 1);
        CHECK(strcmp(hits[0].id, "bulk/r100") == 0);
        CHECK(triage_match(engine, "bulk failure 299", 16, hits, 4) >= 1);
        CHECK(strcmp(hits[0].id, "bulk/r299") == 0);
        triage_close(&engine);
    }
    for (int i = 0; i < BULK_FILES; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/r%03d.json", dir, i);
        unlink(path);
    }
    rmdir(dir);
}


/* Top folders are walked on several threads. A folder reached from two
** of them through a link is read once, through the first path in walk
** order, and the other path gets the warning, as in a one-thread walk.
** With twenty entries, the walking threads read the files too, and what
** they read is dropped for the walk on one thread. */
static void test_linked_folder_read_once_in_walk_order(void)
{
    char dir[] = "/tmp/triage-walk-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512], record[256];
    static const char *const folders[] = {"a",  "b",  "c0", "c1", "c2",  "c3",  "c4",  "c5",  "c6",  "c7",
                                          "c8", "c9", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"};
    size_t count = sizeof folders / sizeof folders[0];
    for (size_t i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, folders[i]);
        CHECK(mkdir(path, 0700) == 0);
        if (i == 0)
            continue; /* "a" only links to "b" */
        snprintf(path, sizeof path, "%s/%s/r.json", dir, folders[i]);
        snprintf(record, sizeof record, "{\"id\": \"walk/%s\", \"signature\": \"walk %s\", \"regex\": \"walk %s\\\\b\"}",
                 folders[i], folders[i], folders[i]);
        CHECK(write_file(path, record) == 0);
    }
    snprintf(path, sizeof path, "%s/a/link", dir);
    CHECK(symlink("../b", path) == 0);

    triage_engine *engine = open_engine();
    if (engine != NULL) {
        CHECK(triage_load_records(engine, dir) == (int)count - 1);
        CHECK(triage_problem_count(engine) == 1);
        const triage_problem *p = triage_problem_at(engine, 0);
        snprintf(path, sizeof path, "%s/b", dir);
        CHECK(p != NULL);
        if (p != NULL) {
            CHECK(p->file != NULL);
            CHECK(p->file != NULL && strcmp(p->file, path) == 0);
            CHECK_STR_CONTAINS(p->message, "already read");
        }
        triage_hit hits[2];
        CHECK(triage_match(engine, "walk b", 6, hits, 2) == 1);
        triage_close(&engine);
    }
    remove_tree(dir);
}

/* In a big top folder, the threads that walk the entries read their files
** too. Problems still come out in walk order, and a supplement listed beside
** its record is read, while a record without one gets none. */
static void test_walk_reads_in_order_with_supplements(void)
{
    char dir[] = "/tmp/triage-walk-read-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512], record[256];
    for (int i = 0; i < 24; i++) {
        snprintf(path, sizeof path, "%s/f%02d", dir, i);
        CHECK(mkdir(path, 0700) == 0);
        snprintf(path, sizeof path, "%s/f%02d/r.json", dir, i);
        if (i == 5 || i == 17) {
            CHECK(write_file(path, "{\"id\": \"walk/broken\", \"signature\": ") == 0);
            continue;
        }
        snprintf(record, sizeof record, "{\"id\": \"walk/f%02d\", \"signature\": \"walk f%02d\", \"regex\": \"walk f%02d\\\\b\"}",
                 i, i, i);
        CHECK(write_file(path, record) == 0);
    }
    snprintf(path, sizeof path, "%s/f09/r.supplement.json", dir);
    CHECK(write_file(path, "{\"unknown\": 1}") == 0);

    triage_engine *engine = open_engine();
    if (engine != NULL) {
        CHECK(triage_load_records(engine, dir) == 22);
        CHECK(triage_problem_count(engine) == 3);
        static const char *const expected[] = {"f05/r.json", "f09/r.supplement.json", "f17/r.json"};
        for (size_t i = 0; i < 3; i++) {
            const triage_problem *p = triage_problem_at(engine, i);
            snprintf(path, sizeof path, "%s/%s", dir, expected[i]);
            CHECK(p != NULL);
            if (p == NULL)
                continue;
            CHECK(p->file != NULL);
            if (p->file != NULL)
                CHECK(strcmp(p->file, path) == 0);
        }
        triage_hit hits[2];
        CHECK(triage_match(engine, "walk f23", 8, hits, 2) == 1);
        triage_close(&engine);
    }
    remove_tree(dir);
}

/* A record file whose supplement's path is longer than PATH_MAX loads
** without the supplement and without a problem, as a stat of the path
** fails: the folder listing alone would show the supplement. */
static void test_supplement_path_too_long_skipped(void)
{
    char dir[] = "/tmp/triage-long-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[PATH_MAX + 64], name[256];
    snprintf(path, sizeof path, "%s", dir);
    /* Folders of 250 characters until the record file's path is just short
    ** of PATH_MAX and its supplement's path, 11 bytes longer, is not. */
    for (char c = 'a'; strlen(path) + 251 + 40 < PATH_MAX; c++) {
        memset(name, c, 250);
        name[250] = '\0';
        size_t len = strlen(path);
        snprintf(path + len, sizeof path - len, "/%s", name);
        CHECK(mkdir(path, 0700) == 0);
    }
    size_t len = strlen(path), stem = PATH_MAX - 1 - len - 1 - strlen(".json");
    memset(name, 'r', stem);
    name[stem] = '\0';
    snprintf(path + len, sizeof path - len, "/%s.json", name);
    CHECK(strlen(path) == PATH_MAX - 1);
    CHECK(write_file(path, "{\"id\": \"long/r\", \"signature\": \"a record with a long path\", \"regex\": "
                           "\"long path\"}") == 0);
    snprintf(path + len, sizeof path - len, "/%s.supplement.json", name);
    /* The supplement is made with a path relative to its folder. */
    path[len] = '\0';
    int folder = open(path, O_RDONLY | O_DIRECTORY);
    CHECK(folder >= 0);
    snprintf(name + stem, sizeof name - stem, ".supplement.json");
    int fd = folder >= 0 ? openat(folder, name, O_WRONLY | O_CREAT, 0600) : -1;
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, "{\"examples\": 1}", 15) == 15);
        close(fd);
    }
    triage_engine *engine = open_engine();
    if (engine != NULL) {
        CHECK(triage_load_records(engine, dir) == 1);
        CHECK(triage_problem_count(engine) == 0);
        triage_close(&engine);
    }
    /* remove_tree cannot name the supplement, so it goes first. */
    if (folder >= 0) {
        unlinkat(folder, name, 0);
        close(folder);
    }
    remove_tree(dir);
}

/* Create the scratch folder dir (a mkdtemp template) holding json as its
** one record file, and load it into a new engine; NULL when that fails. */
static triage_engine *load_one_record(char *dir, const char *json)
{
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/r.json", dir);
    CHECK(write_file(path, json) == 0);
    triage_engine *engine = open_engine();
    if (engine != NULL)
        CHECK(triage_load_records(engine, dir) == 1);
    return engine;
}

/* A regex whose result depends on the start positions tried, here through
** (*COMMIT), gets the same result on every repeat of a line, including
** those after its JIT code and the ASCII copy of hot regexes exist. */
static void test_commit_regex_same_on_every_repeat(void)
{
    char dir[] = "/tmp/triage-commit-XXXXXX";
    triage_engine *engine = load_one_record(dir, "{\"id\": \"kernel/commit-panic\", \"signature\": \"a record for "
                                                 "start-sensitive matching\", \"regex\": \"(*COMMIT)kernel panic\"}");
    if (engine != NULL) {
        /* (*COMMIT) at the first start position, where "kernel" is not, ends the search. */
        const char *line = "xx kernel panic - not syncing";
        int differing = 0;
        for (int i = 0; i < 200; i++) {
            triage_hit hits[2];
            differing += triage_match(engine, line, strlen(line), hits, 2) != 0;
        }
        CHECK(differing == 0);
        triage_hit hits[2];
        CHECK(triage_match(engine, "kernel panic", 12, hits, 2) == 1);
        triage_close(&engine);
    }
    remove_tree(dir);
}

/* A line with a multibyte character gets the same score on every repeat,
** including those after the signature pattern, whose \S+ PCRE2's JIT
** misreads on such characters, is JIT-compiled. */
static void test_multibyte_line_same_score_on_every_repeat(void)
{
    char dir[] = "/tmp/triage-multibyte-XXXXXX";
    triage_engine *engine = load_one_record(dir, "{\"id\": \"mail/password-mismatch\", \"signature\": \"auth: "
                                                 "sql(user@example.com,192.0.2.226): Password mismatch\", \"regex\": "
                                                 "\"sql\\\\([^,()]*,[0-9.]+\\\\): Password mismatch\"}");
    if (engine != NULL) {
        const char *line = "auth: sql(user@ex\xC4\xB0" "ample.com,192.0.2.226): Password mismatch";
        triage_hit first[2];
        CHECK(triage_match(engine, line, strlen(line), first, 2) == 1);
        int differing = 0;
        for (int i = 0; i < 200; i++) {
            triage_hit hits[2];
            differing += triage_match(engine, line, strlen(line), hits, 2) != 1 || hits[0].score != first[0].score;
        }
        CHECK(differing == 0);
        triage_close(&engine);
    }
    remove_tree(dir);
}

static void test_match_ranks_specific_record_first(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    triage_load_records(engine, FIXTURES "/good");
    const char *line = "Dec 4 app[1]: widget frobnication failed for queue 7; gadget stalled";
    triage_hit hits[4];
    int n = triage_match(engine, line, strlen(line), hits, 4);
    CHECK(n == 2);
    CHECK(n >= 1 && strcmp(hits[0].id, "mail/widget-failure") == 0);
    CHECK(n >= 2 && hits[0].score > hits[1].score);
    CHECK(n >= 1 && hits[0].score > 0.0 && hits[0].score <= 1.0);
    CHECK(n >= 1 && hits[0].line == 1);
    CHECK(n >= 1 && strncmp(line + hits[0].start, "widget", 6) == 0);

    const char *none = "everything is fine";
    CHECK(triage_match(engine, none, strlen(none), hits, 4) == 0);
    triage_close(&engine);
}

static void test_match_multiline_reports_line(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    triage_load_records(engine, FIXTURES "/good");
    const char *text = "starting\r\nall good\nwidget frobnication failed for queue 9\nbye";
    triage_hit hits[4];
    int n = triage_match(engine, text, strlen(text), hits, 4);
    CHECK(n == 1);
    CHECK(n == 1 && hits[0].line == 3);
    triage_close(&engine);
}

static void test_reference_record_first_for_relay_line(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    CHECK(triage_load_default_records(engine) > 0);
    const char *line = "Jul 12 07:47:48 mx postfix/smtpd[8738]: NOQUEUE: reject: RCPT from unknown[192.0.2.4]: "
                       "554 5.7.1 <x@example.org>: Relay access denied; from=<a@example.com> to=<x@example.org>";
    triage_hit hits[8];
    int n = triage_match(engine, line, strlen(line), hits, 8);
    CHECK(n >= 1);
    CHECK(n >= 1 && strcmp(hits[0].id, "communication/smtp-554-5-7-0-relay-denied") == 0);
    triage_close(&engine);
}

static void test_diagnose_renders_json(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    triage_load_records(engine, FIXTURES "/good");
    triage_render_options ro = {.format = "json"};
    char *out = NULL;
    const char *line = "widget frobnication failed for queue 12";
    int n = triage_diagnose(engine, line, strlen(line), &ro, &out, NULL);
    CHECK(n == 1);
    CHECK_STR_CONTAINS(out, "\"schema\": \"triage.report/1\"");
    CHECK_STR_CONTAINS(out, "\"queue\": \"12\"");
    /* Workarounds come best first: 0.9 before 0.6. */
    const char *purge = out ? strstr(out, "widgetctl purge") : NULL;
    const char *grow = out ? strstr(out, "widgetctl grow") : NULL;
    CHECK(purge != NULL && grow != NULL && purge < grow);
    triage_free(out);

    ro.format = "no-such-format";
    CHECK(triage_diagnose(engine, line, strlen(line), &ro, &out, NULL) == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "unknown format 'no-such-format'");
    triage_close(&engine);
}

static void test_missing_path_fails(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    CHECK(triage_load_records(engine, "/nonexistent/records") == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "/nonexistent/records");
    triage_close(&engine);
    triage_close(&engine); /* closing twice is harmless */
}

int main(void)
{
    test_good_records_load();
    test_bad_records_reported_and_skipped();
    test_large_folder_loads_in_order();
    test_linked_folder_read_once_in_walk_order();
    test_walk_reads_in_order_with_supplements();
    test_supplement_path_too_long_skipped();
    test_commit_regex_same_on_every_repeat();
    test_multibyte_line_same_score_on_every_repeat();
    test_match_ranks_specific_record_first();
    test_match_multiline_reports_line();
    test_reference_record_first_for_relay_line();
    test_diagnose_renders_json();
    test_missing_path_fails();
    return check_summary();
}
