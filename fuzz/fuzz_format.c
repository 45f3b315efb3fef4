/*
** Fuzz target: report building and the built-in formatters. The first
** input byte picks the options; the rest is used in one of two ways:
**
** - bit 7 clear: the rest is text diagnosed by one engine holding the
**   shipped records and the test fixtures, as `triage` reads a message;
** - bit 7 set: the rest is RECORD '\0' TEXT. A fresh engine loads RECORD
**   as a record file, shows it (when it loads) and diagnoses TEXT, so the
**   formatters meet hostile record content.
**
** Option bits: 0-1 format (text, json, ndjson, markdown), 2 Chinese, 3
** explain, 4 guesses, 5-6 top (0 = all).
**
** Checked: no crash, leak or undefined behaviour; JSON and NDJSON output
** are valid JSON in valid UTF-8 whatever the input bytes.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_output.h"
#include "internal.h"

static const char *const FORMATS[] = {"text", "json", "ndjson", "markdown"};

static triage_engine *shared_engine;

static void load_fixtures(triage_engine *engine)
{
    if (triage_load_records(engine, TRIAGE_FUZZ_SOURCE_DIR "/tests/fixtures/records/good") < 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shared_engine = fuzz_open_engine();
    if (triage_load_default_records(shared_engine) < 0)
        abort();
    load_fixtures(shared_engine);
    return 0;
}

static triage_render_options options_from(uint8_t bits)
{
    triage_render_options options = {0};
    options.format = FORMATS[bits & 3];
    options.lang = (bits & 4) ? "zh" : "en";
    options.explain = (bits & 8) != 0;
    options.guess = (bits & 16) != 0;
    options.top = (bits >> 5) & 3;
    return options;
}

static void diagnose(triage_engine *engine, const triage_render_options *options, const char *text, size_t len)
{
    char *out = NULL;
    size_t out_len = 0;
    if (triage_diagnose(engine, text, len, options, &out, &out_len) >= 0)
        fuzz_check_output(options->format, out, out_len);
    else if (triage_last_error()[0] == '\0')
        abort();
    triage_free(out);
}

static void show_and_diagnose(const triage_render_options *options, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t record_len = nul != NULL ? (size_t)(nul - data) : size;
    char *path = fuzz_write_temp(data, record_len, ".json");
    if (path == NULL)
        abort();
    triage_engine *engine = fuzz_open_engine();
    load_fixtures(engine);
    size_t before = triage_record_count(engine);
    if (triage_load_records(engine, path) == 1) {
        const char *id = triage_record_id(engine, before);
        char *out = NULL;
        size_t out_len = 0;
        if (triage_show(engine, id, options, &out, &out_len) == 0)
            fuzz_check_output(options->format, out, out_len);
        triage_free(out);
    }
    const char *text = nul != NULL ? (const char *)nul + 1 : "";
    size_t text_len = nul != NULL ? size - record_len - 1 : 0;
    diagnose(engine, options, text, text_len);
    triage_close(&engine);
    fuzz_remove_temp(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    triage_render_options options = options_from(data[0]);
    if (data[0] & 0x80)
        show_and_diagnose(&options, data + 1, size - 1);
    else
        diagnose(shared_engine, &options, (const char *)data + 1, size - 1);
    return 0;
}
