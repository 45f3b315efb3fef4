/*
** Helpers shared by the libFuzzer targets: temporary files, engines opened
** on the source tree, and output checks.
**
** Every check that fails calls abort() so that libFuzzer records the input
** as a crash; the targets are test programs, not library code.
*/
#ifndef TRIAGE_FUZZ_COMMON_H
#define TRIAGE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "triage.h"

/* Write data to a fresh file in $TMPDIR (default /tmp) named after suffix;
** returns the malloc'ed path, or NULL when the file cannot be written. */
static inline char *fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    char *path = malloc(4096);
    if (path == NULL)
        return NULL;
    snprintf(path, 4096, "%s/triage-fuzz-%ld-XXXXXX%s", dir != NULL && *dir != '\0' ? dir : "/tmp", (long)getpid(),
             suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) {
        free(path);
        return NULL;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    if (done < size) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

static inline void fuzz_remove_temp(char *path)
{
    if (path != NULL)
        unlink(path);
    free(path);
}

/* Open an engine on the source tree, without the system's or the user's
** site files, so that a run depends only on its input. */
static inline triage_engine *fuzz_open_engine(void)
{
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, TRIAGE_FUZZ_SOURCE_DIR};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL) {
        fprintf(stderr, "fuzz: cannot open an engine: %s\n", triage_last_error());
        abort();
    }
    return engine;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0: no overlong
** forms, no surrogates, nothing above U+10FFFF. */
static inline size_t fuzz_utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
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

/* Abort unless text is valid UTF-8; what names the output in the message. */
static inline void fuzz_require_utf8(const char *text, size_t len, const char *what)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = fuzz_utf8_sequence(p, end);
        if (n == 0) {
            fprintf(stderr, "fuzz: %s is not valid UTF-8 at byte %zu (0x%02x)\n", what,
                    (size_t)(p - (const unsigned char *)text), *p);
            abort();
        }
        p += n;
    }
}

#endif
