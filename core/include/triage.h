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
**   triage_diagnose()        diagnose text and render a report with a named
**                            formatter (text, json, ndjson, markdown) or a
**                            Lua formatter file; triage_match() ranks hits
**                            without rendering
**   triage_free()            free what diagnose and show returned
**   triage_close()           free the engine
**
** Building: `cc app.c $(pkg-config --cflags --libs triage)`, or in CMake
** find_package(triage) and link triage::triage (shared) or
** triage::triage_static. The shared library's soname is libtriage.so.MAJOR.
**
** Threads: load records and site files from one thread before sharing the
** engine. After that, triage_match(), triage_guess(), triage_diagnose(),
** triage_show(), triage_record_field() and the read-only accessors may be
** called on one engine from several threads at once. Matching runs in
** parallel; the Lua part of triage_diagnose(), triage_show() and
** triage_record_field() (report building and rendering) is serialised on
** the engine's lock. The load calls, triage_check() and
** triage_close() need the engine to themselves. Engines share nothing, so
** one engine per thread needs no care at all.
**
** Errors: a function that fails returns a negative value or NULL and sets a
** message for the calling thread, read with triage_last_error(). The library
** never prints and never exits.
**
** Ownership: strings returned through an out-parameter (the output of
** triage_diagnose(), triage_show() and triage_record_field()) are allocated by the library and
** freed by the caller with triage_free(). All other pointers the library
** returns are owned by it: record ids (triage_record_id(), triage_hit.id)
** stay valid until the next load call, triage_check() or triage_close(),
** and problems until then or the next triage_match() or triage_diagnose(),
** which can add limit warnings; triage_version() is static; triage_last_error() is
** valid until the next failing call in the same thread. The library keeps
** no pointer to strings the caller passes in after the call returns.
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
#define TRIAGE_NO_CACHE 0x4u       /* compile every regex when loading, without reading or writing the cache */

typedef struct triage_options {
    unsigned flags;
    /* Folder holding records/, rules/ and lua/; NULL finds it: $TRIAGE_DATADIR,
    ** then share/triage beside the installed program or shared library, the
    ** source tree of a build, and the configured install prefix. */
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

/* Number of records loaded; 0 for a NULL engine. */
TRIAGE_API size_t triage_record_count(const triage_engine *engine);

/* Id of record i in load order, or NULL when i is out of range. */
TRIAGE_API const char *triage_record_id(const triage_engine *engine, size_t i);

/* Number of problems found so far by loads and checks. Matching adds
** warnings too: one per record whose regex hit a PCRE2 limit or the time
** budget of a line, and one when such a record is quarantined (no longer
** matched for the engine's life). Those come from triage_match(),
** triage_diagnose() and triage_check(), so read problems after they return. */
TRIAGE_API size_t triage_problem_count(const triage_engine *engine);

/* Problem i in the order found, or NULL when i is out of range. */
TRIAGE_API const triage_problem *triage_problem_at(const triage_engine *engine, size_t i);

/* Records loaded and rejected so far. */
TRIAGE_API void triage_load_counts(const triage_engine *engine, size_t *loaded, size_t *rejected);

/* Match text (one or more lines) against every record and rank the hits.
** Fills at most max_hits entries, best first; returns how many hits there
** were in total (which may exceed max_hits), or -1 on error. */
TRIAGE_API int triage_match(triage_engine *engine, const char *text, size_t len, triage_hit *hits, size_t max_hits);

/* Propose the records whose signature or aliases are closest to text by
** idf-weighted token similarity, for input that no regex matched. Fills at
** most max_hits entries, best first, with scores below any match score and
** line, start and end set to 0; returns how many were filled (0 when none
** is close enough), or -1 on error. These are guesses, not diagnoses. */
TRIAGE_API int triage_guess(triage_engine *engine, const char *text, size_t len, triage_hit *hits, size_t max_hits);

/* Why record id does or does not match an input ("triage explain"). */
typedef struct triage_why {
    int matched;        /* 1 when the record matches a line of the input */
    int by_signature;   /* 1 when its signature matched where its regex did not */
    int partial;        /* 1 when a line ends in the middle of a possible match (PCRE2 partial match) */
    size_t line;        /* 1-based line of the match, or of the attempt that got furthest */
    size_t start, end;  /* byte offsets in the input: the match, or the text the matching prefix covered */
    int branch;         /* 1-based branch of the regex that got furthest; 0 when the regex has one */
    int branch_count;   /* number of branches: top-level alternatives, those of one enclosing group included */
    char *pattern;      /* that branch, or the whole regex */
    size_t pattern_ok;  /* bytes at the start of pattern that still match somewhere on the line */
    char *failed;       /* the pattern element after those bytes, which found no match; NULL when matched */
} triage_why;

/* Explain how record id fares on text: fills *why (free its strings with
** triage_why_free). Returns 1 when it matches, 0 when not, -1 on error
** (such as an id that is not loaded). */
TRIAGE_API int triage_why_not(triage_engine *engine, const char *id, const char *text, size_t len,
                              triage_why *why);

/* Free the strings that triage_why_not() put in *why and set them to NULL;
** the struct itself stays the caller's. Accepts NULL. */
TRIAGE_API void triage_why_free(triage_why *why);

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

/* {==== site files, rules and the script sandbox
**
** Site files, remediation rules and Lua formatters run sandboxed: each in a
** Lua state of its own, with an allow list of functions, and with limits of
** 10,000,000 instructions, 1 s and 64 MiB per call. A rule that fails marks
** its diagnosis (remediation_error) and the report's errors list, and adds
** one problem per file and kind of failure (see triage_problem_at). */

/* The effective site as text: one line per variable, substitution, record
** override and rule folder, each with the file that set it. *out receives
** the text (free with triage_free). Returns 0, or -1 on error. */
TRIAGE_API int triage_site_show(triage_engine *engine, char **out, size_t *out_len);

/* Grant a function that sandboxed scripts may not call by default to the
** site files, rules and formatters loaded after this call: "os.execute",
** "os.getenv", "os.remove", "os.rename", "os.tmpname", "io.open",
** "io.lines", "io.popen", "io.read", "io.write" or "print". Granted
** functions run without limits inside C. Returns 0, or -1 for a name that
** cannot be granted. */
TRIAGE_API int triage_allow_lua(triage_engine *engine, const char *name);

/* Run the rule file at rule_path on every line of text, as fail2ban-regex
** runs a filter. Lines that are blank or start with '#' are skipped. Each
** other line is matched against the loaded records, and the rule is called
** for each match of a record it handles. *out receives what the rule
** returned per line as text, or as JSON when options->format is "json".
** Returns the number of lines with remediation, or -1 when the rule cannot
** be loaded. *failures (may be NULL) receives the number of failed calls. */
TRIAGE_API int triage_test_rule(triage_engine *engine, const char *rule_path, const char *text, size_t len,
                                const triage_render_options *options, char **out, size_t *out_len, int *failures);

/* }==== */

/* Read field of record id as text, from the record as loaded and normalised
** to the native model (no site overrides): a string field as it is
** ("root_cause", "signature_zh"), a number or boolean in Lua's notation, a
** list or object as JSON ("workarounds"). field NULL gives the whole record
** as JSON. *out receives the text (free with triage_free) and *out_len its
** length (out_len may be NULL). Returns 0, or -1 when the id is not loaded
** or the record has no such field. */
TRIAGE_API int triage_record_field(triage_engine *engine, const char *id, const char *field, char **out,
                                   size_t *out_len);

/* {==== scanning logs
**
** A scan matches every line of a log against the loaded records at close to
** the speed of reading it. A Vectorscan prefilter finds the few records
** that may match a line and PCRE2 confirms them. Worker threads take chunks
** of lines, and results come back in input order. Each diagnosed line is
** ranked exactly as triage_diagnose() ranks that line alone.
**
**   triage_scan_open()     start a scan on an engine with loaded records
**   triage_scan_file()     read a file or "-" (plain or gzip), repeatable
**   triage_scan_feed()     or pass bytes; lines may span calls
**   triage_scan_finish()   end the input and wait for the last lines
**   triage_scan_summary()  render the per-record summary (json, text, ...)
**   triage_scan_close()    free the scan
**
** Threads: a scan belongs to the thread that opened it, which must also
** feed it; the callbacks run on that thread, in input order. The workers
** are the scan's own. triage_scan_stop() may be called from any thread and
** from a signal handler. Several scans may run on one engine at once;
** records must not be loaded while a scan is open.
**
** Ownership: every pointer passed to a callback is valid only during the
** call. The first scan of an engine builds the prefilter, or loads it from
** the cache folder (compiling thousands of patterns takes seconds), and
** the engine keeps it for later scans.
*/

/* Flags for triage_scan_options.flags. */
#define TRIAGE_SCAN_NDJSON 0x1u     /* render each diagnosed line as an ndjson object for on_output */
#define TRIAGE_SCAN_FOLLOW 0x2u     /* triage_scan_file keeps reading a growing file, across rotation */
#define TRIAGE_SCAN_NO_CACHE 0x4u   /* neither read nor write the prefilter cache */
#define TRIAGE_SCAN_FILE_NAMES 0x8u /* name the input file in each ndjson object */

typedef struct triage_scan triage_scan;

typedef struct triage_scan_diagnosis {
    const char *id; /* owned by the engine */
    double score;
} triage_scan_diagnosis;

/* A diagnosed line as passed to on_line. */
typedef struct triage_scan_line {
    size_t line;      /* 1-based, counted over all input of the scan */
    const char *file; /* the input it came from, "-" for standard input, NULL for triage_scan_feed */
    const char *text; /* the line without its end, at most max_line bytes, not NUL-terminated */
    size_t len;
    int truncated; /* the line was longer than max_line and was matched on its first part */
    const triage_scan_diagnosis *diagnoses; /* best first, after top and min_score */
    size_t count;
} triage_scan_line;

typedef struct triage_scan_progress {
    unsigned long long bytes;       /* input bytes read so far (compressed bytes of gzip input) */
    unsigned long long total_bytes; /* size of the current file when known, else 0 */
    unsigned long long lines;       /* lines matched so far */
    double seconds;                 /* since triage_scan_open */
} triage_scan_progress;

typedef struct triage_scan_options {
    unsigned flags;
    int jobs;         /* worker threads; 0: 2 */
    int top;          /* at most this many diagnoses per line; 0: all */
    double min_score; /* drop diagnoses scoring below this */
    size_t max_line;  /* longer lines are matched on their first max_line bytes; 0: 65536 */
    /* Observed transitions: record B counts as following record A when B's
    ** line comes at most window_lines lines after A's, or, when both lines
    ** carry a timestamp, at most window_seconds later. 0 picks the default
    ** (50 lines, 300 seconds); a negative value turns that test off. */
    long window_lines;
    double window_seconds;
    const char *cache_dir; /* prefilter cache folder; NULL: $XDG_CACHE_HOME/triage or ~/.cache/triage */
    /* Called for each diagnosed line; a non-zero return stops the scan. */
    int (*on_line)(void *userdata, const triage_scan_line *line);
    /* Called with ndjson text (TRIAGE_SCAN_NDJSON); a non-zero return stops the scan. */
    int (*on_output)(void *userdata, const char *data, size_t len);
    /* Called now and then while input is read, at most a few times a second. */
    void (*on_progress)(void *userdata, const triage_scan_progress *progress);
    void *userdata;
} triage_scan_options;

/* Start a scan; options may be NULL. Builds or loads the engine's prefilter
** on first use. Returns NULL on failure. */
TRIAGE_API triage_scan *triage_scan_open(triage_engine *engine, const triage_scan_options *options);

/* Scan len bytes of log text. Returns 0, 1 when a callback or
** triage_scan_stop() stopped the scan, or -1 on error. */
TRIAGE_API int triage_scan_feed(triage_scan *scan, const char *data, size_t len);

/* Scan a file, plain or gzip-compressed; "-" reads standard input. With
** TRIAGE_SCAN_FOLLOW it then waits for more data until
** triage_scan_stop(), and reopens the path when the file is rotated or
** truncated. Followed standard input is read as plain text, and each line
** is passed on as it arrives. Returns as triage_scan_feed(). */
TRIAGE_API int triage_scan_file(triage_scan *scan, const char *path);

/* End the input: match a last line without a line end and wait for all
** lines. Returns 0 or -1. */
TRIAGE_API int triage_scan_finish(triage_scan *scan);

/* Ask a running scan to stop soon. Async-signal-safe. */
TRIAGE_API void triage_scan_stop(triage_scan *scan);

/* Lines read and lines diagnosed so far. */
TRIAGE_API void triage_scan_counts(const triage_scan *scan, size_t *lines, size_t *diagnosed);

/* Render the summary of a finished scan: options->format json
** ({"schema": "triage.scan/1", "lines": N, "findings": [...]}), text,
** markdown or a Lua formatter file. *out is freed with triage_free().
** Returns the number of findings, or -1 on error. */
TRIAGE_API int triage_scan_summary(triage_scan *scan, const triage_render_options *options, char **out,
                                   size_t *out_len);

/* Stop the workers, free the scan and set *scan to NULL. Accepts NULL. */
TRIAGE_API void triage_scan_close(triage_scan **scan);

/* }==== */

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
