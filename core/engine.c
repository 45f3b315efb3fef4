/*
** Engine: the public C API around records, matching and the Lua layer.
**
** Owns: engine lifecycle, the data folder search, matching of a whole input
** (split into lines, one best hit per record), and the entry points that
** hand matches to Lua for report building and rendering.
** Depends on: loader.c, match.c, rank.c, lua_engine.c.
*/
#define _GNU_SOURCE /* dladdr and realpath */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "prefilter.h"

/* Lines longer than this are matched on their first part only. */
#define DIAGNOSE_MAX_LINE (64u << 10)

const char *triage_version(void)
{
    return TRIAGE_VERSION;
}

static int is_datadir(const char *dir)
{
    char *probe = dup_printf("%s/lua/triage/report.lua", dir);
    int ok = probe != NULL && path_exists(probe);
    free(probe);
    return ok;
}

/* The folder of the file that holds this code: the executable, or the
** shared library when linked dynamically. */
static char *module_folder(void)
{
    Dl_info info;
    char *path = NULL;
    if (dladdr((void *)triage_version, &info) != 0 && info.dli_fname != NULL && strchr(info.dli_fname, '/'))
        path = realpath(info.dli_fname, NULL);
    if (path == NULL)
        path = realpath("/proc/self/exe", NULL);
    if (path == NULL)
        return NULL;
    char *slash = strrchr(path, '/');
    if (slash != NULL)
        *slash = '\0';
    return path;
}

/* Find the folder holding records/, rules/ and lua/: the caller's choice,
** $TRIAGE_DATADIR, next to an installed binary or library, the source tree
** of a build, then the configured install prefix. */
static char *find_datadir(const char *requested)
{
    if (requested != NULL)
        return dup_string(requested);
    const char *env = getenv("TRIAGE_DATADIR");
    if (env != NULL && *env != '\0')
        return dup_string(env);
    char *module = module_folder();
    if (module != NULL) {
        static const char *const relative[] = {"../share/triage", "../../share/triage"};
        for (size_t i = 0; i < sizeof relative / sizeof *relative; i++) {
            char *candidate = dup_printf("%s/%s", module, relative[i]);
            if (candidate != NULL && is_datadir(candidate)) {
                free(module);
                return candidate;
            }
            free(candidate);
        }
        free(module);
    }
    if (is_datadir(TRIAGE_SOURCE_DATADIR))
        return dup_string(TRIAGE_SOURCE_DATADIR);
    return dup_string(TRIAGE_INSTALL_DATADIR);
}

/* Site layers below the caller's: the installed defaults (datadir/site/
** defaults.lua, part of the installation, so TRIAGE_NO_SITE_LAYERS keeps
** it), the system's, then the user's (XDG). A layer that exists but fails
** to load fails the open, naming the file. */
static int load_site_layers(struct triage_engine *engine)
{
    char *defaults = dup_printf("%s/site/defaults.lua", engine->datadir);
    int defaults_rc = defaults != NULL && path_exists(defaults) ? triage_load_site(engine, defaults) : 0;
    free(defaults);
    if (defaults_rc != 0 || (engine->flags & TRIAGE_NO_SITE_LAYERS))
        return defaults_rc;
    char *paths[2] = {dup_string("/etc/triage/site.lua"), NULL};
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg != NULL && *xdg == '/')
        paths[1] = dup_printf("%s/triage/site.lua", xdg);
    else if (home != NULL && *home != '\0')
        paths[1] = dup_printf("%s/.config/triage/site.lua", home);
    int rc = 0;
    for (size_t i = 0; i < 2; i++) {
        if (rc == 0 && paths[i] != NULL && path_exists(paths[i]))
            rc = triage_load_site(engine, paths[i]);
        free(paths[i]);
    }
    return rc;
}

triage_engine *triage_open(const triage_options *opts)
{
    struct triage_engine *engine = calloc(1, sizeof *engine);
    if (engine == NULL) {
        set_error("out of memory creating the engine");
        return NULL;
    }
    engine->flags = opts ? opts->flags : 0;
    pthread_mutex_init(&engine->lua_lock, NULL);
    pthread_mutex_init(&engine->prepare_lock, NULL);
    engine->datadir = find_datadir(opts ? opts->datadir : NULL);
    if (engine->datadir == NULL || !is_datadir(engine->datadir)) {
        set_error("data folder '%s' has no lua/triage/report.lua; set TRIAGE_DATADIR to the folder holding "
                  "records/, rules/ and lua/",
                  engine->datadir ? engine->datadir : "(none)");
        triage_close(&engine);
        return NULL;
    }
    if (lua_engine_init(engine) != 0 || load_site_layers(engine) != 0) {
        triage_close(&engine);
        return NULL;
    }
    return engine;
}

void triage_close(triage_engine **handle)
{
    if (handle == NULL || *handle == NULL)
        return;
    struct triage_engine *engine = *handle;
    lua_engine_close(engine);
    for (size_t i = 0; i < engine->record_count; i++)
        record_free(engine->records[i]);
    free(engine->records);
    free(engine->index);
    rank_release(engine);
    problem_list_free(&engine->problems);
    for (size_t i = 0; i < engine->site_count; i++)
        free(engine->sites[i]);
    free(engine->sites);
    free(engine->datadir);
    pthread_mutex_destroy(&engine->lua_lock);
    prefilter_free(engine->prefilter);
    pthread_mutex_destroy(&engine->prepare_lock);
    free(engine);
    *handle = NULL;
}

int triage_load_default_records(triage_engine *engine)
{
    char *path = dup_printf("%s/records", engine->datadir);
    if (path == NULL) {
        set_error("out of memory");
        return -1;
    }
    int n = triage_load_records(engine, path);
    free(path);
    return n;
}

size_t triage_record_count(const triage_engine *engine)
{
    return engine ? engine->record_count : 0;
}

const char *triage_record_id(const triage_engine *engine, size_t i)
{
    return engine && i < engine->record_count ? engine->records[i]->id : NULL;
}

size_t triage_problem_count(const triage_engine *engine)
{
    return engine ? engine->problems.count : 0;
}

const triage_problem *triage_problem_at(const triage_engine *engine, size_t i)
{
    return engine && i < engine->problems.count ? &engine->problems.items[i] : NULL;
}

void triage_load_counts(const triage_engine *engine, size_t *loaded, size_t *rejected)
{
    if (loaded != NULL)
        *loaded = engine ? engine->loaded : 0;
    if (rejected != NULL)
        *rejected = engine ? engine->rejected : 0;
}

static int ensure_prepared(struct triage_engine *engine)
{
    int rc = 0;
    pthread_mutex_lock(&engine->prepare_lock);
    if (!engine->prepared) {
        rc = rank_prepare(engine);
        if (rc == 0)
            engine->prepared = 1;
        else
            set_error("out of memory preparing ranking statistics");
    }
    pthread_mutex_unlock(&engine->prepare_lock);
    return rc;
}

/* Build the ranking statistics once; scanning calls it before its workers start. */
int engine_prepare(struct triage_engine *engine)
{
    return ensure_prepared(engine);
}

/* Keep only the best hit per record: a record shown twice helps nobody. */
static size_t dedupe_by_record(struct hit *hits, size_t count)
{
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        size_t j;
        for (j = 0; j < kept; j++)
            if (hits[j].record == hits[i].record)
                break;
        if (j == kept)
            hits[kept++] = hits[i];
    }
    return kept;
}

static int push_hit(struct hit **hits, size_t *count, size_t *cap, const struct hit *hit)
{
    if (*count == *cap) {
        size_t new_cap = *cap ? *cap * 2 : 16;
        struct hit *grown = realloc(*hits, new_cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        *hits = grown;
        *cap = new_cap;
    }
    (*hits)[(*count)++] = *hit;
    return 0;
}

static int has_several_lines(const char *text, size_t len)
{
    size_t lines = 0, pos = 0;
    while (pos < len && lines < 2) {
        size_t end = pos + line_end(text + pos, len - pos);
        for (size_t k = pos; k < end; k++)
            if (text[k] != ' ' && text[k] != '\t') {
                lines++;
                break;
            }
        pos = end + 1;
    }
    return lines > 1;
}

/* Match every line of text against every record; hits come back ranked,
** one per record, offsets relative to the whole text. */
int engine_match_text(const struct triage_engine *engine, struct match_scratch *scratch, const char *text,
                      size_t len, struct hit **hits_out, size_t *count_out)
{
    return engine_match_candidates(engine, scratch, text, len, NULL, NULL, hits_out, count_out);
}

/* engine_match_text, but each line is matched only against the records
** that candidates names for it (all records when candidates is NULL or
** returns SIZE_MAX). Scanning uses it so a line ranks exactly as when
** diagnosed alone. */
int engine_match_candidates(const struct triage_engine *engine, struct match_scratch *scratch, const char *text,
                            size_t len, line_candidates_fn candidates, void *context, struct hit **hits_out,
                            size_t *count_out)
{
    struct hit *hits = NULL;
    size_t count = 0, cap = 0, line_no = 0;
    size_t pos = 0;
    /* A single line is ranked on its own merits, so scanning a line and
    ** diagnosing it alone rank alike; lines of a longer input are weighed
    ** by how much they look like an error. */
    int multi_line = has_several_lines(text, len);
    struct rank_line line_words;
    struct rank_line *words = &line_words;
    struct line_view view = {0};
    while (pos < len || (pos == 0 && len == 0)) {
        size_t end = pos + line_end(text + pos, len - pos);
        line_no++;
        size_t line_len = end - pos;
        if (line_len > DIAGNOSE_MAX_LINE)
            line_len = DIAGNOSE_MAX_LINE;
        /* A JSON log line is matched on its text with the escapes undone. */
        const char *line = text + pos;
        size_t raw_len = line_len;
        int viewed = line_len > 0 ? line_view_make(&view, line, line_len) : 0;
        if (viewed < 0) {
            free(hits);
            line_view_free(&view);
            set_error("out of memory matching");
            return -1;
        }
        if (viewed) {
            line = view.text;
            line_len = view.len;
        }
        const uint32_t *subset = NULL;
        size_t subset_count = line_len == 0 ? 0 : SIZE_MAX;
        struct line_lowered lowered = {NULL, NULL};
        if (candidates != NULL && line_len > 0)
            subset_count = candidates(context, line, line_len, &subset, &lowered);
        if (subset_count == SIZE_MAX) {
            subset = NULL;
            subset_count = engine->record_count;
        }
        words->ready = 0;
        words->lowered_state = 0;
        /* The prefilter's lowercase copy serves ranking too, within the
        ** bound that ranking keeps for its own. */
        if (lowered.text != NULL && lowered.pairs != NULL && line_len <= RANK_LINE_LOWERED) {
            words->lowered = lowered.text;
            words->pairs = lowered.pairs;
            words->lowered_state = 1;
        }
        for (size_t k = 0; k < subset_count; k++) {
            size_t r = subset != NULL ? subset[k] : k;
            const struct record *record = engine->records[r];
            struct hit hit = {.record = r, .id = record->id, .line = line_no, .line_start = pos,
                              .line_len = raw_len, .truncated = end - pos > raw_len};
            if (record_match(record, scratch, line, line_len, &hit.start, &hit.end) != MATCH_HIT) {
                if (!rank_signature_match(engine, r, scratch, line, line_len, words, &hit.start, &hit.end))
                    continue;
                hit.by_signature = 1;
            }
            rank_score(engine, record, line, line_len, words, &hit);
            if (multi_line)
                rank_weigh_line(&hit, line_errorness(line, line_len));
            if (viewed) {
                hit.start = line_view_offset(&view, hit.start);
                hit.end = line_view_offset(&view, hit.end);
            }
            hit.start += pos;
            hit.end += pos;
            if (push_hit(&hits, &count, &cap, &hit) != 0) {
                free(hits);
                line_view_free(&view);
                set_error("out of memory matching");
                return -1;
            }
        }
        if (end < len && text[end] == '\r' && end + 1 < len && text[end + 1] == '\n')
            end++;
        pos = end + 1;
        if (len == 0)
            break;
    }
    line_view_free(&view);
    if (count > 1)
        qsort(hits, count, sizeof *hits, hit_compare);
    *hits_out = hits;
    *count_out = dedupe_by_record(hits, count);
    return 0;
}

int triage_match(triage_engine *engine, const char *text, size_t len, triage_hit *out, size_t max_hits)
{
    if (engine == NULL || (text == NULL && len > 0)) {
        set_error("triage_match: engine and text are required");
        return -1;
    }
    if (ensure_prepared(engine) != 0)
        return -1;
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL) {
        set_error("out of memory creating match scratch");
        return -1;
    }
    struct hit *hits;
    size_t count;
    int rc = engine_match_text(engine, scratch, text ? text : "", len, &hits, &count);
    scratch_free(scratch);
    engine_report_limits(engine);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < count && i < max_hits; i++) {
        out[i].id = hits[i].id;
        out[i].score = hits[i].score;
        memcpy(out[i].parts, hits[i].parts, sizeof out[i].parts);
        out[i].line = hits[i].line;
        out[i].start = hits[i].start;
        out[i].end = hits[i].end;
    }
    free(hits);
    return count > INT_MAX ? INT_MAX : (int)count;
}

int triage_guess(triage_engine *engine, const char *text, size_t len, triage_hit *out, size_t max_hits)
{
    if (engine == NULL || (text == NULL && len > 0) || (out == NULL && max_hits > 0)) {
        set_error("triage_guess: engine, text and hits are required");
        return -1;
    }
    if (ensure_prepared(engine) != 0)
        return -1;
    struct hit guesses[8];
    int n = rank_guess(engine, text ? text : "", len, guesses, max_hits < 8 ? max_hits : 8);
    if (n < 0) {
        set_error("out of memory ranking guesses");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].id = guesses[i].id;
        out[i].score = guesses[i].score;
        memcpy(out[i].parts, guesses[i].parts, sizeof out[i].parts);
    }
    return n;
}

int triage_diagnose(triage_engine *engine, const char *text, size_t len, const triage_render_options *options,
                    char **out, size_t *out_len)
{
    if (engine == NULL || out == NULL || (text == NULL && len > 0)) {
        set_error("triage_diagnose: engine, text and out are required");
        return -1;
    }
    *out = NULL;
    if (ensure_prepared(engine) != 0)
        return -1;
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL) {
        set_error("out of memory creating match scratch");
        return -1;
    }
    struct hit *hits;
    size_t count;
    if (text == NULL)
        text = "";
    int matched = engine_match_text(engine, scratch, text, len, &hits, &count);
    engine_report_limits(engine);
    if (matched != 0) {
        scratch_free(scratch);
        return -1;
    }
    triage_render_options defaults = {0};
    int diagnosed = 0;
    size_t rendered_len = 0;
    int rc = lua_engine_render(engine, text, len, hits, count, options ? options : &defaults, out, &rendered_len,
                               &diagnosed);
    free(hits);
    scratch_free(scratch);
    if (rc != 0)
        return -1;
    if (out_len != NULL)
        *out_len = rendered_len;
    return diagnosed;
}
