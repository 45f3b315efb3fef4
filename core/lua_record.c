/*
** Record access for embedders: triage_record_field().
**
** Owns: reading one loaded record, or one of its fields, as text.
** Depends on: the engine's Lua state (lua_engine.c), where records are
** decoded from their validated JSON and normalised to the native model by
** lua/triage/record.lua, so C callers see what formatters and rules see.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Runs in the engine's state. Returns the text, or nil and a reason. */
static const char FIELD_CHUNK[] =
    "local id, field = ...\n"
    "local record = require('triage.record').by_id(id)\n"
    "if record == nil then return nil, 'missing' end\n"
    "local value = record\n"
    "if field ~= nil then value = record[field] end\n"
    "if value == nil then return nil, 'absent' end\n"
    "if type(value) == 'table' then return require('cjson').encode(value) end\n"
    "return tostring(value)\n";

/* Copy the string at the top of L into *out; returns 0, or -1 when out of memory. */
static int copy_result(lua_State *L, const char *id, char **out, size_t *out_len)
{
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    *out = malloc(len + 1);
    if (*out == NULL) {
        set_error("out of memory copying record '%s'", id);
        return -1;
    }
    memcpy(*out, text, len + 1);
    if (out_len != NULL)
        *out_len = len;
    return 0;
}

int triage_record_field(triage_engine *engine, const char *id, const char *field, char **out, size_t *out_len)
{
    if (engine == NULL || id == NULL || out == NULL) {
        set_error("triage_record_field: engine, id and out are required");
        return -1;
    }
    *out = NULL;
    pthread_mutex_lock(&engine->lua_lock);
    lua_State *L = engine->L;
    int top = lua_gettop(L);
    int rc = -1;
    if (luaL_loadbufferx(L, FIELD_CHUNK, sizeof FIELD_CHUNK - 1, "=triage_record_field", "t") != LUA_OK) {
        set_error("triage_record_field: %s", lua_tostring(L, -1));
        goto done;
    }
    lua_pushstring(L, id);
    if (field != NULL)
        lua_pushstring(L, field);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
        set_error("cannot read record '%s': %s", id, lua_tostring(L, -1));
        goto done;
    }
    if (lua_isstring(L, -2)) {
        lua_pop(L, 1);
        rc = copy_result(L, id, out, out_len);
    } else if (strcmp(lua_tostring(L, -1), "missing") == 0) {
        set_error("record '%s' is not loaded; 'triage check PATH' lists the ids of a folder", id);
    } else {
        set_error("record '%s' has no field '%s'", id, field);
    }
done:
    lua_settop(L, top);
    pthread_mutex_unlock(&engine->lua_lock);
    return rc;
}
