/*
** Strict JSON reader for record files.
**
** Owns: parsing one JSON text into a tree allocated from one arena.
** Depends on: nothing but libc.
**
** lua-cjson decodes records for the Lua layer, but it cannot report a
** duplicate key, a line and column, or an integer that a double cannot hold,
** and it accepts NaN and hexadecimal numbers. Record files come from other
** teams and public corpora, so they are validated here first.
*/
#ifndef TRIAGE_JSON_H
#define TRIAGE_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/* Deepest nesting of arrays and objects that a record file may use. */
#define JSON_MAX_DEPTH 32
/* Most values (of any type, containers included) in one document. A record
** has a few hundred; the limit keeps a 64 MiB file of "1,1,1,..." from
** costing gigabytes of nodes. */
#define JSON_MAX_VALUES 1000000u

struct json_node;

struct json_member {
    const char *key;
    size_t key_len;
    struct json_node *value;
};

struct json_node {
    enum json_type type;
    unsigned line;          /* where the value starts, 1-based */
    size_t offset;          /* byte offset of the value in the text, from which json_column counts its column */
    union {
        double number;
        struct { const char *text; size_t len; } string; /* NUL-terminated, valid UTF-8 */
        struct { struct json_node **items; size_t count; } array;
        struct { struct json_member *members; size_t count; } object;
    } u;
};

struct json_doc {
    struct json_node *root;
    void *arena;
};

/* Error of a failed parse: position, the JSON path of the value being read
** ("workarounds[1].how", "-" at the top level) and a message naming the
** problem. */
struct json_error {
    unsigned line, column;
    char field[128];
    char message[160];
};

/* Parse len bytes of text. Returns 0 and fills doc, or -1 and fills err.
** Free a parsed doc with json_free. */
int json_parse(const char *text, size_t len, struct json_doc *doc, struct json_error *err);
void json_free(struct json_doc *doc);
/* The 1-based column, in characters, of a node of the document parsed
** from text: counted only when a message needs it, which spares the parse
** a pass over every byte. */
unsigned json_column(const char *text, const struct json_node *node);

/* Look up key in an object node; NULL when node is not an object or has no such key. */
const struct json_node *json_get(const struct json_node *node, const char *key);
/* The string of node, or NULL when node is missing or not a string. */
const char *json_string(const struct json_node *node);
/* Name of a type for messages ("string", "array", ...). */
const char *json_type_name(enum json_type type);

#endif
