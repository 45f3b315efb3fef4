/*
** triage.regex: PCRE2 regexes for Lua code (rules, examples, host scripts).
**
** Owns: the `triage.regex` userdata type and its module table.
** Depends on: match.c. A pattern is compiled by record_compile() on a
** stand-in record, so it gets exactly the compile options (case-insensitive,
** UTF with invalid UTF-8 in subjects tolerated, \C refused), the JIT choice
** and the match, depth and heap limits of record regexes.
**
**   local regex = require "triage.regex"
**   local re = regex("client (?<host>\\S+)\\[(?<ip>[0-9.]+)\\]")  -- or regex.new(...)
**   local m, first, last = re:match(line)
**   -- m[0] whole match, m[1].. numbered groups (false when unset),
**   -- m.host, m.ip named groups; first..last is the 1-based span.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lua_regex.h"

#define REGEX_TYPE "triage.regex"

struct regex {
    struct record *record; /* NULL once freed */
    struct match_scratch *scratch;
};

static struct regex *check_regex(lua_State *L, int arg)
{
    struct regex *re = luaL_checkudata(L, arg, REGEX_TYPE);
    if (re->record == NULL)
        luaL_argerror(L, arg, "regex has been freed");
    return re;
}

static void free_regex(struct regex *re)
{
    record_free(re->record);
    scratch_free(re->scratch);
    re->record = NULL;
    re->scratch = NULL;
}

/* Build a record that carries only the pattern, or NULL with *message set
** to the compile error (freed by the caller). */
static struct record *compile_pattern(const char *pattern, char **message)
{
    struct record *record = calloc(1, sizeof *record);
    struct problem_list problems = {0};
    *message = NULL;
    if (record == NULL)
        return NULL;
    record->id = dup_string("triage.regex");
    record->file = dup_string("(lua)");
    record->regex = dup_string(pattern);
    if (record->id == NULL || record->file == NULL || record->regex == NULL) {
        record_free(record);
        return NULL;
    }
    if (record_compile(record, NULL, &problems) != 0) {
        if (problems.count > 0)
            *message = dup_string(problems.items[0].message);
        record_free(record);
        record = NULL;
    }
    problem_list_free(&problems);
    return record;
}

/*
** regex.new(pattern) -> regex
** Raises when the pattern does not compile, naming PCRE2's message and the
** offset, because a bad pattern is an error in the calling code.
*/
static int regex_new(lua_State *L)
{
    size_t len;
    const char *pattern = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, strlen(pattern) == len, 1, "pattern contains a NUL byte; write it as \\x00");
    struct regex *re = lua_newuserdatauv(L, sizeof *re, 0);
    re->record = NULL; /* closed until both parts exist, so __gc is always safe */
    re->scratch = NULL;
    luaL_setmetatable(L, REGEX_TYPE);

    char *message;
    struct record *record = compile_pattern(pattern, &message);
    if (record == NULL) {
        lua_pushfstring(L, "triage.regex: %s", message ? message : "out of memory compiling the pattern");
        free(message);
        return lua_error(L);
    }
    re->record = record;
    re->scratch = scratch_new();
    if (re->scratch == NULL) {
        free_regex(re);
        return luaL_error(L, "triage.regex: out of memory creating match data");
    }
    return 1;
}

/* regex(pattern), through the module table's __call; drops the table argument. */
static int regex_call(lua_State *L)
{
    lua_remove(L, 1);
    return regex_new(L);
}

/* Push the captures of the last hit: [0], 1..n (false when unset) and names. */
static void push_captures(lua_State *L, const struct regex *re, const char *subject)
{
    const struct record *record = re->record;
    lua_createtable(L, (int)record->group_count, 1);
    for (uint32_t g = 0; g <= record->group_count; g++) {
        size_t start, end;
        if (scratch_group(re->scratch, g, &start, &end) == 0)
            lua_pushlstring(L, subject + start, end - start);
        else
            lua_pushboolean(L, 0);
        if (record->group_names[g] != NULL) {
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, record->group_names[g]);
        }
        lua_rawseti(L, -2, (lua_Integer)g);
    }
}

/*
** re:match(text) -> captures, first, last | nil | nil, message
** captures[0] is the whole match, captures[i] group i (false when it did not
** take part), captures[name] each named group. first and last are 1-based
** and inclusive, as string.find returns them. No match returns nil; a match
** that hits a PCRE2 limit returns nil and a message, because the text may
** still contain the pattern.
*/
static int regex_match(lua_State *L)
{
    struct regex *re = check_regex(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    size_t start, end;
    switch (record_match(re->record, re->scratch, text, len, &start, &end)) {
    case MATCH_HIT:
        push_captures(L, re, text);
        lua_pushinteger(L, (lua_Integer)start + 1);
        lua_pushinteger(L, (lua_Integer)end);
        return 3;
    case MATCH_NONE:
        lua_pushnil(L);
        return 1;
    case MATCH_LIMIT:
        lua_pushnil(L);
        lua_pushfstring(L, "regex '%s' hit the PCRE2 match limit on a %I-byte subject; simplify the pattern",
                        re->record->regex, (lua_Integer)len);
        return 2;
    case MATCH_ERROR:
    default:
        lua_pushnil(L);
        lua_pushfstring(L, "regex '%s' failed on the subject (PCRE2 error)", re->record->regex);
        return 2;
    }
}

/* re:pattern() -> the source text of the pattern */
static int regex_pattern(lua_State *L)
{
    lua_pushstring(L, check_regex(L, 1)->record->regex);
    return 1;
}

static int regex_gc(lua_State *L)
{
    free_regex(luaL_checkudata(L, 1, REGEX_TYPE));
    return 0;
}

static int regex_tostring(lua_State *L)
{
    struct regex *re = luaL_checkudata(L, 1, REGEX_TYPE);
    if (re->record == NULL)
        lua_pushliteral(L, "triage.regex (freed)");
    else
        lua_pushfstring(L, "triage.regex: %s", re->record->regex);
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"new", regex_new},
    {NULL, NULL},
};

static const luaL_Reg regex_methods[] = {
    {"match", regex_match},
    {"pattern", regex_pattern},
    {NULL, NULL},
};

static const luaL_Reg regex_metamethods[] = {
    {"__index", NULL}, /* set to the method table below */
    {"__gc", regex_gc},
    {"__close", regex_gc},
    {"__tostring", regex_tostring},
    {NULL, NULL},
};

static void create_metatable(lua_State *L)
{
    if (luaL_newmetatable(L, REGEX_TYPE)) {
        luaL_setfuncs(L, regex_metamethods, 0);
        luaL_newlibtable(L, regex_methods);
        luaL_setfuncs(L, regex_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

int luaopen_triage_regex(lua_State *L)
{
    create_metatable(L);
    luaL_newlib(L, module_functions);
    lua_createtable(L, 0, 1); /* module metatable: regex(pattern) == regex.new(pattern) */
    lua_pushcfunction(L, regex_call);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, -2);
    return 1;
}
