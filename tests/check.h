/*
** Minimal assertion helpers for the C unit tests: each failed check prints
** its file, line and expression and the test exits non-zero at the end.
*/
#ifndef TRIAGE_TEST_CHECK_H
#define TRIAGE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int checks_passed, checks_failed;

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (cond) {                                                                                 \
            checks_passed++;                                                                        \
        } else {                                                                                    \
            checks_failed++;                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
        }                                                                                           \
    } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                        \
    do {                                                                                            \
        const char *h_ = (haystack), *n_ = (needle);                                                \
        if (h_ != NULL && strstr(h_, n_) != NULL) {                                                 \
            checks_passed++;                                                                        \
        } else {                                                                                    \
            checks_failed++;                                                                        \
            fprintf(stderr, "%s:%d: expected \"%s\" to contain \"%s\"\n", __FILE__, __LINE__,       \
                    h_ ? h_ : "(null)", n_);                                                        \
        }                                                                                           \
    } while (0)

static int check_summary(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
