/*
** Host of the sandbox and rule tests. A plain Lua state plays the engine's
** part, with the triage.script and triage.regex modules and the bounded
** pattern functions. It runs a LuaUnit suite (argv[1], by default
** tests/sandbox/test_sandbox.lua) and exits with its result.
**
** The bounded functions are exposed as the global `bounded` (with no
** budget, so a fixed cap of work applies), next to the stock string
** library, so the suite can compare the two on the same inputs.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

#include "lua_regex.h"
#include "sandbox.h"

int main(int argc, char **argv)
{
    const char *suite = argc > 1 ? argv[1] : "tests/sandbox/test_sandbox.lua";
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "test_sandbox: out of memory creating a Lua state\n");
        return 2;
    }
    luaL_openlibs(L);
    luaL_requiref(L, "triage.script", luaopen_triage_script, 0);
    luaL_requiref(L, "triage.regex", luaopen_triage_regex, 0);
    lua_pop(L, 2);
    sandbox_push_string_functions(L, NULL);
    lua_setglobal(L, "bounded");
    lua_pushstring(L, TRIAGE_TEST_SOURCE_DIR);
    lua_setglobal(L, "TRIAGE_DATADIR");
    lua_pushstring(L, TRIAGE_TEST_SHARED_DIR);
    lua_setglobal(L, "TRIAGE_SHARED_DIR");
    /* Further arguments go to LuaUnit, e.g. "-p Limits" to run some tests. */
    if (argc > 2) {
        lua_createtable(L, argc - 2, 0);
        for (int i = 2; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i - 1);
        }
        lua_setglobal(L, "SUITE_ARGS");
    }

    int failures = 2;
    if (luaL_dofile(L, suite) != LUA_OK)
        fprintf(stderr, "test_sandbox: %s\n", lua_tostring(L, -1));
    else if (lua_isinteger(L, -1))
        failures = (int)lua_tointeger(L, -1);
    lua_close(L);
    return failures == 0 ? 0 : 1;
}
