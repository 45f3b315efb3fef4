/*
** Tests of the embedding API beyond loading and matching: record fields,
** error messages of failed calls, ownership of returned strings, and the
** lifecycle with NULL arguments.
*/
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "triage.h"

#define RELAY_ID "communication/smtp-554-5-7-0-relay-denied"
#define RELAY_LINE "postfix/smtpd[21877]: NOQUEUE: reject: RCPT from client.example.net[203.0.113.45]: 554 5.7.1 " \
                   "<alice@example.org>: Relay access denied"

static triage_engine *open_engine(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, TRIAGE_TEST_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    if (engine != NULL && triage_load_default_records(engine) < 0)
        triage_close(&engine);
    if (engine == NULL)
        fprintf(stderr, "opening the engine: %s\n", triage_last_error());
    return engine;
}

static void test_record_field_string(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    char *cause = NULL;
    size_t len = 0;
    CHECK(triage_record_field(engine, RELAY_ID, "root_cause", &cause, &len) == 0);
    CHECK_STR_CONTAINS(cause, "relay");
    CHECK(cause != NULL);
    CHECK(cause == NULL || strlen(cause) == len);
    triage_free(cause);

    char *zh = NULL;
    CHECK(triage_record_field(engine, RELAY_ID, "root_cause_zh", &zh, NULL) == 0);
    CHECK_STR_CONTAINS(zh, "中继");
    triage_free(zh);
    triage_close(&engine);
}

static void test_record_field_number_and_list(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    char *confidence = NULL;
    CHECK(triage_record_field(engine, RELAY_ID, "confidence", &confidence, NULL) == 0);
    CHECK(confidence != NULL);
    CHECK(confidence == NULL || strtod(confidence, NULL) > 0.0);
    triage_free(confidence);

    char *workarounds = NULL;
    CHECK(triage_record_field(engine, RELAY_ID, "workarounds", &workarounds, NULL) == 0);
    CHECK(workarounds != NULL);
    CHECK(workarounds == NULL || workarounds[0] == '[');
    CHECK_STR_CONTAINS(workarounds, "\"action\"");
    triage_free(workarounds);
    triage_close(&engine);
}

static void test_record_field_whole_record(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    char *json = NULL;
    CHECK(triage_record_field(engine, RELAY_ID, NULL, &json, NULL) == 0);
    CHECK(json != NULL);
    CHECK(json == NULL || json[0] == '{');
    CHECK_STR_CONTAINS(json, "\"transition_graph\"");
    triage_free(json);
    triage_close(&engine);
}

static void test_record_field_errors_name_value(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    char *out = (char *)"untouched";
    CHECK(triage_record_field(engine, "mail/none", "root_cause", &out, NULL) == -1);
    CHECK(out == NULL);
    CHECK_STR_CONTAINS(triage_last_error(), "record 'mail/none' is not loaded");

    CHECK(triage_record_field(engine, RELAY_ID, "no_such_field", &out, NULL) == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "has no field 'no_such_field'");

    CHECK(triage_record_field(NULL, RELAY_ID, "root_cause", &out, NULL) == -1);
    CHECK_STR_CONTAINS(triage_last_error(), "engine, id and out are required");
    triage_close(&engine);
}

static void test_diagnose_named_and_lua_formatter(void)
{
    triage_engine *engine = open_engine();
    if (engine == NULL)
        return;
    triage_render_options ro = {0};
    char *out = NULL;
    size_t len = 0;
    ro.format = "markdown";
    CHECK(triage_diagnose(engine, RELAY_LINE, strlen(RELAY_LINE), &ro, &out, &len) == 1);
    CHECK_STR_CONTAINS(out, RELAY_ID);
    triage_free(out);

    ro.format = TRIAGE_TEST_SOURCE_DIR "/tests/embed/fixtures/ids.lua";
    CHECK(triage_diagnose(engine, RELAY_LINE, strlen(RELAY_LINE), &ro, &out, &len) == 1);
    CHECK(out != NULL);
    CHECK(out == NULL || strcmp(out, RELAY_ID "\n") == 0);
    triage_free(out);

    ro.format = "yaml";
    CHECK(triage_diagnose(engine, RELAY_LINE, strlen(RELAY_LINE), &ro, &out, &len) == -1);
    CHECK(out == NULL);
    CHECK_STR_CONTAINS(triage_last_error(), "unknown format 'yaml'");
    triage_close(&engine);
}

static void test_open_error_names_folder(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, "/nonexistent/triage-data"};
    CHECK(triage_open(&opts) == NULL);
    CHECK_STR_CONTAINS(triage_last_error(), "/nonexistent/triage-data");
}

static void test_close_accepts_null(void)
{
    triage_engine *engine = NULL;
    triage_close(&engine);
    triage_close(NULL);
    triage_free(NULL);
    CHECK(engine == NULL);
}

static void test_version_matches_header(void)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", TRIAGE_VERSION_MAJOR, TRIAGE_VERSION_MINOR,
             TRIAGE_VERSION_PATCH);
    CHECK(strcmp(triage_version(), expected) == 0);
}

int main(void)
{
    test_record_field_string();
    test_record_field_number_and_list();
    test_record_field_whole_record();
    test_record_field_errors_name_value();
    test_diagnose_named_and_lua_formatter();
    test_open_error_names_folder();
    test_close_accepts_null();
    test_version_matches_header();
    return check_summary();
}
