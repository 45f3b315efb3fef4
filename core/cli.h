/*
** Shared parts of the command-line tool: parsed options and the helpers
** every command uses. Each command lives in its own cli_*.c file and is
** listed in COMMANDS in cli.c.
*/
#ifndef TRIAGE_CLI_H
#define TRIAGE_CLI_H

#include <stddef.h>

#include "triage.h"

#define MAX_PATHS 64

struct cli;
typedef int (*command_fn)(struct cli *cli);

struct cli {
    command_fn command;
    const char *records[MAX_PATHS];
    int record_count;
    const char *sites[MAX_PATHS];
    int site_count;
    const char *format;
    const char *lang;
    const char *color;
    const char *sample;
    int top;
    int explain;
    int strict;
    int quiet;
    int no_site_layers;
    double min_score;
    char **args;
    int arg_count;
};

/* Print "triage: MESSAGE" on stderr; returns TRIAGE_EXIT_ERROR. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open an engine with the records and sites that cli names; NULL after printing why. */
triage_engine *open_engine(const struct cli *cli);
triage_render_options render_options(const struct cli *cli);
void print_problem(const triage_problem *p);

int run_diagnose(struct cli *cli);
int run_show(struct cli *cli);
int run_check(struct cli *cli);

#endif
