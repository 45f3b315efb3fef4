/*
** Thread-safety tests of the public API, as triage.h states it. After
** loading, one engine serves triage_match(), triage_guess(),
** triage_diagnose(), triage_show(), triage_record_field() and scans from
** several threads at once. Engines opened in different threads are independent,
** and triage_last_error() is per thread.
**
** Every thread compares its results with those of a second engine used
** from one thread only, so a race shows up as a wrong result here and as a
** report under ThreadSanitizer (the TRIAGE_TSAN build).
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "triage.h"

#define THREADS 4
#define ROUNDS 12
#define RELAY_ID "communication/smtp-554-5-7-0-relay-denied"

static const char *const INPUTS[] = {
    "Dec  4 03:12:41 mx1 postfix/smtpd[21877]: NOQUEUE: reject: RCPT from client.example.net[203.0.113.45]: "
    "554 5.7.1 <alice@example.org>: Relay access denied; from=<bob@example.com> to=<alice@example.org>",
    "widget frobnication failed for queue 42",
    "gadget stalled after widget frobnication failed for queue 7",
    "first line is fine\nsecond line: 554 5.7.1 Relay access denied\nthird: gadget stalled",
    "nothing in this line is a known problem",
};
#define INPUT_COUNT (sizeof INPUTS / sizeof *INPUTS)

struct expected {
    int match_count;
    char top_id[128];
    int guess_count;
    char top_guess[128];
    char *json;
};

static char *expected_show;
static char *expected_root_cause;
static size_t expected_scan_lines, expected_scan_diagnosed;

static struct expected expected[INPUT_COUNT];

static triage_engine *open_engine(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, TRIAGE_TEST_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL) {
        fprintf(stderr, "triage_open: %s\n", triage_last_error());
        return NULL;
    }
    if (triage_load_default_records(engine) < 0 ||
        triage_load_records(engine, TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/records/good") < 0) {
        fprintf(stderr, "loading records: %s\n", triage_last_error());
        triage_close(&engine);
    }
    return engine;
}

static char *diagnose_json(triage_engine *engine, const char *text)
{
    triage_render_options ro = {0};
    ro.format = "json";
    ro.guess = 1;
    char *out = NULL;
    if (triage_diagnose(engine, text, strlen(text), &ro, &out, NULL) < 0)
        return NULL;
    return out;
}

static char *show_json(triage_engine *engine)
{
    triage_render_options ro = {0};
    ro.format = "json";
    char *out = NULL;
    if (triage_show(engine, RELAY_ID, &ro, &out, NULL) != 0)
        return NULL;
    return out;
}

/* Scan every input as one log; returns 0 and the counts, or -1. */
static int scan_inputs(triage_engine *engine, size_t *lines, size_t *diagnosed)
{
    triage_scan_options so = {0};
    so.flags = TRIAGE_SCAN_NO_CACHE;
    triage_scan *scan = triage_scan_open(engine, &so);
    if (scan == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < INPUT_COUNT && rc == 0; i++)
        if (triage_scan_feed(scan, INPUTS[i], strlen(INPUTS[i])) != 0 || triage_scan_feed(scan, "\n", 1) != 0)
            rc = -1;
    if (rc == 0 && triage_scan_finish(scan) != 0)
        rc = -1;
    triage_scan_counts(scan, lines, diagnosed);
    triage_scan_close(&scan);
    return rc;
}

/* Results of every input from an engine that only this thread uses. */
static int compute_expected(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return -1;
    for (size_t i = 0; i < INPUT_COUNT; i++) {
        triage_hit hits[8];
        expected[i].match_count = triage_match(engine, INPUTS[i], strlen(INPUTS[i]), hits, 8);
        if (expected[i].match_count > 0)
            snprintf(expected[i].top_id, sizeof expected[i].top_id, "%s", hits[0].id);
        expected[i].guess_count = triage_guess(engine, INPUTS[i], strlen(INPUTS[i]), hits, 8);
        if (expected[i].guess_count > 0)
            snprintf(expected[i].top_guess, sizeof expected[i].top_guess, "%s", hits[0].id);
        expected[i].json = diagnose_json(engine, INPUTS[i]);
    }
    expected_show = show_json(engine);
    if (scan_inputs(engine, &expected_scan_lines, &expected_scan_diagnosed) != 0)
        fprintf(stderr, "scanning: %s\n", triage_last_error());
    if (triage_record_field(engine, RELAY_ID, "root_cause", &expected_root_cause, NULL) != 0)
        expected_root_cause = NULL;
    triage_close(&engine);
    return 0;
}

struct worker {
    triage_engine *engine; /* shared engine, or NULL to open one per thread */
    int index;
    int failures;
    char error_seen[256];
};

/* Count a failed comparison and print which one, so that a failure under
** valgrind or a sanitizer names the call and the input. */
static void fail(struct worker *w, const char *call, size_t input)
{
    w->failures++;
    fprintf(stderr, "thread %d: %s differs for input %zu\n", w->index, call, input);
}

static void run_rounds(struct worker *w, triage_engine *engine)
{
    for (int round = 0; round < ROUNDS; round++) {
        /* Each thread walks the inputs from its own offset, so different
        ** inputs run at the same moment. */
        size_t i = ((size_t)w->index + (size_t)round) % INPUT_COUNT;
        triage_hit hits[8];
        int n = triage_match(engine, INPUTS[i], strlen(INPUTS[i]), hits, 8);
        if (n != expected[i].match_count || (n > 0 && strcmp(hits[0].id, expected[i].top_id) != 0))
            fail(w, "triage_match", i);
        n = triage_guess(engine, INPUTS[i], strlen(INPUTS[i]), hits, 8);
        if (n != expected[i].guess_count || (n > 0 && strcmp(hits[0].id, expected[i].top_guess) != 0))
            fail(w, "triage_guess", i);
        char *json = diagnose_json(engine, INPUTS[i]);
        if (json == NULL || expected[i].json == NULL || strcmp(json, expected[i].json) != 0) {
            fail(w, "triage_diagnose", i);
            fprintf(stderr, "got:\n%s\nexpected:\n%s\n", json ? json : triage_last_error(),
                    expected[i].json ? expected[i].json : "(none)");
        }
        triage_free(json);
        json = show_json(engine);
        if (json == NULL || expected_show == NULL || strcmp(json, expected_show) != 0)
            fail(w, "triage_show", i);
        triage_free(json);
        char *cause = NULL;
        if (triage_record_field(engine, RELAY_ID, "root_cause", &cause, NULL) != 0 || expected_root_cause == NULL ||
            strcmp(cause, expected_root_cause) != 0)
            fail(w, "triage_record_field", i);
        triage_free(cause);
    }
    /* Scans of one engine run at once; the first ones race to build its prefilter. */
    size_t lines = 0, diagnosed = 0;
    if (scan_inputs(engine, &lines, &diagnosed) != 0 || lines != expected_scan_lines ||
        diagnosed != expected_scan_diagnosed)
        fail(w, "scan", 0);

    /* An error in this thread must leave a message that names this thread's value. */
    char id[64];
    snprintf(id, sizeof id, "missing/thread-%d", w->index);
    char *out = NULL;
    if (triage_show(engine, id, NULL, &out, NULL) == 0)
        w->failures++;
    triage_free(out);
    snprintf(w->error_seen, sizeof w->error_seen, "%s", triage_last_error());
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->engine != NULL) {
        run_rounds(w, w->engine);
        return NULL;
    }
    triage_engine *own = open_engine();
    if (own == NULL) {
        w->failures++;
        return NULL;
    }
    run_rounds(w, own);
    triage_close(&own);
    return NULL;
}

static void run_workers(triage_engine *shared)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.engine = shared, .index = t};
        CHECK(pthread_create(&threads[t], NULL, worker_main, &workers[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(workers[t].failures == 0);
        char id[64];
        snprintf(id, sizeof id, "missing/thread-%d", t);
        CHECK_STR_CONTAINS(workers[t].error_seen, id);
    }
}

static void test_expected_results_sane(void)
{
    CHECK(expected[0].match_count >= 1);
    CHECK(strcmp(expected[0].top_id, RELAY_ID) == 0);
    CHECK(expected[2].match_count == 2);
    CHECK(expected[4].match_count == 0);
    for (size_t i = 0; i < INPUT_COUNT; i++)
        CHECK(expected[i].json != NULL);
    CHECK(expected_show != NULL);
    CHECK(expected_root_cause != NULL);
    CHECK(expected_scan_lines == 7);
    CHECK(expected_scan_diagnosed == 5);
}

/* The shared engine is fresh: the first calls race to build the ranking
** statistics, which the engine builds once under its lock. */
static void test_one_engine_many_threads(void)
{
    triage_engine *engine = open_engine();
    CHECK(engine != NULL);
    if (engine == NULL)
        return;
    run_workers(engine);
    triage_close(&engine);
}

static void test_engine_per_thread(void)
{
    run_workers(NULL);
}

int main(void)
{
    if (compute_expected() != 0)
        return 1;
    test_expected_results_sane();
    test_one_engine_many_threads();
    test_engine_per_thread();
    for (size_t i = 0; i < INPUT_COUNT; i++)
        triage_free(expected[i].json);
    triage_free(expected_show);
    triage_free(expected_root_cause);
    return check_summary();
}
