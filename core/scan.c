/*
** Scanning: cut input into chunks of whole lines, match them on worker
** threads, and hand the results back in input order.
**
** Owns: the scan object and its lifecycle, the line cutting (line ends,
** overlong lines), the work queue and workers, per-line matching with the
** prefilter, ndjson lines, and the ordered hand-off to callbacks and to the
** summary.
** Depends on: prefilter.c for candidates, engine_match_candidates() for
** matching and ranking, scan_summary.c, scan_input.c.
**
** The thread that feeds the scan cuts chunks and also merges: it emits
** finished chunks strictly by sequence number, so output keeps input order
** whatever worker finishes first. At most slot_count chunks are in flight,
** which bounds memory to a few chunks whatever the input size.
*/
#define _GNU_SOURCE /* memrchr */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scan.h"

/* Per worker thread: the matching state it owns. */
struct worker_state {
    struct triage_scan *scan;
    struct match_scratch *match;
    struct prefilter_scratch *prefilter;
    /* The candidates of the line as a whole, reused for its only segment. */
    const char *known_line;
    size_t known_len;
    const uint32_t *known;
    size_t known_count;
    struct line_view view; /* of the line whose captures are collected */
};

double scan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* {==== text output */

static void text_reserve(struct text_buffer *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
        b->failed = 1;
        return;
    }
    b->data = grown;
    b->cap = cap;
}

void text_put(struct text_buffer *b, const char *data, size_t len)
{
    text_reserve(b, len);
    if (b->failed)
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void text_puts(struct text_buffer *b, const char *s)
{
    text_put(b, s, strlen(s));
}

/* Write a number as the Lua JSON encoder does, so that ndjson from a scan
** and from triage_diagnose print a score alike. Integral values have no
** exponent. Others get the fewest of 15, 16 or 17 significant digits that
** read back to the same double. */
void text_put_number(struct text_buffer *b, double x)
{
    char buf[40];
    if (!isfinite(x)) {
        text_puts(b, "null");
        return;
    }
    if (x == floor(x) && fabs(x) < 9007199254740992.0) {
        snprintf(buf, sizeof buf, "%.0f", x);
    } else {
        snprintf(buf, sizeof buf, "%.15g", x);
        if (strtod(buf, NULL) != x)
            snprintf(buf, sizeof buf, "%.16g", x);
        if (strtod(buf, NULL) != x)
            snprintf(buf, sizeof buf, "%.17g", x);
    }
    text_puts(b, buf);
}

void text_put_size(struct text_buffer *b, size_t n)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", n);
    text_puts(b, buf);
}

/* Length of the valid UTF-8 sequence at s[i], or 0 and in *bad the length
** of its longest invalid prefix, which becomes one U+FFFD as Unicode
** recommends and the Lua encoder does. */
static size_t utf8_sequence(const unsigned char *s, size_t len, size_t i, size_t *bad)
{
    unsigned char b = s[i];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if (b == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (b >= 0xE1 && b <= 0xEF) {
        need = 2;
    } else if (b == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
        need = 3;
    } else if (b == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (i + k >= len || s[i + k] < lo || s[i + k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

void text_put_json_string(struct text_buffer *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    text_reserve(b, len + 2);
    text_put(b, "\"", 1);
    size_t i = 0;
    while (i < len && !b->failed) {
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            text_put(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t bad = 0, n = utf8_sequence(p, len, i, &bad);
            if (n > 0) {
                text_put(b, s + i, n);
                i += n;
            } else {
                text_put(b, "\xEF\xBF\xBD", 3);
                i += bad;
            }
            continue;
        }
        char esc[8] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        text_put(b, esc, n);
        i++;
    }
    text_put(b, "\"", 1);
}

/* }==== */

/* {==== matching a chunk (worker side) */

static int chunk_fail(struct scan_chunk *chunk, const char *message)
{
    if (!chunk->failed) {
        chunk->failed = 1;
        snprintf(chunk->error, sizeof chunk->error, "%s", message);
    }
    return -1;
}

static int grow_array(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *grown = realloc(*items, n * size);
    if (grown == NULL)
        return -1;
    *items = grown;
    *cap = n;
    return 0;
}

/* Candidates of one segment of a line for engine_match_candidates. A line
** without a carriage return inside is one segment, whose candidates were
** found before; others are searched here. */
static size_t segment_candidates(void *context, const char *line, size_t len, const uint32_t **records,
                                 struct line_lowered *lowered)
{
    struct worker_state *w = context;
    size_t count;
    if (line == w->known_line && len == w->known_len) {
        *records = w->known;
        count = w->known_count;
    } else {
        count = prefilter_candidates(w->scan->prefilter, w->prefilter, line, len, records);
    }
    /* Ranking reuses the prefilter's lowercase copy of the line. */
    if (!prefilter_lowered(w->prefilter, &lowered->text, &lowered->pairs))
        lowered->text = NULL;
    return count;
}

static int record_captures(struct worker_state *w, struct scan_chunk *chunk, const struct hit *hit,
                           const char *line, struct scan_hit *out)
{
    const struct record *record = w->scan->engine->records[hit->record];
    out->capture_first = (uint32_t)chunk->capture_count;
    out->capture_count = 0;
    int named = 0;
    for (uint32_t g = 1; g <= record->group_count && !named; g++)
        named = record->group_names[g] != NULL;
    if (!named)
        return 0;
    const char *segment = line + hit->line_start;
    const char *subject = segment;
    size_t subject_len = hit->line_len;
    int viewed = line_view_make(&w->view, segment, hit->line_len);
    if (viewed < 0)
        return -1;
    if (viewed) {
        subject = w->view.text;
        subject_len = w->view.len;
    }
    size_t start, end;
    if (record_match(record, w->match, subject, subject_len, &start, &end) != MATCH_HIT)
        return 0;
    for (uint32_t g = 1; g <= record->group_count; g++) {
        size_t gs, ge;
        if (record->group_names[g] == NULL || scratch_group(w->match, g, &gs, &ge) != 0)
            continue;
        if (viewed) {
            /* The capture's span in the line, escapes included. */
            gs = line_view_offset(&w->view, gs);
            ge = line_view_offset(&w->view, ge);
        }
        if (grow_array((void **)&chunk->captures, &chunk->capture_cap, chunk->capture_count + 1,
                       sizeof *chunk->captures) != 0)
            return -1;
        struct scan_capture *c = &chunk->captures[chunk->capture_count++];
        c->group = g;
        c->start = (uint32_t)(hit->line_start + gs);
        c->len = (uint32_t)(ge - gs);
        out->capture_count++;
    }
    return 0;
}

static void render_ndjson(struct triage_scan *scan, struct scan_chunk *chunk, const struct scan_event *event)
{
    struct text_buffer *b = &chunk->out;
    text_puts(b, "{");
    if (scan->options.flags & TRIAGE_SCAN_FILE_NAMES) {
        text_puts(b, "\"file\":");
        const char *file = chunk->file ? chunk->file : "";
        text_put_json_string(b, file, strlen(file));
        text_puts(b, ",");
    }
    text_puts(b, "\"line\":");
    text_put_size(b, event->line);
    text_puts(b, ",\"text\":");
    text_put_json_string(b, chunk->data + event->offset, event->len);
    text_puts(b, ",\"diagnoses\":[");
    for (uint32_t i = 0; i < event->hit_count; i++) {
        const struct scan_hit *hit = &chunk->hits[event->hit_first + i];
        const char *id = scan->engine->records[hit->record]->id;
        text_puts(b, i > 0 ? ",{\"id\":" : "{\"id\":");
        text_put_json_string(b, id, strlen(id));
        text_puts(b, ",\"score\":");
        text_put_number(b, hit->score);
        text_puts(b, "}");
    }
    text_puts(b, event->truncated ? "],\"truncated\":true}\n" : "]}\n");
}

/* Match one line and record it when something is diagnosed. */
static int match_line(struct worker_state *w, struct scan_chunk *chunk, size_t line_no, size_t offset, size_t len,
                      int truncated)
{
    struct triage_scan *scan = w->scan;
    const char *line = chunk->data + offset;
    w->known_line = NULL;
    /* The candidates of a JSON line with escapes are found on its view
    ** (line_view.c), which engine_match_candidates makes. */
    if (memchr(line, '\r', len) == NULL && !line_view_possible(line, len)) {
        w->known_count = prefilter_candidates(scan->prefilter, w->prefilter, line, len, &w->known);
        if (w->known_count == 0)
            return 0;
        w->known_line = line;
        w->known_len = len;
    }
    struct hit *hits = NULL;
    size_t count = 0;
    if (engine_match_candidates(scan->engine, w->match, line, len, segment_candidates, w, &hits, &count) != 0)
        return chunk_fail(chunk, triage_last_error());

    struct scan_event event = {.line = line_no, .offset = offset, .len = len, .truncated = truncated,
                               .hit_first = (uint32_t)chunk->hit_count};
    int rc = 0;
    /* The same cut as the report builder: stop at top, skip weak hits. */
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (scan->options.top > 0 && event.hit_count >= (uint32_t)scan->options.top)
            break;
        if (hits[i].score < scan->options.min_score)
            continue;
        if (grow_array((void **)&chunk->hits, &chunk->hit_cap, chunk->hit_count + 1, sizeof *chunk->hits) != 0) {
            rc = chunk_fail(chunk, "out of memory collecting hits");
            break;
        }
        struct scan_hit *out = &chunk->hits[chunk->hit_count];
        out->record = (uint32_t)hits[i].record;
        out->score = hits[i].score;
        if (record_captures(w, chunk, &hits[i], line, out) != 0) {
            rc = chunk_fail(chunk, "out of memory collecting captures");
            break;
        }
        chunk->hit_count++;
        event.hit_count++;
    }
    free(hits);
    if (rc != 0 || event.hit_count == 0)
        return rc;
    event.time = scan_line_time(line, len, &event.time_offset, &event.time_len);
    if (grow_array((void **)&chunk->events, &chunk->event_cap, chunk->event_count + 1, sizeof *chunk->events) != 0)
        return chunk_fail(chunk, "out of memory collecting diagnosed lines");
    chunk->events[chunk->event_count++] = event;
    if (scan->options.flags & TRIAGE_SCAN_NDJSON) {
        render_ndjson(scan, chunk, &event);
        if (chunk->out.failed)
            return chunk_fail(chunk, "out of memory rendering ndjson");
    }
    return 0;
}

static int was_cut(const struct scan_chunk *chunk, size_t offset)
{
    for (size_t i = 0; i < chunk->cut_count; i++)
        if (chunk->cuts[i] == offset)
            return 1;
    return 0;
}

static void match_chunk(struct worker_state *w, struct scan_chunk *chunk)
{
    size_t max_line = w->scan->max_line;
    size_t pos = 0, line_no = chunk->first_line;
    while (pos < chunk->len && !chunk->failed) {
        const char *nl = memchr(chunk->data + pos, '\n', chunk->len - pos);
        size_t end = nl ? (size_t)(nl - chunk->data) : chunk->len;
        size_t len = end - pos;
        if (len > 0 && chunk->data[pos + len - 1] == '\r')
            len--;
        int truncated = len > max_line || (chunk->cut_count > 0 && was_cut(chunk, pos));
        if (len > max_line)
            len = max_line;
        if (match_line(w, chunk, line_no, pos, len, truncated) != 0)
            break;
        line_no++;
        pos = end + 1;
    }
}

static void *worker_main(void *arg)
{
    struct worker_state *w = arg;
    struct triage_scan *scan = w->scan;
    for (;;) {
        pthread_mutex_lock(&scan->lock);
        while (scan->queue_head == NULL && !scan->shutting_down)
            pthread_cond_wait(&scan->work_ready, &scan->lock);
        struct scan_chunk *chunk = scan->queue_head;
        if (chunk == NULL) {
            pthread_mutex_unlock(&scan->lock);
            break;
        }
        scan->queue_head = chunk->next;
        if (scan->queue_head == NULL)
            scan->queue_tail = NULL;
        pthread_mutex_unlock(&scan->lock);

        if (w->match == NULL || w->prefilter == NULL)
            chunk_fail(chunk, "out of memory creating match scratch");
        else
            match_chunk(w, chunk);

        pthread_mutex_lock(&scan->lock);
        chunk->done = 1;
        pthread_cond_broadcast(&scan->work_done);
        pthread_mutex_unlock(&scan->lock);
    }
    scratch_free(w->match);
    prefilter_scratch_free(w->prefilter);
    line_view_free(&w->view);
    free(w);
    return NULL;
}

/* }==== */

/* {==== chunks and ordered output (feeding thread) */

static void chunk_reset(struct scan_chunk *chunk)
{
    chunk->len = 0;
    chunk->line_count = 0;
    chunk->cut_count = 0;
    chunk->event_count = 0;
    chunk->hit_count = 0;
    chunk->capture_count = 0;
    chunk->out.len = 0;
    chunk->out.failed = 0;
    chunk->failed = 0;
    chunk->error[0] = '\0';
    chunk->done = 0;
    chunk->next = NULL;
}

static void chunk_free(struct scan_chunk *chunk)
{
    if (chunk == NULL)
        return;
    free(chunk->data);
    free(chunk->cuts);
    free(chunk->events);
    free(chunk->hits);
    free(chunk->captures);
    free(chunk->out.data);
    free(chunk);
}

/* A chunk from the free list or a new one, empty. */
static struct scan_chunk *chunk_take(struct triage_scan *scan)
{
    struct scan_chunk *chunk = scan->free_chunks;
    if (chunk != NULL) {
        scan->free_chunks = chunk->next;
        chunk_reset(chunk);
        return chunk;
    }
    chunk = calloc(1, sizeof *chunk);
    if (chunk == NULL)
        return NULL;
    /* Room for a full chunk plus the unfinished line carried into it. */
    chunk->cap = SCAN_CHUNK_SIZE + scan->max_line + 2;
    chunk->data = malloc(chunk->cap);
    if (chunk->data == NULL) {
        free(chunk);
        return NULL;
    }
    return chunk;
}

static size_t count_lines(const char *data, size_t len)
{
    size_t n = 0;
    for (const char *p = data, *end = data + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        n++;
    return n;
}

/* Hand an emitted chunk's results to the callbacks and the summary. */
static int emit_chunk(struct triage_scan *scan, struct scan_chunk *chunk)
{
    if (scan->closing)
        return 0;
    if (chunk->failed) {
        set_error("scanning lines %zu-%zu failed: %s", chunk->first_line, chunk->first_line + chunk->line_count - 1,
                  chunk->error);
        return -1;
    }
    scan->lines += chunk->line_count;
    scan->diagnosed += chunk->event_count;
    scan->done_bytes += chunk->len;
    const triage_scan_options *o = &scan->options;
    if ((o->flags & TRIAGE_SCAN_NDJSON) && o->on_output != NULL && chunk->out.len > 0 &&
        o->on_output(o->userdata, chunk->out.data, chunk->out.len) != 0)
        return 1;
    for (size_t e = 0; e < chunk->event_count; e++) {
        const struct scan_event *event = &chunk->events[e];
        if (scan_summary_add(scan->summary, chunk, event) != 0) {
            set_error("out of memory summarising line %zu", event->line);
            return -1;
        }
        if (o->on_line == NULL)
            continue;
        size_t n = event->hit_count;
        if (grow_array((void **)&scan->diagnoses, &scan->diagnosis_cap, n, sizeof *scan->diagnoses) != 0) {
            set_error("out of memory passing line %zu to the caller", event->line);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const struct scan_hit *hit = &chunk->hits[event->hit_first + i];
            scan->diagnoses[i].id = scan->engine->records[hit->record]->id;
            scan->diagnoses[i].score = hit->score;
        }
        triage_scan_line line = {event->line, chunk->file, chunk->data + event->offset, event->len,
                                 event->truncated, scan->diagnoses, n};
        if (o->on_line(o->userdata, &line) != 0)
            return 1;
    }
    return 0;
}

/* Emit finished chunks in order. With all set, wait for every chunk in
** flight; otherwise wait only while no slot is free. Returns 0, 1 when a
** callback stopped the scan, or -1. */
int scan_drain(struct triage_scan *scan, int all)
{
    int rc = 0;
    pthread_mutex_lock(&scan->lock);
    while (scan->in_flight > 0) {
        struct scan_chunk *chunk = scan->slots[scan->emit_seq % scan->slot_count];
        if (!chunk->done) {
            if (!all && scan->in_flight < scan->slot_count)
                break;
            pthread_cond_wait(&scan->work_done, &scan->lock);
            continue;
        }
        pthread_mutex_unlock(&scan->lock);
        if (rc == 0)
            rc = emit_chunk(scan, chunk);
        pthread_mutex_lock(&scan->lock);
        scan->slots[scan->emit_seq % scan->slot_count] = NULL;
        scan->emit_seq++;
        scan->in_flight--;
        chunk->next = scan->free_chunks;
        scan->free_chunks = chunk;
        if (rc != 0)
            all = 1; /* keep draining so no worker writes to a freed chunk */
    }
    pthread_mutex_unlock(&scan->lock);
    if (rc < 0)
        scan->failed = 1;
    if (rc > 0)
        atomic_store(&scan->stop, 1);
    return rc;
}

/* Queue the complete lines of the current chunk and carry its unfinished
** line into a fresh one. */
int scan_dispatch(struct triage_scan *scan)
{
    struct scan_chunk *chunk = scan->current;
    if (chunk == NULL || scan->line_start == 0)
        return 0;
    struct scan_chunk *next = chunk_take(scan);
    if (next == NULL) {
        set_error("out of memory allocating a %u-byte chunk", SCAN_CHUNK_SIZE);
        return -1;
    }
    size_t tail = chunk->len - scan->line_start;
    memcpy(next->data, chunk->data + scan->line_start, tail);
    next->len = tail;
    next->file = scan->file;
    chunk->len = scan->line_start;
    scan->current = next;
    scan->line_start = 0;

    chunk->line_count = count_lines(chunk->data, chunk->len);
    chunk->first_line = scan->lines_assigned + 1;
    scan->lines_assigned += chunk->line_count;

    int rc = scan_drain(scan, 0);
    if (rc != 0) {
        chunk->next = scan->free_chunks;
        scan->free_chunks = chunk;
        return rc;
    }
    pthread_mutex_lock(&scan->lock);
    chunk->seq = scan->next_seq++;
    scan->slots[chunk->seq % scan->slot_count] = chunk;
    scan->in_flight++;
    if (scan->queue_tail != NULL)
        scan->queue_tail->next = chunk;
    else
        scan->queue_head = chunk;
    scan->queue_tail = chunk;
    pthread_cond_signal(&scan->work_ready);
    pthread_mutex_unlock(&scan->lock);
    return 0;
}

/* Cut the unfinished line at max_line bytes: it ends there, and the rest of
** it up to the next line end is skipped as it arrives. */
static int cut_overlong(struct triage_scan *scan)
{
    struct scan_chunk *chunk = scan->current;
    if (grow_array((void **)&chunk->cuts, &chunk->cut_cap, chunk->cut_count + 1, sizeof *chunk->cuts) != 0) {
        set_error("out of memory cutting an overlong line");
        return -1;
    }
    chunk->cuts[chunk->cut_count++] = scan->line_start;
    chunk->len = scan->line_start + scan->max_line;
    chunk->data[chunk->len++] = '\n';
    scan->line_start = chunk->len;
    scan->discarding = 1;
    return 0;
}

int triage_scan_feed(triage_scan *scan, const char *data, size_t len)
{
    if (scan == NULL || (data == NULL && len > 0)) {
        set_error("triage_scan_feed: scan and data are required");
        return -1;
    }
    if (scan->failed) {
        set_error("triage_scan_feed: the scan failed before; close it");
        return -1;
    }
    scan->fed_bytes += len;
    while (len > 0) {
        if (atomic_load(&scan->stop))
            return 1;
        if (scan->discarding) {
            const char *nl = memchr(data, '\n', len);
            if (nl == NULL)
                return 0;
            len -= (size_t)(nl + 1 - data);
            data = nl + 1;
            scan->discarding = 0;
            continue;
        }
        struct scan_chunk *chunk = scan->current;
        size_t n = chunk->cap - 1 - chunk->len; /* one byte stays free for a cut's line end */
        if (n > len)
            n = len;
        memcpy(chunk->data + chunk->len, data, n);
        const char *nl = n > 0 ? memrchr(chunk->data + chunk->len, '\n', n) : NULL;
        chunk->len += n;
        data += n;
        len -= n;
        if (nl != NULL)
            scan->line_start = (size_t)(nl - chunk->data) + 1;
        if (chunk->len - scan->line_start > scan->max_line && cut_overlong(scan) != 0)
            return -1;
        if (chunk->len >= SCAN_CHUNK_SIZE || chunk->len + 1 >= chunk->cap) {
            int rc = scan_dispatch(scan);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* End the current input: its unfinished last line is a line, and chunks
** never span two inputs. */
int scan_end_input(struct triage_scan *scan)
{
    struct scan_chunk *chunk = scan->current;
    if (chunk->len > scan->line_start) {
        chunk->data[chunk->len++] = '\n';
        scan->line_start = chunk->len;
    }
    scan->discarding = 0;
    return scan_dispatch(scan);
}

/* }==== */

/* {==== lifecycle */

void scan_report_progress(struct triage_scan *scan, int force)
{
    if (scan->options.on_progress == NULL)
        return;
    double now = scan_now();
    if (!force && now - scan->last_progress < 0.2)
        return;
    scan->last_progress = now;
    /* The reader runs ahead of the workers: count the input as far as its
    ** text has been matched. */
    double matched = scan->fed_bytes > 0 ? (double)scan->done_bytes / (double)scan->fed_bytes : 1.0;
    if (matched > 1.0)
        matched = 1.0;
    unsigned long long bytes = scan->bytes_base + (unsigned long long)((double)scan->bytes_read * matched);
    triage_scan_progress p = {bytes, scan->total_bytes, scan->lines, now - scan->started};
    scan->options.on_progress(scan->options.userdata, &p);
}

/* Build or load the engine's prefilter; the engine keeps it for the next
** scan unless records were loaded since. */
static struct prefilter *engine_prefilter(struct triage_engine *engine, const triage_scan_options *options)
{
    pthread_mutex_lock(&engine->prepare_lock);
    struct prefilter *pf = engine->prefilter;
    if (pf != NULL && prefilter_record_count(pf) != engine->record_count) {
        prefilter_free(pf);
        pf = engine->prefilter = NULL;
    }
    if (pf == NULL) {
        char *dir = NULL;
        if (!(options->flags & TRIAGE_SCAN_NO_CACHE))
            dir = options->cache_dir ? dup_string(options->cache_dir) : prefilter_default_cache_dir();
        pf = engine->prefilter = prefilter_open(engine, dir);
        free(dir);
    }
    pthread_mutex_unlock(&engine->prepare_lock);
    return pf;
}

static int start_workers(struct triage_scan *scan)
{
    int jobs = scan->options.jobs > 0 ? scan->options.jobs : 2;
    scan->workers = calloc((size_t)jobs, sizeof *scan->workers);
    scan->slot_count = 2 * (size_t)jobs + 2;
    scan->slots = calloc(scan->slot_count, sizeof *scan->slots);
    if (scan->workers == NULL || scan->slots == NULL) {
        set_error("out of memory starting %d workers", jobs);
        return -1;
    }
    for (int i = 0; i < jobs; i++) {
        struct worker_state *w = calloc(1, sizeof *w);
        if (w == NULL) {
            set_error("out of memory starting worker %d", i + 1);
            return -1;
        }
        w->scan = scan;
        w->match = scratch_new();
        w->prefilter = prefilter_scratch_new(scan->prefilter);
        if (pthread_create(&scan->workers[i], NULL, worker_main, w) != 0) {
            scratch_free(w->match);
            prefilter_scratch_free(w->prefilter);
            free(w);
            set_error("cannot start worker thread %d of %d", i + 1, jobs);
            return -1;
        }
        scan->worker_count++;
    }
    return 0;
}

triage_scan *triage_scan_open(triage_engine *engine, const triage_scan_options *options)
{
    if (engine == NULL) {
        set_error("triage_scan_open: engine is required");
        return NULL;
    }
    if (engine_prepare(engine) != 0)
        return NULL;
    struct triage_scan *scan = calloc(1, sizeof *scan);
    if (scan == NULL) {
        set_error("out of memory creating the scan");
        return NULL;
    }
    scan->started = scan_now();
    scan->engine = engine;
    if (options != NULL)
        scan->options = *options;
    if (scan->options.jobs < 0 || scan->options.jobs > 256) {
        set_error("invalid number of jobs %d: expected 1 to 256", scan->options.jobs);
        free(scan);
        return NULL;
    }
    scan->max_line = scan->options.max_line > 0 && scan->options.max_line < SCAN_MAX_LINE ? scan->options.max_line
                                                                                         : SCAN_MAX_LINE;
    if (scan->options.window_lines == 0)
        scan->options.window_lines = 50;
    if (scan->options.window_seconds == 0)
        scan->options.window_seconds = 300;
    atomic_init(&scan->stop, 0);
    pthread_mutex_init(&scan->lock, NULL);
    pthread_cond_init(&scan->work_ready, NULL);
    pthread_cond_init(&scan->work_done, NULL);
    scan->prefilter = engine_prefilter(engine, &scan->options);
    scan->summary = scan->prefilter ? scan_summary_new(scan) : NULL;
    scan->current = scan->summary ? chunk_take(scan) : NULL;
    if (scan->prefilter == NULL || scan->summary == NULL || scan->current == NULL || start_workers(scan) != 0) {
        if (scan->prefilter != NULL && (scan->summary == NULL || scan->current == NULL))
            set_error("out of memory creating the scan");
        triage_scan_close(&scan);
        return NULL;
    }
    return scan;
}

int triage_scan_file(triage_scan *scan, const char *path)
{
    if (scan == NULL || path == NULL) {
        set_error("triage_scan_file: scan and path are required");
        return -1;
    }
    if (scan->failed) {
        set_error("triage_scan_file: the scan failed before; close it");
        return -1;
    }
    return scan_read_file(scan, path);
}

int triage_scan_finish(triage_scan *scan)
{
    if (scan == NULL) {
        set_error("triage_scan_finish: scan is required");
        return -1;
    }
    if (scan->failed)
        return -1;
    int rc = atomic_load(&scan->stop) ? 0 : scan_end_input(scan);
    int drained = scan_drain(scan, 1);
    scan_report_progress(scan, 1);
    /* Regexes that hit a limit or were quarantined become warnings in the
    ** engine's problem list, as after triage_diagnose. */
    engine_report_limits(scan->engine);
    if (rc < 0 || drained < 0)
        return -1;
    return 0;
}

void triage_scan_stop(triage_scan *scan)
{
    if (scan != NULL)
        atomic_store(&scan->stop, 1);
}

void triage_scan_counts(const triage_scan *scan, size_t *lines, size_t *diagnosed)
{
    if (lines != NULL)
        *lines = scan ? scan->lines : 0;
    if (diagnosed != NULL)
        *diagnosed = scan ? scan->diagnosed : 0;
}

void triage_scan_close(triage_scan **handle)
{
    if (handle == NULL || *handle == NULL)
        return;
    struct triage_scan *scan = *handle;
    scan->closing = 1;
    if (scan->slots != NULL)
        scan_drain(scan, 1);
    pthread_mutex_lock(&scan->lock);
    scan->shutting_down = 1;
    pthread_cond_broadcast(&scan->work_ready);
    pthread_mutex_unlock(&scan->lock);
    for (int i = 0; i < scan->worker_count; i++)
        pthread_join(scan->workers[i], NULL);
    free(scan->workers);
    free(scan->slots);
    free(scan->diagnoses);
    for (size_t i = 0; i < scan->file_count; i++)
        free(scan->files[i]);
    free(scan->files);
    chunk_free(scan->current);
    while (scan->free_chunks != NULL) {
        struct scan_chunk *next = scan->free_chunks->next;
        chunk_free(scan->free_chunks);
        scan->free_chunks = next;
    }
    scan_summary_free(scan->summary);
    pthread_mutex_destroy(&scan->lock);
    pthread_cond_destroy(&scan->work_ready);
    pthread_cond_destroy(&scan->work_done);
    free(scan);
    *handle = NULL;
}

/* }==== */

int triage_scan_summary(triage_scan *scan, const triage_render_options *options, char **out, size_t *out_len)
{
    if (scan == NULL || out == NULL) {
        set_error("triage_scan_summary: scan and out are required");
        return -1;
    }
    *out = NULL;
    size_t len;
    char *summary = scan_summary_json(scan, &len);
    if (summary == NULL)
        return -1;
    triage_render_options defaults = {0};
    size_t rendered_len = 0;
    int findings = 0;
    int rc = lua_engine_render_scan(scan->engine, summary, len, options ? options : &defaults, out, &rendered_len,
                                    &findings);
    free(summary);
    if (rc != 0)
        return -1;
    if (out_len != NULL)
        *out_len = rendered_len;
    return findings;
}
