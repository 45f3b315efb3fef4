/*
** Sandbox for user scripts: site files, rules and formatters.
**
** Each script runs in a Lua state of its own, with an environment built
** from an allow list (lua/triage/sandbox/env.lua), and with limits on
** instructions, CPU time and memory that the script cannot catch.
** The engine's state reaches a script only through the `triage.script`
** module, which copies plain data in and out.
**
** Owns: script states, their limits, the copying of values between states,
** the bounded Lua pattern functions (sandbox_string.c) and the recording of
** script failures as engine problems.
** Depends on: Lua 5.4, lua_regex.c, util.c.
*/
#ifndef TRIAGE_SANDBOX_H
#define TRIAGE_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

struct lua_State;
struct problem_list;

/* Default limits of one call into a script (loading counts as a call). */
#define SANDBOX_INSTRUCTIONS 10000000u
#define SANDBOX_SECONDS 1.0
#define SANDBOX_MEMORY ((size_t)64 << 20) /* per script state, checked on every allocation */

/* Why a limited call was stopped. */
enum sandbox_trip { TRIP_NONE = 0, TRIP_INSTRUCTIONS, TRIP_TIME, TRIP_MEMORY };

/* The budget of one script state. The bounded string functions charge
** their matching steps to it, as the count hook charges instructions. */
struct sandbox_budget {
    uint64_t instructions, instruction_limit;
    uint64_t deadline_ns; /* CLOCK_THREAD_CPUTIME_ID of the calling thread */
    double seconds;
    int active; /* a limited call is running */
    enum sandbox_trip tripped;
};

/* Charge steps of work done in C to budget (NULL: a fixed cap of work per
** call applies instead) and raise a Lua error when a limit is exceeded. */
void sandbox_charge(struct lua_State *L, struct sandbox_budget *budget, uint64_t steps);

/* Push a table with find, match, gmatch and gsub: Lua's pattern functions,
** with the same results, that charge their matching steps to budget, so a
** backtracking pattern cannot stall the state inside C. */
void sandbox_push_string_functions(struct lua_State *L, struct sandbox_budget *budget);

/* Push the `triage.script` module for the engine's state: load(path,
** options), list_lua_files(dir), FUNCTION and GRANTABLE. */
int luaopen_triage_script(struct lua_State *L);

/* Add each failure of the list at index idx ({script=, line=, kind=, id=,
** message=, count=} tables) to problems as an error. */
void sandbox_add_failures(struct problem_list *problems, struct lua_State *L, int idx);

#endif
