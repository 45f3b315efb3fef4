/*
** Ranking, guesses and "why not" explanations through the public API, on
** the small record set in tests/fixtures/ranking.
*/
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "triage.h"

#define FIXTURES TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/ranking"

static triage_engine *open_fixtures(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, NULL};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL || triage_load_records(engine, FIXTURES) < 10) {
        fprintf(stderr, "cannot load %s: %s\n", FIXTURES, triage_last_error());
        exit(1);
    }
    return engine;
}

static int rank(triage_engine *engine, const char *text, triage_hit *hits, size_t max)
{
    return triage_match(engine, text, strlen(text), hits, max);
}

static void test_specific_match_beats_bare_code(triage_engine *engine)
{
    triage_hit hits[8];
    int n = rank(engine, "HTTP/1.1 503 upstream connect error or disconnect/reset before headers. reset reason: overflow",
                 hits, 8);
    CHECK(n == 2);
    CHECK(strcmp(hits[0].id, "web/envoy-upstream-reset") == 0);
    CHECK(strcmp(hits[1].id, "web/generic-503") == 0);
    CHECK(hits[0].parts[TRIAGE_PART_LITERAL] > hits[1].parts[TRIAGE_PART_LITERAL]);
}

static void test_branch_that_hit_sets_literal(triage_engine *engine)
{
    triage_hit hits[8];
    /* "OOM|out of memory": the long branch hit, so the literal part counts
    ** its 13 characters, not the 3 of the shorter branch. */
    int n = rank(engine, "worker 7: out of memory", hits, 8);
    CHECK(n == 1);
    CHECK(strcmp(hits[0].id, "kernel/oom-short") == 0);
    triage_hit bare[8];
    CHECK(rank(engine, "OOM", bare, 8) == 1);
    CHECK(hits[0].parts[TRIAGE_PART_LITERAL] > bare[0].parts[TRIAGE_PART_LITERAL]);
}

/* Ranking skips a branch whose literals are missing from the line before
** PCRE2 runs. The test is caseless, and lines with non-ASCII bytes run
** every branch, so the branch found must not depend on either. */
static void test_branch_ignores_case_and_bytes(triage_engine *engine)
{
    triage_hit lower[8], upper[8], wide[8];
    CHECK(rank(engine, "worker 7: out of memory", lower, 8) == 1);
    CHECK(rank(engine, "worker 7: OUT OF MEMORY", upper, 8) == 1);
    CHECK(rank(engine, "worker 7: Out Of Memory \xc3\xa9t\xc3\xa9", wide, 8) == 1);
    CHECK(upper[0].parts[TRIAGE_PART_LITERAL] == lower[0].parts[TRIAGE_PART_LITERAL]);
    CHECK(wide[0].parts[TRIAGE_PART_LITERAL] == lower[0].parts[TRIAGE_PART_LITERAL]);
}

static void test_signature_similarity_wins(triage_engine *engine)
{
    triage_hit hits[8];
    int n = rank(engine, "Mar 14 03:12:45 web-01 kernel: Out of memory: Killed process 9120 (postgres)", hits, 8);
    CHECK(n == 2);
    CHECK(strcmp(hits[0].id, "kernel/oom-killed-process") == 0);
    CHECK(hits[0].parts[TRIAGE_PART_SIMILARITY] > hits[1].parts[TRIAGE_PART_SIMILARITY]);
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++)
        CHECK(hits[0].parts[p] >= 0.0 && hits[0].parts[p] <= 1.0);
    CHECK(hits[0].score > 0.0 && hits[0].score <= 1.0);
}

static void test_alias_similarity_counts(triage_engine *engine)
{
    triage_hit hits[8];
    /* Similarity is the best of the signature and each alias, so a line
    ** that quotes only the alias is still close to its record. */
    int n = rank(engine, "kernel: oom_reaper: reaped process 9120 (postgres)", hits, 8);
    CHECK(n == 2); /* "OOM" of kernel/oom-short hits too */
    CHECK(strcmp(hits[0].id, "kernel/oom-killed-process") == 0);
    CHECK(hits[0].parts[TRIAGE_PART_SIMILARITY] > 0.7);
}

static void test_tie_break_is_deterministic(triage_engine *engine)
{
    triage_hit hits[8];
    int n = rank(engine, "widget frobnication stalled", hits, 8);
    CHECK(n == 2);
    CHECK(hits[0].score == hits[1].score);
    CHECK(strcmp(hits[0].id, "test/twin-a") == 0);
    CHECK(strcmp(hits[1].id, "test/twin-b") == 0);
}

static void test_multi_line_prefers_error_line(triage_engine *engine)
{
    const char *text = "Mar 14 03:12:40 web-01 sshd[88]: session opened for user deploy\n"
                       "Mar 14 03:12:45 web-01 postfix/smtpd[91]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: "
                       "554 5.7.1 <a@example.org>: Relay access denied\n"
                       "Mar 14 03:12:46 web-01 sshd[88]: session opened for user deploy\n";
    triage_hit hits[8];
    int n = rank(engine, text, hits, 8);
    CHECK(n == 2);
    CHECK(strcmp(hits[0].id, "communication/relay-denied") == 0);
    CHECK(hits[0].line == 2);
    CHECK(strcmp(hits[1].id, "test/login-noise") == 0);

    /* Alone, the noise line is ranked on its own merits, without the
    ** multi-line weighing, as scan ranks it. */
    triage_hit alone[8];
    CHECK(rank(engine, "Mar 14 03:12:40 web-01 sshd[88]: session opened for user deploy", alone, 8) == 1);
    CHECK(alone[0].score > hits[1].score);
}

static void test_guess_only_without_match(triage_engine *engine)
{
    const char *text = "write failed: ENOSPC on /var/lib/docker";
    triage_hit hits[8];
    CHECK(rank(engine, text, hits, 8) == 0);
    int n = triage_guess(engine, text, strlen(text), hits, 8);
    CHECK(n >= 1);
    CHECK(n <= 3);
    CHECK(strcmp(hits[0].id, "storage/disk-full") == 0);
    triage_hit weakest[8];
    CHECK(rank(engine, "OOM", weakest, 8) == 1);
    CHECK(hits[0].score < weakest[0].score);
    CHECK(hits[0].score < 0.16); /* below any match, even weighed as a noise line */

    const char *unrelated = "the quick brown fox jumps over the lazy dog";
    CHECK(triage_guess(engine, unrelated, strlen(unrelated), hits, 8) == 0);
}

static void test_why_not_match(triage_engine *engine)
{
    triage_why why;
    const char *text = "ERR CROSSSLOT Keys in request don't hash to the same slot";
    CHECK(triage_why_not(engine, "redis/crossslot", text, strlen(text), &why) == 1);
    CHECK(why.matched == 1);
    CHECK(why.line == 1);
    CHECK(why.end - why.start == strlen("CROSSSLOT"));
    CHECK(strncmp(text + why.start, "CROSSSLOT", 9) == 0);
    CHECK(why.failed == NULL);
    triage_why_free(&why);
}

static void test_why_not_failing_element(triage_engine *engine)
{
    triage_why why;
    const char *text = "INFO ok\nERR keys in request dont hash to the other slot";
    CHECK(triage_why_not(engine, "redis/crossslot", text, strlen(text), &why) == 0);
    CHECK(why.matched == 0);
    CHECK(why.line == 2);
    CHECK(why.branch == 2);
    CHECK(why.branch_count == 2);
    CHECK(strcmp(why.pattern, "keys.*dont hash.*same slot") == 0);
    CHECK(why.pattern_ok == strlen("keys.*dont hash.*"));
    CHECK(strcmp(why.failed, "same slot") == 0);
    CHECK(strncmp(text + why.start, "keys in request dont hash", why.end - why.start) == 0);
    CHECK(why.partial == 0);
    triage_why_free(&why);
}

static void test_why_not_cut_short(triage_engine *engine)
{
    triage_why why;
    const char *text = "ERR keys in request dont hash to the same sl";
    CHECK(triage_why_not(engine, "redis/crossslot", text, strlen(text), &why) == 0);
    CHECK(why.partial == 1);
    triage_why_free(&why);
}

static void test_signature_match_without_regex(triage_engine *engine)
{
    /* The regex misses its own signature; the signature with other
    ** variable parts still finds the record. */
    const char *text = "Jan 2 03:00:01 db1 backup[77]: Backup job nightly-db finished with 12 errors";
    triage_hit hits[8];
    CHECK(rank(engine, text, hits, 8) == 1);
    CHECK(strcmp(hits[0].id, "test/regex-misses-signature") == 0);
    triage_why why;
    CHECK(triage_why_not(engine, "test/regex-misses-signature", text, strlen(text), &why) == 1);
    CHECK(why.by_signature == 1);
    CHECK_STR_CONTAINS(why.pattern, "finished\\s+with\\s+\\d+");
    triage_why_free(&why);
}

static void test_why_not_unknown_id(triage_engine *engine)
{
    triage_why why;
    CHECK(triage_why_not(engine, "no/such-record", "x", 1, &why) == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "no/such-record");
}

int main(void)
{
    triage_engine *engine = open_fixtures();
    test_specific_match_beats_bare_code(engine);
    test_branch_that_hit_sets_literal(engine);
    test_branch_ignores_case_and_bytes(engine);
    test_signature_similarity_wins(engine);
    test_alias_similarity_counts(engine);
    test_tie_break_is_deterministic(engine);
    test_multi_line_prefers_error_line(engine);
    test_guess_only_without_match(engine);
    test_why_not_match(engine);
    test_why_not_failing_element(engine);
    test_why_not_cut_short(engine);
    test_signature_match_without_regex(engine);
    test_why_not_unknown_id(engine);
    triage_close(&engine);
    return check_summary();
}
