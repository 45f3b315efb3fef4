/*
** Fuzz target: the site loader. The input is the text of a site file. A
** fresh engine with the test fixture records loads it as a site layer and,
** when it loads, diagnoses a fixture line with it, so that merging and
** applying the site run too. The site file runs in the engine's sandbox,
** whose instruction and memory limits must stop every hostile script.
**
** Checked: no crash, leak, undefined behaviour or hang; a rejected site
** file has an error message; the JSON report of a loaded site is valid.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    triage_engine *engine = fuzz_open_engine();
    if (triage_load_records(engine, TRIAGE_FUZZ_SOURCE_DIR "/tests/fixtures/records/good") != 2)
        abort();
    char *path = fuzz_write_temp(data, size, ".lua");
    if (path == NULL)
        abort();
    if (triage_load_site(engine, path) != 0) {
        if (triage_last_error()[0] == '\0')
            abort();
    } else {
        static const char line[] = "app: widget frobnication failed for queue 7";
        triage_render_options options = {0};
        options.format = "json";
        char *out = NULL;
        size_t out_len = 0;
        if (triage_diagnose(engine, line, sizeof line - 1, &options, &out, &out_len) >= 0)
            fuzz_check_output("json", out, out_len);
        triage_free(out);
    }
    fuzz_remove_temp(path);
    triage_close(&engine);
    return 0;
}
