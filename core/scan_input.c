/*
** Scan input: read plain and gzip-compressed files and standard input, and
** follow a growing file across rotation.
**
** Owns: opening inputs, the read loop, progress reports, and the follow
** loop (polling, rotation and truncation checks, reopening).
** Depends on: zlib (gzread reads plain files unchanged), scan.c.
**
** Following works as `tail -F`: at the end of the file the loop sleeps
** briefly and reads again. When the path names another file than the one
** open (rotation), the rest of the old file is read and the new one is
** opened from its start. When the file shrinks (truncation), it is read
** again from the start. While the path is missing, between a rotation's
** rename and the new file, the old file is still read.
** Followed standard input is read with plain read() and each line passed on
** as it arrives; it is not decompressed.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "scan.h"

/* Bytes asked of zlib per read. */
#define READ_SIZE (256u << 10)
/* Pause between polls of a followed file. */
#define FOLLOW_POLL_MS 200

struct input {
    const char *path;
    int fd;
    gzFile gz; /* NULL when read with read() */
    dev_t dev;
    ino_t ino;
};

/* Open path for reading through zlib, or with plain read() when raw is
** set: zlib fills its whole buffer before it returns, which would hold
** back lines that trickle in through a pipe. */
static int open_input(struct input *in, const char *path, int raw)
{
    int is_stdin = strcmp(path, "-") == 0;
    in->path = path;
    in->fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        set_error("cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(in->fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        set_error("cannot scan '%s': %s", path, S_ISDIR(st.st_mode) ? "it is a folder" : strerror(errno));
        close(in->fd);
        return -1;
    }
    in->dev = st.st_dev;
    in->ino = st.st_ino;
    in->gz = NULL;
    if (raw)
        return 0;
    /* gzdopen takes the descriptor over; gzclose closes it. */
    in->gz = gzdopen(in->fd, "rb");
    if (in->gz == NULL) {
        set_error("cannot read '%s': out of memory", path);
        close(in->fd);
        return -1;
    }
    gzbuffer(in->gz, READ_SIZE);
    return 0;
}

static void close_input(struct input *in)
{
    if (in->gz != NULL)
        gzclose(in->gz);
    else if (in->fd >= 0)
        close(in->fd);
    in->gz = NULL;
    in->fd = -1;
}

/* Read from a raw input: whatever has arrived, waiting for some. */
static int read_raw(struct triage_scan *scan, struct input *in, char *buffer)
{
    for (;;) {
        if (atomic_load(&scan->stop))
            return 1;
        ssize_t n = read(in->fd, buffer, READ_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_error("cannot read '%s': %s", in->path, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        scan->bytes_read += (unsigned long long)n;
        int rc = triage_scan_feed(scan, buffer, (size_t)n);
        if (rc == 0)
            rc = scan_dispatch(scan);
        if (rc == 0)
            rc = scan_drain(scan, 1);
        if (rc != 0)
            return rc;
    }
}

/* Read what the input has now and feed it. Returns 0 at the end of the
** data, 1 when stopped, -1 on error. */
static int read_available(struct triage_scan *scan, struct input *in, char *buffer)
{
    for (;;) {
        if (atomic_load(&scan->stop))
            return 1;
        int n = gzread(in->gz, buffer, READ_SIZE);
        if (n < 0) {
            int code;
            const char *message = gzerror(in->gz, &code);
            set_error("cannot read '%s': %s", in->path, code == Z_ERRNO ? strerror(errno) : message);
            return -1;
        }
        if (n == 0) {
            /* A gzip member cut short reads as the end of data without an
            ** error; zlib reports it only here. */
            int code;
            const char *message = gzerror(in->gz, &code);
            if (code != Z_OK && code != Z_BUF_ERROR) {
                set_error("cannot read '%s': %s", in->path, message);
                return -1;
            }
            return 0;
        }
        /* The position in the file, which for gzip input counts compressed
        ** bytes as the file size does; a pipe has none. */
        z_off_t offset = gzoffset(in->gz);
        if (offset >= 0)
            scan->bytes_read = (unsigned long long)offset;
        else
            scan->bytes_read += (unsigned long long)n;
        int rc = triage_scan_feed(scan, buffer, (size_t)n);
        if (rc != 0)
            return rc;
        scan_report_progress(scan, 0);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Pass the lines read so far on, so a followed file is reported as it
** grows rather than a chunk at a time. */
static int flush_lines(struct triage_scan *scan)
{
    int rc = scan_dispatch(scan);
    if (rc == 0)
        rc = scan_drain(scan, 1);
    return rc;
}

/* Change of the followed path since the last poll. */
enum change { UNCHANGED, REPLACED, TRUNCATED, MISSING };

static enum change check_path(const struct input *in)
{
    struct stat path_st, open_st;
    if (stat(in->path, &path_st) != 0)
        return MISSING;
    if (path_st.st_dev != in->dev || path_st.st_ino != in->ino)
        return REPLACED;
    if (fstat(in->fd, &open_st) == 0 && open_st.st_size < gzoffset(in->gz))
        return TRUNCATED;
    return UNCHANGED;
}

/* Follow the open input until stopped. */
static int follow(struct triage_scan *scan, struct input *in, char *buffer)
{
    for (;;) {
        int rc = flush_lines(scan);
        if (rc != 0)
            return rc;
        if (atomic_load(&scan->stop))
            return 1;
        sleep_ms(FOLLOW_POLL_MS);
        enum change change = check_path(in);
        if (change == REPLACED || change == TRUNCATED) {
            /* Lines written to the old file before the switch still count. */
            gzclearerr(in->gz);
            if (change == REPLACED && (rc = read_available(scan, in, buffer)) != 0)
                return rc;
            if ((rc = scan_end_input(scan)) != 0)
                return rc;
            close_input(in);
            scan->bytes_base += scan->bytes_read;
            scan->bytes_read = 0;
            if (open_input(in, in->path, 0) != 0)
                return -1;
        }
        gzclearerr(in->gz);
        rc = read_available(scan, in, buffer);
        if (rc != 0)
            return rc;
    }
}

int scan_read_file(struct triage_scan *scan, const char *path)
{
    struct input in = {NULL, -1, NULL, 0, 0};
    char *buffer = malloc(READ_SIZE);
    if (buffer == NULL) {
        set_error("out of memory reading '%s'", path);
        return -1;
    }
    int following = (scan->options.flags & TRIAGE_SCAN_FOLLOW) != 0;
    int is_stdin = strcmp(path, "-") == 0;
    if (open_input(&in, path, following && is_stdin) != 0) {
        free(buffer);
        return -1;
    }
    struct stat st;
    scan->total_bytes = fstat(in.fd, &st) == 0 && S_ISREG(st.st_mode) ? (unsigned long long)st.st_size : 0;
    scan->bytes_base += scan->bytes_read;
    scan->bytes_read = 0;
    char **files = realloc(scan->files, (scan->file_count + 1) * sizeof *files);
    char *name = files != NULL ? dup_string(path) : NULL;
    if (files != NULL)
        scan->files = files;
    if (name == NULL) {
        close_input(&in);
        free(buffer);
        set_error("out of memory reading '%s'", path);
        return -1;
    }
    scan->files[scan->file_count++] = name;
    scan->file = name;
    scan->current->file = scan->file;

    int rc;
    if (in.gz == NULL)
        rc = read_raw(scan, &in, buffer);
    else
        rc = read_available(scan, &in, buffer);
    if (rc == 0 && following && !is_stdin)
        rc = follow(scan, &in, buffer);
    close_input(&in);
    free(buffer);
    /* Chunks never span two inputs: the last line of this file ends here. */
    if (rc >= 0 && !atomic_load(&scan->stop)) {
        int ended = scan_end_input(scan);
        if (ended != 0)
            rc = ended;
    }
    scan_report_progress(scan, 1);
    return rc;
}
