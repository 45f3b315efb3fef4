/*
** Small helpers shared by the core: strings, hashing, files, errors, problems.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "internal.h"

static _Thread_local char last_error[1024];

void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

const char *triage_last_error(void)
{
    return last_error;
}

void triage_free(void *ptr)
{
    free(ptr);
}

char *dup_string(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* FNV-1a: fast and good enough for token and id tables of a few thousand keys. */
uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = HASH_SEED;
    for (size_t i = 0; i < len; i++)
        h = hash_step(h, p[i]);
    return h;
}

int path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Read the open regular file fd, of st_size bytes, into a NUL-terminated
** buffer, and close fd. */
static int read_open_file(int fd, const struct stat *st, size_t max_size, char **out, size_t *out_len, char *err,
                          size_t errlen)
{
    if ((unsigned long long)st->st_size > max_size) {
        snprintf(err, errlen, "file is %lld bytes, larger than the limit of %zu bytes", (long long)st->st_size,
                 max_size);
        close(fd);
        return -1;
    }
    /* Plain read(2) into a buffer of the file's size: stdio would add a
    ** buffer, a copy and two system calls per file, which a load of
    ** thousands of small record files feels. A file that grows meanwhile
    ** is read up to the size it had. */
    size_t cap = (size_t)st->st_size + 1;
    char *buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %zu bytes", cap);
        close(fd);
        return -1;
    }
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "read failed: %s", strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* Read a whole regular file of at most max_size bytes into a NUL-terminated buffer. */
int read_file(const char *path, size_t max_size, char **out, size_t *out_len, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO named *.json must not wait for a writer;
    ** it is rejected below as not a regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return -1;
    }
    return read_open_file(fd, &st, max_size, out, out_len, err, errlen);
}

int read_cache_file(const char *path, size_t max_size, char **out, size_t *out_len)
{
    char err[256];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(fd);
        return -1;
    }
    return read_open_file(fd, &st, max_size, out, out_len, err, sizeof err);
}

void problem_add(struct problem_list *list, triage_severity severity, const char *file, unsigned line,
                 unsigned column, const char *id, const char *field, const char *fmt, ...)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 32;
        triage_problem *items = realloc(list->items, cap * sizeof *items);
        if (items == NULL)
            return; /* losing a diagnostic is better than failing the load */
        list->items = items;
        list->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *message = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (message != NULL) {
        va_start(ap, fmt);
        vsnprintf(message, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    triage_problem *p = &list->items[list->count];
    p->severity = severity;
    p->file = dup_string(file ? file : "-");
    p->line = line;
    p->column = column;
    p->id = dup_string(id && *id ? id : "-");
    p->field = dup_string(field && *field ? field : "-");
    p->message = message;
    if (p->file == NULL || p->id == NULL || p->field == NULL || p->message == NULL) {
        free((char *)p->file);
        free((char *)p->id);
        free((char *)p->field);
        free((char *)p->message);
        return;
    }
    list->count++;
}

void problem_list_free(struct problem_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free((char *)list->items[i].file);
        free((char *)list->items[i].id);
        free((char *)list->items[i].field);
        free((char *)list->items[i].message);
    }
    free(list->items);
    list->items = NULL;
    list->count = list->cap = 0;
}

/* Move the problems of src to the end of dst, in order; src ends empty. A
** problem that finds no room is dropped, as problem_add drops it. */
void problem_list_move(struct problem_list *dst, struct problem_list *src)
{
    if (src->count == 0) {
        problem_list_free(src);
        return;
    }
    if (dst->count + src->count > dst->cap) {
        size_t cap = dst->cap ? dst->cap : 32;
        while (cap < dst->count + src->count)
            cap *= 2;
        triage_problem *items = realloc(dst->items, cap * sizeof *items);
        if (items != NULL) {
            dst->items = items;
            dst->cap = cap;
        }
    }
    size_t room = dst->cap - dst->count;
    size_t moved = src->count < room ? src->count : room;
    if (moved > 0) {
        memcpy(dst->items + dst->count, src->items, moved * sizeof *src->items);
        dst->count += moved;
        memmove(src->items, src->items + moved, (src->count - moved) * sizeof *src->items);
        src->count -= moved;
    }
    problem_list_free(src); /* the problems that found no room */
}

struct parallel_work {
    atomic_size_t next;
    size_t count;
    void (*fn)(void *context, size_t i);
    void *context;
};

static void *parallel_worker(void *arg)
{
    struct parallel_work *work = arg;
    for (size_t i = atomic_fetch_add(&work->next, 1); i < work->count; i = atomic_fetch_add(&work->next, 1))
        work->fn(work->context, i);
    return NULL;
}

/* Call fn(context, i) for every i in [0, count), on the calling thread and
** up to PARALLEL_MAX_THREADS - 1 others, one more for each min_per_thread
** items. A thread that cannot start leaves its share to the others. */
size_t parallel_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cpus > 1 ? (size_t)cpus : 1;
    return threads > PARALLEL_MAX_THREADS ? PARALLEL_MAX_THREADS : threads;
}

void parallel_for(size_t count, size_t min_per_thread, void (*fn)(void *context, size_t i), void *context)
{
    struct parallel_work work = {.count = count, .fn = fn, .context = context};
    atomic_init(&work.next, 0);
    size_t threads = parallel_threads();
    if (min_per_thread > 0 && threads > count / min_per_thread)
        threads = count / min_per_thread;
    pthread_t ids[PARALLEL_MAX_THREADS];
    size_t started = 0;
    for (size_t t = 1; t < threads; t++)
        if (pthread_create(&ids[started], NULL, parallel_worker, &work) == 0)
            started++;
    parallel_worker(&work);
    for (size_t t = 0; t < started; t++)
        pthread_join(ids[t], NULL);
}

/* Whether needle occurs in hay, bytes compared as they are. With SSE2 it
** compares the first and the last byte of the needle at 16 positions at
** once and checks the middle only where both agree (the SIMD substring
** search described by Wojciech Mula). The needles of the prefilter and of
** ranking are short and mostly absent, so nearly every call ends in the
** vector loop. */
int find_bytes(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
#if defined(__SSE2__)
    if (needle_len == 0)
        return 1;
    if (needle_len > hay_len)
        return 0;
    const __m128i first = _mm_set1_epi8(needle[0]);
    const __m128i last = _mm_set1_epi8(needle[needle_len - 1]);
    size_t limit = hay_len - needle_len + 1; /* start positions */
    size_t i = 0;
    for (; i + 16 <= limit; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(hay + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(hay + i + needle_len - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask != 0) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(hay + i + bit + 1, needle + 1, needle_len - 1) == 0)
                return 1;
            mask &= mask - 1;
        }
    }
    for (; i < limit; i++)
        if (hay[i] == needle[0] && memcmp(hay + i + 1, needle + 1, needle_len - 1) == 0)
            return 1;
    return 0;
#else
    if (needle_len == 0)
        return 1;
    for (size_t i = 0; i + needle_len <= hay_len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i + 1, needle + 1, needle_len - 1) == 0)
            return 1;
    return 0;
#endif
}

/* The class of each byte for pair sets: 0-25 the letters in either case,
** 26-35 the digits, 36-61 common punctuation, 63 every other byte. */
static const unsigned char pair_class[256] = {
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    36, 54, 48, 53, 63, 60, 59, 49, 44, 45, 57, 58, 43, 38, 37, 41,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 40, 56, 51, 42, 52, 55,
    50,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 46, 61, 47, 63, 39,
    63,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
};

void pair_set_build(struct pair_set *set, const char *text, size_t len)
{
    memset(set->bits, 0, sizeof set->bits);
    const unsigned char *p = (const unsigned char *)text;
    unsigned before = len > 0 ? pair_class[p[0]] : 0;
    for (size_t i = 1; i < len; i++) {
        unsigned now = pair_class[p[i]];
        set->bits[before] |= 1ull << now;
        before = now;
    }
}

int find_bytes_in(const char *hay, size_t hay_len, const struct pair_set *set, const char *needle, size_t needle_len)
{
    const unsigned char *p = (const unsigned char *)needle;
    for (size_t i = 1; i < needle_len; i++)
        if (!(set->bits[pair_class[p[i - 1]]] & (1ull << pair_class[p[i]])))
            return 0;
    return find_bytes(hay, hay_len, needle, needle_len);
}

size_t line_end(const char *text, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(text + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    for (; i < len; i++)
        if (text[i] == '\n' || text[i] == '\r')
            return i;
    return len;
}

/* Copy len bytes, ASCII capitals in lowercase. */
void lower_ascii(char *out, const char *in, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i before_a = _mm_set1_epi8('A' - 1), after_z = _mm_set1_epi8('Z' + 1), bit = _mm_set1_epi8(0x20);
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(in + i));
        /* Signed compares: bytes above 0x7F are negative and never capitals. */
        __m128i capital = _mm_and_si128(_mm_cmpgt_epi8(v, before_a), _mm_cmplt_epi8(v, after_z));
        _mm_storeu_si128((__m128i *)(out + i), _mm_or_si128(v, _mm_and_si128(capital, bit)));
    }
#endif
    for (; i < len; i++)
        out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] + 32) : in[i];
}

int is_ascii_text(const char *text, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, text + i, sizeof word);
        if (word & 0x8080808080808080ull)
            return 0;
    }
    for (; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return 0;
    return 1;
}

int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

void printable_excerpt(char *out, size_t size, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    size_t n = 0;
    if (size < 8) {
        if (size > 0)
            out[0] = '\0';
        return;
    }
    while (p < end) {
        size_t seq = utf8_length(p, end);
        size_t need = seq == 0 || *p < 0x20 || *p == 0x7F ? 4 : seq;
        if (n + need + 4 > size) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (need == 4 && (seq == 0 || seq == 1)) {
            snprintf(out + n, 5, "\\x%02x", *p);
            p++;
        } else {
            memcpy(out + n, p, seq);
            p += seq;
        }
        n += need;
    }
    out[n] = '\0';
}

/* {==== cache files */

int make_folders(const char *dir)
{
    char *copy = dup_string(dir);
    if (copy == NULL)
        return -1;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(copy, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(copy);
    return rc;
}

int write_cache_file(const char *path, const void *header, size_t header_len, const void *payload, size_t payload_len)
{
    char *temp = dup_printf("%s.%ld.tmp", path, (long)getpid());
    if (temp == NULL)
        return -1;
    int rc = -1;
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        int ok = 1;
        const void *parts[2] = {header, payload};
        size_t lens[2] = {header_len, payload_len};
        for (int i = 0; i < 2 && ok; i++) {
            const char *data = parts[i];
            for (size_t off = 0; ok && off < lens[i];) {
                ssize_t w = write(fd, data + off, lens[i] - off);
                ok = w > 0 || (w < 0 && errno == EINTR);
                off += w > 0 ? (size_t)w : 0;
            }
        }
        ok = close(fd) == 0 && ok;
        if (ok && rename(temp, path) == 0)
            rc = 0;
        else
            unlink(temp);
    }
    free(temp);
    return rc;
}

void prune_cache_files(const char *dir, const char *prefix, const char *suffix, size_t keep)
{
    struct entry {
        char *path;
        time_t mtime;
    } entries[64];
    size_t count = 0, prefix_len = strlen(prefix), suffix_len = strlen(suffix);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, NULL);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > prefix_len + suffix_len && strncmp(name, prefix, prefix_len) == 0 &&
            strcmp(name + len - suffix_len, suffix) == 0 && count < sizeof entries / sizeof *entries) {
            char *path = dup_printf("%s/%s", dir, name);
            struct stat st;
            if (path != NULL && stat(path, &st) == 0) {
                entries[count].path = path;
                entries[count].mtime = st.st_mtime;
                count++;
            } else {
                free(path);
            }
        }
        free(names[i]);
    }
    free(names);
    while (count > keep) {
        size_t oldest = 0;
        for (size_t i = 1; i < count; i++)
            if (entries[i].mtime < entries[oldest].mtime)
                oldest = i;
        unlink(entries[oldest].path);
        free(entries[oldest].path);
        entries[oldest] = entries[--count];
    }
    for (size_t i = 0; i < count; i++)
        free(entries[i].path);
}

/* }==== */
