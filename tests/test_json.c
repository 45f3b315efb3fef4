/* Unit tests of the strict JSON reader used for record files. */
#include <stdlib.h>

#include "check.h"
#include "json.h"

static int parses(const char *text)
{
    struct json_doc doc;
    struct json_error err;
    int rc = json_parse(text, strlen(text), &doc, &err);
    json_free(&doc);
    return rc == 0;
}

/* Parse text that must fail; returns the error for further checks. */
static struct json_error parse_error(const char *text)
{
    struct json_doc doc;
    struct json_error err = {0};
    if (json_parse(text, strlen(text), &doc, &err) == 0) {
        json_free(&doc);
        snprintf(err.message, sizeof err.message, "(parsed without error)");
    }
    return err;
}

static void test_valid_documents(void)
{
    CHECK(parses("{\"a\": [1, 2.5, -3e2, true, false, null, \"x\"]}"));
    CHECK(parses("  [ ]  "));
    CHECK(parses("\xEF\xBB\xBF{}"));
    CHECK(parses("\"caf\xC3\xA9 \\u00e9 \\ud83d\\ude00\""));
    CHECK(parses("9007199254740992"));
}

static void test_values_and_lookup(void)
{
    struct json_doc doc;
    struct json_error err;
    const char *text = "{\"id\": \"a/b\", \"n\": 0.25, \"list\": [\"x\", \"y\"]}";
    CHECK(json_parse(text, strlen(text), &doc, &err) == 0);
    CHECK(strcmp(json_string(json_get(doc.root, "id")), "a/b") == 0);
    CHECK(json_get(doc.root, "n")->u.number == 0.25);
    CHECK(json_get(doc.root, "list")->u.array.count == 2);
    CHECK(json_get(doc.root, "missing") == NULL);
    CHECK(json_string(json_get(doc.root, "n")) == NULL);
    json_free(&doc);
}

static void test_rejections(void)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""},
        {"[NaN]", "NaN and Infinity"},
        {"[Infinity]", "NaN and Infinity"},
        {"[0x1F]", "hexadecimal"},
        {"[01]", "leading zero"},
        {"[9007199254740993]", "beyond 2^53"},
        {"[1e999]", "out of range"},
        {"[\"\xFF\"]", "invalid UTF-8"},
        {"[\"\xC0\xAF\"]", "invalid UTF-8"},
        {"[\"\xED\xA0\x80\"]", "invalid UTF-8"},
        {"[\"\\ud800\"]", "unpaired high surrogate"},
        {"[\"\\udc00\"]", "unpaired low surrogate"},
        {"[\"a\x01\"]", "control character"},
        {"[\"\\x41\"]", "invalid escape"},
        {"{\"a\": 1,}", "expected a string key"},
        {"[1 2]", "expected ',' or ']'"},
        {"{} x", "unexpected text after"},
        {"", "unexpected end of input"},
        {"[\"open", "unterminated string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct json_error err = parse_error(cases[i].text);
        CHECK_STR_CONTAINS(err.message, cases[i].message);
    }
}

static void test_error_position(void)
{
    struct json_error err = parse_error("{\n  \"a\": 1,\n  \"b\": ,\n}");
    CHECK(err.line == 3);
    CHECK(err.column == 8);
    /* Columns count characters, so the two-byte letter counts once. */
    err = parse_error("[\"\xC3\xA9\", x]");
    CHECK(err.line == 1);
    CHECK(err.column == 7);
}

/* Short decimals take a path of their own. Every number must still equal
** what strtod reads, bit for bit. */
static void test_numbers_equal_strtod(void)
{
    static const char *const numbers[] = {
        "0",     "-0",     "0.85",  "0.1",      "0.3",     "-2.5",           "1e5",           "1.5E-3",
        "100",   "12.125", "0.007", "999999999999999", "99999999999999.9", "1234567890123456", "0.1234567890123456",
        "-7.000", "3.14159265358979", "9007199254740992",
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[%s]", numbers[i]);
        struct json_doc doc;
        struct json_error err;
        CHECK(json_parse(text, strlen(text), &doc, &err) == 0);
        if (doc.root == NULL)
            continue;
        double parsed = doc.root->u.array.items[0]->u.number, expected = strtod(numbers[i], NULL);
        if (memcmp(&parsed, &expected, sizeof parsed) != 0)
            fprintf(stderr, "number %s: parsed %.17g, strtod %.17g\n", numbers[i], parsed, expected);
        CHECK(memcmp(&parsed, &expected, sizeof parsed) == 0);
        json_free(&doc);
    }
}

/* Columns of values, counted when asked, are in characters from the start
** of the value's line. */
static void test_value_columns(void)
{
    const char *text = "{\n  \"\xC3\xA9\": [1,\n \"x\", 2.5]}";
    struct json_doc doc;
    struct json_error err;
    CHECK(json_parse(text, strlen(text), &doc, &err) == 0);
    if (doc.root == NULL)
        return;
    const struct json_node *list = doc.root->u.object.members[0].value;
    CHECK(json_column(text, doc.root) == 1);
    CHECK(list->line == 2);
    CHECK(json_column(text, list) == 8);
    CHECK(list->u.array.items[0]->line == 2);
    CHECK(json_column(text, list->u.array.items[0]) == 9);
    CHECK(list->u.array.items[1]->line == 3);
    CHECK(json_column(text, list->u.array.items[1]) == 2);
    CHECK(json_column(text, list->u.array.items[2]) == 7);
    json_free(&doc);
}

static void test_depth_limit(void)
{
    size_t depth = 200000;
    char *text = malloc(depth * 2 + 1);
    for (size_t i = 0; i < depth; i++) {
        text[i] = '[';
        text[depth + i] = ']';
    }
    text[depth * 2] = '\0';
    struct json_error err = parse_error(text);
    CHECK_STR_CONTAINS(err.message, "nesting deeper than 32");
    free(text);

    char ok[JSON_MAX_DEPTH * 2 + 1];
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        ok[i] = '[';
        ok[JSON_MAX_DEPTH + i] = ']';
    }
    ok[JSON_MAX_DEPTH * 2] = '\0';
    CHECK(parses(ok));
}

int main(void)
{
    test_valid_documents();
    test_values_and_lookup();
    test_rejections();
    test_error_position();
    test_numbers_equal_strtod();
    test_value_columns();
    test_depth_limit();
    return check_summary();
}
