/* Tests of the regex cache: compiled regexes of a record folder read back
** from disk, and a damaged or stale file compiled anew. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "scratch_files.h"

static char root[] = "/tmp/triage-regex-cache-XXXXXX";
static char records[256], cache_dir[256];

static void write_record(const char *slug, const char *regex)
{
    char path[640], text[512];
    snprintf(path, sizeof path, "%s/%s.json", records, slug);
    snprintf(text, sizeof text, "{\"id\": \"cache/%s\", \"signature\": \"cache test %s\", \"regex\": \"%s\"}", slug,
             slug, regex);
    CHECK(write_file(path, text) == 0);
}

/* The one cache file of the folder, or "" when there is none. */
static void cache_file(char *out, size_t size)
{
    out[0] = '\0';
    DIR *dir = opendir(cache_dir);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strncmp(entry->d_name, "regex-", 6) == 0 && strlen(cache_dir) + strlen(entry->d_name) + 2 <= size)
            snprintf(out, size, "%s/%s", cache_dir, entry->d_name);
    closedir(dir);
}

/* Load the folder into a new engine; hits and misses of the cache out. */
static triage_engine *load(unsigned flags, size_t *hits, size_t *misses)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS | flags, TRIAGE_TEST_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    CHECK(engine != NULL);
    if (engine == NULL)
        return NULL;
    CHECK(triage_load_records(engine, records) == 3);
    *hits = engine->regex_cache_hits;
    *misses = engine->regex_cache_misses;
    return engine;
}

/* The ids that match each test line, joined, to compare two engines. */
static void matches(triage_engine *engine, char *out, size_t size)
{
    static const char *const lines[] = {"disk full on /var", "error: disk full", "queue stuck at end",
                                        "QUEUE STUCK", "nothing here"};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof lines / sizeof *lines && n < size; i++) {
        triage_hit hits[4];
        int count = triage_match(engine, lines[i], strlen(lines[i]), hits, 4);
        for (int k = 0; k < count && n < size; k++)
            n += (size_t)snprintf(out + n, size - n, "%zu:%s;", i, hits[k].id);
    }
}

static void test_second_load_reads_cache(void)
{
    size_t hits, misses;
    char first[512], second[512], path[640];
    triage_engine *engine = load(0, &hits, &misses);
    CHECK(hits == 0);
    CHECK(misses >= 3);
    if (engine != NULL)
        matches(engine, first, sizeof first);
    triage_close(&engine);
    cache_file(path, sizeof path);
    CHECK(path[0] != '\0');

    engine = load(0, &hits, &misses);
    CHECK(hits >= 3);
    CHECK(misses == 0);
    if (engine != NULL) {
        matches(engine, second, sizeof second);
        CHECK(strcmp(second, first) == 0);
        CHECK_STR_CONTAINS(second, "0:cache/disk-full;");
        CHECK_STR_CONTAINS(second, "3:cache/queue-stuck;");
    }
    triage_close(&engine);
}

static void test_damaged_file_compiled_anew(void)
{
    char path[640];
    cache_file(path, sizeof path);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    /* One byte changed in the middle, then the file cut in half. */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(fseek(f, st.st_size / 2, SEEK_SET) == 0);
        int c = fgetc(f);
        CHECK(fseek(f, st.st_size / 2, SEEK_SET) == 0);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    size_t hits, misses;
    triage_engine *engine = load(0, &hits, &misses);
    CHECK(hits == 0);
    CHECK(misses >= 3);
    triage_close(&engine);
    engine = load(0, &hits, &misses);
    CHECK(hits >= 3);
    triage_close(&engine);

    CHECK(truncate(path, st.st_size / 2) == 0);
    engine = load(0, &hits, &misses);
    CHECK(hits == 0);
    CHECK(misses >= 3);
    triage_close(&engine);
    engine = load(0, &hits, &misses);
    CHECK(hits >= 3);
    CHECK(misses == 0);
    triage_close(&engine);
}

/* A cache file that others may write is not read, and the rewrite that
** follows makes it private again. */
static void test_shared_file_not_read(void)
{
    char path[640];
    cache_file(path, sizeof path);
    CHECK(chmod(path, 0666) == 0);
    size_t hits, misses;
    triage_engine *engine = load(0, &hits, &misses);
    CHECK(hits == 0);
    CHECK(misses >= 3);
    triage_close(&engine);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK((st.st_mode & 077) == 0);
    engine = load(0, &hits, &misses);
    CHECK(hits >= 3);
    triage_close(&engine);
}

static void test_changed_record_compiled_alone(void)
{
    write_record("queue-stuck", "queue (is )?stuck");
    size_t hits, misses;
    triage_engine *engine = load(0, &hits, &misses);
    CHECK(hits >= 2);
    CHECK(misses >= 1);
    if (engine != NULL) {
        triage_hit hit[2];
        CHECK(triage_match(engine, "queue is stuck", 14, hit, 2) == 1);
    }
    triage_close(&engine);
    engine = load(0, &hits, &misses);
    CHECK(misses == 0);
    triage_close(&engine);
}

static void test_no_cache_flag_writes_nothing(void)
{
    char path[640];
    cache_file(path, sizeof path);
    CHECK(unlink(path) == 0);
    size_t hits, misses;
    triage_engine *engine = load(TRIAGE_NO_CACHE, &hits, &misses);
    CHECK(hits == 0);
    CHECK(misses == 0);
    triage_close(&engine);
    cache_file(path, sizeof path);
    CHECK(path[0] == '\0');
}

int main(void)
{
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(records, sizeof records, "%s/records", root);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache/triage", root);
    CHECK(mkdir(records, 0700) == 0);
    char xdg[600];
    snprintf(xdg, sizeof xdg, "%s/cache", root);
    setenv("XDG_CACHE_HOME", xdg, 1);
    /* An anchored regex also gets a floating copy, and \z a spelt-out form:
    ** both are compiled, so both go through the cache. */
    write_record("disk-full", "disk full");
    write_record("queue-stuck", "^queue stuck");
    write_record("end-of-line", "at end\\\\z");

    test_second_load_reads_cache();
    test_damaged_file_compiled_anew();
    test_shared_file_not_read();
    test_changed_record_compiled_alone();
    test_no_cache_flag_writes_nothing();

    remove_tree(root);
    return check_summary();
}
