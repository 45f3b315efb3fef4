/* Scratch files for the C tests: write a small file, remove a folder tree.
** Include after defining _XOPEN_SOURCE 700, which nftw needs. */
#ifndef TRIAGE_TEST_SCRATCH_FILES_H
#define TRIAGE_TEST_SCRATCH_FILES_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

/* Write text to path; returns 0, or -1 when the file cannot be written. */
static inline int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int written = fputs(text, f) >= 0;
    return fclose(f) == 0 && written ? 0 : -1;
}

static inline int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

/* Remove a scratch folder and everything in it, links not followed. */
static inline void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
