/*
** triage scan: diagnose every line of logs and summarise what was found.
**
** Output: with --format ndjson one object per diagnosed line as it is
** scanned, otherwise a summary at the end (text, json, markdown or a Lua
** formatter). On a terminal, a scan that runs longer than a second shows
** its progress on stderr. Ctrl-C ends the scan and still prints the
** summary of what was read. A second Ctrl-C ends the program.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Show progress only for scans that last longer than this many seconds. */
#define PROGRESS_AFTER 1.0

struct scan_output {
    FILE *out;
    int flush_each;    /* --follow: every line goes out at once */
    int show_progress; /* stderr is a terminal and --quiet is off */
    int progress_shown;
    int write_failed;
};

static triage_scan *running_scan;

static void on_signal(int sig)
{
    triage_scan_stop(running_scan);
    signal(sig, SIG_DFL); /* a second signal ends the program */
}

static int write_output(void *userdata, const char *data, size_t len)
{
    struct scan_output *o = userdata;
    if (fwrite(data, 1, len, o->out) != len || (o->flush_each && fflush(o->out) != 0)) {
        o->write_failed = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

static void human_size(char *buf, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) {
        bytes /= 1000;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void show_progress(void *userdata, const triage_scan_progress *p)
{
    struct scan_output *o = userdata;
    if (!o->show_progress || p->seconds < PROGRESS_AFTER)
        return;
    char done[32], total[32], left[48] = "";
    human_size(done, sizeof done, (double)p->bytes);
    double rate = p->seconds > 0 ? (double)p->lines / p->seconds : 0;
    if (p->total_bytes > 0) {
        human_size(total, sizeof total, (double)p->total_bytes);
        double byte_rate = p->seconds > 0 ? (double)p->bytes / p->seconds : 0;
        if (byte_rate > 0 && p->total_bytes > p->bytes)
            snprintf(left, sizeof left, ", %.0f s left", (double)(p->total_bytes - p->bytes) / byte_rate);
        fprintf(stderr, "\rtriage: %s of %s, %llu lines, %.0f lines/s%s\033[K", done, total, p->lines, rate, left);
    } else {
        fprintf(stderr, "\rtriage: %s, %llu lines, %.0f lines/s\033[K", done, p->lines, rate);
    }
    o->progress_shown = 1;
}

static void clear_progress(struct scan_output *o)
{
    if (o->progress_shown)
        fputs("\r\033[K", stderr);
    o->progress_shown = 0;
}

/* Parse a window option: a whole number from 0 to limit. 0 turns the test
** off, which the library spells as a negative value. */
static int window_value(const char *text, const char *option, double limit, double *out)
{
    if (text == NULL)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0 && v <= limit))
        return fail("invalid value '%s' for %s: expected a number from 0 to %.0f", text, option, limit);
    *out = v == 0 ? -1 : v;
    return 0;
}

static int scan_options(const struct cli *cli, struct scan_output *o, triage_scan_options *so)
{
    memset(so, 0, sizeof *so);
    double lines = 0, seconds = 0;
    if (window_value(cli->window_lines, "--window-lines", 1e9, &lines) != 0 ||
        window_value(cli->window_seconds, "--window-seconds", 1e9, &seconds) != 0)
        return TRIAGE_EXIT_ERROR;
    if (cli->jobs == 0 || cli->jobs > 256)
        return fail("invalid value '%d' for --jobs: expected 1 to 256", cli->jobs);
    if (cli->format != NULL && strcmp(cli->format, "script") == 0)
        return fail("scan has no script format; use text, json, ndjson or markdown, and 'triage diagnose --format "
                    "script LINE' for the remediation steps of one line");
    int ndjson = cli->format != NULL && strcmp(cli->format, "ndjson") == 0;
    if (cli->follow && cli->format != NULL && !ndjson)
        return fail("--follow prints ndjson lines as they come; drop --format %s or use --format ndjson",
                    cli->format);
    so->flags = (ndjson || cli->follow ? TRIAGE_SCAN_NDJSON : 0) | (cli->follow ? TRIAGE_SCAN_FOLLOW : 0) |
                (cli->no_cache ? TRIAGE_SCAN_NO_CACHE : 0) | (cli->arg_count > 1 ? TRIAGE_SCAN_FILE_NAMES : 0);
    so->jobs = cli->jobs > 0 ? cli->jobs : 0; /* 0: the default */
    so->top = cli->top;
    so->min_score = cli->min_score;
    so->window_lines = (long)lines;
    so->window_seconds = seconds;
    so->on_output = write_output;
    so->on_progress = show_progress;
    so->userdata = o;
    o->out = stdout;
    o->flush_each = cli->follow;
    o->show_progress = !cli->quiet && !cli->follow && isatty(STDERR_FILENO);
    return 0;
}

static int print_summary(const struct cli *cli, triage_scan *scan)
{
    triage_render_options ro = render_options(cli);
    char *out = NULL;
    size_t len = 0;
    if (triage_scan_summary(scan, &ro, &out, &len) < 0)
        return fail("%s", triage_last_error());
    fwrite(out, 1, len, stdout);
    triage_free(out);
    return 0;
}

static int read_inputs(struct cli *cli, triage_scan *scan)
{
    if (cli->arg_count == 0)
        return triage_scan_file(scan, "-");
    for (int i = 0; i < cli->arg_count; i++) {
        int rc = triage_scan_file(scan, cli->args[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int run_scan(struct cli *cli)
{
    struct scan_output o = {0};
    triage_scan_options so;
    int rc = scan_options(cli, &o, &so);
    if (rc != 0)
        return rc;
    if (cli->follow && cli->arg_count > 1)
        return fail("--follow reads one FILE, or standard input as it arrives; %d were given", cli->arg_count);
    triage_engine *engine = open_engine(cli);
    if (engine == NULL)
        return TRIAGE_EXIT_ERROR;
    triage_scan *scan = triage_scan_open(engine, &so);
    if (scan == NULL) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    size_t problems_before = triage_problem_count(engine);
    running_scan = scan;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int read = read_inputs(cli, scan);
    int finished = read < 0 ? -1 : triage_scan_finish(scan);
    clear_progress(&o);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running_scan = NULL;

    /* Regexes that hit a match limit: their lines may lack a diagnosis. */
    for (size_t i = problems_before; !cli->quiet && i < triage_problem_count(engine); i++)
        print_problem(triage_problem_at(engine, i));
    size_t lines = 0, diagnosed = 0;
    triage_scan_counts(scan, &lines, &diagnosed);
    if (read < 0 || finished < 0) {
        rc = fail("%s", triage_last_error());
    } else if (o.write_failed) {
        rc = fail("cannot write the output: %s", strerror(o.write_failed));
    } else if (!(so.flags & TRIAGE_SCAN_NDJSON)) {
        rc = print_summary(cli, scan);
    }
    if (rc == 0 && !cli->quiet && !(so.flags & TRIAGE_SCAN_NDJSON) && isatty(STDERR_FILENO))
        fprintf(stderr, "triage: %zu lines, %zu diagnosed\n", lines, diagnosed);
    triage_scan_close(&scan);
    triage_close(&engine);
    if (rc != 0)
        return rc;
    return diagnosed > 0 ? TRIAGE_EXIT_MATCH : TRIAGE_EXIT_NO_MATCH;
}
