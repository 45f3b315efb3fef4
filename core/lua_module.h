/*
** Parts of the `triage` Lua module shared by its files: lua_module.c (the
** module, engines, options) and lua_scan.c (engine:scan). Not installed.
*/
#ifndef TRIAGE_LUA_MODULE_H
#define TRIAGE_LUA_MODULE_H

#include <lua.h>

#include "triage.h"

#define ENGINE_TYPE "triage.engine"
#define SCAN_TYPE "triage.scan"

/* The userdata of an engine. */
struct engine_box {
    triage_engine *engine; /* NULL once closed */
    int open_scans;        /* scans that still use the engine; it must not load or close meanwhile */
};

/* The engine of argument arg; raises when it has been closed. */
triage_engine *check_engine(lua_State *L, int arg);

/* Return nil and the library's last error message. */
int push_failure(lua_State *L);

/* Option tables: raise unless every key of the table at idx is in allowed
** (a NULL-terminated list), or when a value has the wrong type or range. */
void check_keys(lua_State *L, int idx, const char *what, const char *const allowed[]);
int option_boolean(lua_State *L, int idx, const char *what, const char *key);
lua_Number option_number(lua_State *L, int idx, const char *what, const char *key, lua_Number dflt, lua_Number min,
                         lua_Number max);

/* engine:scan(path [, options]), in lua_scan.c. */
int engine_scan(lua_State *L);
/* Register the metatable of scan iterators. */
void create_scan_metatable(lua_State *L);

#endif
