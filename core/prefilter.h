/*
** Prefilter: find the records that may match a line before PCRE2 runs.
**
** Owns: literal requirements of patterns (literals.c), the Vectorscan
** databases and their disk cache, and the per-line candidate search
** (prefilter.c).
** Depends on: Vectorscan (libhs), zlib for checksums, the records of an
** engine.
**
** Contract: a record whose regex matches a line is always among the
** candidates of that line. Candidates that do not match cost one PCRE2 call.
*/
#ifndef TRIAGE_PREFILTER_H
#define TRIAGE_PREFILTER_H

#include <stddef.h>
#include <stdint.h>

struct pair_set;

/* {==== literal requirements (literals.c) */

#define REQUIREMENT_MAX_CLAUSES 64
#define REQUIREMENT_MAX_TERMS 4
#define REQUIREMENT_MAX_LITERAL 48

/* Literals that all occur in a line, lowercase ASCII, matched caselessly. */
struct requirement_clause {
    unsigned count;
    unsigned char length[REQUIREMENT_MAX_TERMS];
    char literal[REQUIREMENT_MAX_TERMS][REQUIREMENT_MAX_LITERAL];
};

/* What every match of a pattern contains: the literals of at least one
** clause, or, when any is set, nothing known. */
struct requirement {
    int any;
    size_t count;
    struct requirement_clause clause[REQUIREMENT_MAX_CLAUSES];
};

/* Find the literal requirement of a pattern, keeping only literals of at
** least min_length characters. Returns 0, or -1 when the pattern uses syntax
** that the reader does not follow; out->any is then set. */
int pattern_requirement(const char *pattern, size_t len, size_t min_length, struct requirement *out);

/* Length of the shortest literal a line must contain to satisfy the
** requirement; 0 when it requires nothing. */
size_t requirement_strength(const struct requirement *req);

/* }==== */

/* {==== candidate search (prefilter.c) */

struct triage_engine;
struct prefilter;
struct prefilter_scratch;

/* How a prefilter was obtained, for progress and benchmark output. */
enum prefilter_origin { PREFILTER_BUILT, PREFILTER_BUILT_AND_CACHED, PREFILTER_FROM_CACHE };

struct prefilter_info {
    enum prefilter_origin origin;
    size_t literal_records; /* records found through their literals */
    size_t pattern_records; /* records found through the Vectorscan pattern database */
    size_t always_records;  /* records matched with PCRE2 on every line */
    size_t utf_records;     /* pattern records also matched with PCRE2 on lines with non-ASCII bytes */
    double seconds;         /* time to build or load */
    char cache_path[512];   /* "" when the cache was not used */
};

/* Build the prefilter for the engine's records, loading it from the cache
** folder when a valid entry exists there and saving it otherwise. cache_dir
** may be NULL for no cache. Returns NULL with the error set. */
struct prefilter *prefilter_open(const struct triage_engine *engine, const char *cache_dir);
void prefilter_free(struct prefilter *prefilter);
void prefilter_describe(const struct prefilter *prefilter, struct prefilter_info *info);
/* Number of records the prefilter was built for. */
size_t prefilter_record_count(const struct prefilter *prefilter);

/* Per-thread state for prefilter_candidates. */
struct prefilter_scratch *prefilter_scratch_new(const struct prefilter *prefilter);
void prefilter_scratch_free(struct prefilter_scratch *scratch);

/* Find the candidate records of one line (no line end inside). *records
** receives their indexes in ascending order, valid until the next call with
** the same scratch. Returns their number, or SIZE_MAX on a Vectorscan error
** (the caller then matches every record). */
size_t prefilter_candidates(const struct prefilter *prefilter, struct prefilter_scratch *scratch, const char *line,
                            size_t len, const uint32_t **records);
/* The lowercase copy of the last line that prefilter_candidates searched,
** and its pair set, when it made them and the line has ASCII bytes only.
** Returns 1 with both set, else 0. Valid until the next call. */
int prefilter_lowered(const struct prefilter_scratch *scratch, const char **lowered, const struct pair_set **pairs);

/* The default cache folder: $XDG_CACHE_HOME/triage or ~/.cache/triage, or
** NULL when neither is set. Free with free(). */
char *prefilter_default_cache_dir(void);

/* }==== */

#endif
