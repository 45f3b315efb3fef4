/*
** triage: a diagnosis engine for operations work.
**
** Give it an error message or log text; it finds the known problems that the
** text shows in a knowledge base of JSON records and reports, for each, the
** root cause, the fixes known to fail, the fixes that work (best first), and
** the errors that come before or after.
**
** Lifecycle:
**   triage_open()            create an engine
**   triage_load_records()    load record files or folders (repeatable), or
**   triage_load_default_records()
**   triage_load_site()       add a site file layer (repeatable)
**   triage_diagnose()        diagnose text and render a report
**   triage_close()           free everything
**
** Threads: load records and site files from one thread before sharing the
** engine. After that, triage_match() and triage_diagnose() may be called on
** one engine from several threads at once. Matching runs in parallel; the
** Lua part of triage_diagnose() (report building and rendering) is
** serialised on the engine's lock.
**
** Errors: a function that fails returns a negative value or NULL and sets a
** message for the calling thread, read with triage_last_error(). The library
** never prints and never exits.
**
** Ownership: strings returned through an out-parameter are allocated by the
** library and freed by the caller with triage_free(). Pointers returned by
** accessors (problems, record ids) stay valid until the next load call or
** triage_close().
*/
#ifndef TRIAGE_H
#define TRIAGE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TRIAGE_BUILDING_LIBRARY)
#define TRIAGE_API __attribute__((visibility("default")))
#else
#define TRIAGE_API
#endif

#define TRIAGE_VERSION_MAJOR 0
#define TRIAGE_VERSION_MINOR 1
#define TRIAGE_VERSION_PATCH 0

/* Exit statuses of the command-line tool, as grep: */
enum {
    TRIAGE_EXIT_MATCH = 0,    /* something was diagnosed */
    TRIAGE_EXIT_NO_MATCH = 1, /* nothing matched */
    TRIAGE_EXIT_ERROR = 2     /* usage or data error */
};

typedef struct triage_engine triage_engine;

/* Flags for triage_options.flags. */
#define TRIAGE_NO_SITE_LAYERS 0x1u /* skip /etc/triage/site.lua and the user's site file */
#define TRIAGE_STRICT 0x2u         /* a rejected record makes the load call fail */

typedef struct triage_options {
    unsigned flags;
    /* Folder holding records/, rules/ and lua/; NULL finds it: $TRIAGE_DATADIR,
    ** the source tree of a build, then the install prefix. */
    const char *datadir;
} triage_options;

typedef enum { TRIAGE_WARNING = 1, TRIAGE_ERROR = 2 } triage_severity;

/* A problem found while loading or checking records: FILE:LINE:COLUMN: ID: FIELD: message. */
typedef struct triage_problem {
    triage_severity severity;
    const char *file;
    unsigned line, column; /* 0 when unknown */
    const char *id;        /* "-" when the record has no usable id */
    const char *field;     /* JSON path such as "workarounds[2].success_rate", or "-" */
    const char *message;
} triage_problem;

/* Number of parts in triage_hit.parts, in this order: */
enum {
    TRIAGE_PART_LITERAL,    /* literal text of the pattern alternative that hit */
    TRIAGE_PART_COVERAGE,   /* share of the line that the hit covers */
    TRIAGE_PART_SIMILARITY, /* idf-weighted token overlap with signature and aliases */
    TRIAGE_PART_CONFIDENCE, /* the record's own confidence */
    TRIAGE_SCORE_PARTS
};

/* One regex hit of a record on the input, ranked. */
typedef struct triage_hit {
    const char *id;       /* owned by the engine */
    double score;         /* in [0, 1], higher is better */
    double parts[TRIAGE_SCORE_PARTS];
    size_t line;          /* 1-based line of the input that carried the hit */
    size_t start, end;    /* byte offsets of the hit within the whole input */
} triage_hit;

typedef struct triage_render_options {
    const char *format; /* "text", "json", "ndjson", "markdown" or a path to a Lua formatter; NULL: text */
    const char *lang;   /* "en" or "zh"; NULL: en */
    int top;            /* at most this many diagnoses; 0: all */
    int color;          /* ANSI colour in text output */
    int explain;        /* include score parts */
    int guess;          /* propose the closest signatures when no regex matched */
    double min_score;   /* drop diagnoses scoring below this */
} triage_render_options;

/* Create an engine. opts may be NULL. Returns NULL on failure. */
TRIAGE_API triage_engine *triage_open(const triage_options *opts);

/* Free the engine and set *engine to NULL. Accepts NULL and a pointer to NULL. */
TRIAGE_API void triage_close(triage_engine **engine);

/* Load one record file, or every *.json file below a folder. A bad record is
** reported as a problem and skipped; the others load. Returns the number of
** records loaded, or -1 when the path cannot be read (or, with TRIAGE_STRICT,
** when any record was rejected). */
TRIAGE_API int triage_load_records(triage_engine *engine, const char *path);

/* Load the records shipped with the engine (datadir/records). */
TRIAGE_API int triage_load_default_records(triage_engine *engine);

/* Add a site file layer on top of those loaded before. Returns 0, or -1 when
** the file cannot be loaded (the message names the file and line). */
TRIAGE_API int triage_load_site(triage_engine *engine, const char *path);

TRIAGE_API size_t triage_record_count(const triage_engine *engine);
/* Id of record i in load order, or NULL when i is out of range. */
TRIAGE_API const char *triage_record_id(const triage_engine *engine, size_t i);

/* Problems found so far by loads and checks. */
TRIAGE_API size_t triage_problem_count(const triage_engine *engine);
TRIAGE_API const triage_problem *triage_problem_at(const triage_engine *engine, size_t i);
/* Records loaded and rejected so far. */
TRIAGE_API void triage_load_counts(const triage_engine *engine, size_t *loaded, size_t *rejected);

/* Match text (one or more lines) against every record and rank the hits.
** Fills at most max_hits entries, best first; returns how many hits there
** were in total (which may exceed max_hits), or -1 on error. */
TRIAGE_API int triage_match(triage_engine *engine, const char *text, size_t len, triage_hit *hits, size_t max_hits);

/* Diagnose text and render the report. *out receives the rendered text
** (free with triage_free) and *out_len its length (out_len may be NULL).
** Returns the number of diagnoses (0 when nothing matched), or -1 on error. */
TRIAGE_API int triage_diagnose(triage_engine *engine, const char *text, size_t len,
                               const triage_render_options *options, char **out, size_t *out_len);

/* Check the loaded records beyond loading: each regex against its own
** signature and examples, patterns that match the empty string or most
** routine lines (sample_path: a log of such lines; NULL uses a built-in
** set), confusable pairs, Chinese lists, graph edges. Adds the findings to
** the problem list; returns the number of errors among all problems, or -1
** on failure. */
TRIAGE_API int triage_check(triage_engine *engine, const char *sample_path);

/* Render record id with the given options ("show"). Returns 0, or -1 when
** the id is not loaded. */
TRIAGE_API int triage_show(triage_engine *engine, const char *id, const triage_render_options *options,
                           char **out, size_t *out_len);

/* Message of the last failure in the calling thread ("" when none). */
TRIAGE_API const char *triage_last_error(void);

/* Free memory returned by the library. */
TRIAGE_API void triage_free(void *ptr);

/* The library version as "MAJOR.MINOR.PATCH". */
TRIAGE_API const char *triage_version(void);

#ifdef __cplusplus
}
#endif

#endif
