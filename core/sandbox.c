/*
** Sandbox for user scripts (site files, rules, formatters); see sandbox.h.
**
** Every script gets a Lua state of its own, apart from the engine's state:
**  - the memory limit is a budget of the whole state, checked by its
**    allocator on every allocation;
**  - the script reaches nothing of the engine: values cross between the
**    states only as copies of plain data (nil, booleans, numbers, strings,
**    tables), made by C with raw access, so no script code runs while
**    copying;
**  - the state's string metatable can point at the bounded pattern
**    functions, so s:find(p) is bounded as string.find(s, p) is.
**
** Limits of one call: a count hook runs every HOOK_EVERY instructions, adds
** them up, notes the script's current line and checks the CPU time that the
** calling thread spent in the call. CPU time rather than wall-clock time,
** because scripts cannot block (granted functions run without the limit)
** and other threads or a loaded machine must not make a rule fail.
** The bounded string functions charge their matching steps the same way.
** A limit, once tripped, stays tripped until the call returns. The hook
** raises again every time it runs. env.lua's wrappers of pcall, xpcall,
** coroutine.resume and load raise again when they see a failure. And
** run_limited() below fails the call whatever the script returned. So a
** pcall inside the script cannot swallow a limit.
**
** The environment itself (allow list, stubs for denied functions, grants)
** is built by lua/triage/sandbox/env.lua, which runs in the new state
** before the script, with the full standard library and a `host` table of
** the C functions below.
*/
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"
#include "lua_regex.h"
#include "sandbox.h"

#define SCRIPT_TYPE "triage.script"
#define HOOK_EVERY 1000
#define MAX_SCRIPT_SIZE ((size_t)16 << 20)
#define COPY_MAX_DEPTH 100
#define COPY_MAX_ITEMS 1000000
#define FRAMES_SEARCHED 32 /* stack frames searched for the script's current line */
#define MAX_GRANTS 32

/* Functions an operator may grant to scripts; everything else outside the
** allow list of env.lua stays denied. */
static const char *const GRANTABLE[] = {
    "os.execute", "os.getenv", "os.remove", "os.rename", "os.tmpname", "io.open",
    "io.lines",   "io.popen",  "io.read",   "io.write",  "print",      NULL,
};

/* Stands for a function in values copied out of a script. */
static const char FUNCTION_MARKER = 0;

struct box {
    struct sandbox_budget budget; /* first member: sandbox_charge() casts back */
    lua_State *S;
    char *path;
    char *chunkname;              /* "@" path */
    char short_src[LUA_IDSIZE];   /* how Lua abbreviates chunkname in messages */
    size_t used, memory_limit;
    int rejected;                 /* the last growth request failed */
    const void *rejected_ptr;
    size_t rejected_osize, rejected_nsize;
    int line;                     /* the script's line at the last hook, 0 unknown */
    int limit_ref, env_ref, control_ref, result_ref;
};

struct load_options {
    const char *datadir;
    const char *allow[MAX_GRANTS];
    int allow_count;
    uint64_t instructions;
    double seconds;
    size_t memory;
};

static struct box *box_of(lua_State *S)
{
    return *(struct box **)lua_getextraspace(S);
}

/* {====================================================================
** Limits
** ===================================================================== */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
** Allocator of a script state: it fails any growth beyond the memory
** budget. Lua handles a failed allocation with an emergency collection and
** then requests the block again, so only a second failure of the same
** request trips the limit.
*/
static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct box *box = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        box->used -= old;
        return NULL;
    }
    if (nsize > old && box->used - old + nsize > box->memory_limit) {
        if (box->rejected && box->rejected_ptr == ptr && box->rejected_osize == osize && box->rejected_nsize == nsize &&
            box->budget.tripped == TRIP_NONE)
            box->budget.tripped = TRIP_MEMORY;
        box->rejected = 1;
        box->rejected_ptr = ptr;
        box->rejected_osize = osize;
        box->rejected_nsize = nsize;
        return NULL;
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL)
        return NULL;
    box->rejected = 0;
    box->used = box->used - old + nsize;
    return block;
}

static void check_limits(struct sandbox_budget *budget)
{
    if (budget->tripped != TRIP_NONE)
        return;
    if (budget->instructions > budget->instruction_limit)
        budget->tripped = TRIP_INSTRUCTIONS;
    else if (now_ns() > budget->deadline_ns)
        budget->tripped = TRIP_TIME;
}

/* Raise the state's preallocated limit error; allocates nothing. */
static int raise_limit(lua_State *S, struct box *box)
{
    lua_rawgeti(S, LUA_REGISTRYINDEX, box->limit_ref);
    return lua_error(S);
}

/* The script's current line: the innermost frame of the script's chunk. */
static int script_line(lua_State *S, const struct box *box, int first_level)
{
    lua_Debug ar;
    for (int level = first_level; level < first_level + FRAMES_SEARCHED; level++) {
        if (!lua_getstack(S, level, &ar))
            break;
        if (lua_getinfo(S, "Sl", &ar) && ar.currentline > 0 && strcmp(ar.source, box->chunkname) == 0)
            return ar.currentline;
    }
    return 0;
}

void sandbox_charge(lua_State *L, struct sandbox_budget *budget, uint64_t steps)
{
    if (!budget->active)
        return;
    budget->instructions += steps;
    check_limits(budget);
    if (budget->tripped != TRIP_NONE) {
        struct box *box = (struct box *)budget;
        int line = script_line(L, box, 0); /* the hook may not have run inside this C call */
        if (line > 0)
            box->line = line;
        raise_limit(L, box);
    }
}

static void count_hook(lua_State *S, lua_Debug *ar)
{
    (void)ar;
    struct box *box = box_of(S);
    if (!box->budget.active)
        return;
    box->budget.instructions += HOOK_EVERY;
    int line = script_line(S, box, 0);
    if (line > 0)
        box->line = line;
    check_limits(&box->budget);
    if (box->budget.tripped != TRIP_NONE)
        raise_limit(S, box);
}

static void begin_call(struct box *box)
{
    box->budget.instructions = 0;
    box->budget.deadline_ns = now_ns() + (uint64_t)(box->budget.seconds * 1e9);
    box->budget.tripped = TRIP_NONE;
    box->budget.active = 1;
    box->line = 0;
}

/* }==================================================================== */

/* {====================================================================
** Error messages: every one names the script's file and line
** ===================================================================== */

/* Lua shortens "@path" in messages to LUA_IDSIZE bytes: the path itself
** when it fits, else "..." and its end (luaO_chunkid in Lua 5.4). */
static void make_short_src(struct box *box)
{
    size_t len = strlen(box->path);
    if (len + 1 <= LUA_IDSIZE) {
        memcpy(box->short_src, box->path, len + 1);
        return;
    }
    size_t keep = LUA_IDSIZE - 4; /* "..." and the NUL */
    memcpy(box->short_src, "...", 3);
    memcpy(box->short_src + 3, box->path + len - keep, keep + 1);
}

static int starts_with_location(const char *msg, const char *prefix)
{
    size_t n = strlen(prefix);
    return n > 0 && strncmp(msg, prefix, n) == 0 && msg[n] == ':';
}

/* Message handler of calls into a script state: make the error text start
** with "PATH:LINE: ". A tripped limit is left alone, because the caller
** writes that message itself. No script code runs here: an error object
** that is not a string is described by its type, never by __tostring. */
static int message_handler(lua_State *S)
{
    struct box *box = box_of(S);
    if (box->budget.tripped != TRIP_NONE)
        return 1;
    const char *msg = lua_type(S, 1) == LUA_TSTRING || lua_type(S, 1) == LUA_TNUMBER ? lua_tostring(S, 1) : NULL;
    if (msg == NULL)
        msg = lua_pushfstring(S, "(error object is a %s value)", luaL_typename(S, 1));
    if (starts_with_location(msg, box->path)) {
        lua_pushstring(S, msg);
        return 1;
    }
    if (strcmp(box->short_src, box->path) != 0 && starts_with_location(msg, box->short_src)) {
        lua_pushfstring(S, "%s%s", box->path, msg + strlen(box->short_src));
        return 1;
    }
    int line = script_line(S, box, 1);
    if (line > 0)
        lua_pushfstring(S, "%s:%d: %s", box->path, line, msg);
    else
        lua_pushfstring(S, "%s: %s", box->path, msg);
    return 1;
}

static const char *trip_kind(enum sandbox_trip trip)
{
    switch (trip) {
    case TRIP_INSTRUCTIONS: return "instructions";
    case TRIP_TIME: return "time";
    case TRIP_MEMORY: return "memory";
    default: return "error";
    }
}

/* Push onto E the message of the tripped limit, with the script's line.
** NOTE: for the memory limit that is the line the hook saw last, up to
** HOOK_EVERY instructions before the failed allocation, and no line when
** the hook never ran in the call: the allocator cannot read the stack
** safely, because Lua calls it in the middle of moving the stack. */
static void push_trip_message(lua_State *E, const struct box *box)
{
    char where[64] = "";
    if (box->line > 0)
        snprintf(where, sizeof where, ":%d", box->line);
    switch (box->budget.tripped) {
    case TRIP_INSTRUCTIONS:
        lua_pushfstring(E, "%s%s: exceeded the limit of %I instructions per call", box->path, where,
                        (lua_Integer)box->budget.instruction_limit);
        break;
    case TRIP_TIME: {
        char seconds[32];
        snprintf(seconds, sizeof seconds, "%g", box->budget.seconds);
        lua_pushfstring(E, "%s%s: exceeded the time limit of %s s per call", box->path, where, seconds);
        break;
    }
    default:
        lua_pushfstring(E, "%s%s: exceeded the memory limit of %I MiB", box->path, where,
                        (lua_Integer)(box->memory_limit >> 20));
        break;
    }
}

/*
** Run fn(ctx) in the script state under fresh limits, with the message
** handler. On success returns 0 with fn's nresults results on the script
** state's stack. On failure returns -1 with the message and the kind
** ("error", "instructions", "time" or "memory") pushed onto E.
*/
static int run_limited(lua_State *E, struct box *box, lua_CFunction fn, void *ctx, int nresults)
{
    lua_State *S = box->S;
    int e_top = lua_gettop(E);
    lua_settop(S, 0);
    begin_call(box);
    lua_pushcfunction(S, message_handler);
    lua_pushcfunction(S, fn);
    lua_pushlightuserdata(S, ctx);
    int status = lua_pcall(S, 1, nresults, 1);
    box->budget.active = 0;
    lua_settop(E, e_top);
    if (status == LUA_OK && box->budget.tripped == TRIP_NONE)
        return 0;

    if (box->budget.tripped == TRIP_NONE && status == LUA_ERRMEM)
        box->budget.tripped = TRIP_MEMORY;
    if (box->budget.tripped != TRIP_NONE) {
        push_trip_message(E, box);
    } else {
        const char *msg = lua_tostring(S, -1);
        if (msg != NULL)
            lua_pushstring(E, msg);
        else
            lua_pushfstring(E, "%s: failed with an error object that is not a string", box->path);
    }
    lua_pushstring(E, trip_kind(box->budget.tripped));
    lua_settop(S, 0);
    if (box->budget.tripped == TRIP_MEMORY)
        lua_gc(S, LUA_GCCOLLECT);
    return -1;
}

/* }==================================================================== */

/* {====================================================================
** Copying values between states
** ===================================================================== */

struct copy {
    lua_State *from, *to;
    int visited; /* index in `to` of a table: source table pointer -> copy */
    int depth;
    size_t items;
    int out;             /* copying out of a script state into the engine's */
    const char *problem; /* out only: why the value cannot be copied */
    const char *problem_type;
};

static int copy_value(struct copy *c, int idx);

/* Out of a script, a bad value must not raise in the engine's state,
** because the caller turns it into a failed call. Into a script, raising in
** the script state is what its protected call expects. */
static int copy_fail(struct copy *c, const char *problem, const char *type)
{
    if (!c->out)
        return luaL_error(c->to, "cannot copy the value: %s", problem);
    if (c->problem == NULL) {
        c->problem = problem;
        c->problem_type = type;
    }
    return 0;
}

static void copy_table(struct copy *c, int idx)
{
    lua_State *from = c->from, *to = c->to;
    const void *id = lua_topointer(from, idx);
    if (!lua_checkstack(to, 6) || !lua_checkstack(from, 4)) {
        copy_fail(c, "nested too deeply", NULL);
        lua_pushnil(to);
        return;
    }
    lua_pushlightuserdata(to, (void *)id);
    if (lua_rawget(to, c->visited) != LUA_TNIL)
        return; /* a table seen before: share its copy */
    lua_pop(to, 1);
    if (++c->depth > COPY_MAX_DEPTH) {
        copy_fail(c, "nested deeper than 100 tables", NULL);
        lua_pushnil(to);
        c->depth--;
        return;
    }
    lua_newtable(to);
    lua_pushlightuserdata(to, (void *)id);
    lua_pushvalue(to, -2);
    lua_rawset(to, c->visited);

    lua_pushnil(from);
    while (lua_next(from, idx) != 0) {
        int key = lua_gettop(from) - 1;
        int kt = lua_type(from, key);
        if (++c->items > COPY_MAX_ITEMS) {
            copy_fail(c, "more than 1000000 table entries", NULL);
        } else if (kt == LUA_TSTRING || kt == LUA_TNUMBER || kt == LUA_TBOOLEAN) {
            copy_value(c, key);
            if (copy_value(c, key + 1))
                lua_rawset(to, -3);
            else
                lua_pop(to, 1);
        } else if (c->out) {
            copy_fail(c, "a table key that is not a string, number or boolean", lua_typename(from, kt));
        }
        lua_pop(from, 1); /* the value; the key stays for lua_next */
        if (c->problem != NULL) {
            lua_pop(from, 1);
            break;
        }
    }
    c->depth--;
}

/* Push onto c->to a copy of the value at the absolute index idx of
** c->from. Returns 0, pushing nothing, for a value that has no copy into a
** script (functions, userdata, threads of the engine are left out). */
static int copy_value(struct copy *c, int idx)
{
    lua_State *from = c->from, *to = c->to;
    int type = lua_type(from, idx);
    switch (type) {
    case LUA_TNIL:
        lua_pushnil(to);
        return 1;
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        return 1;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        return 1;
    }
    case LUA_TTABLE:
        copy_table(c, idx);
        return 1;
    case LUA_TFUNCTION:
        if (!c->out)
            return 0;
        lua_pushlightuserdata(to, (void *)&FUNCTION_MARKER);
        return 1;
    default:
        if (!c->out)
            return 0;
        copy_fail(c, "a value that is not plain data", lua_typename(from, type));
        lua_pushnil(to);
        return 1;
    }
}

/* Push onto E a copy of the script state's value at idx. Returns 0, or -1
** with nil, the message and the kind "result" pushed instead. */
static int copy_out(lua_State *E, struct box *box, int idx)
{
    struct copy c = {.from = box->S, .to = E, .out = 1};
    idx = lua_absindex(box->S, idx);
    luaL_checkstack(E, 8, "copying a script's result");
    lua_newtable(E);
    c.visited = lua_gettop(E);
    copy_value(&c, idx);
    lua_remove(E, c.visited);
    if (c.problem == NULL)
        return 0;
    lua_pop(E, 1);
    lua_pushnil(E);
    if (c.problem_type != NULL)
        lua_pushfstring(E, "%s: the script returned %s (%s); return plain data: nil, booleans, numbers, strings and "
                           "tables",
                        box->path, c.problem, c.problem_type);
    else
        lua_pushfstring(E, "%s: the script returned a value %s", box->path, c.problem);
    lua_pushliteral(E, "result");
    return -1;
}

/* }==================================================================== */

/* {====================================================================
** The host table: what env.lua gets from C
** ===================================================================== */

/* host.tripped() -> true when a limit of the running call has tripped */
static int host_tripped(lua_State *S)
{
    lua_pushboolean(S, box_of(S)->budget.tripped != TRIP_NONE);
    return 1;
}

/* host.raise([kind]) raises the limit error again; kind "memory" marks an
** out-of-memory error that the allocator did not see as final. */
static int host_raise(lua_State *S)
{
    struct box *box = box_of(S);
    const char *kind = lua_tostring(S, 1);
    if (box->budget.tripped == TRIP_NONE && kind != NULL && strcmp(kind, "memory") == 0)
        box->budget.tripped = TRIP_MEMORY;
    if (box->budget.tripped == TRIP_NONE)
        return luaL_error(S, "host.raise called while no limit has tripped");
    return raise_limit(S, box);
}

/* host.after(...) -> ...: checks the clock after a function that may run
** long inside C, and returns its arguments. */
static int host_after(lua_State *S)
{
    struct box *box = box_of(S);
    if (box->budget.active) {
        check_limits(&box->budget);
        if (box->budget.tripped != TRIP_NONE)
            raise_limit(S, box);
    }
    return lua_gettop(S);
}

static void push_host(lua_State *S, struct box *box, const struct load_options *options)
{
    static const luaL_Reg functions[] = {
        {"tripped", host_tripped},
        {"raise", host_raise},
        {"after", host_after},
        {NULL, NULL},
    };
    luaL_newlib(S, functions);
    lua_pushstring(S, box->path);
    lua_setfield(S, -2, "path");
    lua_pushstring(S, options->datadir);
    lua_setfield(S, -2, "datadir");
    lua_pushinteger(S, (lua_Integer)box->memory_limit);
    lua_setfield(S, -2, "memory_limit");
    lua_createtable(S, 0, options->allow_count);
    for (int i = 0; i < options->allow_count; i++) {
        lua_pushboolean(S, 1);
        lua_setfield(S, -2, options->allow[i]);
    }
    lua_setfield(S, -2, "grants");
    sandbox_push_string_functions(S, &box->budget);
    lua_setfield(S, -2, "string");
    luaL_requiref(S, "triage.regex", luaopen_triage_regex, 0);
    lua_setfield(S, -2, "regex");
}

/* }==================================================================== */

/* {====================================================================
** Script states
** ===================================================================== */

static void box_free(struct box *box)
{
    if (box == NULL)
        return;
    if (box->S != NULL) {
        /* Finalizers run in lua_close; the limits stop one that loops. */
        begin_call(box);
        lua_close(box->S); /* frees through budget_alloc, so box lives on until here */
    }
    free(box->path);
    free(box->chunkname);
    free(box);
}

static struct box *box_new(const char *path, const struct load_options *options)
{
    struct box *box = calloc(1, sizeof *box);
    if (box == NULL)
        return NULL;
    box->path = dup_string(path);
    box->chunkname = dup_printf("@%s", path);
    box->memory_limit = options->memory;
    box->budget.instruction_limit = options->instructions;
    box->budget.seconds = options->seconds;
    if (box->path == NULL || box->chunkname == NULL) {
        box_free(box);
        return NULL;
    }
    make_short_src(box);
    box->S = lua_newstate(budget_alloc, box);
    if (box->S == NULL) {
        box_free(box);
        return NULL;
    }
    *(struct box **)lua_getextraspace(box->S) = box;
    lua_sethook(box->S, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return box;
}

struct load_context {
    struct box *box;
    const struct load_options *options;
    const char *text;
    size_t len;
};

/* In the script state: open the libraries, build the environment with
** env.lua, then compile and run the script with that environment. */
static int setup_and_run(lua_State *S)
{
    const struct load_context *ctx = lua_touserdata(S, 1);
    struct box *box = ctx->box;
    luaL_openlibs(S);
    lua_pushliteral(S, "sandbox limit exceeded");
    box->limit_ref = luaL_ref(S, LUA_REGISTRYINDEX);

    const char *env_path = lua_pushfstring(S, "%s/lua/triage/sandbox/env.lua", ctx->options->datadir);
    if (luaL_loadfilex(S, env_path, "t") != LUA_OK)
        return lua_error(S);
    push_host(S, box, ctx->options);
    lua_call(S, 1, 2);
    if (!lua_istable(S, -2) || !lua_istable(S, -1))
        return luaL_error(S, "%s did not return the environment and control tables", env_path);
    box->control_ref = luaL_ref(S, LUA_REGISTRYINDEX);
    /* Whatever defaults to the global table from now on gets the sandbox. */
    lua_pushvalue(S, -1);
    lua_rawseti(S, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    box->env_ref = luaL_ref(S, LUA_REGISTRYINDEX);

    if (luaL_loadbufferx(S, ctx->text, ctx->len, box->chunkname, "t") != LUA_OK)
        return lua_error(S);
    lua_rawgeti(S, LUA_REGISTRYINDEX, box->env_ref);
    if (lua_setupvalue(S, -2, 1) == NULL)
        lua_pop(S, 1);
    lua_call(S, 0, 1);
    box->result_ref = luaL_ref(S, LUA_REGISTRYINDEX);
    return 0;
}

struct call_context {
    struct box *box;
    lua_State *E;
    int ref;         /* registry reference of the table or function called */
    const char *key; /* field of that table to call, or NULL to call it */
    int first, nargs; /* arguments on E's stack */
};

/* In the script state: find the function and call it with copies of the
** arguments. */
static int call_target(lua_State *S)
{
    const struct call_context *ctx = lua_touserdata(S, 1);
    lua_settop(S, 0);
    luaL_checkstack(S, ctx->nargs + 8, "too many arguments");
    struct copy c = {.from = ctx->E, .to = S};
    lua_newtable(S);
    c.visited = lua_gettop(S);

    lua_rawgeti(S, LUA_REGISTRYINDEX, ctx->ref);
    if (ctx->key != NULL) {
        if (!lua_istable(S, -1))
            return luaL_error(S, "the script returned a %s, not a table with the function '%s'", luaL_typename(S, -1),
                              ctx->key);
        lua_pushstring(S, ctx->key);
        lua_rawget(S, -2);
        lua_remove(S, -2);
    }
    if (!lua_isfunction(S, -1)) {
        if (ctx->key != NULL)
            return luaL_error(S, "'%s' is a %s, not a function", ctx->key, luaL_typename(S, -1));
        return luaL_error(S, "the script returned a %s, not a function", luaL_typename(S, -1));
    }
    for (int i = 0; i < ctx->nargs; i++)
        if (!copy_value(&c, ctx->first + i))
            lua_pushnil(S);
    lua_call(S, ctx->nargs, 1);
    return 1;
}

/* }==================================================================== */

/* {====================================================================
** The triage.script module for the engine's state
** ===================================================================== */

struct script {
    struct box *box; /* NULL once closed */
};

static struct box *check_script(lua_State *L, int arg)
{
    struct script *script = luaL_checkudata(L, arg, SCRIPT_TYPE);
    if (script->box == NULL)
        luaL_argerror(L, arg, "script has been closed");
    return script->box;
}

static int is_grantable(const char *name)
{
    for (int i = 0; GRANTABLE[i] != NULL; i++)
        if (strcmp(GRANTABLE[i], name) == 0)
            return 1;
    return 0;
}

/* Read load()'s options table at idx. The strings stay valid because the
** table stays on the stack until load() returns. */
static void read_options(lua_State *L, int idx, struct load_options *o)
{
    memset(o, 0, sizeof *o);
    o->instructions = SANDBOX_INSTRUCTIONS;
    o->seconds = SANDBOX_SECONDS;
    o->memory = SANDBOX_MEMORY;
    lua_getfield(L, idx, "datadir");
    o->datadir = lua_tostring(L, -1);
    luaL_argcheck(L, o->datadir != NULL, idx, "options.datadir (the folder holding lua/) is required");
    lua_pop(L, 1);

    if (lua_getfield(L, idx, "allow") == LUA_TTABLE) {
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
            lua_rawgeti(L, -1, i);
            const char *name = lua_tostring(L, -1);
            lua_pop(L, 1);
            if (name == NULL || !is_grantable(name))
                luaL_error(L, "cannot grant '%s' to scripts: grantable are os.execute, os.getenv, os.remove, "
                              "os.rename, os.tmpname, io.open, io.lines, io.popen, io.read, io.write and print",
                           name ? name : "?");
            if (o->allow_count == MAX_GRANTS)
                luaL_error(L, "too many grants: at most %d", MAX_GRANTS);
            o->allow[o->allow_count++] = name;
        }
    }
    lua_pop(L, 1);

    if (lua_getfield(L, idx, "instructions") != LUA_TNIL) {
        lua_Integer n = luaL_checkinteger(L, -1);
        luaL_argcheck(L, n > 0, idx, "options.instructions must be positive");
        o->instructions = (uint64_t)n;
    }
    if (lua_getfield(L, idx, "seconds") != LUA_TNIL) {
        o->seconds = luaL_checknumber(L, -1);
        luaL_argcheck(L, o->seconds > 0 && o->seconds < 86400, idx, "options.seconds must be in (0, 86400)");
    }
    if (lua_getfield(L, idx, "memory") != LUA_TNIL) {
        lua_Integer n = luaL_checkinteger(L, -1);
        luaL_argcheck(L, n >= (1 << 20), idx, "options.memory must be at least 1 MiB");
        o->memory = (size_t)n;
    }
    lua_pop(L, 3);
}

static int push_failure(lua_State *L, const char *kind, const char *fmt, const char *a, const char *b)
{
    lua_pushnil(L);
    lua_pushfstring(L, fmt, a, b);
    lua_pushstring(L, kind);
    return 3;
}

/*
** script.load(path, options) -> script | nil, message, kind
** Runs the file at path as text in a new sandboxed state and keeps its
** result. options: datadir (required), allow (list of grants),
** instructions, seconds, memory (limits). kind is "open", "load", "error",
** "instructions", "time" or "memory".
*/
static int script_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct load_options options;
    read_options(L, 2, &options);

    char *text;
    size_t len;
    char err[256];
    if (read_file(path, MAX_SCRIPT_SIZE, &text, &len, err, sizeof err) != 0)
        return push_failure(L, "open", "%s: %s", path, err);
    if (len > 0 && text[0] == LUA_SIGNATURE[0]) {
        free(text);
        return push_failure(L, "load", "%s: %s", path,
                            "precompiled Lua chunks are not loaded; give the Lua source text");
    }
    struct script *script = lua_newuserdatauv(L, sizeof *script, 0);
    script->box = NULL;
    luaL_setmetatable(L, SCRIPT_TYPE);
    struct box *box = box_new(path, &options);
    if (box == NULL) {
        free(text);
        return luaL_error(L, "out of memory creating a Lua state for '%s'", path);
    }
    script->box = box;

    struct load_context ctx = {box, &options, text, len};
    int rc = run_limited(L, box, setup_and_run, &ctx, 0);
    free(text);
    if (rc != 0) {
        script->box = NULL;
        box_free(box);
        lua_pushnil(L);
        lua_insert(L, -3);
        return 3;
    }
    return 1;
}

/* Call field key of the table at ref (or ref itself when key is NULL)
** with the arguments from index first on. */
static int invoke(lua_State *L, struct box *box, int ref, const char *key, int first)
{
    struct call_context ctx = {box, L, ref, key, first, lua_gettop(L) - first + 1};
    if (run_limited(L, box, call_target, &ctx, 1) != 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -3);
        return 3;
    }
    int rc = copy_out(L, box, -1);
    lua_settop(box->S, 0);
    if (rc != 0) {
        lua_remove(L, -3);
        lua_pushboolean(L, 0);
        lua_insert(L, -3);
        return 3;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -2);
    return 2;
}

/* script:result() -> a copy of what the file returned; functions in it are
** replaced by script.FUNCTION. Returns nil, message, "result" for values
** that are not plain data. */
static int script_result(lua_State *L)
{
    struct box *box = check_script(L, 1);
    lua_settop(box->S, 0);
    lua_rawgeti(box->S, LUA_REGISTRYINDEX, box->result_ref);
    int rc = copy_out(L, box, -1);
    lua_settop(box->S, 0);
    return rc == 0 ? 1 : 3;
}

/* script:call(key, ...) -> true, result | false, message, kind
** Calls result[key](...) (result(...) when key is nil) under the limits,
** with copies of the arguments, and returns a copy of its first result. */
static int script_call(lua_State *L)
{
    struct box *box = check_script(L, 1);
    const char *key = luaL_optstring(L, 2, NULL);
    return invoke(L, box, box->result_ref, key, 3);
}

/* script:control(name, ...) -> as call, for env.lua's control functions
** (set_vars). */
static int script_control(lua_State *L)
{
    struct box *box = check_script(L, 1);
    return invoke(L, box, box->control_ref, luaL_checkstring(L, 2), 3);
}

static int script_path(lua_State *L)
{
    lua_pushstring(L, check_script(L, 1)->path);
    return 1;
}

/* script:memory() -> bytes the script's state has allocated */
static int script_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_script(L, 1)->used);
    return 1;
}

static int script_close(lua_State *L)
{
    struct script *script = luaL_checkudata(L, 1, SCRIPT_TYPE);
    box_free(script->box);
    script->box = NULL;
    return 0;
}

static int script_tostring(lua_State *L)
{
    struct script *script = luaL_checkudata(L, 1, SCRIPT_TYPE);
    if (script->box == NULL)
        lua_pushliteral(L, "triage.script (closed)");
    else
        lua_pushfstring(L, "triage.script: %s", script->box->path);
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
** script.list_lua_files(dir) -> sorted list of the paths of the regular
** *.lua files in dir (not below it; names starting with '.' are skipped),
** or nil, message when dir cannot be read.
*/
static int script_list_lua_files(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    DIR *d = opendir(dir);
    if (d == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read the folder '%s': %s", dir, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (entry->d_name[0] == '.' || len < 5 || strcmp(entry->d_name + len - 4, ".lua") != 0)
            continue;
        const char *path = lua_pushfstring(L, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            lua_rawseti(L, -2, ++n);
        else
            lua_pop(L, 1);
    }
    closedir(d);
    /* Sort through a C array of the pushed strings, which the table keeps alive. */
    const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -2, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    qsort(names, (size_t)n, sizeof *names, compare_names);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"load", script_load},
    {"list_lua_files", script_list_lua_files},
    {NULL, NULL},
};

static const luaL_Reg script_methods[] = {
    {"result", script_result},
    {"call", script_call},
    {"control", script_control},
    {"path", script_path},
    {"memory", script_memory},
    {"close", script_close},
    {NULL, NULL},
};

static const luaL_Reg script_metamethods[] = {
    {"__index", NULL}, /* set to the method table below */
    {"__gc", script_close},
    {"__close", script_close},
    {"__tostring", script_tostring},
    {NULL, NULL},
};

int luaopen_triage_script(lua_State *L)
{
    if (luaL_newmetatable(L, SCRIPT_TYPE)) {
        luaL_setfuncs(L, script_metamethods, 0);
        luaL_newlibtable(L, script_methods);
        luaL_setfuncs(L, script_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);

    luaL_newlib(L, module_functions);
    lua_pushlightuserdata(L, (void *)&FUNCTION_MARKER);
    lua_setfield(L, -2, "FUNCTION");
    lua_newtable(L);
    for (int i = 0; GRANTABLE[i] != NULL; i++) {
        lua_pushstring(L, GRANTABLE[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "GRANTABLE");
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, SANDBOX_INSTRUCTIONS);
    lua_setfield(L, -2, "instructions");
    lua_pushnumber(L, SANDBOX_SECONDS);
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, (lua_Integer)SANDBOX_MEMORY);
    lua_setfield(L, -2, "memory");
    lua_setfield(L, -2, "LIMITS");
    return 1;
}

/* }==================================================================== */

static const char *string_field(lua_State *L, int idx, const char *key)
{
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    return s; /* left on the stack, so the string stays valid */
}

void sandbox_add_failures(struct problem_list *problems, lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || !lua_checkstack(L, 8))
        return;
    size_t n = lua_rawlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        int top = lua_gettop(L);
        if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TTABLE) {
            int entry = lua_gettop(L);
            const char *script = string_field(L, entry, "script");
            const char *id = string_field(L, entry, "id");
            const char *field = string_field(L, entry, "field");
            const char *message = string_field(L, entry, "message");
            lua_pushliteral(L, "line");
            lua_rawget(L, entry);
            lua_Integer line = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
            problem_add(problems, TRIAGE_ERROR, script ? script : "-", line > 0 ? (unsigned)line : 0, 0,
                        id ? id : "-", field ? field : "script", "%s", message ? message : "failed");
        }
        lua_settop(L, top);
    }
}

/* {====================================================================
** Public entry points for site files, rules and grants (triage.h)
** ===================================================================== */

int triage_site_show(triage_engine *engine, char **out, size_t *out_len)
{
    if (engine == NULL || out == NULL) {
        set_error("triage_site_show: engine and out are required");
        return -1;
    }
    *out = NULL;
    return lua_engine_call(engine, "site_show", NULL, NULL, 0, NULL, out, out_len, NULL, 0);
}

int triage_allow_lua(triage_engine *engine, const char *name)
{
    if (engine == NULL || name == NULL) {
        set_error("triage_allow_lua: engine and name are required");
        return -1;
    }
    const char *args[] = {name};
    return lua_engine_call(engine, "allow_lua", args, NULL, 1, NULL, NULL, NULL, NULL, 0);
}

int triage_test_rule(triage_engine *engine, const char *rule_path, const char *text, size_t len,
                     const triage_render_options *options, char **out, size_t *out_len, int *failures)
{
    if (engine == NULL || rule_path == NULL || out == NULL || (text == NULL && len > 0)) {
        set_error("triage_test_rule: engine, rule_path, text and out are required");
        return -1;
    }
    *out = NULL;
    triage_render_options defaults = {0};
    const char *args[] = {rule_path, text != NULL ? text : ""};
    size_t lens[] = {strlen(rule_path), len};
    int numbers[2] = {0, 0};
    if (lua_engine_call(engine, "test_rule", args, lens, 2, options ? options : &defaults, out, out_len, numbers,
                        2) != 0)
        return -1;
    if (failures != NULL)
        *failures = numbers[1];
    return numbers[0];
}

/* }==================================================================== */
