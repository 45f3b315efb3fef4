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
struct rank_record;

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

/* A JIT-compiled copy of a pattern, made on first need (match.c). JIT
** compiling takes about 0.1 ms a pattern, far more than the few matches a
** one-off diagnosis runs. A pattern is therefore compiled only once it has
** been used often enough to repay it. */
struct lazy_jit {
    _Atomic(pcre2_code *) code; /* the copy, published when complete; NULL before */
    atomic_uint uses; /* work done with the interpreted pattern, in units of match.c */
    atomic_int started;
    atomic_int finished; /* the compile ended, with a published copy or without one */
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
    /* The record or its supplement lists examples (match or no_match), so
    ** its regex was written and tested against real lines and near misses. */
    int has_examples;

    pcre2_code *code;
    int jit; /* JIT is available: code is JIT-compiled once used often enough */
    struct lazy_jit lazy_jit;
    uint32_t group_count;
    char **group_names; /* indexed by group number; NULL for unnamed groups */
    struct alternative *alternatives;
    size_t alternative_count;
    atomic_int alternatives_compiled; /* their code is compiled on first use (match.c) */

    uint64_t *tokens; /* sorted unique token hashes of signature and aliases */
    size_t token_count;
    double token_weight; /* sum of the idf of tokens, set by rank_prepare */

    /* The regex compiled without the implicit anchor that a leading .* gives
    ** under DOTALL, or NULL when it has no such anchor. PCRE2 10.42 JIT keeps
    ** the anchor even where invalid UTF-8 stops the .* from reaching a later
    ** match, so subjects with invalid UTF-8 are searched with this code. */
    pcre2_code *floating_code;
    int floating_jit;
    struct lazy_jit floating_lazy_jit;
    int anchored;        /* the regex can match at its first start position only */
    /* The regex uses \G, (*COMMIT) or (*SKIP), whose meaning depends on
    ** where a pcre2_match call starts, so its search is never split into
    ** windows of start positions. */
    int start_sensitive;
    /* The regex uses \S, \D or \W outside a class. PCRE2 10.42 JIT with
    ** MATCH_INVALID_UTF matches those wrongly on multibyte characters
    ** (fixed in 10.43), so subjects with non-ASCII bytes use the interpreter. */
    int jit_ascii_only;
    /* For subjects of ASCII bytes only: the regex compiled without UTF,
    ** whose JIT code runs faster and matches such text alike, but for
    ** searches that reach the match limit (match.c). Built once
    ** the record is used often (match.c): NULL before, and a sign of none
    ** when the regex is not ASCII text or the variant differs in groups. */
    _Atomic(pcre2_code *) ascii_code;
    atomic_int ascii_started;
    atomic_uint limit_hits;
    atomic_int first_limit;    /* enum match_limit_kind of the first limit hit */
    atomic_int quarantined;    /* set after QUARANTINE_AFTER limit hits: no longer matched */
    atomic_int limit_reported; /* 0, 1 after the limit warning, 2 after the quarantine warning */
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
    /* Regexes of the last load call read from the regex cache, and compiled anew. */
    size_t regex_cache_hits, regex_cache_misses;

    /* Token document frequencies for ranking, rebuilt when records change. */
    uint64_t *df_keys;
    uint32_t *df_counts;
    double *df_base; /* per slot: the idf of a plain word with that count (rank.c) */
    size_t df_cap;
    struct rank_record *rank_records; /* per record: regex branches and token sets (rank.c) */
    size_t rank_record_count;
    int prepared;
    pthread_mutex_t prepare_lock;
    struct prefilter *prefilter; /* built by the first scan, under prepare_lock (prefilter.c) */

    char *datadir;
    unsigned flags;

    struct lua_State *L;
    pthread_mutex_t lua_lock;
    char **sites;
    size_t site_count;
};

/* util.c */
/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when the bytes at
** p are not one: an overlong form, a surrogate, a code point above
** U+10FFFF, a stray continuation byte or a sequence cut short. */
size_t utf8_length(const unsigned char *p, const unsigned char *end);
/* Value of the hex digit c, or -1. */
int hex_digit_value(int c);
/* Whether text has no byte above 0x7F; eight bytes at a time. */
int is_ascii_text(const char *text, size_t len);
int find_bytes(const char *hay, size_t hay_len, const char *needle, size_t needle_len);
void lower_ascii(char *out, const char *in, size_t len);
/* The byte pairs that occur in a text, to rule out most absent literals
** before a substring search: a literal whose pairs are not all in the set
** is not in the text. A byte is one of 64 classes (letters without case,
** digits, common punctuation, and all the rest), so bits[a] has bit b for
** the pair of classes a, b. */
struct pair_set {
    uint64_t bits[64];
};
void pair_set_build(struct pair_set *set, const char *text, size_t len);
/* Whether needle occurs in hay, whose pair set is given. */
int find_bytes_in(const char *hay, size_t hay_len, const struct pair_set *set, const char *needle, size_t needle_len);
/* Index of the first '\n' or '\r' of text, or len. */
size_t line_end(const char *text, size_t len);
void *xmalloc_or_null(size_t size);
char *dup_string(const char *s);
char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* FNV-1a, 64 bits: hash_bytes over a buffer, hash_step a byte at a time
** from HASH_SEED, for callers that transform bytes as they hash them. */
#define HASH_SEED 1469598103934665603ull
static inline uint64_t hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 1099511628211ull;
}
uint64_t hash_bytes(const void *data, size_t len);
int read_file(const char *path, size_t max_size, char **out, size_t *out_len, char *err, size_t errlen);
void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copy text into out (size bytes, at least 8) as valid UTF-8 without
** control characters: those and invalid bytes become \xNN, and text that
** does not fit ends in "...". For values quoted in messages. */
void printable_excerpt(char *out, size_t size, const char *text, size_t len);
int path_is_dir(const char *path);
int path_exists(const char *path);

/* Problems: a copy of every string is kept, so callers may pass temporaries. */
void problem_add(struct problem_list *list, triage_severity severity, const char *file, unsigned line,
                 unsigned column, const char *id, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
void problem_list_free(struct problem_list *list);
void problem_list_move(struct problem_list *dst, struct problem_list *src);
/* Maximum number of threads that parallel_for runs on, the calling one included. */
#define PARALLEL_MAX_THREADS 4
/* Cache files (util.c). make_folders creates dir and its parents (mode
** 0700). write_cache_file writes a header and a payload to a temporary file
** renamed to path, so a reader never sees half a file. prune_cache_files
** removes all but the newest keep files of dir named PREFIX*SUFFIX, so a
** cache used with many record sets does not grow without bound. */
int make_folders(const char *dir);
/* Read a cache file as read_file does, but only one that the process's
** user owns and that group and others cannot write. The caches hold
** compiled code that PCRE2 and Vectorscan take as it is, and their
** checksums catch damage, not a deliberate change. Returns 0, or -1 for
** any failure. */
int read_cache_file(const char *path, size_t max_size, char **out, size_t *out_len);
int write_cache_file(const char *path, const void *header, size_t header_len, const void *payload, size_t payload_len);
void prune_cache_files(const char *dir, const char *prefix, const char *suffix, size_t keep);

/* Threads that parallel_for runs on when it has work enough: one per CPU,
** at most PARALLEL_MAX_THREADS. */
size_t parallel_threads(void);
void parallel_for(size_t count, size_t min_per_thread, void (*fn)(void *context, size_t i), void *context);

/* regex_cache.c: compiled regexes of one load path, kept on disk. open
** returns NULL when there is no cache folder, and compile with a NULL
** cache, or for a pattern the file lacks, calls pcre2_compile. salt names
** everything besides the pattern and its options that decides a compiled
** code. close writes the file when the load changed it. */
struct regex_cache;
struct regex_cache *regex_cache_open(const char *load_path, const char *salt);
pcre2_code *regex_cache_compile(struct regex_cache *cache, const char *pattern, uint32_t options,
                                pcre2_compile_context *ctx, int *errcode, PCRE2_SIZE *erroffset);
void regex_cache_close(struct regex_cache *cache);
/* Patterns of this load served from the file and compiled anew. */
void regex_cache_counts(const struct regex_cache *cache, size_t *hits, size_t *misses);

/* record.c (cache may be NULL) */
struct record *record_from_json(const char *file, char *text, size_t len, struct regex_cache *cache,
                                struct problem_list *problems);
void record_free(struct record *record);
int record_add_supplement(struct record *record, const char *file, char *text, size_t len,
                          struct problem_list *problems);
int id_is_valid(const char *id);

/* match.c (cache may be NULL). record_compile_salt is the salt of
** regex_cache_open for the regexes that record_compile compiles. */
int record_compile(struct record *record, struct regex_cache *cache, struct problem_list *problems);
const char *record_compile_salt(void);
int regex_backtracking_risk(const char *pattern, char *why, size_t size);
struct match_scratch;
struct match_scratch *scratch_new(void);
void scratch_free(struct match_scratch *scratch);

enum match_outcome { MATCH_NONE = 0, MATCH_HIT = 1, MATCH_LIMIT = 2, MATCH_ERROR = 3 };
/* Why a match ended in MATCH_LIMIT. */
enum match_limit_kind {
    LIMIT_NONE,
    LIMIT_MATCH,
    LIMIT_DEPTH,
    LIMIT_HEAP,
    LIMIT_JIT_STACK,
    LIMIT_MEMORY,
    LIMIT_TIME,      /* the search of one subject ran out of its time budget */
    LIMIT_QUARANTINE /* the record is quarantined and was not matched */
};
/* Matching modes. MATCH_PROBE is MATCH_AUTO without counting or reporting
** a limit hit toward quarantine. The engine uses it for its own matches
** (a record's regex on its own signature), which no input caused. */
enum match_mode { MATCH_AUTO, MATCH_INTERPRETER, MATCH_PROBE };
struct hit {
    size_t record;
    const char *id; /* the record's id, for the deterministic tie-break */
    size_t line;                 /* 1-based line of the input */
    size_t line_start, line_len; /* the line within the input */
    size_t start, end;           /* the hit within the input */
    int alternative;             /* index of the regex branch that hit, -1 unknown (set by rank_score) */
    const char *pattern;         /* that branch, or the whole regex; owned by the engine */
    double score;
    double parts[TRIAGE_SCORE_PARTS];
    double line_weight; /* factor of a multi-line input's line errorness already in score, else 1 */
    int by_signature;   /* 1 when the record's signature, not its regex, matched (rank_signature_match) */
    int truncated;      /* 1 when the line was longer than the bound and only its first part was matched */
};
enum match_outcome record_match(const struct record *record, struct match_scratch *scratch, const char *subject,
                                size_t len, size_t *start, size_t *end);
/* record_match, with MATCH_INTERPRETER forcing the interpreter even when JIT code exists. */
enum match_outcome record_match_mode(const struct record *record, struct match_scratch *scratch,
                                     const char *subject, size_t len, enum match_mode mode, size_t *start,
                                     size_t *end);
/* The compiled regex that record_match uses on this subject, and whether it has JIT code. */
const pcre2_code *record_code_for(const struct record *record, const char *subject, size_t len, int *jit);
/* Free the JIT-compiled copies of a record's patterns. */
void record_release_jit(struct record *record);
void lazy_jit_free(struct lazy_jit *lazy);
/* Match a compiled pattern that is not a record's own regex (a branch of
** one, say) under the limits and time budget of record_match, without
** counting limit hits. plain is the pattern and lazy its JIT-compiled copy
** (lazy_jit_code). jit_ascii_only: the pattern uses \S, \D or \W (see
** pattern_jit_ascii_only), so a subject with non-ASCII bytes goes to the
** interpreter. The search is split into windows only for code compiled
** with PCRE2_USE_OFFSET_LIMIT. As with record_match, a PCRE2 limit is
** decided by the other engine where it can be. */
enum match_outcome pattern_match(struct lazy_jit *lazy, const pcre2_code *plain, int jit_ascii_only,
                                 struct match_scratch *scratch, const char *subject, size_t len, size_t *start,
                                 size_t *end);
/* Whether the JIT code of pattern must not match subjects with non-ASCII
** bytes: PCRE2 10.42's JIT with MATCH_INVALID_UTF fails \S, \D and \W on
** multibyte characters. */
int pattern_jit_ascii_only(const char *pattern);
enum match_limit_kind scratch_last_limit(const struct match_scratch *scratch);
const char *match_limit_name(enum match_limit_kind kind);
/* Turn the limit hits of records into warnings in engine->problems, once per record. */
void engine_report_limits(struct triage_engine *engine);
/* Byte offsets of named captures of the last hit: the caller walks groups 1..group_count. */
int scratch_group(const struct match_scratch *scratch, uint32_t group, size_t *start, size_t *end);
int record_which_alternative(const struct record *record, struct match_scratch *scratch, const char *subject,
                             size_t len);

/* line_view.c: a JSON log line with the string escapes of its JSON part
** undone (\" to ", \u003c to <), and for every byte of the text the
** offset in the line where its source starts; origin[len] is the line's
** length. One view is reused line after line. */
struct line_view {
    char *text;
    size_t *origin;
    size_t len, cap;
};
/* Whether line_view_make may make a view of the line: it has a backslash
** after a '{"'. Cheap enough to call on every scanned line. */
int line_view_possible(const char *line, size_t len);
/* Returns 1 when the line has a JSON part with escapes and view contains its
** text, 0 when the line is to be matched as it is, -1 when out of memory. */
int line_view_make(struct line_view *view, const char *line, size_t len);
/* The offset in the line of offset at of the view. */
size_t line_view_offset(const struct line_view *view, size_t at);
void line_view_free(struct line_view *view);

/* rank.c */
int rank_prepare(struct triage_engine *engine);
size_t tokenize(const char *text, size_t len, uint64_t *out, size_t max);
/* The words of one line and their weight, found by the first hit on the
** line and reused by the others: a scanned line with several candidate
** records is tokenized once. Set ready to 0 for every new line. */
#define RANK_LINE_TOKENS 1024
/* Maximum length of a line that ranking keeps a lowercase copy of (struct rank_line). */
#define RANK_LINE_LOWERED 4096
struct rank_line {
    int ready;
    size_t count;
    double weight; /* idf sum of the words that occur in some record */
    uint64_t tokens[RANK_LINE_TOKENS];
    /* The line in lowercase, for the literal tests that spare PCRE2 calls.
    ** lowered_state: 0 not built yet, 1 built, -1 none (the line has
    ** non-ASCII bytes or is longer than RANK_LINE_LOWERED). */
    int lowered_state;
    const char *lowered;          /* lowered_copy, or the copy that the prefilter made */
    const struct pair_set *pairs; /* of lowered */
    char lowered_copy[RANK_LINE_LOWERED];
    struct pair_set pair_copy;
};
void rank_score(const struct triage_engine *engine, const struct record *record, const char *line, size_t line_len,
                struct rank_line *words, struct hit *hit);
int hit_compare(const void *a, const void *b);
double literal_chars(const char *pattern, size_t len);
void rank_release(struct triage_engine *engine);
void rank_weights(double weights[TRIAGE_SCORE_PARTS], double *floor);
double line_errorness(const char *line, size_t len);
void rank_weigh_line(struct hit *hit, double errorness);
int rank_guess(const struct triage_engine *engine, const char *text, size_t len, struct hit *out, size_t max);
size_t pattern_group_end(const char *pattern, size_t len, size_t open);
size_t rank_branch_count(const struct triage_engine *engine, size_t r);
const char *rank_branch_pattern(const struct triage_engine *engine, size_t r, size_t i);
const char *rank_signature_pattern(const struct triage_engine *engine, size_t r);
/* words: the line's ranking state (rank_score), or NULL. */
int rank_signature_match(const struct triage_engine *engine, size_t r, struct match_scratch *scratch,
                         const char *line, size_t line_len, struct rank_line *words, size_t *start, size_t *end);

/* engine.c */
int engine_prepare(struct triage_engine *engine);
struct record *engine_find(const struct triage_engine *engine, const char *id);
size_t engine_find_index(const struct triage_engine *engine, const char *id);
int engine_match_text(const struct triage_engine *engine, struct match_scratch *scratch, const char *text,
                      size_t len, struct hit **hits, size_t *count);
/* Candidate records for one line: *records receives their indexes in
** ascending order; returns how many, or SIZE_MAX for every record. */
/* The line in lowercase and its pair set, which a candidates callback
** hands on when it made them for a line of ASCII bytes; NULL otherwise. */
struct line_lowered {
    const char *text;
    const struct pair_set *pairs;
};
typedef size_t (*line_candidates_fn)(void *context, const char *line, size_t len, const uint32_t **records,
                                     struct line_lowered *lowered);
int engine_match_candidates(const struct triage_engine *engine, struct match_scratch *scratch, const char *text,
                            size_t len, line_candidates_fn candidates, void *context, struct hit **hits,
                            size_t *count);

/* lua_engine.c */
int lua_engine_init(struct triage_engine *engine);
void lua_engine_close(struct triage_engine *engine);
int lua_engine_render_scan(struct triage_engine *engine, const char *summary, size_t len,
                           const triage_render_options *options, char **out, size_t *out_len, int *findings);
int lua_engine_render(struct triage_engine *engine, const char *text, size_t len, const struct hit *hits,
                      size_t hit_count, const triage_render_options *options, char **out, size_t *out_len,
                      int *diagnosed);
int lua_engine_check(struct triage_engine *engine);
int lua_engine_load_site(struct triage_engine *engine, const char *path);
/* Call engine.lua's function name(args..., options) under the engine's
** lock. args are byte strings of lens[i] bytes (lens NULL: NUL-terminated;
** a NULL arg pushes nil); options NULL pushes none. On success *out (when
** out is not NULL) receives a copy of the first result, a string, and
** numbers[0..nnumbers) the integer results after it. Returns 0, or -1
** with the error set. */
int lua_engine_call(struct triage_engine *engine, const char *name, const char *const *args, const size_t *lens,
                    int nargs, const triage_render_options *options, char **out, size_t *out_len, int *numbers,
                    int nnumbers);

#endif
