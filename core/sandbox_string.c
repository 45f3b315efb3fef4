/*
** Bounded Lua patterns for sandboxed scripts: find, match, gmatch and gsub
** with the results of Lua 5.4's string functions, but with every matching
** step charged to the script's budget.
**
** Lua's own matcher backtracks inside one C call, and a count hook cannot
** interrupt C, so string.find(("a"):rep(1e4), ".-.-.-.-b$") would stall a
** state for hours. This matcher implements the pattern language of the Lua
** 5.4 manual (section 6.4.1) afresh and calls sandbox_charge() every
** CHARGE_EVERY steps, which raises once the budget's instruction or time
** limit is spent. A step is one pattern item tried at one subject position,
** or one byte scanned by a quantifier, %b or a back-reference.
**
** Owns: the matcher and the four string functions built on it.
** Depends on: Lua 5.4, sandbox.c (sandbox_charge).
*/
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "sandbox.h"

#define MAX_CAPTURES 32 /* LUA_MAXCAPTURES of the stock interpreter */
#define MAX_DEPTH 200   /* recursion of the matcher, as Lua's MAXCCALLS */
#define CHARGE_EVERY 1024
/* Work allowed per call when no budget is attached (tests, embedding). */
#define UNBUDGETED_STEPS 100000000u

#define ESC '%'
#define SPECIALS "^$*+?.([%-"

#define CAPTURE_OPEN (-1)
#define CAPTURE_POSITION (-2)

struct capture {
    const char *start;
    ptrdiff_t len; /* or CAPTURE_OPEN, CAPTURE_POSITION */
};

struct matcher {
    lua_State *L;
    struct sandbox_budget *budget; /* NULL: UNBUDGETED_STEPS per call */
    const char *subject, *subject_end;
    const char *pattern, *pattern_end;
    int depth;
    int level; /* captures in use */
    uint64_t pending, total;
    struct capture capture[MAX_CAPTURES];
};

static void init_matcher(struct matcher *m, lua_State *L, struct sandbox_budget *budget, const char *s, size_t ls,
                         const char *p, size_t lp)
{
    memset(m, 0, sizeof *m);
    m->L = L;
    m->budget = budget;
    m->subject = s;
    m->subject_end = s + ls;
    m->pattern = p;
    m->pattern_end = p + lp;
}

static void step(struct matcher *m, uint64_t n)
{
    m->pending += n;
    if (m->pending < CHARGE_EVERY)
        return;
    uint64_t charged = m->pending;
    m->pending = 0;
    if (m->budget != NULL) {
        sandbox_charge(m->L, m->budget, charged);
        return;
    }
    m->total += charged;
    if (m->total > UNBUDGETED_STEPS)
        luaL_error(m->L, "pattern too complex for a %I-byte subject (more than %I matching steps)",
                   (lua_Integer)(m->subject_end - m->subject), (lua_Integer)UNBUDGETED_STEPS);
}

/* {====================================================================
** Character classes, in the C locale as the stock interpreter sees them
** ===================================================================== */

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Does c belong to the class %cls? A class letter in upper case is the
** complement; any other character stands for itself. */
static int in_class(unsigned char c, unsigned char cls)
{
    int upper = cls >= 'A' && cls <= 'Z';
    int res;
    switch (upper ? cls + ('a' - 'A') : cls) {
    case 'a': res = is_alpha(c); break;
    case 'c': res = c < 32 || c == 127; break;
    case 'd': res = is_digit(c); break;
    case 'g': res = c > 32 && c < 127; break;
    case 'l': res = c >= 'a' && c <= 'z'; break;
    case 'p': res = c > 32 && c < 127 && !is_alpha(c) && !is_digit(c); break;
    case 's': res = c == ' ' || (c >= '\t' && c <= '\r'); break;
    case 'u': res = c >= 'A' && c <= 'Z'; break;
    case 'w': res = is_alpha(c) || is_digit(c); break;
    case 'x': res = is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); break;
    case 'z': res = c == 0; break; /* deprecated in Lua 5.2, still accepted by 5.4 */
    default: return cls == c;
    }
    return upper ? !res : res;
}

/* Does c belong to the set that starts at '[' p and ends at ']' close? */
static int in_set(unsigned char c, const char *p, const char *close)
{
    int negate = 0;
    p++;
    if (*p == '^') {
        negate = 1;
        p++;
    }
    while (p < close) {
        if (*p == ESC) {
            if (in_class(c, (unsigned char)p[1]))
                return !negate;
            p += 2;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return !negate;
            p += 3;
        } else {
            if ((unsigned char)*p == c)
                return !negate;
            p++;
        }
    }
    return negate;
}

/* Return the end of the single-character class that starts at p. Reading
** pattern_end itself is safe: Lua strings end with a NUL byte. */
static const char *class_end(struct matcher *m, const char *p)
{
    char c = *p++;
    if (c == ESC) {
        if (p >= m->pattern_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        do {
            if (p >= m->pattern_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == ESC && p < m->pattern_end)
                p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

static int single_match(const struct matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->subject_end)
        return 0;
    unsigned char c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* }==================================================================== */

/* {====================================================================
** Matching
** ===================================================================== */

static const char *match_from(struct matcher *m, const char *s, const char *p);

/* Match p at s one level deeper; NULL when it does not match. */
static const char *match_nested(struct matcher *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH)
        luaL_error(m->L, "pattern too complex");
    const char *e = match_from(m, s, p);
    m->depth--;
    return e;
}

static const char *expand_greedy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t count = 0;
    while (single_match(m, s + count, p, ep)) {
        count++;
        step(m, 1);
    }
    for (; count >= 0; count--) {
        const char *e = match_nested(m, s + count, ep + 1);
        if (e != NULL)
            return e;
    }
    return NULL;
}

static const char *expand_lazy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *e = match_nested(m, s, ep + 1);
        if (e != NULL)
            return e;
        if (!single_match(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *open_capture(struct matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->capture[m->level].start = s;
    m->capture[m->level].len = what;
    m->level++;
    const char *e = match_nested(m, s, p);
    if (e == NULL)
        m->level--;
    return e;
}

static const char *close_capture(struct matcher *m, const char *s, const char *p)
{
    int open = m->level - 1;
    while (open >= 0 && m->capture[open].len != CAPTURE_OPEN)
        open--;
    if (open < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->capture[open].len = s - m->capture[open].start;
    const char *e = match_nested(m, s, p);
    if (e == NULL)
        m->capture[open].len = CAPTURE_OPEN;
    return e;
}

/* %bxy at s, with p just after "%b". */
static const char *match_balance(struct matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->pattern_end)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subject_end || *s != p[0])
        return NULL;
    int depth = 1;
    for (const char *t = s + 1; t < m->subject_end; t++) {
        step(m, 1);
        if (*t == p[1]) {
            if (--depth == 0)
                return t + 1;
        } else if (*t == p[0]) {
            depth++;
        }
    }
    return NULL;
}

/* %f[set] at s, with p just after "%f"; returns the pattern after the set,
** or NULL when s is not at the frontier. */
static const char *match_frontier(struct matcher *m, const char *s, const char *p)
{
    if (*p != '[')
        luaL_error(m->L, "missing '[' after '%%f' in pattern");
    const char *ep = class_end(m, p);
    unsigned char before = s == m->subject ? '\0' : (unsigned char)s[-1];
    unsigned char here = s < m->subject_end ? (unsigned char)*s : '\0';
    if (!in_set(before, p, ep - 1) && in_set(here, p, ep - 1))
        return ep;
    return NULL;
}

/* %1 to %9: the text of an earlier, closed capture. */
static const char *match_backref(struct matcher *m, const char *s, char digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->capture[i].len == CAPTURE_OPEN)
        luaL_error(m->L, "invalid capture index %%%d in pattern", i + 1);
    ptrdiff_t len = m->capture[i].len;
    if (len < 0) /* a position capture has no text to repeat */
        return NULL;
    step(m, (uint64_t)len);
    if (m->subject_end - s >= len && memcmp(m->capture[i].start, s, (size_t)len) == 0)
        return s + len;
    return NULL;
}

/* Match the pattern items from p on against the subject from s. Returns
** the end of the match, or NULL. Items without a choice loop here; items
** with one (quantifiers, captures) recurse. */
static const char *match_from(struct matcher *m, const char *s, const char *p)
{
    for (;;) {
        step(m, 1);
        if (p == m->pattern_end)
            return s;
        switch (*p) {
        case '(':
            if (p + 1 < m->pattern_end && p[1] == ')')
                return open_capture(m, s, p + 2, CAPTURE_POSITION);
            return open_capture(m, s, p + 1, CAPTURE_OPEN);
        case ')':
            return close_capture(m, s, p + 1);
        case '$':
            if (p + 1 == m->pattern_end)
                return s == m->subject_end ? s : NULL;
            break;
        case ESC:
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                if (s == NULL)
                    return NULL;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p = match_frontier(m, s, p + 2);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (is_digit((unsigned char)p[1]) && p + 1 < m->pattern_end) {
                s = match_backref(m, s, p[1]);
                if (s == NULL)
                    return NULL;
                p += 2;
                continue;
            }
            break;
        default:
            break;
        }

        /* A single-character class with an optional quantifier. */
        const char *ep = class_end(m, p);
        char quantifier = ep < m->pattern_end ? *ep : '\0';
        if (!single_match(m, s, p, ep)) {
            if (quantifier == '*' || quantifier == '?' || quantifier == '-') {
                p = ep + 1;
                continue;
            }
            return NULL;
        }
        switch (quantifier) {
        case '?': {
            const char *e = match_nested(m, s + 1, ep + 1);
            if (e != NULL)
                return e;
            p = ep + 1;
            continue;
        }
        case '+':
            return expand_greedy(m, s + 1, p, ep);
        case '*':
            return expand_greedy(m, s, p, ep);
        case '-':
            return expand_lazy(m, s, p, ep);
        default:
            s++;
            p = ep;
            continue;
        }
    }
}

/* }==================================================================== */

/* {====================================================================
** Captures
** ===================================================================== */

/* Push capture i of the match s..e; capture 0 is the whole match when the
** pattern has no captures. */
static void push_capture(struct matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->capture[i].len;
    if (len == CAPTURE_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAPTURE_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->capture[i].start - m->subject) + 1);
    else
        lua_pushlstring(m->L, m->capture[i].start, (size_t)len);
}

/* Push every capture, or the whole match s..e when there is none and s is
** not NULL. Returns how many values were pushed. */
static int push_captures(struct matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* }==================================================================== */

/* {====================================================================
** The string functions
** ===================================================================== */

static struct sandbox_budget *budget_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* A 1-based, possibly negative, start position as a 1-based position
** (string.find's rule: 0 and positions before the start mean 1). */
static size_t start_position(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
            return 1;
    return 0;
}

static const char *find_plain(lua_State *L, struct sandbox_budget *budget, const char *s, size_t ls,
                              const char *p, size_t lp)
{
    struct matcher m;
    init_matcher(&m, L, budget, s, ls, p, lp);
    if (lp == 0)
        return s;
    if (lp > ls)
        return NULL;
    const char *last = s + (ls - lp);
    while (s <= last) {
        const char *hit = memchr(s, p[0], (size_t)(last - s) + 1);
        step(&m, (uint64_t)((hit ? hit : last) - s) / 16 + 1);
        if (hit == NULL)
            return NULL;
        step(&m, lp);
        if (memcmp(hit + 1, p + 1, lp - 1) == 0)
            return hit;
        s = hit + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *hit = find_plain(L, budget_of(L), s + init, ls - init, p, lp);
        if (hit != NULL) {
            lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)(hit - s + (ptrdiff_t)lp));
            return 2;
        }
        luaL_pushfail(L);
        return 1;
    }

    struct matcher m;
    init_matcher(&m, L, budget_of(L), s, ls, p, lp);
    int anchored = *p == '^';
    if (anchored)
        m.pattern++;
    const char *start = s + init;
    do {
        m.level = 0;
        m.depth = 0;
        const char *e = match_nested(&m, start, m.pattern);
        if (e != NULL) {
            if (!find)
                return push_captures(&m, start, e);
            lua_pushinteger(L, (lua_Integer)(start - s) + 1);
            lua_pushinteger(L, (lua_Integer)(e - s));
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (start++ < m.subject_end && !anchored);
    luaL_pushfail(L);
    return 1;
}

static int bounded_find(lua_State *L)
{
    return find_or_match(L, 1);
}

static int bounded_match(lua_State *L)
{
    return find_or_match(L, 0);
}

/* State of one gmatch iteration: where to try next and where the last
** match ended, so an empty match right after a match is skipped. */
struct gmatch_state {
    size_t next;
    size_t last_end;
    int has_last;
};

static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(4));
    struct matcher m;
    init_matcher(&m, L, budget_of(L), s, ls, p, lp);
    for (size_t pos = g->next; pos <= ls; pos++) {
        m.level = 0;
        m.depth = 0;
        const char *e = match_nested(&m, s + pos, p);
        if (e != NULL && !(g->has_last && (size_t)(e - s) == g->last_end)) {
            g->next = g->last_end = (size_t)(e - s);
            g->has_last = 1;
            return push_captures(&m, s + pos, e);
        }
    }
    g->next = ls + 1;
    return 0;
}

/* gmatch(s, pattern [, init]): as in Lua 5.4, '^' is not an anchor here. */
static int bounded_gmatch(lua_State *L)
{
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls)
        init = ls + 1;
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* budget */
    lua_insert(L, 1);
    struct gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->next = init;
    g->last_end = 0;
    g->has_last = 0;
    lua_pushcclosure(L, gmatch_next, 4); /* budget, s, p, state */
    return 1;
}

/* Append the replacement template at index 3 for the match s..e. */
static void add_template(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t len;
    const char *text = lua_tolstring(L, 3, &len);
    const char *esc;
    while ((esc = memchr(text, ESC, len)) != NULL) {
        luaL_addlstring(b, text, (size_t)(esc - text));
        char c = esc[1]; /* the NUL terminator when '%' ends the template */
        if (c == ESC) {
            luaL_addchar(b, ESC);
        } else if (c == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (is_digit((unsigned char)c)) {
            push_capture(m, c - '1', s, e);
            luaL_tolstring(L, -1, NULL);
            lua_remove(L, -2);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        len -= (size_t)(esc + 2 - text);
        text = esc + 2;
    }
    luaL_addlstring(b, text, len);
}

/* Append the replacement for the match s..e; returns 1 when it changed the
** text, 0 when a function or table gave false or nil (keep the match). */
static int add_replacement(struct matcher *m, luaL_Buffer *b, const char *s, const char *e, int repl_type)
{
    lua_State *L = m->L;
    if (repl_type == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (repl_type == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_template(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int bounded_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int repl_type = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L,
                     repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING || repl_type == LUA_TFUNCTION ||
                         repl_type == LUA_TTABLE,
                     3, "string/function/table");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    struct matcher m;
    init_matcher(&m, L, budget_of(L), src, ls, p, lp);
    int anchored = *p == '^';
    if (anchored)
        m.pattern++;

    const char *s = src, *last = NULL;
    lua_Integer n = 0;
    int changed = 0;
    while (n < max_n) {
        m.level = 0;
        m.depth = 0;
        const char *e = match_nested(&m, s, m.pattern);
        if (e != NULL && e != last) {
            n++;
            changed |= add_replacement(&m, &b, s, e, repl_type);
            s = last = e;
        } else if (s < m.subject_end) {
            luaL_addchar(&b, *s++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, s, (size_t)(m.subject_end - s));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

/* }==================================================================== */

void sandbox_push_string_functions(lua_State *L, struct sandbox_budget *budget)
{
    static const luaL_Reg functions[] = {
        {"find", bounded_find},
        {"match", bounded_match},
        {"gmatch", bounded_gmatch},
        {"gsub", bounded_gsub},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, budget);
    luaL_setfuncs(L, functions, 1);
}
