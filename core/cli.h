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
    int no_guess;
    int strict;
    int quiet;
    int no_site_layers;
    double min_score;
    int jobs;
    int follow;
    int no_cache;
    const char *window_lines;
    const char *window_seconds;
    const char *allow_lua[MAX_PATHS];
    int allow_lua_count;
    const char *emit_script;
    int show;
    char **args;
    int arg_count;
};

/* Print "triage: MESSAGE" on stderr; returns TRIAGE_EXIT_ERROR. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Open an engine with the records and sites that cli names; NULL after printing why. */
triage_engine *open_engine(const struct cli *cli);
triage_render_options render_options(const struct cli *cli);
void print_problem(const triage_problem *p);
/* Print the problems added since the engine had `before`; returns how many
** of them are failures of sandboxed rules, which make the exit status 2. */
int print_new_problems(const triage_engine *engine, size_t before);

/* The whole standard input, or the words joined by spaces; NULL when out of memory. */
char *read_stdin(size_t *len);
char *join_args(char **args, int count, size_t *len);

int run_diagnose(struct cli *cli);
int run_show(struct cli *cli);
int run_check(struct cli *cli);
int run_scan(struct cli *cli);
int run_explain(struct cli *cli);
int run_site(struct cli *cli);
int run_test_rule(struct cli *cli);

#endif
