/*
** engine:scan() of the Lua module: an iterator over the diagnosed lines of
** a log, on top of the scanner (triage_scan_*).
**
** Owns: the `triage.scan` userdata type and the queue between the
** scanner's callback and the iterator.
** Depends on: lua_module.c for the engine type and option helpers, the
** scanner API of triage.h, and zlib, which reads plain and gzip files alike.
**
** The scanner pushes results through a callback while the iterator pulls
** them. Each step of the iterator feeds the next block of the file and
** queues the lines the callback reports, then hands them out one per call.
** The callback only copies what it gets and never calls Lua, because a Lua
** error raised inside it would jump over the scanner's own frames.
*/
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "lua_module.h"

/* Bytes read from the file and fed to the scanner per step. */
#define SCAN_BLOCK (256u << 10)

/* A diagnosed line waiting to be handed out. */
struct scan_entry {
    struct scan_entry *next;
    size_t line;
    int truncated;
    size_t count;
    triage_scan_diagnosis *diagnoses; /* ids are owned by the engine */
    size_t len;
    char text[];
};

struct scan_state {
    triage_scan *scan;      /* NULL once finished or closed */
    gzFile file;            /* NULL once finished or closed */
    struct engine_box *box; /* kept alive by the user value */
    char *path;
    char *block;
    struct scan_entry *head, *tail;
    int out_of_memory; /* set by the callback, which then stops the scan */
};

/* The scanner's on_line callback: queue a copy of the line. */
static int queue_line(void *userdata, const triage_scan_line *line)
{
    struct scan_state *state = userdata;
    struct scan_entry *entry = malloc(sizeof *entry + line->len + 1);
    triage_scan_diagnosis *diagnoses = malloc((line->count ? line->count : 1) * sizeof *diagnoses);
    if (entry == NULL || diagnoses == NULL) {
        free(entry);
        free(diagnoses);
        state->out_of_memory = 1;
        return 1;
    }
    entry->next = NULL;
    entry->line = line->line;
    entry->truncated = line->truncated;
    entry->count = line->count;
    entry->diagnoses = diagnoses;
    memcpy(diagnoses, line->diagnoses, line->count * sizeof *diagnoses);
    entry->len = line->len;
    memcpy(entry->text, line->text, line->len);
    entry->text[line->len] = '\0';
    if (state->tail != NULL)
        state->tail->next = entry;
    else
        state->head = entry;
    state->tail = entry;
    return 0;
}

/* Close the scanner and the file; queued lines stay for the iterator. */
static void release_input(struct scan_state *state)
{
    if (state->scan != NULL) {
        triage_scan_close(&state->scan);
        state->box->open_scans--;
    }
    if (state->file != NULL)
        gzclose(state->file);
    state->file = NULL;
    free(state->block);
    state->block = NULL;
}

static void free_queue(struct scan_state *state)
{
    while (state->head != NULL) {
        struct scan_entry *next = state->head->next;
        free(state->head->diagnoses);
        free(state->head);
        state->head = next;
    }
    state->tail = NULL;
}

static int scan_gc(lua_State *L)
{
    struct scan_state *state = luaL_checkudata(L, 1, SCAN_TYPE);
    release_input(state);
    free_queue(state);
    free(state->path);
    state->path = NULL;
    return 0;
}

/* Release the input and raise "engine:scan: 'PATH': message". */
static int scan_error(lua_State *L, struct scan_state *state, const char *message)
{
    lua_pushfstring(L, "engine:scan: '%s': %s", state->path, message);
    release_input(state);
    return lua_error(L);
}

/* Feed the next block of the file, or finish the scan at its end. */
static void feed_block(lua_State *L, struct scan_state *state)
{
    int n = gzread(state->file, state->block, SCAN_BLOCK);
    if (n < 0) {
        int code;
        const char *message = gzerror(state->file, &code);
        scan_error(L, state, code == Z_ERRNO ? strerror(errno) : message);
    }
    int rc = n > 0 ? triage_scan_feed(state->scan, state->block, (size_t)n) : triage_scan_finish(state->scan);
    if (state->out_of_memory)
        scan_error(L, state, "out of memory queueing diagnosed lines");
    if (rc < 0)
        scan_error(L, state, triage_last_error());
    if (n == 0)
        release_input(state);
}

/* Push {line=, text=, diagnoses={{id=, score=}, ...}[, truncated=true]}. */
static void push_entry(lua_State *L, const struct scan_entry *entry)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)entry->line);
    lua_setfield(L, -2, "line");
    lua_pushlstring(L, entry->text, entry->len);
    lua_setfield(L, -2, "text");
    if (entry->truncated) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "truncated");
    }
    lua_createtable(L, (int)entry->count, 0);
    for (size_t i = 0; i < entry->count; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, entry->diagnoses[i].id);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, entry->diagnoses[i].score);
        lua_setfield(L, -2, "score");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "diagnoses");
}

/* The iterator. Upvalue 1: the scan userdata. */
static int scan_next(lua_State *L)
{
    struct scan_state *state = luaL_checkudata(L, lua_upvalueindex(1), SCAN_TYPE);
    while (state->head == NULL && state->scan != NULL)
        feed_block(L, state);
    struct scan_entry *entry = state->head;
    if (entry == NULL)
        return 0;
    push_entry(L, entry);
    state->head = entry->next;
    if (state->head == NULL)
        state->tail = NULL;
    free(entry->diagnoses);
    free(entry);
    return 1;
}

static const char *const SCAN_KEYS[] = {"top", "min_score", "jobs", "no_cache", NULL};

static triage_scan_options scan_options(lua_State *L, int idx, struct scan_state *state)
{
    triage_scan_options opts = {0};
    opts.on_line = queue_line;
    opts.userdata = state;
    if (lua_isnoneornil(L, idx))
        return opts;
    luaL_checktype(L, idx, LUA_TTABLE);
    check_keys(L, idx, "engine:scan", SCAN_KEYS);
    opts.top = (int)option_number(L, idx, "engine:scan", "top", 0, 0, 1000000);
    opts.min_score = option_number(L, idx, "engine:scan", "min_score", 0, 0, 1);
    opts.jobs = (int)option_number(L, idx, "engine:scan", "jobs", 0, 0, 256);
    if (option_boolean(L, idx, "engine:scan", "no_cache"))
        opts.flags |= TRIAGE_SCAN_NO_CACHE;
    return opts;
}

/*
** engine:scan(path [, options]) -> iterator | nil, message
**   for entry in engine:scan("/var/log/mail.log") do ... end
** Yields {line=N, text=..., diagnoses={{id=, score=}, ...}} for each line
** with a diagnosis, in input order and ranked as engine:diagnose ranks the
** line alone; truncated=true marks a line matched on its first part only.
** path may be gzip-compressed; "-" reads standard input. options: top,
** min_score, jobs (worker threads), no_cache (build the prefilter without
** its cache). A file that cannot be opened returns nil and a message; a
** read error while iterating raises. Input is read as the loop advances,
** and the file closes at its end, on break (to-be-closed value) or at
** garbage collection.
*/
int engine_scan(lua_State *L)
{
    lua_settop(L, 3); /* the options table or nil; the scan goes above it */
    triage_engine *engine = check_engine(L, 1);
    struct engine_box *box = luaL_checkudata(L, 1, ENGINE_TYPE);
    const char *path = luaL_checkstring(L, 2);
    struct scan_state *state = lua_newuserdatauv(L, sizeof *state, 1);
    memset(state, 0, sizeof *state); /* closed, so __gc is always safe */
    luaL_setmetatable(L, SCAN_TYPE);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    state->box = box;
    triage_scan_options opts = scan_options(L, 3, state);

    state->path = strdup(path);
    state->block = malloc(SCAN_BLOCK);
    if (state->path == NULL || state->block == NULL)
        return luaL_error(L, "engine:scan: out of memory");
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : -1;
    errno = 0;
    state->file = fd >= 0 ? gzdopen(fd, "rb") : gzopen(path, "rb");
    if (state->file == NULL) {
        if (fd >= 0)
            close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "engine:scan: cannot open '%s': %s", path,
                        errno ? strerror(errno) : "out of memory");
        return 2;
    }
    state->scan = triage_scan_open(engine, &opts);
    if (state->scan == NULL) {
        int n = push_failure(L);
        release_input(state);
        return n;
    }
    box->open_scans++;

    lua_pushvalue(L, -1);
    lua_pushcclosure(L, scan_next, 1); /* iterator */
    lua_pushnil(L);                    /* state */
    lua_pushnil(L);                    /* initial control value */
    lua_pushvalue(L, -4);              /* closing value */
    return 4;
}

void create_scan_metatable(lua_State *L)
{
    static const luaL_Reg metamethods[] = {
        {"__gc", scan_gc},
        {"__close", scan_gc},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, SCAN_TYPE))
        luaL_setfuncs(L, metamethods, 0);
    lua_pop(L, 1);
}
