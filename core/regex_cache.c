/*
** Regex cache: the compiled regexes of a record folder, kept on disk.
**
** Owns: the cache file of one load path, the codes decoded from it, and the
** list of patterns a load compiled.
** Depends on: PCRE2 serialization, zlib (crc32), util.c for cache files.
**
** Compiling the regexes is the largest single cost of loading a big
** knowledge base (the 2,522 corpus regexes took about 20 ms of CPU on the
** benchmark machine), while decoding the same codes serialized takes well
** under a millisecond. A load looks each pattern up in the file of its
** path and compiles only what is missing. When anything was missing or
** left unused, the file is written anew at the end of the load.
**
** A file is used only when its salt matches: the PCRE2 version and the
** compile settings, given by the caller. A code comes out as a copy with
** its own character tables, because codes decoded together share tables
** whose reference count PCRE2 does not update atomically, and loading
** threads free codes on their own.
**
** NOTE: PCRE2 takes serialized codes as they are, and the checksum catches
** damage, not a deliberate change. A user who can write the cache folder
** can make a load crash or match wrongly, so only files of the process's
** user that group and others cannot write are read (read_cache_file).
*/
#define _GNU_SOURCE /* realpath */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"
#include "prefilter.h"

#define CACHE_MAGIC "TRIAGERX"
/* Bump when the layout of the file changes. */
#define CACHE_FORMAT 1u
/* Cache files kept in the folder; older ones are removed. */
#define CACHE_KEEP 8
/* Largest cache file read. */
#define CACHE_MAX_SIZE ((size_t)256 << 20)

struct cache_header {
    char magic[8];
    uint32_t format;
    uint32_t header_size;
    uint64_t salt;
    uint64_t count;        /* codes in the file */
    uint64_t payload_size; /* the entries, the pattern texts, then the serialized codes */
    uint64_t codes_offset; /* where in the payload the serialized codes start, a multiple of 8 */
    uint32_t payload_crc;
    uint32_t reserved;
};

/* Entry of the file: a code's compile options and where its pattern text is. */
struct cache_entry {
    uint32_t options;
    uint32_t length;
    uint64_t offset;
};

/* A pattern a load compiled, for writing the file. code is the load's
** own copy when the pattern was compiled anew, NULL when it was a hit. */
struct compiled {
    char *pattern;
    uint32_t options;
    pcre2_code *code;
};

struct regex_cache {
    char *dir, *path;
    uint64_t salt;

    /* From the file: code i was compiled from texts[i] (lengths[i] bytes)
    ** with options[i]. slots is an open-addressing index of them. */
    char *file;
    pcre2_code **codes;
    const char **texts;
    size_t *lengths;
    uint32_t *options;
    size_t count;
    uint32_t *slots; /* code index + 1, 0 when free */
    size_t slot_cap;

    /* This load's patterns, guarded by lock. used[i] is set once code i
    ** of the file served. */
    pthread_mutex_t lock;
    struct compiled *compiled;
    size_t compiled_count, compiled_cap;
    unsigned char *used;
    size_t used_count;
    size_t hits, misses;
};

/* FNV-1a of data, continued from h. */
static uint64_t hash_more(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = hash_step(h, p[i]);
    return h;
}

static uint64_t pattern_hash(const char *pattern, size_t len, uint32_t options)
{
    return hash_more(hash_more(HASH_SEED, &options, sizeof options), pattern, len);
}

/* Index of the file's code for pattern and options, or SIZE_MAX. */
static size_t find(const struct regex_cache *cache, const char *pattern, size_t len, uint32_t options)
{
    if (cache->slot_cap == 0)
        return SIZE_MAX;
    size_t mask = cache->slot_cap - 1;
    for (size_t h = pattern_hash(pattern, len, options) & mask; cache->slots[h] != 0; h = (h + 1) & mask) {
        size_t i = cache->slots[h] - 1;
        if (cache->options[i] == options && cache->lengths[i] == len && memcmp(cache->texts[i], pattern, len) == 0)
            return i;
    }
    return SIZE_MAX;
}

static void drop_file(struct regex_cache *cache)
{
    for (size_t i = 0; cache->codes != NULL && i < cache->count; i++)
        pcre2_code_free(cache->codes[i]);
    free(cache->codes);
    free(cache->texts);
    free(cache->lengths);
    free(cache->options);
    free(cache->slots);
    free(cache->used);
    free(cache->file);
    cache->used = NULL;
    cache->codes = NULL;
    cache->texts = NULL;
    cache->lengths = NULL;
    cache->options = NULL;
    cache->slots = NULL;
    cache->file = NULL;
    cache->count = cache->slot_cap = 0;
}

/* Read and check the file. On any problem the cache starts empty, and the
** file is written anew at the end of the load. */
static void read_codes(struct regex_cache *cache)
{
    char *data;
    size_t len;
    if (read_cache_file(cache->path, CACHE_MAX_SIZE, &data, &len) != 0)
        return;
    cache->file = data;
    struct cache_header header;
    if (len < sizeof header)
        goto invalid;
    memcpy(&header, data, sizeof header);
    const unsigned char *payload = (const unsigned char *)data + sizeof header;
    if (memcmp(header.magic, CACHE_MAGIC, sizeof header.magic) != 0 || header.format != CACHE_FORMAT ||
        header.header_size != sizeof header || header.salt != cache->salt ||
        header.payload_size != len - sizeof header || header.count == 0 ||
        header.count > header.payload_size / sizeof(struct cache_entry) || header.codes_offset % 8 != 0 ||
        header.codes_offset < header.count * sizeof(struct cache_entry) || header.codes_offset >= header.payload_size ||
        header.payload_crc != (uint32_t)crc32(crc32(0L, Z_NULL, 0), payload, (uInt)header.payload_size))
        goto invalid;
    size_t count = (size_t)header.count;
    const struct cache_entry *entries = (const struct cache_entry *)payload;
    for (size_t i = 0; i < count; i++) {
        struct cache_entry e;
        memcpy(&e, &entries[i], sizeof e);
        if (e.offset < count * sizeof *entries || e.offset > header.codes_offset ||
            e.length > header.codes_offset - e.offset)
            goto invalid;
    }
    cache->used = calloc(count, 1);
    cache->codes = calloc(count, sizeof *cache->codes);
    cache->texts = malloc(count * sizeof *cache->texts);
    cache->lengths = malloc(count * sizeof *cache->lengths);
    cache->options = malloc(count * sizeof *cache->options);
    size_t slot_cap = 16;
    while (slot_cap < count * 2)
        slot_cap *= 2;
    cache->slots = calloc(slot_cap, sizeof *cache->slots);
    if (cache->used == NULL || cache->codes == NULL || cache->texts == NULL || cache->lengths == NULL ||
        cache->options == NULL || cache->slots == NULL || count > INT32_MAX)
        goto invalid;
    /* PCRE2 checks the serialized bytes' own header: its version, the code
    ** unit width and the build settings. */
    int32_t decoded = pcre2_serialize_decode(cache->codes, (int32_t)count, payload + header.codes_offset, NULL);
    if (decoded != (int32_t)count) {
        for (int32_t i = 0; i < decoded; i++)
            pcre2_code_free(cache->codes[i]);
        goto invalid;
    }
    cache->count = count;
    cache->slot_cap = slot_cap;
    for (size_t i = 0; i < count; i++) {
        struct cache_entry e;
        memcpy(&e, &entries[i], sizeof e);
        cache->texts[i] = (const char *)payload + e.offset;
        cache->lengths[i] = e.length;
        cache->options[i] = e.options;
        if (find(cache, cache->texts[i], e.length, e.options) != SIZE_MAX)
            continue; /* of two equal patterns, the first one serves */
        size_t h = pattern_hash(cache->texts[i], e.length, e.options) & (slot_cap - 1);
        while (cache->slots[h] != 0)
            h = (h + 1) & (slot_cap - 1);
        cache->slots[h] = (uint32_t)i + 1;
    }
    return;
invalid:
    drop_file(cache);
}

struct regex_cache *regex_cache_open(const char *load_path, const char *salt)
{
    char *dir = prefilter_default_cache_dir();
    if (dir == NULL)
        return NULL;
    struct regex_cache *cache = calloc(1, sizeof *cache);
    char *real = realpath(load_path, NULL);
    const char *named = real != NULL ? real : load_path;
    uint64_t name_hash = hash_bytes(named, strlen(named));
    free(real);
    if (cache == NULL || pthread_mutex_init(&cache->lock, NULL) != 0) {
        free(cache);
        free(dir);
        return NULL;
    }
    cache->dir = dir;
    cache->path = dup_printf("%s/regex-%016llx.bin", dir, (unsigned long long)name_hash);
    cache->salt = hash_bytes(salt, strlen(salt));
    if (cache->path == NULL) {
        regex_cache_close(cache);
        return NULL;
    }
    read_codes(cache);
    return cache;
}

/* Note a pattern compiled in this load: code is the load's copy when it
** was compiled anew, or NULL when code `from` of the file served. */
static void note_compiled(struct regex_cache *cache, const char *pattern, uint32_t options, pcre2_code *code,
                          size_t from)
{
    pthread_mutex_lock(&cache->lock);
    if (code != NULL) {
        cache->misses++;
    } else {
        cache->hits++;
        cache->used_count += !cache->used[from];
        cache->used[from] = 1;
    }
    if (cache->compiled_count == cache->compiled_cap) {
        size_t cap = cache->compiled_cap ? cache->compiled_cap * 2 : 256;
        struct compiled *grown = realloc(cache->compiled, cap * sizeof *grown);
        if (grown == NULL)
            goto failed;
        cache->compiled = grown;
        cache->compiled_cap = cap;
    }
    char *copy = dup_string(pattern);
    if (copy == NULL)
        goto failed;
    cache->compiled[cache->compiled_count++] = (struct compiled){copy, options, code};
    pthread_mutex_unlock(&cache->lock);
    return;
failed:
    /* The file then misses this pattern, which costs the next load a compile. */
    pcre2_code_free(code);
    pthread_mutex_unlock(&cache->lock);
}

pcre2_code *regex_cache_compile(struct regex_cache *cache, const char *pattern, uint32_t options,
                                pcre2_compile_context *ctx, int *errcode, PCRE2_SIZE *erroffset)
{
    if (cache != NULL) {
        size_t i = find(cache, pattern, strlen(pattern), options);
        if (i != SIZE_MAX) {
            pcre2_code *code = pcre2_code_copy_with_tables(cache->codes[i]);
            if (code != NULL) {
                note_compiled(cache, pattern, options, NULL, i);
                return code;
            }
        }
    }
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options, errcode, erroffset, ctx);
    if (code != NULL && cache != NULL) {
        pcre2_code *copy_for_file = pcre2_code_copy(code);
        if (copy_for_file != NULL)
            note_compiled(cache, pattern, options, copy_for_file, SIZE_MAX);
    }
    return code;
}

static int by_pattern(const void *a, const void *b)
{
    const struct compiled *x = a, *y = b;
    int c = strcmp(x->pattern, y->pattern);
    return c != 0 ? c : (x->options > y->options) - (x->options < y->options);
}

/* Write the patterns this load compiled, each once, to the cache file.
** Codes from the file are compiled again: serialized codes must share one
** set of character tables, and those of the file's codes are a copy. */
static void write_cache(struct regex_cache *cache)
{
    qsort(cache->compiled, cache->compiled_count, sizeof *cache->compiled, by_pattern);
    size_t count = 0;
    for (size_t i = 0; i < cache->compiled_count; i++) {
        struct compiled *c = &cache->compiled[i];
        if (count > 0 && by_pattern(&cache->compiled[count - 1], c) == 0) {
            pcre2_code_free(c->code);
            free(c->pattern);
            continue;
        }
        cache->compiled[count++] = *c;
    }
    cache->compiled_count = count;
    const pcre2_code **codes = malloc((count ? count : 1) * sizeof *codes);
    struct cache_entry *entries = malloc((count ? count : 1) * sizeof *entries);
    uint8_t *serialized = NULL;
    PCRE2_SIZE serialized_size = 0;
    char *payload = NULL;
    if (codes == NULL || entries == NULL)
        goto done;
    size_t texts = 0;
    for (size_t i = 0; i < count; i++) {
        struct compiled *c = &cache->compiled[i];
        if (c->code == NULL) {
            int errcode;
            PCRE2_SIZE erroffset;
            c->code = pcre2_compile((PCRE2_SPTR)c->pattern, PCRE2_ZERO_TERMINATED, c->options, &errcode, &erroffset,
                                    NULL);
            if (c->code == NULL)
                goto done; /* compiled from the file, so only memory can fail */
        }
        codes[i] = c->code;
        size_t len = strlen(c->pattern);
        entries[i] = (struct cache_entry){c->options, (uint32_t)len, count * sizeof *entries + texts};
        texts += len;
    }
    if (count == 0 || pcre2_serialize_encode(codes, (int32_t)count, &serialized, &serialized_size, NULL) < 0)
        goto done;
    size_t codes_offset = (count * sizeof *entries + texts + 7) & ~(size_t)7;
    size_t payload_size = codes_offset + serialized_size;
    payload = calloc(1, payload_size);
    if (payload == NULL)
        goto done;
    memcpy(payload, entries, count * sizeof *entries);
    char *at = payload + count * sizeof *entries;
    for (size_t i = 0; i < count; i++) {
        memcpy(at, cache->compiled[i].pattern, entries[i].length);
        at += entries[i].length;
    }
    memcpy(payload + codes_offset, serialized, serialized_size);
    struct cache_header header = {0};
    memcpy(header.magic, CACHE_MAGIC, sizeof header.magic);
    header.format = CACHE_FORMAT;
    header.header_size = sizeof header;
    header.salt = cache->salt;
    header.count = count;
    header.payload_size = payload_size;
    header.codes_offset = codes_offset;
    header.payload_crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const unsigned char *)payload, (uInt)payload_size);
    if (make_folders(cache->dir) == 0 &&
        write_cache_file(cache->path, &header, sizeof header, payload, payload_size) == 0)
        prune_cache_files(cache->dir, "regex-", ".bin", CACHE_KEEP);
done:
    pcre2_serialize_free(serialized);
    free(payload);
    free(entries);
    free(codes);
}

void regex_cache_close(struct regex_cache *cache)
{
    if (cache == NULL)
        return;
    /* The file is written when something was compiled anew or a code of
    ** it went unused, so it follows the folder. A load that compiled
    ** nothing, such as that of an empty folder, leaves it alone. */
    if (cache->compiled_count > 0 && (cache->misses > 0 || cache->used_count < cache->count))
        write_cache(cache);
    else if (cache->hits > 0)
        utimensat(AT_FDCWD, cache->path, NULL, 0); /* a fresh mtime keeps the file from being pruned */
    for (size_t i = 0; i < cache->compiled_count; i++) {
        pcre2_code_free(cache->compiled[i].code);
        free(cache->compiled[i].pattern);
    }
    free(cache->compiled);
    drop_file(cache);
    pthread_mutex_destroy(&cache->lock);
    free(cache->dir);
    free(cache->path);
    free(cache);
}

void regex_cache_counts(const struct regex_cache *cache, size_t *hits, size_t *misses)
{
    *hits = cache->hits;
    *misses = cache->misses;
}
