/*
** Internal model shared by the core's units: records, problems, the engine.
**
** Owns: struct definitions and the helpers every unit uses.
** Depends on: PCRE2, Lua (only as an opaque lua_State pointer here).
*/
#ifndef TRIAGE_INTERNAL_H
#define TRIAGE_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "triage.h"

struct lua_State;

/* Longest regex a record may carry; PCRE2 enforces it at compile time. */
#define RECORD_MAX_PATTERN 8192
/* Largest record file read; larger files are rejected unread. */
#define RECORD_MAX_FILE_SIZE (64u << 20)

/* One top-level alternative of a record's regex, used to tell which
** alternative carried a hit and how much literal text it holds. */
struct alternative {
    char *pattern;
    pcre2_code *code;
    double literal_chars;
};

struct record {
    char *id;
    char *file;
    char *signature;
    char *regex;
    unsigned regex_line, regex_column; /* where the regex string starts in the file */
    char **aliases;
    size_t alias_count;
    double confidence;
    int nested_schema; /* 1 when read from the public corpus' nested schema */
    char *json;        /* the file's text, validated, decoded again by Lua on demand */
    size_t json_len;
    char *supplement; /* SLUG.supplement.json text, or NULL */
    size_t supplement_len;

    pcre2_code *code;
    int jit;
    uint32_t group_count;
    char **group_names; /* indexed by group number; NULL for unnamed groups */
    struct alternative *alternatives;
    size_t alternative_count;

    uint64_t *tokens; /* sorted unique token hashes of signature and aliases */
    size_t token_count;
    double token_weight; /* sum of the idf of tokens, set by rank_prepare */

    atomic_uint limit_hits;
    atomic_int quarantined;
};

struct problem_list {
    triage_problem *items;
    size_t count, cap;
};

struct engine_site {
    char *path;
};

struct triage_engine {
    struct record **records;
    size_t record_count, record_cap;

    /* Open-addressing index from id to position in records. */
    size_t *index;
    size_t index_cap;

    struct problem_list problems;
    size_t loaded, rejected;

    /* Token document frequencies for ranking, rebuilt when records change. */
    uint64_t *df_keys;
    uint32_t *df_counts;
    size_t df_cap;
    int prepared;
    pthread_mutex_t prepare_lock;

    char *datadir;
    unsigned flags;

    struct lua_State *L;
    pthread_mutex_t lua_lock;
    char **sites;
    size_t site_count;
};

/* util.c */
void *xmalloc_or_null(size_t size);
char *dup_string(const char *s);
char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t hash_bytes(const void *data, size_t len);
int read_file(const char *path, size_t max_size, char **out, size_t *out_len, char *err, size_t errlen);
void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int path_is_dir(const char *path);
int path_exists(const char *path);

/* Problems: a copy of every string is kept, so callers may pass temporaries. */
void problem_add(struct problem_list *list, triage_severity severity, const char *file, unsigned line,
                 unsigned column, const char *id, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
void problem_list_free(struct problem_list *list);

/* record.c */
struct record *record_from_json(const char *file, char *text, size_t len, struct problem_list *problems);
void record_free(struct record *record);
int record_add_supplement(struct record *record, const char *file, char *text, size_t len,
                          struct problem_list *problems);
int id_is_valid(const char *id);

/* match.c */
int record_compile(struct record *record, struct problem_list *problems);
struct match_scratch;
struct match_scratch *scratch_new(void);
void scratch_free(struct match_scratch *scratch);

enum match_outcome { MATCH_NONE = 0, MATCH_HIT = 1, MATCH_LIMIT = 2, MATCH_ERROR = 3 };
struct hit {
    size_t record;
    const char *id; /* the record's id, for the deterministic tie-break */
    size_t line;                 /* 1-based line of the input */
    size_t line_start, line_len; /* the line within the input */
    size_t start, end;           /* the hit within the input */
    int alternative;             /* index of the top-level alternative that hit, -1 unknown */
    double score;
    double parts[TRIAGE_SCORE_PARTS];
};
enum match_outcome record_match(const struct record *record, struct match_scratch *scratch, const char *subject,
                                size_t len, size_t *start, size_t *end);
/* Byte offsets of named captures of the last hit: the caller walks groups 1..group_count. */
int scratch_group(const struct match_scratch *scratch, uint32_t group, size_t *start, size_t *end);
int record_which_alternative(const struct record *record, struct match_scratch *scratch, const char *subject,
                             size_t len);

/* rank.c */
int rank_prepare(struct triage_engine *engine);
size_t tokenize(const char *text, size_t len, uint64_t *out, size_t max);
void rank_score(const struct triage_engine *engine, const struct record *record, const char *line, size_t line_len,
                struct hit *hit);
int hit_compare(const void *a, const void *b);
double literal_chars(const char *pattern, size_t len);

/* engine.c */
struct record *engine_find(const struct triage_engine *engine, const char *id);
size_t engine_find_index(const struct triage_engine *engine, const char *id);
int engine_match_text(const struct triage_engine *engine, struct match_scratch *scratch, const char *text,
                      size_t len, struct hit **hits, size_t *count);

/* lua_engine.c */
int lua_engine_init(struct triage_engine *engine);
void lua_engine_close(struct triage_engine *engine);
int lua_engine_render(struct triage_engine *engine, const char *text, size_t len, const struct hit *hits,
                      size_t hit_count, const triage_render_options *options, char **out, size_t *out_len,
                      int *diagnosed);
int lua_engine_check(struct triage_engine *engine);
int lua_engine_load_site(struct triage_engine *engine, const char *path);

#endif
