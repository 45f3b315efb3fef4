/*
** Lua layer of the engine: one Lua 5.4 state per engine that builds reports
** from the C core's matches and renders them.
**
** Owns: the state's creation and package paths, the `triage.core` module
** through which Lua reads records, and the protected calls into
** lua/triage/engine.lua. Lua runs per diagnosis, never per scanned line.
** Depends on: Lua 5.4, lua-cjson, the records and matcher of the core.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lua_regex.h"
#include "sandbox.h"

int luaopen_cjson(lua_State *L);

/* Registry key of the engine that owns a state. */
static const char ENGINE_KEY[] = "triage.engine";

static struct triage_engine *engine_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);
    struct triage_engine *engine = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return engine;
}

static const struct record *check_record(lua_State *L, int arg)
{
    struct triage_engine *engine = engine_of(L);
    lua_Integer i = luaL_checkinteger(L, arg);
    luaL_argcheck(L, i >= 1 && (size_t)i <= engine->record_count, arg, "record index out of range");
    return engine->records[i - 1];
}

/* core.record_count() -> n */
static int core_record_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)engine_of(L)->record_count);
    return 1;
}

/* core.find(id) -> index or nil */
static int core_find(lua_State *L)
{
    size_t i = engine_find_index(engine_of(L), luaL_checkstring(L, 1));
    if (i == SIZE_MAX)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)i + 1);
    return 1;
}

/* core.record_json(index) -> text, file, supplement text or nil: the
** validated file texts, for cjson. */
static int core_record_json(lua_State *L)
{
    const struct record *record = check_record(L, 1);
    lua_pushlstring(L, record->json, record->json_len);
    lua_pushstring(L, record->file);
    if (record->supplement != NULL)
        lua_pushlstring(L, record->supplement, record->supplement_len);
    else
        lua_pushnil(L);
    return 3;
}

/* core.record_info(index) -> {id=, file=, signature=, regex=, confidence=, nested=, jit=} */
static int core_record_info(lua_State *L)
{
    const struct record *record = check_record(L, 1);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, record->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, record->file);
    lua_setfield(L, -2, "file");
    lua_pushstring(L, record->signature);
    lua_setfield(L, -2, "signature");
    lua_pushstring(L, record->regex);
    lua_setfield(L, -2, "regex");
    lua_pushnumber(L, record->confidence);
    lua_setfield(L, -2, "confidence");
    lua_pushboolean(L, record->nested_schema);
    lua_setfield(L, -2, "nested");
    lua_pushboolean(L, record->jit);
    lua_setfield(L, -2, "jit");
    return 1;
}

/* Push a table of the named groups of the scratch's last hit. */
static void push_captures(lua_State *L, const struct record *record, const struct match_scratch *scratch,
                          const char *subject)
{
    lua_newtable(L);
    for (uint32_t g = 1; g <= record->group_count; g++) {
        size_t start, end;
        if (record->group_names[g] == NULL || scratch_group(scratch, g, &start, &end) != 0)
            continue;
        lua_pushlstring(L, subject + start, end - start);
        lua_setfield(L, -2, record->group_names[g]);
    }
}

/* Match record on text, or on its view when text is a JSON log line
** (line_view.c), as a diagnosis does. On a hit, *start and *end are
** offsets in text and the scratch contains the groups of *subject. Returns
** MATCH_ERROR with *no_memory set when the view cannot be made. */
static enum match_outcome match_as_diagnosed(const struct record *record, struct match_scratch *scratch,
                                             struct line_view *view, const char *text, size_t len,
                                             const char **subject, size_t *start, size_t *end, int *no_memory)
{
    *subject = text;
    int viewed = line_view_make(view, text, len);
    *no_memory = viewed < 0;
    if (viewed < 0)
        return MATCH_ERROR;
    if (viewed == 0)
        return record_match(record, scratch, text, len, start, end);
    *subject = view->text;
    enum match_outcome outcome = record_match(record, scratch, view->text, view->len, start, end);
    if (outcome == MATCH_HIT) {
        *start = line_view_offset(view, *start);
        *end = line_view_offset(view, *end);
    }
    return outcome;
}

/* core.match(index, text) -> nil | {start=, ["end"]=, text=, captures=} with 1-based inclusive start. */
static int core_match(lua_State *L)
{
    const struct record *record = check_record(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL)
        return luaL_error(L, "out of memory creating match scratch");
    struct line_view view = {0};
    const char *subject;
    size_t start, end;
    int no_memory;
    enum match_outcome outcome =
        match_as_diagnosed(record, scratch, &view, text, len, &subject, &start, &end, &no_memory);
    if (no_memory) {
        scratch_free(scratch);
        line_view_free(&view);
        return luaL_error(L, "out of memory making the view of a JSON log line");
    }
    if (outcome != MATCH_HIT) {
        scratch_free(scratch);
        line_view_free(&view);
        lua_pushnil(L);
        lua_pushstring(L, outcome == MATCH_LIMIT ? "limit" : outcome == MATCH_ERROR ? "error" : "nomatch");
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)start + 1);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)end);
    lua_setfield(L, -2, "end");
    lua_pushlstring(L, text + start, end - start);
    lua_setfield(L, -2, "text");
    push_captures(L, record, scratch, subject);
    lua_setfield(L, -2, "captures");
    scratch_free(scratch);
    line_view_free(&view);
    return 1;
}

/* core.match_all(text) -> list of indices of the records whose regex
** matches text (its view when text is a JSON log line). */
static int core_match_all(lua_State *L)
{
    struct triage_engine *engine = engine_of(L);
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL)
        return luaL_error(L, "out of memory creating match scratch");
    struct line_view view = {0};
    int viewed = line_view_make(&view, text, len);
    if (viewed < 0) {
        scratch_free(scratch);
        line_view_free(&view);
        return luaL_error(L, "out of memory making the view of a JSON log line");
    }
    if (viewed) {
        text = view.text;
        len = view.len;
    }
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t r = 0; r < engine->record_count; r++) {
        size_t start, end;
        if (record_match(engine->records[r], scratch, text, len, &start, &end) == MATCH_HIT) {
            lua_pushinteger(L, (lua_Integer)r + 1);
            lua_rawseti(L, -2, ++n);
        }
    }
    scratch_free(scratch);
    line_view_free(&view);
    return 1;
}

/* core.guess(text) -> list of {index=, id=, score=, similarity=}, best first:
** the records closest to text when no regex matched it. */
static int core_guess(lua_State *L)
{
    const struct triage_engine *engine = engine_of(L);
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    struct hit guesses[8];
    int n = engine->prepared ? rank_guess(engine, text, len, guesses, 8) : 0;
    if (n < 0)
        return luaL_error(L, "out of memory ranking guesses");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, (lua_Integer)guesses[i].record + 1);
        lua_setfield(L, -2, "index");
        lua_pushstring(L, guesses[i].id);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, guesses[i].score);
        lua_setfield(L, -2, "score");
        lua_pushnumber(L, guesses[i].parts[TRIAGE_PART_SIMILARITY]);
        lua_setfield(L, -2, "similarity");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg core_functions[] = {
    {"guess", core_guess},
    {"match_all", core_match_all},
    {"record_count", core_record_count},
    {"find", core_find},
    {"record_json", core_record_json},
    {"record_info", core_record_info},
    {"match", core_match},
    {NULL, NULL},
};

static int open_core(lua_State *L)
{
    luaL_newlib(L, core_functions);
    lua_pushstring(L, engine_of(L)->datadir);
    lua_setfield(L, -2, "datadir");
    lua_pushstring(L, TRIAGE_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}

/* Message handler: add a traceback to string errors, describe the others. */
static int message_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Call engine.lua's function `name` with nargs arguments already pushed
** above it; one protected call with a traceback handler, the stack restored
** by the caller. Returns 0, or -1 with the error set. */
static int call_engine(lua_State *L, const char *name, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* Only the first line goes to the caller; the traceback is for
        ** TRIAGE_DEBUG runs. */
        const char *nl = msg ? strchr(msg, '\n') : NULL;
        if (getenv("TRIAGE_DEBUG") != NULL || nl == NULL)
            set_error("%s: %s", name, msg ? msg : "unknown Lua error");
        else
            set_error("%s: %.*s", name, (int)(nl - msg), msg);
        lua_remove(L, base);
        lua_pop(L, 1);
        return -1;
    }
    lua_remove(L, base);
    return 0;
}

/* Push engine.lua's function `name`. */
static void push_engine_function(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "triage.engine.lua");
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

int lua_engine_init(struct triage_engine *engine)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        set_error("out of memory creating the Lua state");
        return -1;
    }
    engine->L = L;
    luaL_openlibs(L);
    lua_pushlightuserdata(L, engine);
    lua_setfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, open_core);
    lua_setfield(L, -2, "triage.core");
    lua_pushcfunction(L, luaopen_triage_regex);
    lua_setfield(L, -2, "triage.regex");
    lua_pushcfunction(L, luaopen_triage_script);
    lua_setfield(L, -2, "triage.script");
    lua_pop(L, 1);

    /* The engine's own modules come from its data folder only, so a stray
    ** triage module on the host's LUA_PATH cannot replace them. */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", engine->datadir, engine->datadir);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushstring(L, "triage.engine");
    if (call_engine(L, "require", 1, 1) != 0)
        return -1;
    lua_setfield(L, LUA_REGISTRYINDEX, "triage.engine.lua");
    return 0;
}

void lua_engine_close(struct triage_engine *engine)
{
    if (engine->L != NULL)
        lua_close(engine->L);
    engine->L = NULL;
}

static void set_string_field(lua_State *L, const char *key, const char *value)
{
    if (value == NULL)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static void push_options(lua_State *L, const triage_render_options *options)
{
    lua_createtable(L, 0, 8);
    set_string_field(L, "format", options->format ? options->format : "text");
    set_string_field(L, "lang", options->lang ? options->lang : "en");
    lua_pushinteger(L, options->top);
    lua_setfield(L, -2, "top");
    lua_pushboolean(L, options->color);
    lua_setfield(L, -2, "color");
    lua_pushboolean(L, options->explain);
    lua_setfield(L, -2, "explain");
    lua_pushboolean(L, options->guess);
    lua_setfield(L, -2, "guess");
    lua_pushnumber(L, options->min_score);
    lua_setfield(L, -2, "min_score");
}

static const char *const PART_NAMES[TRIAGE_SCORE_PARTS] = {"literal", "coverage", "similarity", "confidence"};

/* Push one hit as a table; the captures come from matching its line again. */
static void push_hit(lua_State *L, const struct triage_engine *engine, struct match_scratch *scratch,
                     const char *text, const struct hit *hit)
{
    const struct record *record = engine->records[hit->record];
    const char *line = text + hit->line_start;
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, (lua_Integer)hit->record + 1);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, record->id);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, hit->score);
    lua_setfield(L, -2, "score");
    lua_createtable(L, 0, TRIAGE_SCORE_PARTS);
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++) {
        lua_pushnumber(L, hit->parts[p]);
        lua_setfield(L, -2, PART_NAMES[p]);
    }
    lua_setfield(L, -2, "parts");
    double weights[TRIAGE_SCORE_PARTS], floor;
    rank_weights(weights, &floor);
    lua_createtable(L, 0, TRIAGE_SCORE_PARTS);
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++) {
        lua_pushnumber(L, weights[p]);
        lua_setfield(L, -2, PART_NAMES[p]);
    }
    lua_setfield(L, -2, "weights");
    lua_pushnumber(L, floor);
    lua_setfield(L, -2, "match_floor");
    lua_pushinteger(L, (lua_Integer)hit->line);
    lua_setfield(L, -2, "line");
    lua_pushlstring(L, line, hit->line_len);
    lua_setfield(L, -2, "line_text");
    lua_pushinteger(L, (lua_Integer)(hit->start - hit->line_start) + 1);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)(hit->end - hit->line_start));
    lua_setfield(L, -2, "end");
    lua_pushlstring(L, text + hit->start, hit->end - hit->start);
    lua_setfield(L, -2, "text");
    lua_pushinteger(L, hit->alternative + 1);
    lua_setfield(L, -2, "alternative");
    lua_pushstring(L, hit->pattern != NULL ? hit->pattern : record->regex);
    lua_setfield(L, -2, "pattern");
    lua_pushnumber(L, hit->line_weight);
    lua_setfield(L, -2, "line_weight");
    lua_pushboolean(L, hit->truncated);
    lua_setfield(L, -2, "truncated");
    lua_pushboolean(L, hit->by_signature);
    lua_setfield(L, -2, "by_signature");
    /* Captures of a JSON line come from its view, escapes undone, as it was matched. */
    struct line_view view = {0};
    const char *subject = line;
    size_t subject_len = hit->line_len;
    if (line_view_make(&view, line, hit->line_len) == 1) {
        subject = view.text;
        subject_len = view.len;
    }
    size_t start, end;
    if (record_match(record, scratch, subject, subject_len, &start, &end) == MATCH_HIT)
        push_captures(L, record, scratch, subject);
    else
        lua_newtable(L);
    line_view_free(&view);
    lua_setfield(L, -2, "captures");
}

int lua_engine_render(struct triage_engine *engine, const char *text, size_t len, const struct hit *hits,
                      size_t hit_count, const triage_render_options *options, char **out, size_t *out_len,
                      int *diagnosed)
{
    struct match_scratch *scratch = scratch_new();
    if (scratch == NULL) {
        set_error("out of memory creating match scratch");
        return -1;
    }
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    if (!lua_checkstack(L, 8)) {
        set_error("Lua stack overflow");
        goto done;
    }
    push_engine_function(L, "diagnose");
    lua_createtable(L, (int)hit_count, 0);
    for (size_t i = 0; i < hit_count; i++) {
        push_hit(L, engine, scratch, text, &hits[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushlstring(L, text, len);
    push_options(L, options);
    if (call_engine(L, "diagnose", 3, 3) != 0)
        goto done;
    /* The third result lists the rule failures first seen in this call. */
    sandbox_add_failures(&engine->problems, L, -1);
    lua_pop(L, 1);
    size_t n;
    const char *rendered = lua_tolstring(L, -2, &n);
    if (rendered == NULL) {
        set_error("diagnose: the formatter returned %s, expected a string", luaL_typename(L, -2));
        goto done;
    }
    *out = malloc(n + 1);
    if (*out == NULL) {
        set_error("out of memory copying %zu bytes of output", n);
        goto done;
    }
    memcpy(*out, rendered, n);
    (*out)[n] = '\0';
    *out_len = n;
    *diagnosed = (int)lua_tointeger(L, -1);
    rc = 0;
done:
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    scratch_free(scratch);
    return rc;
}

/* Render a scan summary, the JSON document of scan_summary.c, with
** engine.lua's scan(). *findings receives the number of findings. */
int lua_engine_render_scan(struct triage_engine *engine, const char *summary, size_t len,
                           const triage_render_options *options, char **out, size_t *out_len, int *findings)
{
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    push_engine_function(L, "scan");
    lua_pushlstring(L, summary, len);
    push_options(L, options);
    if (call_engine(L, "scan", 2, 2) == 0) {
        size_t n;
        const char *rendered = lua_tolstring(L, -2, &n);
        if (rendered == NULL) {
            set_error("scan: the formatter returned %s, expected a string", luaL_typename(L, -2));
        } else if ((*out = malloc(n + 1)) == NULL) {
            set_error("out of memory copying %zu bytes of output", n);
        } else {
            memcpy(*out, rendered, n + 1);
            *out_len = n;
            *findings = (int)lua_tointeger(L, -1);
            rc = 0;
        }
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    return rc;
}

int lua_engine_call(struct triage_engine *engine, const char *name, const char *const *args, const size_t *lens,
                    int nargs, const triage_render_options *options, char **out, size_t *out_len, int *numbers,
                    int nnumbers)
{
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    if (!lua_checkstack(L, nargs + nnumbers + 8)) {
        set_error("%s: Lua stack overflow", name);
        goto done;
    }
    push_engine_function(L, name);
    for (int i = 0; i < nargs; i++) {
        if (args[i] == NULL)
            lua_pushnil(L);
        else
            lua_pushlstring(L, args[i], lens != NULL ? lens[i] : strlen(args[i]));
    }
    if (options != NULL)
        push_options(L, options);
    if (call_engine(L, name, nargs + (options != NULL), 1 + nnumbers) != 0)
        goto done;
    for (int i = 0; i < nnumbers; i++)
        numbers[i] = (int)lua_tointeger(L, -nnumbers + i);
    if (out != NULL) {
        size_t n;
        const char *text = lua_tolstring(L, -nnumbers - 1, &n);
        if (text == NULL || (*out = malloc(n + 1)) == NULL) {
            set_error("%s: %s", name, text == NULL ? "no text returned" : "out of memory copying the output");
            goto done;
        }
        memcpy(*out, text, n + 1);
        if (out_len != NULL)
            *out_len = n;
    }
    rc = 0;
done:
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    return rc;
}

int triage_show(triage_engine *engine, const char *id, const triage_render_options *options, char **out,
                size_t *out_len)
{
    if (engine == NULL || id == NULL || out == NULL) {
        set_error("triage_show: engine, id and out are required");
        return -1;
    }
    *out = NULL;
    if (engine_find(engine, id) == NULL) {
        set_error("record '%s' is not loaded; 'triage check PATH' lists the ids of a folder", id);
        return -1;
    }
    triage_render_options defaults = {0};
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    push_engine_function(L, "show");
    lua_pushstring(L, id);
    push_options(L, options ? options : &defaults);
    if (call_engine(L, "show", 2, 1) == 0) {
        size_t n;
        const char *rendered = lua_tolstring(L, -1, &n);
        if (rendered != NULL && (*out = malloc(n + 1)) != NULL) {
            memcpy(*out, rendered, n + 1);
            if (out_len != NULL)
                *out_len = n;
            rc = 0;
        } else {
            set_error("show: no output");
        }
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    return rc;
}

int triage_load_site(triage_engine *engine, const char *path)
{
    if (engine == NULL || path == NULL) {
        set_error("triage_load_site: engine and path are required");
        return -1;
    }
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    push_engine_function(L, "load_site");
    lua_pushstring(L, path);
    int rc = call_engine(L, "site", 1, 0);
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    return rc;
}

/* Lua's check returns a list of problems {severity=, file=, id=, field=, message=}. */
int triage_check(triage_engine *engine, const char *sample_path)
{
    if (engine == NULL) {
        set_error("triage_check: engine is required");
        return -1;
    }
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    push_engine_function(L, "check");
    if (sample_path != NULL)
        lua_pushstring(L, sample_path);
    else
        lua_pushnil(L);
    if (call_engine(L, "check", 1, 1) == 0 && lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "severity");
            lua_getfield(L, -2, "file");
            lua_getfield(L, -3, "id");
            lua_getfield(L, -4, "field");
            lua_getfield(L, -5, "message");
            const char *severity = lua_tostring(L, -5);
            problem_add(&engine->problems,
                        severity && strcmp(severity, "error") == 0 ? TRIAGE_ERROR : TRIAGE_WARNING,
                        lua_tostring(L, -4), 0, 0, lua_tostring(L, -3), lua_tostring(L, -2), "%s",
                        lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
            lua_pop(L, 6);
        }
        rc = 0;
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    engine_report_limits(engine);
    if (rc != 0)
        return -1;
    int errors = 0;
    for (size_t i = 0; i < engine->problems.count; i++)
        errors += engine->problems.items[i].severity == TRIAGE_ERROR;
    return errors;
}
