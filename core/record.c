/*
** Records: validate one parsed JSON record and keep the fields the core needs.
**
** Owns: struct record construction and destruction, the id rule, the field
** and type checks that decide whether a record loads.
** Depends on: json.c for parsing, match.c for compiling the regex.
**
** Two schemas are read: the native flat one (id, signature, regex, ...) and
** the nested one of the public deadends corpus (error.signature,
** error.regex, verdict.confidence, ...). The Lua layer normalises the rest.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/* Problems listed per record file; a file with a million bad entries gets
** this many and one line counting the rest, not a million lines. */
#define MAX_PROBLEMS_PER_FILE 50

struct validation {
    const char *file;
    const char *text; /* the file's JSON, for columns */
    const char *id;
    struct problem_list *problems;
    int errors;
    int listed, unlisted;
};

static void report(struct validation *v, triage_severity severity, const struct json_node *at, const char *field,
                   const char *fmt, const char *detail)
{
    if (severity == TRIAGE_ERROR)
        v->errors++;
    if (v->listed >= MAX_PROBLEMS_PER_FILE) {
        v->unlisted++;
        return;
    }
    v->listed++;
    problem_add(v->problems, severity, v->file, at ? at->line : 0, at ? json_column(v->text, at) : 0, v->id, field, fmt, detail);
}

static void report_unlisted(struct validation *v)
{
    if (v->unlisted > 0)
        problem_add(v->problems, TRIAGE_ERROR, v->file, 0, 0, v->id, "-",
                    "%d more problems in this file are not listed", v->unlisted);
}

/* The id of a record whose JSON does not parse, read from the text by the
** first "id": "..." it has, so that the problem still names the record;
** "-" when there is none or it is not a valid id. */
static void guess_id(const char *text, size_t len, char *out, size_t size)
{
    snprintf(out, size, "-");
    const char *end = text + len;
    for (const char *p = text; p != NULL && p < end; p = memchr(p + 1, '"', (size_t)(end - p - 1))) {
        if (*p != '"' || (size_t)(end - p) < 5 || memcmp(p, "\"id\"", 4) != 0)
            continue;
        const char *q = p + 4;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q >= end || *q != ':')
            continue;
        q++;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
            q++;
        if (q >= end || *q != '"')
            continue;
        const char *value = ++q;
        while (q < end && *q != '"' && *q != '\\' && (size_t)(q - value) < size)
            q++;
        if (q >= end || *q != '"' || (size_t)(q - value) >= size)
            return;
        char id[256];
        size_t n = (size_t)(q - value) < sizeof id ? (size_t)(q - value) : sizeof id - 1;
        memcpy(id, value, n);
        id[n] = '\0';
        if (id_is_valid(id))
            snprintf(out, size, "%s", id);
        return;
    }
}

static void expect_type(struct validation *v, const struct json_node *node, const char *field, enum json_type type)
{
    if (node == NULL || node->type == type)
        return;
    if (type == JSON_TRUE && node->type == JSON_FALSE)
        return;
    char message[96];
    snprintf(message, sizeof message, "expected %s, got %s", json_type_name(type), json_type_name(node->type));
    report(v, TRIAGE_ERROR, node, field, "%s", message);
}

/* A rate or probability: a number in [0, 1], or null. */
static void check_rate(struct validation *v, const struct json_node *node, const char *field)
{
    if (node == NULL || node->type == JSON_NULL)
        return;
    if (node->type != JSON_NUMBER) {
        char message[96];
        snprintf(message, sizeof message, "expected a number in [0, 1], got %s", json_type_name(node->type));
        report(v, TRIAGE_ERROR, node, field, "%s", message);
        return;
    }
    if (!(node->u.number >= 0.0 && node->u.number <= 1.0)) {
        char message[96];
        snprintf(message, sizeof message, "%g is outside [0, 1]", node->u.number);
        report(v, TRIAGE_ERROR, node, field, "%s", message);
    }
}

static int is_string_list(const struct json_node *list)
{
    if (list == NULL || list->type == JSON_NULL)
        return 1;
    if (list->type != JSON_ARRAY)
        return 0;
    for (size_t i = 0; i < list->u.array.count; i++)
        if (list->u.array.items[i]->type != JSON_STRING)
            return 0;
    return 1;
}

static void check_string_list(struct validation *v, const struct json_node *list, const char *field)
{
    if (is_string_list(list))
        return;
    if (list->type != JSON_ARRAY) {
        expect_type(v, list, field, JSON_ARRAY);
        return;
    }
    for (size_t i = 0; i < list->u.array.count; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        expect_type(v, list->u.array.items[i], path, JSON_STRING);
    }
}

/* Report a string field of object that is missing or of another type. */
static void report_not_string(struct validation *v, const struct json_node *object, const struct json_node *value,
                              const char *path, const char *missing)
{
    if (value == NULL)
        report(v, TRIAGE_ERROR, object, path, "%s", missing);
    else
        expect_type(v, value, path, JSON_STRING);
}

static int is_rate(const struct json_node *node)
{
    return node == NULL || node->type == JSON_NULL ||
           (node->type == JSON_NUMBER && node->u.number >= 0.0 && node->u.number <= 1.0);
}

/* dead_ends[] or workarounds[]: objects with an action and a rate. A
** field's path is written only for a problem: loading thousands of
** records checks tens of thousands of fields that are fine. */
static void check_fix_list(struct validation *v, const struct json_node *list, const char *field,
                           const char *rate_key)
{
    if (list == NULL || list->type == JSON_NULL)
        return;
    if (list->type != JSON_ARRAY) {
        expect_type(v, list, field, JSON_ARRAY);
        return;
    }
    for (size_t i = 0; i < list->u.array.count; i++) {
        const struct json_node *item = list->u.array.items[i];
        char path[160];
        if (item->type != JSON_OBJECT) {
            snprintf(path, sizeof path, "%s[%zu]", field, i);
            expect_type(v, item, path, JSON_OBJECT);
            continue;
        }
        const struct json_node *action = json_get(item, "action");
        if (action == NULL || action->type != JSON_STRING) {
            snprintf(path, sizeof path, "%s[%zu].action", field, i);
            report_not_string(v, item, action, path, "missing: every entry needs an action");
        }
        const struct json_node *rate = json_get(item, rate_key);
        if (!is_rate(rate)) {
            snprintf(path, sizeof path, "%s[%zu].%s", field, i, rate_key);
            check_rate(v, rate, path);
        }
        const struct json_node *how = json_get(item, "how");
        if (how != NULL && how->type != JSON_NULL && how->type != JSON_STRING) {
            snprintf(path, sizeof path, "%s[%zu].how", field, i);
            expect_type(v, how, path, JSON_STRING);
        }
        const struct json_node *sources = json_get(item, "sources");
        if (!is_string_list(sources)) {
            snprintf(path, sizeof path, "%s[%zu].sources", field, i);
            check_string_list(v, sources, path);
        }
    }
}

static void check_graph(struct validation *v, const struct json_node *graph)
{
    static const char *const kinds[] = {"leads_to", "preceded_by", "frequently_confused_with"};
    if (graph == NULL || graph->type == JSON_NULL)
        return;
    if (graph->type != JSON_OBJECT) {
        expect_type(v, graph, "transition_graph", JSON_OBJECT);
        return;
    }
    for (size_t k = 0; k < 3; k++) {
        char field[96];
        snprintf(field, sizeof field, "transition_graph.%s", kinds[k]);
        const struct json_node *list = json_get(graph, kinds[k]);
        if (list == NULL || list->type == JSON_NULL)
            continue;
        if (list->type != JSON_ARRAY) {
            expect_type(v, list, field, JSON_ARRAY);
            continue;
        }
        /* Paths are written for problems only, as in check_fix_list. */
        for (size_t i = 0; i < list->u.array.count; i++) {
            const struct json_node *edge = list->u.array.items[i];
            char path[192];
            if (edge->type == JSON_STRING)
                continue;
            if (edge->type != JSON_OBJECT) {
                snprintf(path, sizeof path, "%s[%zu]", field, i);
                report(v, TRIAGE_ERROR, edge, path, "expected an id string or an object with error_id, got %s",
                       json_type_name(edge->type));
                continue;
            }
            const struct json_node *target = json_get(edge, "error_id");
            if (target == NULL || target->type != JSON_STRING) {
                snprintf(path, sizeof path, "%s[%zu].error_id", field, i);
                report_not_string(v, edge, target, path, "missing: an edge object needs error_id");
            }
            const struct json_node *probability = json_get(edge, "probability");
            if (!is_rate(probability)) {
                snprintf(path, sizeof path, "%s[%zu].probability", field, i);
                check_rate(v, probability, path);
            }
        }
    }
}

/* Ids are DOMAIN/SLUG or DOMAIN/SLUG/ENV: lowercase letters, digits, '.', '_', '-'. */
int id_is_valid(const char *id)
{
    int segments = 1;
    size_t seg_len = 0;
    if (id == NULL || *id == '\0' || strlen(id) > 200)
        return 0;
    for (const char *c = id; *c; c++) {
        if (*c == '/') {
            if (seg_len == 0)
                return 0;
            segments++;
            seg_len = 0;
            continue;
        }
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                 ((*c == '.' || *c == '_' || *c == '-') && seg_len > 0);
        if (!ok)
            return 0;
        seg_len++;
    }
    return seg_len > 0 && segments >= 2 && segments <= 3;
}

static void check_common(struct validation *v, const struct json_node *root, int nested)
{
    check_fix_list(v, json_get(root, "dead_ends"), "dead_ends", "fail_rate");
    check_fix_list(v, json_get(root, "workarounds"), "workarounds", "success_rate");
    check_graph(v, json_get(root, "transition_graph"));
    if (nested) {
        const struct json_node *verdict = json_get(root, "verdict");
        expect_type(v, verdict, "verdict", JSON_OBJECT);
        check_rate(v, json_get(verdict, "confidence"), "verdict.confidence");
        check_rate(v, json_get(verdict, "fix_success_rate"), "verdict.fix_success_rate");
        return;
    }
    check_rate(v, json_get(root, "confidence"), "confidence");
    check_rate(v, json_get(root, "fix_success_rate"), "fix_success_rate");
    check_string_list(v, json_get(root, "aliases"), "aliases");
    check_string_list(v, json_get(root, "tags"), "tags");
    check_string_list(v, json_get(root, "workarounds_zh"), "workarounds_zh");
    static const char *const strings[] = {"domain", "category", "root_cause", "signature_zh", "root_cause_zh",
                                          "official_doc_url"};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        const struct json_node *node = json_get(root, strings[i]);
        if (node != NULL && node->type != JSON_NULL)
            expect_type(v, node, strings[i], JSON_STRING);
    }
    expect_type(v, json_get(root, "versions"), "versions", JSON_ARRAY);
    expect_type(v, json_get(root, "os_specific"), "os_specific", JSON_OBJECT);
    const struct json_node *examples = json_get(root, "examples");
    if (examples != NULL && examples->type != JSON_OBJECT) {
        expect_type(v, examples, "examples", JSON_OBJECT);
    } else if (examples != NULL) {
        check_string_list(v, json_get(examples, "match"), "examples.match");
        check_string_list(v, json_get(examples, "no_match"), "examples.no_match");
    }
}

/* Whether root has a non-empty examples.match or examples.no_match list. */
static int lists_examples(const struct json_node *root)
{
    const struct json_node *examples = json_get(root, "examples");
    if (examples == NULL || examples->type != JSON_OBJECT)
        return 0;
    const struct json_node *match = json_get(examples, "match");
    const struct json_node *no_match = json_get(examples, "no_match");
    return (match != NULL && match->type == JSON_ARRAY && match->u.array.count > 0) ||
           (no_match != NULL && no_match->type == JSON_ARRAY && no_match->u.array.count > 0);
}

/* A required non-empty string field; reports and returns NULL when absent or invalid. */
static const char *required_string(struct validation *v, const struct json_node *root, const struct json_node *node,
                                   const char *field)
{
    if (node == NULL) {
        report(v, TRIAGE_ERROR, root, field, "%s", "missing: required field");
        return NULL;
    }
    if (node->type != JSON_STRING) {
        expect_type(v, node, field, JSON_STRING);
        return NULL;
    }
    if (node->u.string.len == 0) {
        report(v, TRIAGE_ERROR, node, field, "%s", "empty: required field");
        return NULL;
    }
    return node->u.string.text;
}

static char **copy_aliases(const struct json_node *list, size_t *count)
{
    *count = 0;
    if (list == NULL || list->type != JSON_ARRAY || list->u.array.count == 0)
        return NULL;
    char **aliases = calloc(list->u.array.count, sizeof *aliases);
    if (aliases == NULL)
        return NULL;
    for (size_t i = 0; i < list->u.array.count; i++) {
        const char *s = json_string(list->u.array.items[i]);
        if (s != NULL && (aliases[*count] = dup_string(s)) != NULL)
            (*count)++;
    }
    return aliases;
}

/* An invalid id as the ID column of its problems shows it: the bytes of
** the id alphabet (and capitals) as they are, every other byte as \xNN, so
** that "FILE:LINE:COLUMN: ID: FIELD:" stays one unambiguous line. */
static void id_column(char *out, size_t size, const char *id)
{
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c != '\0'; c++) {
        int plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                    *c == '.' || *c == '_' || *c == '-' || *c == '/';
        size_t need = plain ? 1 : 4;
        if (n + need + 4 > size) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (plain)
            out[n] = (char)*c;
        else
            snprintf(out + n, 5, "\\x%02x", *c);
        n += need;
    }
    out[n] = '\0';
}

/* Build a record from the text of one file. Takes ownership of text. Returns
** NULL, with the problems added, when the record must not load. */
struct record *record_from_json(const char *file, char *text, size_t len, struct regex_cache *cache,
                                struct problem_list *problems)
{
    struct validation v = {file, text, "-", problems, 0, 0, 0};
    struct json_doc doc;
    struct json_error jerr;
    if (json_parse(text, len, &doc, &jerr) != 0) {
        char id[256];
        guess_id(text, len, id, sizeof id);
        problem_add(problems, TRIAGE_ERROR, file, jerr.line, jerr.column, id, jerr.field, "invalid JSON: %s",
                    jerr.message);
        free(text);
        return NULL;
    }
    const struct json_node *root = doc.root;
    struct record *record = NULL;
    if (root->type != JSON_OBJECT) {
        report(&v, TRIAGE_ERROR, root, "-", "expected a JSON object for the record, got %s",
               json_type_name(root->type));
        goto done;
    }

    const struct json_node *error = json_get(root, "error");
    int nested = error != NULL && error->type == JSON_OBJECT && json_get(root, "signature") == NULL;
    const struct json_node *id_node = json_get(root, "id");
    const char *id = required_string(&v, root, id_node, "id");
    char shown_id[96], quoted_id[96];
    if (id != NULL && !id_is_valid(id)) {
        id_column(shown_id, sizeof shown_id, id);
        printable_excerpt(quoted_id, sizeof quoted_id, id, id_node->u.string.len);
        v.id = shown_id;
        report(&v, TRIAGE_ERROR, id_node, "id", "invalid id \"%s\": expected DOMAIN/SLUG or DOMAIN/SLUG/ENV in "
               "lowercase letters, digits, '.', '_' and '-'", quoted_id);
        id = NULL;
    }
    if (id != NULL)
        v.id = id;
    const struct json_node *sig_node = nested ? json_get(error, "signature") : json_get(root, "signature");
    const struct json_node *re_node = nested ? json_get(error, "regex") : json_get(root, "regex");
    const char *signature = required_string(&v, root, sig_node, nested ? "error.signature" : "signature");
    const char *regex = required_string(&v, root, re_node, nested ? "error.regex" : "regex");
    if (regex != NULL && re_node->u.string.len > RECORD_MAX_PATTERN) {
        char message[96];
        snprintf(message, sizeof message, "pattern is %zu bytes, longer than the limit of %d",
                 re_node->u.string.len, RECORD_MAX_PATTERN);
        report(&v, TRIAGE_ERROR, re_node, nested ? "error.regex" : "regex", "%s", message);
        regex = NULL;
    }
    check_common(&v, root, nested);
    if (v.errors > 0 || id == NULL || signature == NULL || regex == NULL)
        goto done;

    record = calloc(1, sizeof *record);
    if (record == NULL)
        goto done;
    record->id = dup_string(id);
    record->file = dup_string(file);
    record->signature = dup_string(signature);
    record->regex = dup_string(regex);
    record->regex_line = re_node->line;
    record->regex_column = json_column(text, re_node);
    record->nested_schema = nested;
    const struct json_node *conf = nested ? json_get(json_get(root, "verdict"), "confidence")
                                          : json_get(root, "confidence");
    record->confidence = conf != NULL && conf->type == JSON_NUMBER ? conf->u.number : 0.5;
    record->aliases = copy_aliases(json_get(root, "aliases"), &record->alias_count);
    record->has_examples = lists_examples(root);
    if (record->id == NULL || record->file == NULL || record->signature == NULL || record->regex == NULL) {
        report(&v, TRIAGE_ERROR, root, "-", "%s", "out of memory");
        record_free(record);
        record = NULL;
        goto done;
    }
    if (record_compile(record, cache, problems) != 0) {
        record_free(record);
        record = NULL;
        goto done;
    }
    record->json = text;
    record->json_len = len;
    text = NULL;
done:
    report_unlisted(&v);
    json_free(&doc);
    free(text);
    return record;
}

/* A supplement (SLUG.supplement.json beside SLUG.json) adds examples and
** graph edges to a record whose file must stay as published, such as the
** reference record. Only those two fields are allowed. Takes ownership of
** text. Returns 0, or -1 with problems added (the record still loads). */
int record_add_supplement(struct record *record, const char *file, char *text, size_t len,
                          struct problem_list *problems)
{
    struct validation v = {file, text, record->id, problems, 0, 0, 0};
    struct json_doc doc;
    struct json_error jerr;
    if (json_parse(text, len, &doc, &jerr) != 0) {
        problem_add(problems, TRIAGE_ERROR, file, jerr.line, jerr.column, record->id, jerr.field, "invalid JSON: %s",
                    jerr.message);
        free(text);
        return -1;
    }
    const struct json_node *root = doc.root;
    if (root->type != JSON_OBJECT) {
        report(&v, TRIAGE_ERROR, root, "-", "expected a JSON object, got %s", json_type_name(root->type));
    } else {
        for (size_t i = 0; i < root->u.object.count; i++) {
            const char *key = root->u.object.members[i].key;
            if (strcmp(key, "examples") != 0 && strcmp(key, "transition_graph") != 0)
                report(&v, TRIAGE_ERROR, root->u.object.members[i].value, key,
                       "field \"%s\" cannot be supplemented; only examples and transition_graph can", key);
        }
        check_graph(&v, json_get(root, "transition_graph"));
        const struct json_node *examples = json_get(root, "examples");
        expect_type(&v, examples, "examples", JSON_OBJECT);
        if (examples != NULL && examples->type == JSON_OBJECT) {
            check_string_list(&v, json_get(examples, "match"), "examples.match");
            check_string_list(&v, json_get(examples, "no_match"), "examples.no_match");
        }
    }
    if (v.errors == 0 && lists_examples(root))
        record->has_examples = 1;
    report_unlisted(&v);
    json_free(&doc);
    if (v.errors > 0) {
        free(text);
        return -1;
    }
    free(record->supplement);
    record->supplement = text;
    record->supplement_len = len;
    return 0;
}

void record_free(struct record *record)
{
    if (record == NULL)
        return;
    free(record->id);
    free(record->file);
    free(record->signature);
    free(record->regex);
    for (size_t i = 0; i < record->alias_count; i++)
        free(record->aliases[i]);
    free(record->aliases);
    free(record->json);
    free(record->supplement);
    pcre2_code_free(record->code);
    pcre2_code_free(record->floating_code);
    record_release_jit(record);
    for (uint32_t i = 0; record->group_names != NULL && i <= record->group_count; i++)
        free(record->group_names[i]);
    free(record->group_names);
    for (size_t i = 0; i < record->alternative_count; i++) {
        free(record->alternatives[i].pattern);
        pcre2_code_free(record->alternatives[i].code);
    }
    free(record->alternatives);
    free(record->tokens);
    free(record);
}
