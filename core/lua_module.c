/*
** The `triage` Lua module: require "triage" from any Lua 5.4 host.
**
** Owns: triage.open(), the `triage.engine` userdata type, the module's
** default data folder, and the conversion of engine results into values of
** the caller's Lua state. engine:scan() lives in lua_scan.c.
** Depends on: the public C API; internal.h only for engine:datadir() and
** the id lookup of engine:record().
**
** The module carries no Lua runtime of its own: it is linked without
** liblua, and the Lua API comes from the host process (Debian's lua5.4
** interpreter exports it). Each engine still owns a separate lua_State for
** report building, created by that same runtime. Tables never cross from one
** state to the other: the engine renders a report as JSON and a private
** lua-cjson instance decodes it in the caller's state, so the table has
** exactly the shape of the JSON contract (schema "triage.report/1").
*/
#define _GNU_SOURCE /* dladdr and realpath */
#include <dlfcn.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lua_module.h"
#include "lua_regex.h"

int luaopen_cjson(lua_State *L);
__attribute__((visibility("default"))) int luaopen_triage(lua_State *L);

/* Upvalue of every engine method: the module's private lua-cjson instance. */
#define CJSON_UPVALUE lua_upvalueindex(1)

/* {====================================================================
** Data folder
** ===================================================================== */

static int is_datadir(const char *dir)
{
    char *probe = dup_printf("%s/lua/triage/report.lua", dir);
    int ok = probe != NULL && path_exists(probe);
    free(probe);
    return ok;
}

/* The installed data folder relative to this module's file, or NULL when
** the module is not installed (a build tree) or the folder is missing. */
static char *module_datadir(void)
{
    Dl_info info;
    if (dladdr((void *)luaopen_triage, &info) == 0 || info.dli_fname == NULL ||
        strchr(info.dli_fname, '/') == NULL)
        return NULL;
    char *file = realpath(info.dli_fname, NULL);
    if (file == NULL)
        return NULL;
    char *slash = strrchr(file, '/');
    *slash = '\0';
    char *candidate = dup_printf("%s/%s", file, TRIAGE_MODULE_DATADIR_RELATIVE);
    free(file);
    if (candidate != NULL && is_datadir(candidate)) {
        char *resolved = realpath(candidate, NULL);
        if (resolved != NULL) {
            free(candidate);
            return resolved;
        }
        return candidate;
    }
    free(candidate);
    return NULL;
}

/* }==================================================================== */

/* {====================================================================
** Option tables
** ===================================================================== */

/* Raise unless every key of the table at idx is in allowed. */
void check_keys(lua_State *L, int idx, const char *what, const char *const allowed[])
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int known = 0;
        for (size_t i = 0; key != NULL && allowed[i] != NULL; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (size_t i = 0; allowed[i] != NULL; i++) {
                luaL_addstring(&b, i > 0 ? ", " : "");
                luaL_addstring(&b, allowed[i]);
            }
            luaL_pushresult(&b);
            if (key != NULL)
                luaL_error(L, "%s: unknown option '%s'; expected one of %s", what, key, lua_tostring(L, -1));
            luaL_error(L, "%s: option keys must be strings, got a %s key; expected one of %s", what,
                       luaL_typename(L, -2), lua_tostring(L, -1));
        }
    }
}

/* Push options[key]; raise unless it is nil or of type `type`. */
static int get_option(lua_State *L, int idx, const char *what, const char *key, int type)
{
    int t = lua_getfield(L, idx, key);
    if (t != LUA_TNIL && t != type)
        luaL_error(L, "%s: option '%s' must be a %s, got %s", what, key, lua_typename(L, type),
                   luaL_typename(L, -1));
    return t;
}

static const char *option_string(lua_State *L, int idx, const char *what, const char *key)
{
    const char *value = NULL;
    if (get_option(L, idx, what, key, LUA_TSTRING) == LUA_TSTRING)
        value = lua_tostring(L, -1); /* valid during the call: the options table references it */
    lua_pop(L, 1);
    return value;
}

int option_boolean(lua_State *L, int idx, const char *what, const char *key)
{
    get_option(L, idx, what, key, LUA_TBOOLEAN);
    int value = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

lua_Number option_number(lua_State *L, int idx, const char *what, const char *key, lua_Number dflt,
                                lua_Number min, lua_Number max)
{
    lua_Number value = dflt;
    if (get_option(L, idx, what, key, LUA_TNUMBER) == LUA_TNUMBER) {
        value = lua_tonumber(L, -1);
        if (!(value >= min && value <= max))
            luaL_error(L, "%s: option '%s' is %f; expected a number from %f to %f", what, key, value, min, max);
    }
    lua_pop(L, 1);
    return value;
}

static const char *const RENDER_KEYS[] = {"format", "lang", "top", "min_score", "explain", "guess", "color", NULL};

/* Read render options from the table at idx (nil or none: defaults).
** allow_format is 0 where the format is fixed by the method. */
static triage_render_options render_options(lua_State *L, int idx, const char *what, int allow_format)
{
    triage_render_options ro = {0};
    if (lua_isnoneornil(L, idx))
        return ro;
    luaL_checktype(L, idx, LUA_TTABLE);
    check_keys(L, idx, what, allow_format ? RENDER_KEYS : RENDER_KEYS + 1);
    ro.format = allow_format ? option_string(L, idx, what, "format") : NULL;
    ro.lang = option_string(L, idx, what, "lang");
    ro.top = (int)option_number(L, idx, what, "top", 0, 0, 1000000);
    ro.min_score = option_number(L, idx, what, "min_score", 0, 0, 1);
    ro.explain = option_boolean(L, idx, what, "explain");
    ro.guess = option_boolean(L, idx, what, "guess");
    ro.color = option_boolean(L, idx, what, "color");
    return ro;
}

/* }==================================================================== */

/* {====================================================================
** Engine
** ===================================================================== */

static struct engine_box *check_box(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, ENGINE_TYPE);
}

/* The engine of argument arg; raises when it has been closed. */
triage_engine *check_engine(lua_State *L, int arg)
{
    struct engine_box *box = check_box(L, arg);
    if (box->engine == NULL)
        luaL_argerror(L, arg, "engine is closed");
    return box->engine;
}

/* The engine of argument arg for a call that changes it: raises while a
** scan still reads through it, because records must not change under a scan. */
static triage_engine *check_idle_engine(lua_State *L, int arg, const char *what)
{
    triage_engine *engine = check_engine(L, arg);
    int scans = check_box(L, arg)->open_scans;
    if (scans > 0)
        luaL_error(L, "%s: %d scan(s) still use the engine; run them to the end or close them first", what,
                   scans);
    return engine;
}

/* Return nil and the library's last error message: the convention for
** failures of data or environment (a missing file, a bad record). */
int push_failure(lua_State *L)
{
    lua_pushnil(L);
    lua_pushstring(L, triage_last_error());
    return 2;
}

/* Load records from options.records (a path or a list of paths), or the
** shipped records when the option is absent. Returns 0, or -1 with the
** library's error set. */
static int load_record_option(lua_State *L, triage_engine *engine, int idx)
{
    int t = lua_isnoneornil(L, idx) ? LUA_TNIL : lua_getfield(L, idx, "records");
    if (t == LUA_TNIL) {
        if (!lua_isnoneornil(L, idx))
            lua_pop(L, 1);
        return triage_load_default_records(engine) < 0 ? -1 : 0;
    }
    int rc = 0;
    if (t == LUA_TSTRING) {
        rc = triage_load_records(engine, lua_tostring(L, -1)) < 0 ? -1 : 0;
    } else {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
            lua_geti(L, -1, i);
            rc = triage_load_records(engine, lua_tostring(L, -1)) < 0 ? -1 : 0;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return rc;
}

static int load_site_option(lua_State *L, triage_engine *engine, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    int t = lua_getfield(L, idx, "sites");
    int rc = 0;
    if (t == LUA_TSTRING) {
        rc = triage_load_site(engine, lua_tostring(L, -1));
    } else if (t == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; rc == 0 && i <= n; i++) {
            lua_geti(L, -1, i);
            rc = triage_load_site(engine, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return rc;
}

/* Raise unless options[key] is nil, a string, or a list of strings. */
static void check_path_list(lua_State *L, int idx, const char *key)
{
    int t = lua_getfield(L, idx, key);
    if (t == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, -1, i) != LUA_TSTRING)
                luaL_error(L, "triage.open: %s[%I] must be a path string, got %s", key, i, luaL_typename(L, -1));
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL && t != LUA_TSTRING) {
        luaL_error(L, "triage.open: option '%s' must be a path or a list of paths, got %s", key,
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

static const char *const OPEN_KEYS[] = {"datadir", "records", "sites", "no_site_layers", "strict", NULL};

/*
** triage.open([options]) -> engine | nil, message
** options: datadir (folder with records/, rules/ and lua/), records (a path
** or list of paths that replace the shipped records), sites (site files
** applied in order), no_site_layers (skip /etc/triage/site.lua and the
** user's), strict (a rejected record fails the open). Bad option types
** raise; a load failure returns nil and the message.
*/
static int module_open(lua_State *L)
{
    triage_options opts = {0};
    lua_settop(L, 1); /* the options table or nil; the engine goes above it */
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        check_keys(L, 1, "triage.open", OPEN_KEYS);
        opts.datadir = option_string(L, 1, "triage.open", "datadir");
        check_path_list(L, 1, "records");
        check_path_list(L, 1, "sites");
        opts.flags |= option_boolean(L, 1, "triage.open", "no_site_layers") ? TRIAGE_NO_SITE_LAYERS : 0;
        opts.flags |= option_boolean(L, 1, "triage.open", "strict") ? TRIAGE_STRICT : 0;
    }
    struct engine_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->engine = NULL; /* closed until opened, so __gc is always safe */
    box->open_scans = 0;
    luaL_setmetatable(L, ENGINE_TYPE);

    /* An installed module prefers the data installed beside it over the
    ** engine's own search, which would find the source tree of the build. */
    char *installed = NULL;
    const char *env = getenv("TRIAGE_DATADIR");
    if (opts.datadir == NULL && (env == NULL || *env == '\0'))
        opts.datadir = installed = module_datadir();
    box->engine = triage_open(&opts);
    free(installed);
    if (box->engine == NULL)
        return push_failure(L);
    if (load_record_option(L, box->engine, 1) != 0 || load_site_option(L, box->engine, 1) != 0) {
        int n = push_failure(L);
        triage_close(&box->engine);
        return n;
    }
    return 1;
}

/* Decode the JSON text at the top of the stack with the private cjson
** instance, replacing it by the decoded value. */
static void decode_json(lua_State *L)
{
    lua_getfield(L, CJSON_UPVALUE, "decode");
    lua_insert(L, -2);
    lua_call(L, 1, 1);
}

/* Push rendered output and free it. The output is copied into a Lua string
** inside a protected call so that an out-of-memory error cannot leak it. */
static int push_output(lua_State *L)
{
    char **out = lua_touserdata(L, 1);
    size_t *len = lua_touserdata(L, 2);
    lua_pushlstring(L, *out, *len);
    return 1;
}

static void push_and_free(lua_State *L, char *out, size_t len)
{
    lua_pushcfunction(L, push_output);
    lua_pushlightuserdata(L, &out);
    lua_pushlightuserdata(L, &len);
    int rc = lua_pcall(L, 2, 1, 0);
    triage_free(out);
    if (rc != LUA_OK)
        lua_error(L);
}

/*
** engine:diagnose(text [, options]) -> report | nil, message
** The report table has the shape of `triage --format json`: schema, input,
** diagnoses[] with id, score, root_cause, dead_ends, workarounds, match,
** transitions and remediation. options: lang, top, min_score, explain,
** guess. JSON null values arrive as triage.cjson.null.
*/
static int engine_diagnose(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    triage_render_options ro = render_options(L, 3, "engine:diagnose", 0);
    ro.format = "json";
    char *out = NULL;
    size_t out_len = 0;
    if (triage_diagnose(engine, text, len, &ro, &out, &out_len) < 0)
        return push_failure(L);
    push_and_free(L, out, out_len);
    decode_json(L);
    return 1;
}

/*
** engine:render(text [, options]) -> output, count | nil, message
** Render the diagnosis of text with options.format: text (the default),
** json, ndjson, markdown, or the path of a Lua formatter file. count is the
** number of diagnoses.
*/
static int engine_render(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    triage_render_options ro = render_options(L, 3, "engine:render", 1);
    char *out = NULL;
    size_t out_len = 0;
    int count = triage_diagnose(engine, text, len, &ro, &out, &out_len);
    if (count < 0)
        return push_failure(L);
    push_and_free(L, out, out_len);
    lua_pushinteger(L, count);
    return 2;
}

/* engine:show(id [, options]) -> output | nil, message */
static int engine_show(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    const char *id = luaL_checkstring(L, 2);
    triage_render_options ro = render_options(L, 3, "engine:show", 1);
    char *out = NULL;
    size_t out_len = 0;
    if (triage_show(engine, id, &ro, &out, &out_len) != 0)
        return push_failure(L);
    push_and_free(L, out, out_len);
    return 1;
}

static const char *const PART_NAMES[TRIAGE_SCORE_PARTS] = {"literal", "coverage", "similarity", "confidence"};

/* Push one hit as {id=, score=, line=, start=, ["end"]=, parts={...}};
** start and end are 1-based and inclusive within the whole text. */
static void push_hit(lua_State *L, const triage_hit *hit)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, hit->id);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, hit->score);
    lua_setfield(L, -2, "score");
    lua_pushinteger(L, (lua_Integer)hit->line);
    lua_setfield(L, -2, "line");
    lua_pushinteger(L, (lua_Integer)hit->start + 1);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)hit->end);
    lua_setfield(L, -2, "end");
    lua_createtable(L, 0, TRIAGE_SCORE_PARTS);
    for (int p = 0; p < TRIAGE_SCORE_PARTS; p++) {
        lua_pushnumber(L, hit->parts[p]);
        lua_setfield(L, -2, PART_NAMES[p]);
    }
    lua_setfield(L, -2, "parts");
}

/* Match text and return every hit, ranked, in a malloc'ed array; NULL with
** *count < 0 on failure. */
static triage_hit *match_all(triage_engine *engine, const char *text, size_t len, int *count)
{
    size_t cap = 16;
    for (;;) {
        triage_hit *hits = malloc(cap * sizeof *hits);
        if (hits == NULL) {
            set_error("out of memory matching");
            *count = -1;
            return NULL;
        }
        *count = triage_match(engine, text, len, hits, cap);
        if (*count < 0 || (size_t)*count <= cap) {
            if (*count < 0) {
                free(hits);
                return NULL;
            }
            return hits;
        }
        cap = (size_t)*count;
        free(hits);
    }
}

/*
** engine:match(text) -> hits | nil, message
** The ranked regex hits without report building, one per record:
** {id, score, line, start, end, parts}. Cheaper than diagnose, for filtering.
*/
static int engine_match(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int count;
    triage_hit *hits = match_all(engine, text, len, &count);
    if (hits == NULL)
        return push_failure(L);
    if (!lua_checkstack(L, 4)) {
        free(hits);
        return luaL_error(L, "Lua stack overflow");
    }
    lua_createtable(L, count, 0);
    for (int i = 0; i < count; i++) {
        push_hit(L, &hits[i]);
        lua_rawseti(L, -2, i + 1);
    }
    free(hits);
    return 1;
}

/* engine:load_records(path) -> count | nil, message */
static int engine_load_records(lua_State *L)
{
    int n = triage_load_records(check_idle_engine(L, 1, "engine:load_records"), luaL_checkstring(L, 2));
    if (n < 0)
        return push_failure(L);
    lua_pushinteger(L, n);
    return 1;
}

/* engine:load_site(path) -> true | nil, message */
static int engine_load_site(lua_State *L)
{
    if (triage_load_site(check_idle_engine(L, 1, "engine:load_site"), luaL_checkstring(L, 2)) != 0)
        return push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* engine:record_count() -> number of loaded records */
static int engine_record_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)triage_record_count(check_engine(L, 1)));
    return 1;
}

/* engine:ids() -> list of the loaded record ids, in load order */
static int engine_ids(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    size_t n = triage_record_count(engine);
    lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, triage_record_id(engine, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static void set_string(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, key);
}

/* engine:problems() -> list of {severity, file, line, column, id, field, message} */
static int engine_problems(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    size_t n = triage_problem_count(engine);
    lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        lua_createtable(L, 0, 7);
        set_string(L, "severity", p->severity == TRIAGE_ERROR ? "error" : "warning");
        set_string(L, "file", p->file);
        lua_pushinteger(L, p->line);
        lua_setfield(L, -2, "line");
        lua_pushinteger(L, p->column);
        lua_setfield(L, -2, "column");
        set_string(L, "id", p->id);
        set_string(L, "field", p->field);
        set_string(L, "message", p->message);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/*
** engine:check([sample_path]) -> number of errors among all problems | nil, message
** sample_path: a log of routine lines; regexes that match most of them are reported.
*/
static int engine_check(lua_State *L)
{
    int errors = triage_check(check_engine(L, 1), luaL_optstring(L, 2, NULL));
    if (errors < 0)
        return push_failure(L);
    lua_pushinteger(L, errors);
    return 1;
}

/* engine:datadir() -> the folder the engine reads records, rules and Lua modules from */
static int engine_datadir(lua_State *L)
{
    lua_pushstring(L, check_engine(L, 1)->datadir);
    return 1;
}

/*
** engine:record(id) -> record | nil | nil, message
** The record as a table of the native model (records of the nested corpus
** schema are normalised), or nil when id is not loaded.
*/
static int engine_record(lua_State *L)
{
    triage_engine *engine = check_engine(L, 1);
    const char *id = luaL_checkstring(L, 2);
    if (engine_find(engine, id) == NULL) {
        lua_pushnil(L);
        return 1;
    }
    char *json = NULL;
    size_t len = 0;
    if (triage_record_field(engine, id, NULL, &json, &len) != 0)
        return push_failure(L);
    push_and_free(L, json, len);
    decode_json(L);
    return 1;
}

/* engine:close(): free the engine now instead of at garbage collection. */
static int engine_close(lua_State *L)
{
    struct engine_box *box = check_box(L, 1);
    if (box->engine != NULL)
        check_idle_engine(L, 1, "engine:close");
    triage_close(&box->engine);
    return 0;
}

static int engine_tostring(lua_State *L)
{
    struct engine_box *box = check_box(L, 1);
    if (box->engine == NULL)
        lua_pushliteral(L, "triage.engine (closed)");
    else
        lua_pushfstring(L, "triage.engine (%I records)", (lua_Integer)triage_record_count(box->engine));
    return 1;
}

/* }==================================================================== */

/* {====================================================================
** Graph
** ===================================================================== */

/* Push the triage.graph module: from package.loaded, through require
** (LUA_PATH with PREFIX/share/lua/5.4), or from the engine's data folder.
** Raises when none has it. */
static void push_graph_module(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "triage.graph") == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "triage.graph");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);

    /* Not on the host's path: load the copy in the data folder. */
    char *dir = module_datadir();
    const char *base = TRIAGE_SOURCE_DATADIR;
    const char *env = getenv("TRIAGE_DATADIR");
    if (env != NULL && *env != '\0')
        base = env;
    else if (dir != NULL)
        base = dir;
    char *path = dup_printf("%s/lua/triage/graph.lua", base);
    free(dir);
    if (path == NULL)
        luaL_error(L, "out of memory");
    int rc = luaL_loadfilex(L, path, "t");
    free(path);
    if (rc != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_istable(L, -1))
        luaL_error(L, "triage.graph is not reachable (%s); add PREFIX/share/lua/5.4/?.lua to LUA_PATH",
                   lua_isstring(L, -1) ? lua_tostring(L, -1) : "module did not return a table");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "triage.graph"); /* later require "triage.graph" gets the same table */
    lua_remove(L, -2);
}

/* Graph lookup: id -> record, through engine:record() with a cache.
** Upvalues: 1 the engine userdata, 2 the cache table. */
static int graph_lookup(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    if (lua_getfield(L, lua_upvalueindex(2), id) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    lua_getfield(L, lua_upvalueindex(1), "record"); /* the method, with its cjson upvalue */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 2, 1);
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(2), id);
    }
    return 1;
}

/*
** engine:graph() -> graph
** A triage.graph object over this engine's records: graph:resolve(record),
** graph:walk(id, kind, opts), graph:edges(record, kind).
*/
static int engine_graph(lua_State *L)
{
    check_engine(L, 1);
    push_graph_module(L);
    lua_getfield(L, -1, "new");
    lua_pushvalue(L, 1);
    lua_newtable(L);
    lua_pushcclosure(L, graph_lookup, 2);
    lua_call(L, 1, 1);
    return 1;
}

/* The module table's __index: triage.graph is loaded on first use. */
static int module_index(lua_State *L)
{
    const char *key = lua_tostring(L, 2);
    if (key == NULL || strcmp(key, "graph") != 0)
        return 0;
    push_graph_module(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "graph");
    return 1;
}

/* }==================================================================== */

static int engine_gc(lua_State *L)
{
    triage_close(&check_box(L, 1)->engine);
    return 0;
}

static const luaL_Reg module_functions[] = {
    {"open", module_open},
    {NULL, NULL},
};

static const luaL_Reg engine_methods[] = {
    {"diagnose", engine_diagnose},
    {"render", engine_render},
    {"show", engine_show},
    {"match", engine_match},
    {"scan", engine_scan},
    {"record", engine_record},
    {"graph", engine_graph},
    {"ids", engine_ids},
    {"record_count", engine_record_count},
    {"problems", engine_problems},
    {"check", engine_check},
    {"load_records", engine_load_records},
    {"load_site", engine_load_site},
    {"datadir", engine_datadir},
    {"close", engine_close},
    {NULL, NULL},
};

static const luaL_Reg engine_metamethods[] = {
    {"__index", NULL}, /* set to the method table below */
    {"__gc", engine_gc},
    {"__close", engine_gc},
    {"__tostring", engine_tostring},
    {NULL, NULL},
};

/* Create the metatables; the cjson instance is at the top of the stack and
** becomes the upvalue of every engine method. */
static void create_metatables(lua_State *L)
{
    if (luaL_newmetatable(L, ENGINE_TYPE)) {
        lua_pushvalue(L, -2);
        luaL_setfuncs(L, engine_metamethods, 1);
        luaL_newlibtable(L, engine_methods);
        lua_pushvalue(L, -3);
        luaL_setfuncs(L, engine_methods, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    create_scan_metatable(L);
}

/*
** require "triage" -> module table: open, regex, graph (loaded on first
** use), cjson (a private lua-cjson instance, also used to decode reports),
** version, datadir (the installed data folder next to the module, or nil).
*/
int luaopen_triage(lua_State *L)
{
    luaL_checkversion(L);
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1); /* private instance: the host's cjson settings do not apply */
    create_metatables(L);

    luaL_newlib(L, module_functions);
    lua_insert(L, -2);
    lua_setfield(L, -2, "cjson");
    luaL_requiref(L, "triage.regex", luaopen_triage_regex, 0);
    lua_setfield(L, -2, "regex");
    lua_pushstring(L, triage_version());
    lua_setfield(L, -2, "version");
    char *dir = module_datadir();
    if (dir != NULL) {
        lua_pushstring(L, dir);
        lua_setfield(L, -2, "datadir");
        free(dir);
    }
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, module_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    return 1;
}
