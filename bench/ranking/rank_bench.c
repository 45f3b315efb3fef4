/*
** Ranking benchmark driver: rank many queries through libtriage's public
** API and print the top records of each, for bench/ranking/run.py.
**
** Input (standard input): one query per line, "QID<TAB>TEXT", where TEXT
** has backslash escapes \n, \t and \\ so that a multi-line query fits on one
** line. Output: one line per query, "QID<TAB>SOURCE<TAB>ID<TAB>ID...", best
** first, where SOURCE is "match", "guess" (no regex hit, fuzzy guesses) or
** "none".
**
** usage: rank_bench [--guess] [--top N] RECORDS...
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triage.h"

#define MAX_TOP 10

/* Undo the backslash escapes of a query in place; returns the new length. */
static size_t unescape(char *text)
{
    size_t out = 0;
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (text[i] == '\\' && text[i + 1] != '\0') {
            char c = text[++i];
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            text[out++] = c;
        } else {
            text[out++] = text[i];
        }
    }
    text[out] = '\0';
    return out;
}

static void print_hits(const char *qid, const char *source, const triage_hit *hits, int count, int top)
{
    printf("%s\t%s", qid, source);
    for (int i = 0; i < count && i < top; i++)
        printf("\t%s", hits[i].id);
    putchar('\n');
}

static int rank_queries(triage_engine *engine, int guess, int top)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    triage_hit hits[MAX_TOP];
    while ((got = getline(&line, &cap, stdin)) > 0) {
        if (line[got - 1] == '\n')
            line[got - 1] = '\0';
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            continue;
        *tab = '\0';
        char *text = tab + 1;
        size_t len = unescape(text);
        int n = triage_match(engine, text, len, hits, MAX_TOP);
        if (n < 0) {
            fprintf(stderr, "rank_bench: query %s: %s\n", line, triage_last_error());
            free(line);
            return 2;
        }
        if (n > 0) {
            print_hits(line, "match", hits, n, top);
            continue;
        }
        n = guess ? triage_guess(engine, text, len, hits, MAX_TOP) : 0;
        if (n < 0) {
            fprintf(stderr, "rank_bench: query %s: %s\n", line, triage_last_error());
            free(line);
            return 2;
        }
        print_hits(line, n > 0 ? "guess" : "none", hits, n, top);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    int guess = 0, top = 3, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--guess") == 0)
            guess = 1;
        else if (strcmp(argv[first], "--top") == 0 && first + 1 < argc)
            top = atoi(argv[++first]);
        else {
            fprintf(stderr, "usage: rank_bench [--guess] [--top N] RECORDS...\n");
            return 2;
        }
    }
    if (first >= argc || top < 1 || top > MAX_TOP) {
        fprintf(stderr, "usage: rank_bench [--guess] [--top N] RECORDS... (N from 1 to %d)\n", MAX_TOP);
        return 2;
    }
    triage_options opts = {TRIAGE_NO_SITE_LAYERS, NULL};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL) {
        fprintf(stderr, "rank_bench: %s\n", triage_last_error());
        return 2;
    }
    for (int i = first; i < argc; i++)
        if (triage_load_records(engine, argv[i]) < 0) {
            fprintf(stderr, "rank_bench: %s\n", triage_last_error());
            triage_close(&engine);
            return 2;
        }
    int rc = rank_queries(engine, guess, top);
    triage_close(&engine);
    return rc;
}
