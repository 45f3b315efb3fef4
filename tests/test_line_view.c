/* Tests of JSON log lines: the view with escapes undone, the mapping of
** offsets back to the line, and matching, ranking and scanning through it. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "triage.h"

#define GOOD TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/records/good"

/* The view of line as a string, or NULL when none is made. */
static const char *view_of(struct line_view *view, const char *line)
{
    return line_view_make(view, line, strlen(line)) == 1 ? view->text : NULL;
}

static void test_view_undoes_escapes(void)
{
    struct line_view view = {0};
    const char *line = "{\"msg\":\"Class \\\"Cache\\\" not found in C:\\\\app \\u003cx\\u003e\\tend\"}";
    const char *text = view_of(&view, line);
    CHECK(text != NULL);
    if (text != NULL)
        CHECK_STR_CONTAINS(text, "Class \"Cache\" not found in C:\\app <x>\tend");
    /* Every byte maps to where its source starts, the end to the line's end. */
    CHECK(view.origin[0] == 0);
    CHECK(view.origin[view.len] == strlen(line));
    const char *quote = text != NULL ? strchr(text, '"') : NULL;
    CHECK(quote != NULL);
    if (quote != NULL)
        CHECK(line[line_view_offset(&view, (size_t)(quote - text))] == '"');
    line_view_free(&view);
}

static void test_view_decodes_surrogate_pairs(void)
{
    struct line_view view = {0};
    const char *text = view_of(&view, "{\"msg\":\"smile \\ud83d\\ude00 and caf\\u00e9\"}");
    CHECK(text != NULL);
    if (text != NULL)
        CHECK_STR_CONTAINS(text, "smile \xF0\x9F\x98\x80 and caf\xC3\xA9");
    /* A lone surrogate or a \u0000 stays as written. */
    text = view_of(&view, "{\"msg\":\"lone \\ud83d here \\u0000 and \\\"q\\\"\"}");
    CHECK(text != NULL);
    if (text != NULL)
        CHECK_STR_CONTAINS(text, "lone \\ud83d here \\u0000 and \"q\"");
    line_view_free(&view);
}

static void test_view_only_for_json_with_escapes(void)
{
    struct line_view view = {0};
    CHECK(view_of(&view, "{\"msg\":\"no escapes here\"}") == NULL);
    CHECK(view_of(&view, "C:\\\\Windows path without JSON") == NULL);
    CHECK(view_of(&view, "escape \\\" before {\"msg\":\"x\"}") == NULL);
    /* Invalid escapes (a Windows path in a message) stay, valid ones go. */
    const char *text = view_of(&view, "Dec 4 app: {\"path\":\"C:\\dir\",\"m\":\"a\\/b\"}");
    CHECK(text != NULL);
    if (text != NULL)
        CHECK(strcmp(text, "Dec 4 app: {\"path\":\"C:\\dir\",\"m\":\"a/b\"}") == 0);
    /* Only the object's strings are unescaped: a path after it stays. */
    text = view_of(&view, "ERROR job {\"id\":7,\"m\":\"a\\\"b\",\"n\":[{\"k\":\"\\t\"}]} failed: C:\\new\\table");
    CHECK(text != NULL);
    if (text != NULL)
        CHECK(strcmp(text, "ERROR job {\"id\":7,\"m\":\"a\"b\",\"n\":[{\"k\":\"\t\"}]} failed: C:\\new\\table") == 0);
    /* A backslash as the last byte does not read past the line. */
    CHECK(view_of(&view, "{\"m\":\"x\\") == NULL);
    CHECK(line_view_possible("{\"m\":\"x\\\"y\"}", 12));
    CHECK(!line_view_possible("{\"m\":\"xy\"}", 10));
    line_view_free(&view);
}

/* An engine with the records of folder loaded, which must hold count. */
static triage_engine *open_with(const char *folder, int count)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, TRIAGE_TEST_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    CHECK(engine != NULL);
    if (engine != NULL)
        CHECK(triage_load_records(engine, folder) == count);
    return engine;
}

/* Scan line alone; the number of diagnosed lines, or -1. */
static long scanned_diagnosed(triage_engine *engine, const char *line)
{
    triage_scan_options so = {0};
    so.flags = TRIAGE_SCAN_NO_CACHE;
    triage_scan *scan = triage_scan_open(engine, &so);
    if (scan == NULL)
        return -1;
    size_t lines = 0, diagnosed = 0;
    int ok = triage_scan_feed(scan, line, strlen(line)) == 0 && triage_scan_feed(scan, "\n", 1) == 0 &&
             triage_scan_finish(scan) == 0;
    triage_scan_counts(scan, &lines, &diagnosed);
    triage_scan_close(&scan);
    return ok && lines == 1 ? (long)diagnosed : -1;
}

static void test_json_line_matched_on_its_text(void)
{
    triage_engine *engine = open_with(GOOD, 2);
    if (engine == NULL)
        return;
    /* The regex needs spaces where this JSON line writes \u0020 escapes. */
    const char *line = "{\"level\":\"error\",\"msg\":\"widget\\u0020frobnication failed\\u0020for queue 12\"}";
    triage_hit hits[4];
    int n = triage_match(engine, line, strlen(line), hits, 4);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(strcmp(hits[0].id, "mail/widget-failure") == 0);
        /* The span is in the line as read, escapes included. */
        CHECK(strncmp(line + hits[0].start, "widget\\u0020frob", 16) == 0);
        CHECK(strncmp(line + hits[0].end - 2, "12", 2) == 0);
    }

    /* The JSON report names the capture as the view reads it. */
    triage_render_options ro = {0};
    ro.format = "json";
    char *out = NULL;
    CHECK(triage_diagnose(engine, line, strlen(line), &ro, &out, NULL) >= 0);
    if (out != NULL)
        CHECK_STR_CONTAINS(out, "\"queue\": \"12\"");
    triage_free(out);

    /* A scan finds the line, whose raw text contains no candidate literal. */
    CHECK(scanned_diagnosed(engine, line) == 1);
    triage_close(&engine);
}

/* journald's export and Docker's json-file driver carry the message in one
** field; the view is that field alone. */
static void test_message_field_view(void)
{
    struct line_view view = {0};
    const char *journal = "{\"__REALTIME_TIMESTAMP\":\"1772546457712005\",\"_HOSTNAME\":\"app02\","
                          "\"MESSAGE\":\"Out of memory: Killed process 744 (java)\",\"_PID\":\"1\"}";
    const char *text = view_of(&view, journal);
    CHECK(text != NULL);
    if (text != NULL)
        CHECK(strcmp(text, "Out of memory: Killed process 744 (java)") == 0);
    const char *message = strstr(journal, "Out of memory");
    CHECK(line_view_offset(&view, 0) == (size_t)(message - journal));
    CHECK(line_view_offset(&view, view.len) == (size_t)(message - journal) + strlen(text != NULL ? text : ""));

    const char *docker = "{\"log\":\"Failed to start \\\"app\\\".\\n\",\"stream\":\"stderr\",\"time\":\"2026-03-03T11:43:05Z\"}";
    text = view_of(&view, docker);
    CHECK(text != NULL);
    if (text != NULL)
        CHECK(strcmp(text, "Failed to start \"app\".\n") == 0);

    /* journald writes a message with control characters as byte values;
    ** colour codes are left out of the view. */
    const char *bytes = "{\"MESSAGE\":[27,91,51,49,109,69,82,82,27,91,48,109,32,120],\"PRIORITY\":\"3\"}";
    text = view_of(&view, bytes);
    CHECK(text != NULL);
    if (text != NULL)
        CHECK(strcmp(text, "ERR x") == 0);
    CHECK(bytes[line_view_offset(&view, 0)] == '6'); /* 69, the E */

    /* Only a top-level member counts, and a structured application log,
    ** whose error sits beside its message, keeps its whole object. */
    CHECK(view_of(&view, "{\"a\":{\"MESSAGE\":\"x\"},\"b\":\"y\"}") == NULL);
    CHECK(view_of(&view, "{\"level\":\"error\",\"msg\":\"failed\",\"error\":\"x509: expired\"}") == NULL);
    CHECK(view_of(&view, "{\"MESSAGE\":\"unterminated}") == NULL);
    CHECK(line_view_possible(journal, strlen(journal)));
    line_view_free(&view);
}

/* A regex anchored at both ends of the message matches a journald line,
** in a diagnosis and in a scan. */
static void test_anchored_regex_on_journal_line(void)
{
    triage_engine *engine = open_with(TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/records/message-field", 1);
    if (engine == NULL)
        return;
    const char *line = "{\"_HOSTNAME\":\"app02\",\"MESSAGE\":\"Out of memory: Killed process 744 (java)\","
                       "\"__REALTIME_TIMESTAMP\":\"1772546457712005\"}";
    triage_hit hits[2];
    int n = triage_match(engine, line, strlen(line), hits, 2);
    CHECK(n == 1);
    if (n == 1)
        CHECK(strncmp(line + hits[0].start, "Out of memory", 13) == 0);
    CHECK(scanned_diagnosed(engine, line) == 1);
    triage_close(&engine);
}

/* 'triage explain' reads a JSON line through its view too: a hit is found,
** and a miss is explained where the message differs, not at an escape. */
static void test_explain_uses_the_view(void)
{
    triage_engine *engine = open_with(TRIAGE_TEST_SOURCE_DIR "/tests/fixtures/records/json-line", 1);
    if (engine == NULL)
        return;
    triage_why why;
    const char *found = "{\"msg\":\"Class \\\"Cache\\\" not found\"}";
    CHECK(triage_why_not(engine, "php/class-missing", found, strlen(found), &why) == 1);
    triage_why_free(&why);

    const char *missed = "{\"msg\":\"Class \\\"Cache\\\" not loaded\"}";
    CHECK(triage_why_not(engine, "php/class-missing", missed, strlen(missed), &why) == 0);
    /* The pattern gets as far as the class name, which ends at the \". */
    CHECK(why.end < strlen(missed));
    if (why.end < strlen(missed))
        CHECK(strncmp(missed + why.end, "\\\" not loaded", 13) == 0);
    triage_why_free(&why);
    triage_close(&engine);
}

int main(void)
{
    test_view_undoes_escapes();
    test_view_decodes_surrogate_pairs();
    test_view_only_for_json_with_escapes();
    test_json_line_matched_on_its_text();
    test_explain_uses_the_view();
    test_message_field_view();
    test_anchored_regex_on_journal_line();
    return check_summary();
}
