/*
** Checks on rendered reports, shared by the Lua-facing fuzz targets.
*/
#ifndef TRIAGE_FUZZ_OUTPUT_H
#define TRIAGE_FUZZ_OUTPUT_H

#include "fuzz_common.h"
#include "json.h"

/* Abort unless text is one valid JSON value in valid UTF-8. The strict
** record reader serves as the parser; its record-only rules (\u0000 in
** strings, nesting deeper than 32) are not JSON errors and pass. */
static inline void fuzz_require_json(const char *text, size_t len, const char *what)
{
    fuzz_require_utf8(text, len, what);
    struct json_doc doc;
    struct json_error err;
    if (json_parse(text, len, &doc, &err) == 0) {
        json_free(&doc);
        return;
    }
    if (strstr(err.message, "\\u0000") != NULL || strstr(err.message, "nesting deeper") != NULL)
        return;
    fprintf(stderr, "fuzz: %s is not valid JSON: %u:%u: %s\n", what, err.line, err.column, err.message);
    abort();
}

/* Check rendered output by format: JSON as a whole, NDJSON line by line. */
static inline void fuzz_check_output(const char *format, const char *out, size_t len)
{
    if (strcmp(format, "json") == 0) {
        fuzz_require_json(out, len, "JSON output");
    } else if (strcmp(format, "ndjson") == 0) {
        size_t pos = 0;
        while (pos < len) {
            const char *nl = memchr(out + pos, '\n', len - pos);
            size_t line_len = nl != NULL ? (size_t)(nl - out - pos) : len - pos;
            if (line_len > 0)
                fuzz_require_json(out + pos, line_len, "NDJSON line");
            pos += line_len + 1;
        }
    }
}

#endif
