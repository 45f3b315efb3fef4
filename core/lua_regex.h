/*
** triage.regex: PCRE2 regexes for Lua code, compiled and matched exactly as
** record regexes are. Both the engine's own Lua state and the `triage` Lua
** module register it.
*/
#ifndef TRIAGE_LUA_REGEX_H
#define TRIAGE_LUA_REGEX_H

struct lua_State;

/* Push the `triage.regex` module table: regex.new(pattern), also callable as
** regex(pattern). Suitable for package.preload and luaL_requiref. */
int luaopen_triage_regex(struct lua_State *L);

#endif
