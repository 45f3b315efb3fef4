/*
** Fuzz target: the record loader. The input is the text of one record
** file. It goes through the strict JSON reader, record validation and regex
** compilation exactly as a file read by triage_load_records would, and
** once more as a supplement of a valid record.
**
** Checked: no crash, leak or undefined behaviour; every rejection names a
** problem; a loaded record has an id of the DOMAIN/SLUG[/ENV] form.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "json.h"

static char *copy_input(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_doc doc;
    struct json_error err;
    if (json_parse((const char *)data, size, &doc, &err) == 0)
        json_free(&doc);
    else if (err.message[0] == '\0')
        abort(); /* a rejection must say why */

    struct problem_list problems = {0};
    struct record *record = record_from_json("fuzz.json", copy_input(data, size), size, NULL, &problems);
    if (record == NULL && problems.count == 0)
        abort();
    if (record != NULL) {
        if (!id_is_valid(record->id))
            abort();
        record_add_supplement(record, "fuzz.supplement.json", copy_input(data, size), size, &problems);
        record_free(record);
    }
    problem_list_free(&problems);
    return 0;
}
