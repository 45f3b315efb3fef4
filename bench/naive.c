/*
** Baselines for bench/scan.sh, through the public API only.
**
**   naive RECORDS FILE [LINES]
**       Compile every record's regex with PCRE2 (JIT) and run each on every
**       line of the first LINES lines (default 2000) of FILE: what scanning
**       costs without a prefilter. Prints lines/s.
**   phases RECORDS FILE [JOBS]
**       Time the phases of a scan in one process: loading the records,
**       preparing the ranking statistics (which a diagnosis needs too),
**       opening the scan (the prefilter from the cache, or built, and the
**       workers), reading and matching FILE, and the JSON summary.
**
** Both print "key=value" pairs so the script can pick them up.
*/
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "triage.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static triage_engine *load(const char *records)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, NULL};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL || triage_load_records(engine, records) <= 0) {
        fprintf(stderr, "naive: cannot load records from '%s': %s\n", records, triage_last_error());
        triage_close(&engine);
        return NULL;
    }
    return engine;
}

/* Read the first max_lines lines of path; returns their count. */
static size_t read_lines(const char *path, size_t max_lines, char ***lines_out)
{
    *lines_out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "naive: cannot open '%s'\n", path);
        return 0;
    }
    char **lines = calloc(max_lines, sizeof *lines);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while (n < max_lines && (len = getline(&buf, &cap, f)) >= 0) {
        if (len > 0 && buf[len - 1] == '\n')
            buf[--len] = '\0';
        lines[n++] = strdup(buf);
    }
    free(buf);
    fclose(f);
    *lines_out = lines;
    return n;
}

static int run_naive(const char *records, const char *path, size_t max_lines)
{
    triage_engine *engine = load(records);
    if (engine == NULL)
        return 1;
    size_t count = triage_record_count(engine);
    pcre2_code **codes = calloc(count, sizeof *codes);
    for (size_t i = 0; i < count; i++) {
        char *regex = NULL;
        if (triage_record_field(engine, triage_record_id(engine, i), "regex", &regex, NULL) != 0)
            continue;
        int err;
        PCRE2_SIZE offset;
        /* The options the engine compiles records with. */
        codes[i] = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                 PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &offset,
                                 NULL);
        if (codes[i] != NULL)
            pcre2_jit_compile(codes[i], PCRE2_JIT_COMPLETE);
        triage_free(regex);
    }
    char **lines = NULL;
    size_t n = read_lines(path, max_lines, &lines);
    pcre2_match_data *data = pcre2_match_data_create(64, NULL);
    size_t hits = 0, bytes = 0;
    double started = now();
    for (size_t l = 0; l < n; l++) {
        size_t len = strlen(lines[l]);
        bytes += len + 1;
        for (size_t i = 0; i < count; i++)
            if (codes[i] != NULL && pcre2_match(codes[i], (PCRE2_SPTR)lines[l], len, 0, 0, data, NULL) >= 0)
                hits++;
    }
    double seconds = now() - started;
    printf("naive lines=%zu records=%zu hits=%zu seconds=%.3f lines_per_s=%.0f mb_per_s=%.3f rss_kib=%ld\n", n,
           count, hits, seconds, (double)n / seconds, (double)bytes / seconds / 1e6, peak_rss_kib());
    for (size_t l = 0; l < n; l++)
        free(lines[l]);
    free(lines);
    for (size_t i = 0; i < count; i++)
        pcre2_code_free(codes[i]);
    free(codes);
    pcre2_match_data_free(data);
    triage_close(&engine);
    return 0;
}

static int run_phases(const char *records, const char *path, int jobs)
{
    double t0 = now();
    triage_engine *engine = load(records);
    if (engine == NULL)
        return 1;
    double t1 = now();
    /* Matching nothing builds the ranking statistics, as the first match does. */
    triage_match(engine, "", 0, NULL, 0);
    double prepared = now();
    triage_scan_options so = {0};
    so.jobs = jobs;
    triage_scan *scan = triage_scan_open(engine, &so);
    if (scan == NULL) {
        fprintf(stderr, "naive: %s\n", triage_last_error());
        triage_close(&engine);
        return 1;
    }
    double t2 = now();
    int rc = triage_scan_file(scan, path);
    if (rc == 0)
        rc = triage_scan_finish(scan);
    double t3 = now();
    char *out = NULL;
    size_t len = 0;
    triage_render_options ro = {0};
    ro.format = "json";
    int findings = rc == 0 ? triage_scan_summary(scan, &ro, &out, &len) : -1;
    double t4 = now();
    size_t lines = 0, diagnosed = 0;
    triage_scan_counts(scan, &lines, &diagnosed);
    if (rc != 0 || findings < 0)
        fprintf(stderr, "naive: %s\n", triage_last_error());
    printf("phases load_s=%.3f prepare_s=%.3f open_s=%.3f scan_s=%.3f summary_s=%.3f lines=%zu diagnosed=%zu "
           "findings=%d scan_lines_per_s=%.0f rss_kib=%ld\n",
           t1 - t0, prepared - t1, t2 - prepared, t3 - t2, t4 - t3, lines, diagnosed, findings,
           (double)lines / (t3 - t2), peak_rss_kib());
    triage_free(out);
    triage_scan_close(&scan);
    triage_close(&engine);
    return rc != 0 || findings < 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "naive") == 0)
        return run_naive(argv[2], argv[3], argc > 4 ? strtoul(argv[4], NULL, 10) : 2000);
    if (argc >= 4 && strcmp(argv[1], "phases") == 0)
        return run_phases(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 0);
    fprintf(stderr, "usage: %s naive RECORDS FILE [LINES]\n       %s phases RECORDS FILE [JOBS]\n", argv[0], argv[0]);
    return 2;
}
