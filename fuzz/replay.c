/*
** Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput on files and
** folders of inputs without libFuzzer, so that every build (gcc, ASan,
** valgrind) re-checks the seed corpus and every crash the fuzzers found.
**
**   replay_TARGET PATH...   exit 0 when every input ran; a failed check in
**                           the target aborts, as under libFuzzer
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; weak so that targets without it link. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open '%s'\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    while (data != NULL) {
        len += fread(data + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *grown = realloc(data, cap * 2);
        if (grown == NULL) {
            free(data);
            data = NULL;
            break;
        }
        data = grown;
        cap *= 2;
    }
    fclose(f);
    if (data == NULL) {
        fprintf(stderr, "replay: out of memory reading '%s'\n", path);
        return -1;
    }
    /* libFuzzer passes inputs in a buffer of exactly their size, so that
    ** ASan sees any read past the end; a copy of the exact size does too. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int skip_dot(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

/* Replay path, a file or a folder of files; returns the inputs run, or -1. */
static long replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: '%s' not found\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    struct dirent **entries;
    int n = scandir(path, &entries, skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read folder '%s'\n", path);
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        size_t size = strlen(path) + strlen(entries[i]->d_name) + 2;
        char *child = malloc(size);
        if (child != NULL) {
            snprintf(child, size, "%s/%s", path, entries[i]->d_name);
            long k = replay(child);
            count = k < 0 || count < 0 ? -1 : count + k;
        }
        free(child);
        free(entries[i]);
    }
    free(entries);
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH...  (files or folders of fuzz inputs)\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long k = replay(argv[i]);
        if (k < 0)
            return 1;
        total += k;
    }
    printf("%ld inputs replayed\n", total);
    return 0;
}
