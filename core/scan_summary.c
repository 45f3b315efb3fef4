/*
** Scan summary: what a scan found, per record, built in C line by line.
**
** Owns: findings (count, lines ranked first, first and last line and
** timestamp, best score, a sample line, the most frequent values of named
** captures), observed
** transitions between records, timestamp parsing, and the summary
** document handed to the Lua formatters.
** Depends on: scan.c for the chunk layout and JSON text helpers.
**
** Memory stays bounded whatever the input: a finding keeps one sample and
** at most CAPTURE_SLOTS values per capture group (counted with the
** space-saving algorithm, so the most frequent values survive), and at
** most MAX_PAIRS transition pairs are counted.
*/
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scan.h"

#define SAMPLE_MAX 1024
#define CAPTURE_SLOTS 16
#define CAPTURE_VALUE_MAX 256
#define CAPTURES_SHOWN 5
#define TIME_TEXT_MAX 48
/* Records remembered for transitions, most recent first. */
#define RECENT_MAX 64
#define MAX_PAIRS 65536u

struct capture_value {
    char *text;
    size_t len;
    size_t count;
};

struct capture_group {
    uint32_t group;
    size_t used;
    struct capture_value values[CAPTURE_SLOTS];
};

struct finding {
    size_t count;
    size_t top_count; /* lines where the record ranked first */
    size_t first_line, last_line;
    const char *first_file, *last_file;
    double best_score;
    char *sample;
    size_t sample_len;
    char first_time[TIME_TEXT_MAX], last_time[TIME_TEXT_MAX];
    struct capture_group *groups;
    size_t group_count;
    size_t last_primary; /* last line where the record ranked first, 0 when none */
};

struct pair {
    uint32_t from, to;
    size_t count, first_line, last_line;
};

/* A capture that names who or what a line is about: the index of its
** group name in LINK_NAMES and a hash of its value. */
struct link {
    uint64_t name, value;
};

/* Captures read as links (see linked); others, such as path, port or
** device, differ between lines about the same problem (sda and sda1). */
static const char *const LINK_NAMES[] = {"client", "user", "unit", "pod", "container", "container_id", "database",
                                         "service"};
#define LINK_MAX 4

struct recent {
    uint32_t record;
    size_t line;
    double time;
    unsigned link_count;
    struct link links[LINK_MAX];
};

struct scan_summary {
    const struct triage_engine *engine;
    long window_lines;
    double window_seconds;
    struct finding *findings; /* one per record */
    uint32_t *seen;           /* records with findings, in order of first sight */
    size_t seen_count;
    size_t truncated_lines;

    struct pair *pairs;
    size_t pair_count;
    uint32_t *pair_slots; /* open addressing into pairs, UINT32_MAX when free */
    size_t pairs_dropped;
    struct recent recent[RECENT_MAX];
    size_t recent_count;
};

/* {==== timestamps */

static int read_digits(const char *p, const char *end, int n, int *value)
{
    if (end - p < n)
        return 0;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *value = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_clock(const char *p, const char *end, int *h, int *mi, int *s)
{
    return read_digits(p, end, 2, h) && p + 2 < end && p[2] == ':' && read_digits(p + 3, end, 2, mi) &&
           p + 5 < end && p[5] == ':' && read_digits(p + 6, end, 2, s) && *h < 24 && *mi < 60 && *s < 61;
}

/* ISO 8601: 2006-01-02T15:04:05, a space for the T, an optional fraction
** after '.' or ',', and an optional zone (Z, +07:00, -0700). The date may
** also be written 2006/01/02, as nginx's error log and Go's log package
** write it. */
static int parse_iso(const char *p, const char *end, double *seconds, size_t *len)
{
    int y, mo, d, h, mi, s;
    if (!read_digits(p, end, 4, &y) || end - p < 19 || (p[4] != '-' && p[4] != '/') ||
        !read_digits(p + 5, end, 2, &mo) || p[7] != p[4] || !read_digits(p + 8, end, 2, &d) ||
        (p[10] != 'T' && p[10] != ' ') ||
        !read_clock(p + 11, end, &h, &mi, &s) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    const char *q = p + 19;
    double fraction = 0, scale = 0.1;
    if (q + 1 < end && (*q == '.' || *q == ',') && q[1] >= '0' && q[1] <= '9') {
        for (q++; q < end && *q >= '0' && *q <= '9'; q++, scale /= 10)
            fraction += (*q - '0') * scale;
    }
    long zone = 0;
    if (q < end && *q == 'Z') {
        q++;
    } else if (q < end && (*q == '+' || *q == '-')) {
        int zh, zm = 0;
        if (read_digits(q + 1, end, 2, &zh)) {
            const char *z = q + 3;
            if (z < end && *z == ':' && read_digits(z + 1, end, 2, &zm))
                z += 3;
            else if (read_digits(z, end, 2, &zm))
                z += 2;
            zone = (*q == '-' ? -1 : 1) * (zh * 3600L + zm * 60L);
            q = z;
        }
    }
    *seconds = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + s + fraction - (double)zone;
    *len = (size_t)(q - p);
    return 1;
}

/* Syslog (RFC 3164): "Jan  2 15:04:05" or "Jan 02 15:04:05". It has no
** year, so times are placed in the year 2000; differences across a new
** year come out negative and are treated as unknown. */
static int parse_syslog(const char *p, const char *end, double *seconds, size_t *len)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (end - p < 15 || p[3] != ' ')
        return 0;
    int mo = 0;
    while (mo < 12 && memcmp(months + 3 * mo, p, 3) != 0)
        mo++;
    if (mo == 12)
        return 0;
    int d, h, mi, s;
    const char *q = p + 4;
    if (*q == ' ' && q[1] >= '1' && q[1] <= '9')
        d = q[1] - '0';
    else if (!read_digits(q, end, 2, &d))
        return 0;
    if (d < 1 || d > 31 || q[2] != ' ' || !read_clock(q + 3, end, &h, &mi, &s))
        return 0;
    *seconds = (double)days_from_civil(2000, mo + 1, d) * 86400.0 + h * 3600.0 + mi * 60.0 + s;
    *len = 15;
    return 1;
}

static int is_word_byte(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The time of a JSON log line from its own field: journald's
** __REALTIME_TIMESTAMP (microseconds since the epoch, with *time_len 0: the
** text is made from the value) or Docker's "time" (ISO 8601). NAN when the
** line has neither. */
static double json_line_time(const char *line, size_t len, uint32_t *offset, uint32_t *time_len)
{
    static const char realtime[] = "\"__REALTIME_TIMESTAMP\":\"";
    static const char docker[] = "\"time\":\"";
    const char *end = line + len;
    const char *at = memmem(line, len, realtime, sizeof realtime - 1);
    if (at != NULL) {
        double micros = 0;
        const char *p = at + sizeof realtime - 1;
        size_t digits = 0;
        for (; p < end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
            micros = micros * 10 + (*p - '0');
        if (digits >= 10 && p < end && *p == '"') {
            *offset = *time_len = 0;
            return micros / 1e6;
        }
    }
    at = memmem(line, len, docker, sizeof docker - 1);
    if (at != NULL) {
        double seconds;
        size_t n;
        const char *p = at + sizeof docker - 1;
        if (parse_iso(p, end, &seconds, &n)) {
            *offset = (uint32_t)(p - line);
            *time_len = (uint32_t)n;
            return seconds;
        }
    }
    return NAN;
}

double scan_line_time(const char *line, size_t len, uint32_t *offset, uint32_t *time_len)
{
    const char *end = line + len;
    if (len > 2 && line[0] == '{' && line[1] == '"') {
        double seconds = json_line_time(line, len, offset, time_len);
        if (!isnan(seconds))
            return seconds;
    }
    /* Timestamps lead a line, perhaps after a priority, a host or a level. */
    for (size_t i = 0; i < len && i < 64; i++) {
        if (i > 0 && is_word_byte(line[i - 1]))
            continue;
        double seconds;
        size_t n;
        if (parse_iso(line + i, end, &seconds, &n) || parse_syslog(line + i, end, &seconds, &n)) {
            *offset = (uint32_t)i;
            *time_len = (uint32_t)n;
            return seconds;
        }
    }
    *offset = *time_len = 0;
    return NAN;
}

/* }==== */

struct scan_summary *scan_summary_new(const struct triage_scan *scan)
{
    struct scan_summary *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->engine = scan->engine;
    s->window_lines = scan->options.window_lines;
    s->window_seconds = scan->options.window_seconds;
    size_t n = scan->engine->record_count ? scan->engine->record_count : 1;
    s->findings = calloc(n, sizeof *s->findings);
    s->seen = malloc(n * sizeof *s->seen);
    if (s->findings == NULL || s->seen == NULL) {
        scan_summary_free(s);
        return NULL;
    }
    return s;
}

void scan_summary_free(struct scan_summary *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->seen_count; i++) {
        struct finding *f = &s->findings[s->seen[i]];
        free(f->sample);
        for (size_t g = 0; g < f->group_count; g++)
            for (size_t v = 0; v < f->groups[g].used; v++)
                free(f->groups[g].values[v].text);
        free(f->groups);
    }
    free(s->findings);
    free(s->seen);
    free(s->pairs);
    free(s->pair_slots);
    free(s);
}

/* {==== adding lines */

static void copy_time(char *out, const char *line, const struct scan_event *event)
{
    out[0] = '\0';
    if (isnan(event->time))
        return;
    if (event->time_len == 0) {
        /* A time given as a number: written as ISO 8601 in UTC. */
        time_t t = (time_t)event->time;
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(out, TIME_TEXT_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return;
    }
    size_t n = event->time_len < TIME_TEXT_MAX - 1 ? event->time_len : TIME_TEXT_MAX - 1;
    memcpy(out, line + event->time_offset, n);
    out[n] = '\0';
}

/* Count one value of a capture group with the space-saving algorithm: a new
** value when all slots are taken replaces the least counted one and
** inherits its count, so a frequent value is never lost. */
static int count_value(struct capture_group *group, const char *text, size_t len)
{
    if (len > CAPTURE_VALUE_MAX)
        len = CAPTURE_VALUE_MAX;
    size_t least = 0;
    for (size_t i = 0; i < group->used; i++) {
        struct capture_value *v = &group->values[i];
        if (v->len == len && memcmp(v->text, text, len) == 0) {
            v->count++;
            return 0;
        }
        if (v->count < group->values[least].count)
            least = i;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (group->used < CAPTURE_SLOTS) {
        group->values[group->used++] = (struct capture_value){copy, len, 1};
        return 0;
    }
    struct capture_value *v = &group->values[least];
    free(v->text);
    *v = (struct capture_value){copy, len, v->count + 1};
    return 0;
}

static int add_captures(struct finding *f, const struct scan_chunk *chunk, const struct scan_event *event,
                        const struct scan_hit *hit)
{
    const char *line = chunk->data + event->offset;
    for (uint32_t c = 0; c < hit->capture_count; c++) {
        const struct scan_capture *cap = &chunk->captures[hit->capture_first + c];
        size_t g = 0;
        while (g < f->group_count && f->groups[g].group != cap->group)
            g++;
        if (g == f->group_count) {
            struct capture_group *groups = realloc(f->groups, (f->group_count + 1) * sizeof *groups);
            if (groups == NULL)
                return -1;
            f->groups = groups;
            memset(&groups[g], 0, sizeof groups[g]);
            groups[g].group = cap->group;
            f->group_count++;
        }
        if (count_value(&f->groups[g], line + cap->start, cap->len) != 0)
            return -1;
    }
    return 0;
}

static int add_finding(struct scan_summary *s, const struct scan_chunk *chunk, const struct scan_event *event,
                       const struct scan_hit *hit, int first)
{
    struct finding *f = &s->findings[hit->record];
    const char *line = chunk->data + event->offset;
    if (f->count == 0) {
        s->seen[s->seen_count++] = hit->record;
        f->first_line = event->line;
        f->first_file = chunk->file;
        f->best_score = hit->score;
        f->sample_len = event->len < SAMPLE_MAX ? event->len : SAMPLE_MAX;
        f->sample = malloc(f->sample_len + 1);
        if (f->sample == NULL)
            return -1;
        memcpy(f->sample, line, f->sample_len);
        f->sample[f->sample_len] = '\0';
    }
    /* The first time seen, which need not be on the first line. */
    if (f->first_time[0] == '\0')
        copy_time(f->first_time, line, event);
    f->count++;
    f->top_count += first;
    f->last_line = event->line;
    f->last_file = chunk->file;
    if (hit->score > f->best_score)
        f->best_score = hit->score;
    if (!isnan(event->time))
        copy_time(f->last_time, line, event);
    return add_captures(f, chunk, event, hit);
}

static uint32_t *pair_slot(struct scan_summary *s, uint32_t from, uint32_t to)
{
    size_t mask = 2 * (size_t)MAX_PAIRS - 1;
    size_t i = (size_t)(((uint64_t)from * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)to * 0xC2B2AE3D27D4EB4Full)) & mask;
    while (s->pair_slots[i] != UINT32_MAX) {
        const struct pair *p = &s->pairs[s->pair_slots[i]];
        if (p->from == from && p->to == to)
            break;
        i = (i + 1) & mask;
    }
    return &s->pair_slots[i];
}

static int count_pair(struct scan_summary *s, uint32_t from, uint32_t to, size_t line)
{
    if (s->pair_slots == NULL) {
        s->pair_slots = malloc(2 * (size_t)MAX_PAIRS * sizeof *s->pair_slots);
        s->pairs = malloc(MAX_PAIRS * sizeof *s->pairs);
        if (s->pair_slots == NULL || s->pairs == NULL)
            return -1;
        memset(s->pair_slots, 0xFF, 2 * (size_t)MAX_PAIRS * sizeof *s->pair_slots);
    }
    uint32_t *slot = pair_slot(s, from, to);
    if (*slot != UINT32_MAX) {
        s->pairs[*slot].count++;
        s->pairs[*slot].last_line = line;
        return 0;
    }
    if (s->pair_count == MAX_PAIRS) {
        s->pairs_dropped++;
        return 0;
    }
    *slot = (uint32_t)s->pair_count;
    s->pairs[s->pair_count++] = (struct pair){from, to, 1, line, line};
    return 0;
}

static int within_window(const struct scan_summary *s, size_t lines_apart, double now, double then)
{
    if (s->window_lines > 0 && lines_apart <= (size_t)s->window_lines)
        return 1;
    return s->window_seconds > 0 && !isnan(now) && !isnan(then) && now >= then && now - then <= s->window_seconds;
}

static uint64_t link_hash(const char *text, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Fill links with the hit's captures whose group has a link name. */
static unsigned hit_links(const struct scan_summary *s, const struct scan_chunk *chunk, const struct scan_event *event,
                          const struct scan_hit *hit, struct link *links)
{
    const struct record *record = s->engine->records[hit->record];
    const char *line = chunk->data + event->offset;
    unsigned n = 0;
    for (uint32_t c = 0; c < hit->capture_count && n < LINK_MAX; c++) {
        const struct scan_capture *cap = &chunk->captures[hit->capture_first + c];
        const char *name = record->group_names[cap->group];
        for (size_t k = 0; k < sizeof LINK_NAMES / sizeof *LINK_NAMES; k++) {
            if (strcmp(name, LINK_NAMES[k]) == 0) {
                links[n++] = (struct link){k, link_hash(line + cap->start, cap->len)};
                break;
            }
        }
    }
    return n;
}

/* Whether two lines may be about the same thing: they are unless both
** name the same kind of link (a client, a unit) and differ in all such.
** In a log that interleaves many clients, a failed password from one
** client does not follow an invalid user from another. Records without
** such captures link to every line. */
static int linked(const struct link *a, unsigned na, const struct link *b, unsigned nb)
{
    int shared = 0;
    for (unsigned i = 0; i < na; i++) {
        for (unsigned j = 0; j < nb; j++) {
            if (a[i].name != b[j].name)
                continue;
            if (a[i].value == b[j].value)
                return 1;
            shared = 1;
        }
    }
    return !shared;
}

/* Record B, first on this line, follows each record A seen within the
** window, once per A line since B's own previous line: "A A A B" counts
** one A -> B, "A B A B" two. Lines that name different clients, users or
** units (see linked) do not count. */
static int add_transitions(struct scan_summary *s, const struct scan_chunk *chunk, const struct scan_event *event)
{
    const struct scan_hit *hit = &chunk->hits[event->hit_first];
    uint32_t b = hit->record;
    struct link links[LINK_MAX];
    unsigned link_count = hit_links(s, chunk, event, hit, links);
    struct finding *fb = &s->findings[b];
    size_t keep = s->recent_count;
    /* A record may have several entries (one per client, say); B's line
    ** follows it once. */
    uint32_t counted[RECENT_MAX];
    size_t counted_count = 0;
    for (size_t i = 0; i < s->recent_count; i++) {
        const struct recent *r = &s->recent[i];
        if (!within_window(s, event->line - r->line, event->time, r->time)) {
            keep = i; /* older entries are further away still */
            break;
        }
        if (r->record == b || r->line <= fb->last_primary || !linked(r->links, r->link_count, links, link_count))
            continue;
        size_t k = 0;
        while (k < counted_count && counted[k] != r->record)
            k++;
        if (k < counted_count)
            continue;
        counted[counted_count++] = r->record;
        if (count_pair(s, r->record, b, event->line) != 0)
            return -1;
    }
    s->recent_count = keep;
    size_t at = 0;
    /* One entry per record and links, so that B naming client x still
    ** finds A's line about x after A's lines about other clients. */
    while (at < s->recent_count &&
           (s->recent[at].record != b || s->recent[at].link_count != link_count ||
            memcmp(s->recent[at].links, links, link_count * sizeof *links) != 0))
        at++;
    if (at == s->recent_count && s->recent_count == RECENT_MAX)
        at--; /* the oldest entry makes room */
    else if (at == s->recent_count)
        s->recent_count++;
    memmove(&s->recent[1], &s->recent[0], at * sizeof *s->recent);
    s->recent[0] = (struct recent){b, event->line, event->time, link_count, {{0, 0}}};
    memcpy(s->recent[0].links, links, link_count * sizeof *links);
    fb->last_primary = event->line;
    return 0;
}

int scan_summary_add(struct scan_summary *s, const struct scan_chunk *chunk, const struct scan_event *event)
{
    if (event->truncated)
        s->truncated_lines++;
    for (uint32_t i = 0; i < event->hit_count; i++)
        if (add_finding(s, chunk, event, &chunk->hits[event->hit_first + i], i == 0) != 0)
            return -1;
    if (event->hit_count == 0)
        return 0;
    return add_transitions(s, chunk, event);
}

/* }==== */

/* {==== the summary document */

struct finding_order {
    size_t count, first_line;
    uint32_t record;
};

static int by_count(const void *a, const void *b)
{
    const struct finding_order *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first_line < y->first_line ? -1 : x->first_line > y->first_line;
}

/* Order the seen records by count, most first, then by first line. */
static int order_findings(struct scan_summary *s)
{
    struct finding_order *order = malloc((s->seen_count ? s->seen_count : 1) * sizeof *order);
    if (order == NULL)
        return -1;
    for (size_t i = 0; i < s->seen_count; i++) {
        const struct finding *f = &s->findings[s->seen[i]];
        order[i] = (struct finding_order){f->count, f->first_line, s->seen[i]};
    }
    if (s->seen_count > 1)
        qsort(order, s->seen_count, sizeof *order, by_count);
    for (size_t i = 0; i < s->seen_count; i++)
        s->seen[i] = order[i].record;
    free(order);
    return 0;
}

static int by_pair_count(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->first_line != y->first_line)
        return x->first_line < y->first_line ? -1 : 1;
    return x->from != y->from ? (x->from < y->from ? -1 : 1) : (x->to < y->to ? -1 : x->to > y->to);
}

static int by_value_count(const void *a, const void *b)
{
    const struct capture_value *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static void put_key(struct text_buffer *b, const char *key)
{
    text_put_json_string(b, key, strlen(key));
    text_puts(b, ":");
}

static void put_string_field(struct text_buffer *b, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return;
    text_puts(b, ",");
    put_key(b, key);
    text_put_json_string(b, value, strlen(value));
}

static void put_captures(struct text_buffer *b, const struct record *record, struct finding *f)
{
    if (f->group_count == 0)
        return;
    text_puts(b, ",\"captures\":{");
    for (size_t g = 0; g < f->group_count; g++) {
        struct capture_group *group = &f->groups[g];
        if (group->used > 1)
            qsort(group->values, group->used, sizeof *group->values, by_value_count);
        if (g > 0)
            text_puts(b, ",");
        put_key(b, record->group_names[group->group]);
        text_puts(b, "[");
        for (size_t v = 0; v < group->used && v < CAPTURES_SHOWN; v++) {
            text_puts(b, v > 0 ? ",{\"value\":" : "{\"value\":");
            text_put_json_string(b, group->values[v].text, group->values[v].len);
            text_puts(b, ",\"count\":");
            text_put_size(b, group->values[v].count);
            text_puts(b, "}");
        }
        text_puts(b, "]");
    }
    text_puts(b, "}");
}

static void put_findings(struct text_buffer *b, struct scan_summary *s, int several_files)
{
    if (order_findings(s) != 0) {
        b->failed = 1;
        return;
    }
    text_puts(b, ",\"findings\":[");
    for (size_t i = 0; i < s->seen_count; i++) {
        const struct record *record = s->engine->records[s->seen[i]];
        struct finding *f = &s->findings[s->seen[i]];
        text_puts(b, i > 0 ? ",{\"id\":" : "{\"id\":");
        text_put_json_string(b, record->id, strlen(record->id));
        text_puts(b, ",\"count\":");
        text_put_size(b, f->count);
        text_puts(b, ",\"top_count\":");
        text_put_size(b, f->top_count);
        text_puts(b, ",\"first_line\":");
        text_put_size(b, f->first_line);
        text_puts(b, ",\"last_line\":");
        text_put_size(b, f->last_line);
        if (several_files) {
            put_string_field(b, "first_file", f->first_file);
            put_string_field(b, "last_file", f->last_file);
        }
        put_string_field(b, "first_time", f->first_time);
        put_string_field(b, "last_time", f->last_time);
        text_puts(b, ",\"best_score\":");
        text_put_number(b, f->best_score);
        text_puts(b, ",\"sample\":");
        text_put_json_string(b, f->sample, f->sample_len);
        put_captures(b, record, f);
        text_puts(b, "}");
    }
    text_puts(b, "]");
}

static void put_pairs(struct text_buffer *b, struct scan_summary *s)
{
    if (s->pair_count > 1)
        qsort(s->pairs, s->pair_count, sizeof *s->pairs, by_pair_count);
    text_puts(b, ",\"observed\":[");
    for (size_t i = 0; i < s->pair_count; i++) {
        const struct pair *p = &s->pairs[i];
        const char *from = s->engine->records[p->from]->id, *to = s->engine->records[p->to]->id;
        text_puts(b, i > 0 ? ",{\"from\":" : "{\"from\":");
        text_put_json_string(b, from, strlen(from));
        text_puts(b, ",\"to\":");
        text_put_json_string(b, to, strlen(to));
        text_puts(b, ",\"count\":");
        text_put_size(b, p->count);
        text_puts(b, ",\"first_line\":");
        text_put_size(b, p->first_line);
        text_puts(b, ",\"last_line\":");
        text_put_size(b, p->last_line);
        text_puts(b, "}");
    }
    text_puts(b, "]");
}

char *scan_summary_json(const struct triage_scan *scan, size_t *len)
{
    struct scan_summary *s = scan->summary;
    struct text_buffer b = {0};
    text_puts(&b, "{\"schema\":\"triage.scan/1\",\"lines\":");
    text_put_size(&b, scan->lines);
    text_puts(&b, ",\"diagnosed_lines\":");
    text_put_size(&b, scan->diagnosed);
    text_puts(&b, ",\"truncated_lines\":");
    text_put_size(&b, s->truncated_lines);
    text_puts(&b, ",\"bytes\":");
    text_put_number(&b, (double)(scan->bytes_base + scan->bytes_read));
    text_puts(&b, ",\"files\":[");
    for (size_t i = 0; i < scan->file_count; i++) {
        if (i > 0)
            text_puts(&b, ",");
        text_put_json_string(&b, scan->files[i], strlen(scan->files[i]));
    }
    text_puts(&b, "],\"window\":{\"lines\":");
    text_put_number(&b, s->window_lines > 0 ? (double)s->window_lines : 0);
    text_puts(&b, ",\"seconds\":");
    text_put_number(&b, s->window_seconds > 0 ? s->window_seconds : 0);
    text_puts(&b, "}");
    put_findings(&b, s, scan->file_count > 1);
    put_pairs(&b, s);
    if (s->pairs_dropped > 0) {
        text_puts(&b, ",\"observed_dropped\":");
        text_put_size(&b, s->pairs_dropped);
    }
    text_puts(&b, "}");
    if (b.failed) {
        free(b.data);
        set_error("out of memory writing the scan summary");
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* }==== */
