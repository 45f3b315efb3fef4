/*
** Scanner internals shared by scan.c (chunks, workers, ordered output),
** scan_input.c (files, gzip, following) and scan_summary.c (per-record
** findings, observed transitions, the summary document).
*/
#ifndef TRIAGE_SCAN_H
#define TRIAGE_SCAN_H

#include <stdatomic.h>

#include "internal.h"
#include "prefilter.h"

/* The longest part of a line that is matched. It must not exceed the bound
** of engine_match_text (64 KiB), or a long line would rank differently
** from triage_diagnose on the same line. */
#define SCAN_MAX_LINE (64u << 10)
/* Bytes of whole lines handed to a worker at a time. */
#define SCAN_CHUNK_SIZE (1u << 20)

/* Growing text, for ndjson lines and the summary; failed is set when out of memory. */
struct text_buffer {
    char *data;
    size_t len, cap;
    int failed;
};

/* A named capture of a hit: group number and its span within the line. */
struct scan_capture {
    uint32_t group;
    uint32_t start, len;
};

struct scan_hit {
    uint32_t record;
    double score;
    uint32_t capture_first, capture_count; /* into chunk->captures */
};

/* A diagnosed line of a chunk. */
struct scan_event {
    size_t line;                /* number of the line in the whole input */
    size_t offset, len;         /* the matched part of the line within chunk->data */
    int truncated;
    uint32_t hit_first, hit_count; /* into chunk->hits */
    double time;                /* seconds of the line's timestamp, or NAN */
    uint32_t time_offset, time_len; /* the timestamp's text within the line */
};

struct scan_chunk {
    size_t seq;
    char *data;
    size_t len, cap;
    size_t first_line; /* number of the chunk's first line */
    size_t line_count;
    const char *file;
    size_t *cuts; /* offsets of lines the reader cut at max_line */
    size_t cut_count, cut_cap;

    /* Filled by the worker: */
    struct scan_event *events;
    size_t event_count, event_cap;
    struct scan_hit *hits;
    size_t hit_count, hit_cap;
    struct scan_capture *captures;
    size_t capture_count, capture_cap;
    struct text_buffer out; /* ndjson */
    int failed;
    char error[256];
    int done;
    struct scan_chunk *next; /* in the work queue or the free list */
};

struct scan_summary;

struct triage_scan {
    struct triage_engine *engine;
    triage_scan_options options;
    size_t max_line;
    struct prefilter *prefilter;

    pthread_t *workers;
    int worker_count;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    struct scan_chunk *queue_head, *queue_tail;
    struct scan_chunk *free_chunks;
    struct scan_chunk **slots; /* chunks in flight, by seq % slot_count */
    size_t slot_count;
    size_t next_seq, emit_seq, in_flight;
    int shutting_down;

    /* Reading: the chunk being filled, where its unfinished line starts,
    ** and whether the rest of an overlong line is being skipped. */
    struct scan_chunk *current;
    size_t line_start;
    int discarding;
    size_t lines_assigned;
    const char *file; /* the input being read: one of files */
    char **files;     /* the inputs read so far, for the summary */
    size_t file_count;

    atomic_int stop;
    int failed;
    int closing; /* chunks still in flight are dropped, not passed on */
    double started;
    unsigned long long bytes_read, total_bytes, bytes_base;
    unsigned long long fed_bytes, done_bytes; /* text fed, and text in emitted chunks */
    double last_progress;

    size_t lines, diagnosed;
    struct scan_summary *summary;
    triage_scan_diagnosis *diagnoses; /* passed to on_line */
    size_t diagnosis_cap;
};

/* scan.c */
double scan_now(void);
int scan_dispatch(struct triage_scan *scan);
int scan_end_input(struct triage_scan *scan);
int scan_drain(struct triage_scan *scan, int all);
void scan_report_progress(struct triage_scan *scan, int force);

/* scan_summary.c */
struct scan_summary *scan_summary_new(const struct triage_scan *scan);
void scan_summary_free(struct scan_summary *summary);
/* Add one diagnosed line; returns 0 or -1 when out of memory. */
int scan_summary_add(struct scan_summary *summary, const struct scan_chunk *chunk, const struct scan_event *event);
/* The summary as a JSON document for the Lua formatters. */
char *scan_summary_json(const struct triage_scan *scan, size_t *len);
/* Find the timestamp of a line: syslog ("Jan  2 15:04:05") or ISO 8601
** ("2006-01-02T15:04:05Z"). Returns its seconds and sets *offset and *len,
** or returns NAN. */
double scan_line_time(const char *line, size_t len, uint32_t *offset, uint32_t *time_len);

/* JSON text output shared by ndjson lines and the summary. */
void text_put(struct text_buffer *b, const char *data, size_t len);
void text_puts(struct text_buffer *b, const char *s);
void text_put_number(struct text_buffer *b, double x);
void text_put_size(struct text_buffer *b, size_t n);
/* A JSON string: invalid UTF-8 becomes U+FFFD, control characters are escaped. */
void text_put_json_string(struct text_buffer *b, const char *s, size_t len);

/* scan_input.c */
int scan_read_file(struct triage_scan *scan, const char *path);

#endif
