/*
** Strict JSON reader (RFC 8259) for record files: see json.h for why.
**
** Rejected on purpose: nesting deeper than JSON_MAX_DEPTH, duplicate keys,
** NaN, Infinity, hexadecimal and other non-RFC numbers, integers beyond
** 2^53 (a double would silently round them), invalid UTF-8, unpaired
** surrogate escapes and control characters inside strings.
*/
#define _GNU_SOURCE /* memrchr */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* {==== arena */

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
};

struct arena {
    struct arena_block *head;
};

static void *arena_alloc(struct arena *arena, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct arena_block *block = arena->head;
    if (block == NULL || block->size - block->used < size) {
        size_t want = size > 16384 ? size : 16384;
        block = malloc(sizeof *block + want);
        if (block == NULL)
            return NULL;
        block->next = arena->head;
        block->used = 0;
        block->size = want;
        arena->head = block;
    }
    void *p = block->data + block->used;
    block->used += size;
    return p;
}

static void arena_free(struct arena *arena)
{
    struct arena_block *block = arena->head;
    while (block != NULL) {
        struct arena_block *next = block->next;
        free(block);
        block = next;
    }
    free(arena);
}

/* }==== */

/* One step of the path from the root to the value being parsed. */
struct path_step {
    const char *key; /* NULL inside an array */
    size_t index;
};

struct parser {
    const unsigned char *start, *p, *end;
    const unsigned char *line_start;
    unsigned line;
    size_t values;
    struct path_step path[JSON_MAX_DEPTH + 1];
    int path_depth;
    struct arena *arena;
    struct json_error *err;
    int failed;
};

/* Return the 1-based column of at on the line that starts at line_start.
** Columns count characters, not bytes, so a multibyte character before
** the position moves the column by one, as an editor shows it. */
static unsigned column_from(const unsigned char *line_start, const unsigned char *at)
{
    if (at <= line_start)
        return 1;
    /* Characters are bytes less continuation bytes. The loop is kept simple
    ** enough to vectorize, because a minified file is one long line. */
    size_t continuation = 0;
    for (const unsigned char *q = line_start; q < at; q++)
        continuation += (*q & 0xC0) == 0x80;
    return (unsigned)((size_t)(at - line_start) - continuation + 1);
}

/* Write the path of the value being parsed, such as "workarounds[1].how",
** into out; "-" at the top level. */
static void format_path(const struct parser *ps, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < ps->path_depth && n < size; i++) {
        const struct path_step *step = &ps->path[i];
        int w;
        if (step->key != NULL)
            w = snprintf(out + n, size - n, "%s%s", n > 0 ? "." : "", step->key);
        else
            w = snprintf(out + n, size - n, "[%zu]", step->index);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    /* Keys may hold control characters, and snprintf may have cut the last
    ** character short; neither belongs in a message. */
    size_t len = strlen(out), keep = len;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7F)
            out[i] = '?';
    while (keep > 0 && ((unsigned char)out[keep - 1] & 0x80) != 0) {
        unsigned char c = (unsigned char)out[--keep];
        if ((c & 0xC0) == 0xC0) {
            size_t need = 2;
            if (c >= 0xF0)
                need = 4;
            else if (c >= 0xE0)
                need = 3;
            if (len - keep >= need)
                keep = len; /* the last character is whole */
            break;
        }
    }
    out[keep] = '\0';
    if (out[0] == '\0')
        snprintf(out, size, "-");
}

static int fail_at(struct parser *ps, const unsigned char *at, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = 1;
    ps->err->line = ps->line;
    ps->err->column = column_from(ps->line_start, at);
    format_path(ps, ps->err->field, sizeof ps->err->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->message, sizeof ps->err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_space(struct parser *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '\n') {
            ps->line++;
            ps->line_start = ps->p + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return;
        }
        ps->p++;
    }
}

static struct json_node *new_node(struct parser *ps, enum json_type type, const unsigned char *at)
{
    if (++ps->values > JSON_MAX_VALUES) {
        fail_at(ps, at, "more than %u values in one document", JSON_MAX_VALUES);
        return NULL;
    }
    struct json_node *node = arena_alloc(ps->arena, sizeof *node);
    if (node == NULL) {
        fail_at(ps, at, "out of memory");
        return NULL;
    }
    memset(node, 0, sizeof *node);
    node->type = type;
    node->line = ps->line;
    node->offset = (size_t)(at - ps->start);
    return node;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    return need;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parse a string starting at the opening quote. The decoded text is never
** longer than the source, so one allocation of the source length suffices. */
/* Number of bytes at p, before end, that a string contains unchanged:
** printable ASCII other than '"' and '\\'. */
static size_t plain_run(const unsigned char *p, const unsigned char *end)
{
    size_t i = 0, len = (size_t)(end - p);
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        /* A signed compare: bytes from 0x80 up are negative, below space. */
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                    _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

static int parse_string(struct parser *ps, const char **text, size_t *len)
{
    const unsigned char *start = ++ps->p;
    /* Most strings of a record are plain ASCII: one search, one copy. */
    size_t plain = plain_run(start, ps->end);
    if (plain < (size_t)(ps->end - start) && start[plain] == '"') {
        unsigned char *out = arena_alloc(ps->arena, plain + 1);
        if (out == NULL)
            return fail_at(ps, start, "out of memory");
        memcpy(out, start, plain);
        out[plain] = '\0';
        ps->p = start + plain + 1;
        *text = (const char *)out;
        *len = plain;
        return 0;
    }
    const unsigned char *q = start;
    while (q < ps->end && *q != '"') {
        if (*q == '\\' && q + 1 < ps->end)
            q++;
        q++;
    }
    if (q >= ps->end)
        return fail_at(ps, start - 1, "unterminated string");
    unsigned char *out = arena_alloc(ps->arena, (size_t)(q - start) + 1);
    if (out == NULL)
        return fail_at(ps, start, "out of memory");
    size_t n = 0;
    while (ps->p < q) {
        unsigned char c = *ps->p;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            /* Plain ASCII, most of a record, is copied a run at a time. */
            const unsigned char *run = ps->p + 1;
            while (run < q && *run >= 0x20 && *run < 0x80 && *run != '\\')
                run++;
            memcpy(out + n, ps->p, (size_t)(run - ps->p));
            n += (size_t)(run - ps->p);
            ps->p = run;
            continue;
        }
        if (c < 0x20)
            return fail_at(ps, ps->p, "control character 0x%02x in string; escape it as \\u%04x", c, c);
        if (c == '\\') {
            unsigned char e = ps->p[1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e != 0 && simple != NULL) {
                static const char decoded[] = "\"\\/\b\f\n\r\t";
                out[n++] = (unsigned char)decoded[simple - "\"\\/bfnrt"];
                ps->p += 2;
                continue;
            }
            if (e != 'u')
                return fail_at(ps, ps->p, "invalid escape '\\%c' in string", e >= 0x20 && e < 0x7F ? e : '?');
            uint32_t cp;
            if (q - ps->p < 6 || hex4(ps->p + 2, &cp) != 0)
                return fail_at(ps, ps->p, "invalid \\u escape: expected four hex digits");
            ps->p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(ps, ps->p - 6, "unpaired low surrogate \\u%04X", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t low;
                if (q - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &low) != 0 ||
                    low < 0xDC00 || low > 0xDFFF)
                    return fail_at(ps, ps->p - 6, "unpaired high surrogate \\u%04X", (unsigned)cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                ps->p += 6;
            }
            if (cp == 0)
                return fail_at(ps, ps->p - 6, "\\u0000 is not allowed in record strings");
            n += put_utf8(out + n, cp);
            continue;
        }
        size_t seq = utf8_sequence(ps->p, q);
        if (seq == 0)
            return fail_at(ps, ps->p, "invalid UTF-8 byte 0x%02x in string", c);
        memcpy(out + n, ps->p, seq);
        n += seq;
        ps->p += seq;
    }
    out[n] = '\0';
    ps->p = q + 1;
    *text = (const char *)out;
    *len = n;
    return 0;
}

static struct json_node *parse_number(struct parser *ps)
{
    const unsigned char *start = ps->p, *c = ps->p;
    int integral = 1;
    if (c < ps->end && *c == '-')
        c++;
    if (c < ps->end && (*c == 'I' || *c == 'N')) {
        fail_at(ps, start, "NaN and Infinity are not JSON numbers");
        return NULL;
    }
    if (c >= ps->end || *c < '0' || *c > '9') {
        fail_at(ps, start, "invalid number: expected a digit");
        return NULL;
    }
    if (*c == '0' && c + 1 < ps->end && c[1] >= '0' && c[1] <= '9') {
        fail_at(ps, start, "invalid number: leading zero");
        return NULL;
    }
    if (*c == '0' && c + 1 < ps->end && (c[1] == 'x' || c[1] == 'X')) {
        fail_at(ps, start, "invalid number: hexadecimal numbers are not JSON");
        return NULL;
    }
    while (c < ps->end && *c >= '0' && *c <= '9')
        c++;
    if (c < ps->end && *c == '.') {
        integral = 0;
        c++;
        if (c >= ps->end || *c < '0' || *c > '9') {
            fail_at(ps, start, "invalid number: expected a digit after '.'");
            return NULL;
        }
        while (c < ps->end && *c >= '0' && *c <= '9')
            c++;
    }
    if (c < ps->end && (*c == 'e' || *c == 'E')) {
        integral = 0;
        c++;
        if (c < ps->end && (*c == '+' || *c == '-'))
            c++;
        if (c >= ps->end || *c < '0' || *c > '9') {
            fail_at(ps, start, "invalid number: expected a digit in the exponent");
            return NULL;
        }
        while (c < ps->end && *c >= '0' && *c <= '9')
            c++;
    }
    /* Most numbers of a record are short decimals such as 0.85: with 15
    ** digits or fewer and no exponent, the digits and the power of ten are
    ** exact doubles and one division rounds as strtod does. */
    if (c - start <= 16) {
        const unsigned char *d = *start == '-' ? start + 1 : start;
        uint64_t digits = 0;
        unsigned count = 0, fraction = 0;
        int plain = 1;
        for (; d < c && plain; d++) {
            if (*d == '.') {
                fraction = (unsigned)(c - d - 1);
                continue;
            }
            plain = *d >= '0' && *d <= '9';
            digits = digits * 10 + (uint64_t)(*d - '0');
            count++;
        }
        if (plain && count <= 15) {
            static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                           1e14, 1e15};
            double value = (double)digits / POW10[fraction];
            struct json_node *node = new_node(ps, JSON_NUMBER, start);
            if (node != NULL)
                node->u.number = *start == '-' ? -value : value;
            ps->p = c;
            return node;
        }
    }
    char buf[64];
    size_t len = (size_t)(c - start);
    if (len >= sizeof buf) {
        fail_at(ps, start, "invalid number: more than %zu characters", sizeof buf - 1);
        return NULL;
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    errno = 0;
    double value = strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(value)) {
        fail_at(ps, start, "number %s is out of range", buf);
        return NULL;
    }
    /* strtod rounds 2^53 + 1 down to 2^53, so large integers are compared
    ** exactly as integers. */
    unsigned long long magnitude = 0;
    if (integral) {
        errno = 0;
        magnitude = strtoull(buf[0] == '-' ? buf + 1 : buf, NULL, 10);
        if (errno == ERANGE)
            magnitude = ULLONG_MAX;
    }
    if (integral && magnitude > 9007199254740992ull) {
        fail_at(ps, start, "integer %s is beyond 2^53 and would lose precision", buf);
        return NULL;
    }
    struct json_node *node = new_node(ps, JSON_NUMBER, start);
    if (node != NULL)
        node->u.number = value;
    ps->p = c;
    return node;
}

static struct json_node *parse_value(struct parser *ps, int depth);

/* Growable list of pointers or members, copied into the arena when done.
** The first few items stay on the stack: most objects and arrays of a
** record are small, and a heap buffer for each cost a malloc and a free. */
#define LIST_INLINE_BYTES 256

struct list {
    void *items; /* inline, or on the heap once it outgrew inline */
    size_t count, cap, elem;
    _Alignas(max_align_t) unsigned char inline_items[LIST_INLINE_BYTES];
};

static void list_init(struct list *list, size_t elem)
{
    list->items = list->inline_items;
    list->count = 0;
    list->cap = LIST_INLINE_BYTES / elem;
    list->elem = elem;
}

static void list_release(struct list *list)
{
    if (list->items != list->inline_items)
        free(list->items);
    list->items = NULL;
}

static int list_push(struct list *list, const void *item)
{
    if (list->count == list->cap) {
        size_t cap = list->cap * 2;
        void *items;
        if (list->items == list->inline_items) {
            items = malloc(cap * list->elem);
            if (items != NULL)
                memcpy(items, list->inline_items, list->count * list->elem);
        } else {
            items = realloc(list->items, cap * list->elem);
        }
        if (items == NULL)
            return -1;
        list->items = items;
        list->cap = cap;
    }
    memcpy((char *)list->items + list->count * list->elem, item, list->elem);
    list->count++;
    return 0;
}

static void *list_finish(struct parser *ps, struct list *list)
{
    void *copy = NULL;
    if (list->count > 0) {
        copy = arena_alloc(ps->arena, list->count * list->elem);
        if (copy != NULL)
            memcpy(copy, list->items, list->count * list->elem);
    }
    list_release(list);
    return copy;
}

static struct json_node *parse_array(struct parser *ps, int depth)
{
    struct json_node *node = new_node(ps, JSON_ARRAY, ps->p);
    struct list list;
    list_init(&list, sizeof(struct json_node *));
    if (node == NULL)
        return NULL;
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return node;
    }
    for (;;) {
        ps->path[depth] = (struct path_step){NULL, list.count};
        ps->path_depth = depth + 1;
        struct json_node *item = parse_value(ps, depth + 1);
        if (item == NULL || list_push(&list, &item) != 0)
            goto fail;
        ps->path_depth = depth;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        fail_at(ps, ps->p, "expected ',' or ']' in array");
        goto fail;
    }
    node->u.array.count = list.count;
    node->u.array.items = list_finish(ps, &list);
    if (node->u.array.items == NULL)
        goto fail;
    return node;
fail:
    fail_at(ps, ps->p, "out of memory");
    list_release(&list);
    return NULL;
}

/* Keys of the object being parsed, for duplicate detection: a linear scan
** while the object is small, then an open-addressing table of member
** positions, so that an object of a million keys is not quadratic. */
struct key_index {
    size_t *slots; /* member position + 1, 0 when empty */
    size_t cap;
};

#define KEY_INDEX_FROM 16

static size_t key_hash(const char *key, size_t len)
{
    size_t h = (size_t)1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * (size_t)1099511628211ull;
    return h;
}

static int same_key(const struct json_member *member, const char *key, size_t len)
{
    return member->key_len == len && memcmp(member->key, key, len) == 0;
}

/* Insert member `position` of list into the index; 0, or -1 out of memory. */
static int key_index_add(struct key_index *index, const struct list *list, size_t position)
{
    const struct json_member *members = list->items;
    if ((position + 1) * 2 > index->cap) {
        size_t cap = index->cap ? index->cap * 2 : 64;
        size_t *slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return -1;
        free(index->slots);
        index->slots = slots;
        index->cap = cap;
        for (size_t i = 0; i < position; i++) {
            size_t h = key_hash(members[i].key, members[i].key_len) & (cap - 1);
            while (slots[h] != 0)
                h = (h + 1) & (cap - 1);
            slots[h] = i + 1;
        }
    }
    size_t h = key_hash(members[position].key, members[position].key_len) & (index->cap - 1);
    while (index->slots[h] != 0)
        h = (h + 1) & (index->cap - 1);
    index->slots[h] = position + 1;
    return 0;
}

static int key_seen(const struct list *list, const struct key_index *index, const char *key, size_t len)
{
    const struct json_member *members = list->items;
    if (index->cap == 0) {
        for (size_t i = 0; i < list->count; i++)
            if (same_key(&members[i], key, len))
                return 1;
        return 0;
    }
    for (size_t h = key_hash(key, len) & (index->cap - 1); index->slots[h] != 0; h = (h + 1) & (index->cap - 1))
        if (same_key(&members[index->slots[h] - 1], key, len))
            return 1;
    return 0;
}

/* A key as messages quote it: at most about 60 bytes, cut at a character
** boundary, control characters shown as '?'. Keys are valid UTF-8. */
static const char *shown_key(const char *key, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)key; *c != '\0' && n + 4 < size; c++)
        out[n++] = *c < 0x20 || *c == 0x7F ? '?' : (char)*c;
    while (n > 0 && key[n] != '\0' && ((unsigned char)key[n] & 0xC0) == 0x80)
        n--; /* the next byte continues a character: drop its start */
    out[n] = '\0';
    return out;
}

static struct json_node *parse_object(struct parser *ps, int depth)
{
    char key_text[64];
    struct json_node *node = new_node(ps, JSON_OBJECT, ps->p);
    struct list list;
    list_init(&list, sizeof(struct json_member));
    struct key_index index = {NULL, 0};
    if (node == NULL)
        return NULL;
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return node;
    }
    for (;;) {
        struct json_member member;
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            fail_at(ps, ps->p, "expected a string key in object");
            goto fail;
        }
        const unsigned char *key_at = ps->p;
        if (parse_string(ps, &member.key, &member.key_len) != 0)
            goto fail;
        ps->path[depth] = (struct path_step){member.key, 0};
        ps->path_depth = depth + 1;
        if (key_seen(&list, &index, member.key, member.key_len)) {
            fail_at(ps, key_at, "duplicate key \"%s\"", shown_key(member.key, key_text, sizeof key_text));
            goto fail;
        }
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            fail_at(ps, ps->p, "expected ':' after key \"%s\"", shown_key(member.key, key_text, sizeof key_text));
            goto fail;
        }
        ps->p++;
        member.value = parse_value(ps, depth + 1);
        if (member.value == NULL || list_push(&list, &member) != 0)
            goto fail;
        if (list.count > KEY_INDEX_FROM && key_index_add(&index, &list, list.count - 1) != 0)
            goto fail;
        ps->path_depth = depth;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        fail_at(ps, ps->p, "expected ',' or '}' in object");
        goto fail;
    }
    free(index.slots);
    node->u.object.count = list.count;
    node->u.object.members = list_finish(ps, &list);
    if (node->u.object.members == NULL)
        goto fail;
    return node;
fail:
    fail_at(ps, ps->p, "out of memory");
    list_release(&list);
    free(index.slots);
    return NULL;
}

static int literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static struct json_node *parse_value(struct parser *ps, int depth)
{
    skip_space(ps);
    if (ps->p >= ps->end) {
        fail_at(ps, ps->p, "unexpected end of input");
        return NULL;
    }
    const unsigned char *at = ps->p;
    unsigned char c = *ps->p;
    if ((c == '[' || c == '{') && depth >= JSON_MAX_DEPTH) {
        fail_at(ps, at, "nesting deeper than %d levels", JSON_MAX_DEPTH);
        return NULL;
    }
    switch (c) {
    case '{':
        return parse_object(ps, depth);
    case '[':
        return parse_array(ps, depth);
    case '"': {
        struct json_node *node = new_node(ps, JSON_STRING, at);
        if (node == NULL || parse_string(ps, &node->u.string.text, &node->u.string.len) != 0)
            return NULL;
        return node;
    }
    case 't':
        if (literal(ps, "true"))
            return new_node(ps, JSON_TRUE, at);
        break;
    case 'f':
        if (literal(ps, "false"))
            return new_node(ps, JSON_FALSE, at);
        break;
    case 'n':
        if (literal(ps, "null"))
            return new_node(ps, JSON_NULL, at);
        break;
    case 'N':
    case 'I':
        fail_at(ps, at, "NaN and Infinity are not JSON numbers");
        return NULL;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(ps);
    }
    if (c >= 0x20 && c < 0x7F)
        fail_at(ps, at, "unexpected character '%c'", c);
    else
        fail_at(ps, at, "unexpected byte 0x%02x", c);
    return NULL;
}

int json_parse(const char *text, size_t len, struct json_doc *doc, struct json_error *err)
{
    struct parser ps = {0};
    ps.start = ps.p = ps.line_start = (const unsigned char *)text;
    ps.end = ps.p + len;
    ps.line = 1;
    ps.err = err;
    ps.arena = calloc(1, sizeof *ps.arena);
    doc->root = NULL;
    doc->arena = NULL;
    if (ps.arena == NULL) {
        err->line = err->column = 0;
        snprintf(err->field, sizeof err->field, "-");
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    /* A byte order mark is tolerated because editors on Windows add one. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3;
    struct json_node *root = parse_value(&ps, 0);
    if (root != NULL) {
        skip_space(&ps);
        if (ps.p < ps.end) {
            ps.path_depth = 0;
            fail_at(&ps, ps.p, "unexpected text after the JSON value");
            root = NULL;
        }
    }
    if (root == NULL) {
        arena_free(ps.arena);
        return -1;
    }
    doc->root = root;
    doc->arena = ps.arena;
    return 0;
}

unsigned json_column(const char *text, const struct json_node *node)
{
    const unsigned char *begin = (const unsigned char *)text;
    const unsigned char *newline = memrchr(begin, '\n', node->offset);
    return column_from(newline != NULL ? newline + 1 : begin, begin + node->offset);
}

void json_free(struct json_doc *doc)
{
    if (doc->arena != NULL)
        arena_free(doc->arena);
    doc->arena = NULL;
    doc->root = NULL;
}

const struct json_node *json_get(const struct json_node *node, const char *key)
{
    if (node == NULL || node->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < node->u.object.count; i++)
        if (strcmp(node->u.object.members[i].key, key) == 0)
            return node->u.object.members[i].value;
    return NULL;
}

const char *json_string(const struct json_node *node)
{
    return node != NULL && node->type == JSON_STRING ? node->u.string.text : NULL;
}

const char *json_type_name(enum json_type type)
{
    switch (type) {
    case JSON_NULL:
        return "null";
    case JSON_FALSE:
    case JSON_TRUE:
        return "boolean";
    case JSON_NUMBER:
        return "number";
    case JSON_STRING:
        return "string";
    case JSON_ARRAY:
        return "array";
    case JSON_OBJECT:
        return "object";
    }
    return "unknown";
}
