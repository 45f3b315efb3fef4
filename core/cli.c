/*
** triage command-line tool. Uses only the public API in triage.h, so it
** proves that the library is enough to build a front end.
**
** One option table drives both parsing and --help.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum arg_kind { ARG_NONE, ARG_STRING, ARG_INT, ARG_NUMBER, ARG_PATH_LIST };

struct option_spec {
    const char *name;
    const char *value_name;
    enum arg_kind kind;
    size_t offset;
    const char *help;
    const char *commands; /* the commands that take the option, space-separated; NULL for all */
};

#define FIELD(f) offsetof(struct cli, f)

static const struct option_spec OPTIONS[] = {
    {"--records", "PATH", ARG_PATH_LIST, FIELD(records),
     "load records from this file or folder (repeatable); replaces the built-in records", NULL},
    {"--site", "FILE", ARG_PATH_LIST, FIELD(sites), "apply this site file on top of the others (repeatable)", NULL},
    {"--format", "NAME", ARG_STRING, FIELD(format),
     "output format: text (default), json, ndjson, markdown, script (remediation steps as a shell script), or "
     "a path to a Lua formatter", NULL},
    {"--top", "N", ARG_INT, FIELD(top), "show at most N diagnoses (default: all)", NULL},
    {"--min-score", "X", ARG_NUMBER, FIELD(min_score), "drop diagnoses scoring below X, in [0, 1]", NULL},
    {"--lang", "LANG", ARG_STRING, FIELD(lang), "en (default) or zh: Chinese text and labels where records have them",
     NULL},
    {"--color", "WHEN", ARG_STRING, FIELD(color), "auto (default), always or never; NO_COLOR turns auto off", NULL},
    {"--explain", NULL, ARG_NONE, FIELD(explain),
     "show the parts of each score, the matched span and the pattern branch that hit", "diagnose show test-rule"},
    {"--no-guess", NULL, ARG_NONE, FIELD(no_guess),
     "diagnose: when no regex matches, do not propose the closest signatures as guesses", "diagnose"},
    {"--strict", NULL, ARG_NONE, FIELD(strict), "check: warnings fail too; loading: a rejected record fails", NULL},
    {"--no-site-layers", NULL, ARG_NONE, FIELD(no_site_layers),
     "ignore /etc/triage/site.lua and ~/.config/triage/site.lua", NULL},
    {"--allow-lua", "NAME", ARG_PATH_LIST, FIELD(allow_lua),
     "let site files loaded by --site, rules and formatters call NAME, e.g. os.execute (repeatable)", NULL},
    {"--emit-script", "FILE", ARG_STRING, FIELD(emit_script),
     "diagnose: also write the remediation steps to FILE as a shell script to review and run", "diagnose"},
    {"--show", NULL, ARG_NONE, FIELD(show), "site: print the effective site values and the file that set each",
     "site"},
    {"--quiet", NULL, ARG_NONE, FIELD(quiet), "print no progress, warnings or counts on stderr; errors still print",
     NULL},
    {"--sample", "FILE", ARG_STRING, FIELD(sample),
     "check: warn about regexes matching half or more of the lines of this routine log", "check"},
    {"--jobs", "N", ARG_INT, FIELD(jobs), "scan: match on N worker threads, 1 to 256 (default: 2)", "scan"},
    {"--follow", NULL, ARG_NONE, FIELD(follow),
     "scan: keep reading the file as it grows, across rotation, and print ndjson lines", "scan"},
    {"--window-lines", "N", ARG_STRING, FIELD(window_lines),
     "scan: count record B as following A within N lines (default: 50; 0: off)", "scan"},
    {"--window-seconds", "S", ARG_STRING, FIELD(window_seconds),
     "scan: ... or within S seconds by the lines' timestamps (default: 300; 0: off)", "scan"},
    {"--no-cache", NULL, ARG_NONE, FIELD(no_cache),
     "compile the record regexes, and build the scan's pattern database, anew instead of reading or writing the cache",
     NULL},
};

/* Subcommands; the first word of argv picks one, diagnose is the default. */
static const struct {
    const char *name;
    command_fn run;
    const char *synopsis;
    const char *help;
} COMMANDS[] = {
    {"diagnose", run_diagnose, "[diagnose] [OPTIONS] MESSAGE...", "diagnose MESSAGE (standard input when none)"},
    {"show", run_show, "show [OPTIONS] ID", "print the record ID as a diagnosis"},
    {"check", run_check, "check [OPTIONS] PATH...", "validate record files or folders"},
    {"scan", run_scan, "scan [OPTIONS] [FILE...]", "scan logs, plain or gzip (standard input when none)"},
    {"explain", run_explain, "explain [OPTIONS] ID MESSAGE...", "say why record ID does or does not match MESSAGE"},
    {"site", run_site, "site [--show] [OPTIONS]", "print the effective site values and the file that set each"},
    {"test-rule", run_test_rule, "test-rule [OPTIONS] RULE [LOGFILE]",
     "show what rule file RULE returns for each line of LOGFILE (standard input when none)"},
};

/* Whether the option applies to the command (its name, or NULL before
** any command is named). */
static int option_applies(const struct option_spec *spec, const char *command)
{
    if (spec->commands == NULL || command == NULL)
        return 1;
    size_t n = strlen(command);
    for (const char *c = spec->commands; (c = strstr(c, command)) != NULL; c += n)
        if ((c == spec->commands || c[-1] == ' ') && (c[n] == ' ' || c[n] == '\0'))
            return 1;
    return 0;
}

/* Print the usage of every command, or of one command (its name) with
** only the options that it takes. */
static void usage(FILE *out, const char *command)
{
    fprintf(out, "usage:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (command == NULL || strcmp(command, COMMANDS[i].name) == 0)
            fprintf(out, "  triage %-36s %s\n", COMMANDS[i].synopsis, COMMANDS[i].help);
    fputs(command == NULL ? "  triage --help | --version\n\noptions:\n" : "\noptions:\n", out);
    for (size_t i = 0; i < sizeof OPTIONS / sizeof *OPTIONS; i++) {
        if (!option_applies(&OPTIONS[i], command))
            continue;
        const char *help = OPTIONS[i].help;
        if (command != NULL && strcmp(command, "scan") == 0 && OPTIONS[i].offset == FIELD(format))
            help = "output format: text (default), json, ndjson, markdown, or a path to a Lua formatter";
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", OPTIONS[i].name, OPTIONS[i].value_name ? " " : "",
                 OPTIONS[i].value_name ? OPTIONS[i].value_name : "");
        fprintf(out, "  %-22s %s\n", left, help);
    }
    fprintf(out, "\nexit status: 0 something was diagnosed (check: no error), 1 nothing matched,\n"
                 "2 usage or data error, or a site file, rule or formatter failed.\n"
                 "environment: TRIAGE_DATADIR overrides the folder holding records/, rules/ and lua/.\n");
}

int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("triage: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return TRIAGE_EXIT_ERROR;
}

static int set_option(struct cli *cli, const struct option_spec *spec, const char *value)
{
    char *field = (char *)cli + spec->offset;
    char *end;
    switch (spec->kind) {
    case ARG_NONE:
        *(int *)field = 1;
        return 0;
    case ARG_STRING:
        *(const char **)field = value;
        return 0;
    case ARG_INT: {
        errno = 0;
        long n = strtol(value, &end, 10);
        if (errno != 0 || *end != '\0' || n < 0 || n > 1000000)
            return fail("invalid value '%s' for %s: expected a whole number from 0 to 1000000", value, spec->name);
        *(int *)field = (int)n;
        return 0;
    }
    case ARG_NUMBER: {
        double x = strtod(value, &end);
        if (*end != '\0' || !(x >= 0.0 && x <= 1.0))
            return fail("invalid value '%s' for %s: expected a number in [0, 1]", value, spec->name);
        *(double *)field = x;
        return 0;
    }
    case ARG_PATH_LIST: {
        const char **list = (const char **)field;
        int *count = spec->offset == FIELD(records)     ? &cli->record_count
                     : spec->offset == FIELD(allow_lua) ? &cli->allow_lua_count
                                                        : &cli->site_count;
        if (*count >= MAX_PATHS)
            return fail("too many %s options: at most %d", spec->name, MAX_PATHS);
        list[(*count)++] = value;
        return 0;
    }
    }
    return 0;
}

/* Parse argv into cli; options may come before or after the words. Returns
** 0, -1 when --help/--version was handled, or an exit status. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
    int first = 1;
    const char *command = NULL; /* named on the command line */
    cli->command = run_diagnose;
    for (size_t k = 0; argc > 1 && k < sizeof COMMANDS / sizeof *COMMANDS; k++)
        if (strcmp(argv[1], COMMANDS[k].name) == 0) {
            cli->command = COMMANDS[k].run;
            command = COMMANDS[k].name;
            first = 2;
        }
    cli->args = calloc((size_t)argc + 1, sizeof *cli->args);
    if (cli->args == NULL)
        return fail("out of memory");
    int only_words = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (only_words || arg[0] != '-' || strcmp(arg, "-") == 0) {
            cli->args[cli->arg_count++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_words = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout, command);
            return -1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("triage %s\n", triage_version());
            return -1;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct option_spec *spec = NULL;
        for (size_t k = 0; k < sizeof OPTIONS / sizeof *OPTIONS; k++)
            if (strlen(OPTIONS[k].name) == name_len && strncmp(OPTIONS[k].name, arg, name_len) == 0)
                spec = &OPTIONS[k];
        if (spec == NULL)
            return fail("unknown option '%s'; see 'triage --help'", arg);
        const char *named = command != NULL ? command : "diagnose";
        if (!option_applies(spec, named)) {
            char list[64];
            snprintf(list, sizeof list, "%s", spec->commands);
            for (char *c = list; (c = strchr(c, ' ')) != NULL;)
                *c = '/';
            return fail("option %s does not apply to %s, only to %s; see 'triage %s --help'", spec->name, named,
                        list, named);
        }
        const char *value = NULL;
        if (spec->kind != ARG_NONE) {
            if (eq != NULL)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return fail("option %s needs a value (%s)", spec->name, spec->value_name);
        } else if (eq != NULL) {
            return fail("option %s takes no value", spec->name);
        }
        int rc = set_option(cli, spec, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int use_color(const char *when)
{
    if (when == NULL || strcmp(when, "auto") == 0) {
        const char *no_color = getenv("NO_COLOR");
        const char *term = getenv("TERM");
        return isatty(STDOUT_FILENO) && (no_color == NULL || *no_color == '\0') &&
               !(term != NULL && strcmp(term, "dumb") == 0);
    }
    return strcmp(when, "always") == 0;
}

char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
    }
    *len = n;
    return buf;
}

char *join_args(char **args, int count, size_t *len)
{
    size_t total = 1;
    for (int i = 0; i < count; i++)
        total += strlen(args[i]) + 1;
    char *text = malloc(total);
    if (text == NULL)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        size_t k = strlen(args[i]);
        if (i > 0)
            text[n++] = ' ';
        memcpy(text + n, args[i], k);
        n += k;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

void print_problem(const triage_problem *p)
{
    const char *severity = p->severity == TRIAGE_ERROR ? "error" : "warning";
    if (p->line > 0)
        fprintf(stderr, "%s:%u:%u: %s: %s: %s: %s\n", p->file, p->line, p->column, p->id, p->field, severity,
                p->message);
    else
        fprintf(stderr, "%s: %s: %s: %s: %s\n", p->file, p->id, p->field, severity, p->message);
}

static void json_string_out(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void print_problems_json(const triage_engine *engine, size_t records)
{
    printf("{\"records\": %zu, ", records);
    for (int pass = 0; pass < 2; pass++) {
        triage_severity want = pass == 0 ? TRIAGE_ERROR : TRIAGE_WARNING;
        printf("\"%s\": [", pass == 0 ? "errors" : "warnings");
        int first = 1;
        for (size_t i = 0; i < triage_problem_count(engine); i++) {
            const triage_problem *p = triage_problem_at(engine, i);
            if (p->severity != want)
                continue;
            printf("%s{\"file\": ", first ? "" : ", ");
            json_string_out(stdout, p->file);
            printf(", \"line\": %u, \"column\": %u, \"id\": ", p->line, p->column);
            json_string_out(stdout, p->id);
            printf(", \"field\": ");
            json_string_out(stdout, p->field);
            printf(", \"message\": ");
            json_string_out(stdout, p->message);
            printf("}");
            first = 0;
        }
        printf("]%s", pass == 0 ? ", " : "");
    }
    printf("}\n");
}

int run_check(struct cli *cli)
{
    if (cli->arg_count == 0)
        return fail("check needs at least one PATH; e.g. 'triage check records'");
    /* A check compiles every regex itself and leaves the cache alone. */
    triage_options opts = {TRIAGE_NO_SITE_LAYERS | TRIAGE_NO_CACHE, NULL};
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL)
        return fail("%s", triage_last_error());
    for (int i = 0; i < cli->arg_count; i++)
        if (triage_load_records(engine, cli->args[i]) < 0) {
            fail("%s", triage_last_error());
            triage_close(&engine);
            return TRIAGE_EXIT_ERROR;
        }
    if (triage_check(engine, cli->sample) < 0) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    size_t errors = 0, warnings = 0, loaded, rejected;
    triage_load_counts(engine, &loaded, &rejected);
    for (size_t i = 0; i < triage_problem_count(engine); i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        if (p->severity == TRIAGE_ERROR)
            errors++;
        else
            warnings++;
    }
    if (cli->format != NULL && strcmp(cli->format, "json") == 0)
        print_problems_json(engine, loaded);
    else
        for (size_t i = 0; i < triage_problem_count(engine); i++)
            print_problem(triage_problem_at(engine, i));
    if (!cli->quiet)
        fprintf(stderr, "triage: %zu loaded, %zu rejected; %zu error(s), %zu warning(s)\n", loaded, rejected, errors,
                warnings);
    triage_close(&engine);
    if (errors > 0 || (cli->strict && warnings > 0))
        return TRIAGE_EXIT_ERROR;
    return TRIAGE_EXIT_MATCH;
}

/* Report rejected records of a diagnose run briefly: the full list is 'check'. */
static void report_rejected(const triage_engine *engine, int quiet)
{
    size_t loaded, rejected, shown = 0;
    triage_load_counts(engine, &loaded, &rejected);
    if (rejected == 0 || quiet)
        return;
    for (size_t i = 0; i < triage_problem_count(engine) && shown < 5; i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        if (p->severity == TRIAGE_ERROR) {
            print_problem(p);
            shown++;
        }
    }
    fprintf(stderr, "triage: %zu records loaded, %zu rejected; 'triage check PATH' lists every problem\n", loaded,
            rejected);
}

triage_engine *open_engine(const struct cli *cli)
{
    triage_options opts = {0};
    opts.flags = (cli->no_site_layers ? TRIAGE_NO_SITE_LAYERS : 0) | (cli->strict ? TRIAGE_STRICT : 0) |
                 (cli->no_cache ? TRIAGE_NO_CACHE : 0);
    triage_engine *engine = triage_open(&opts);
    if (engine == NULL) {
        fail("%s", triage_last_error());
        return NULL;
    }
    int ok = 1;
    /* Grants reach the scripts loaded from here on, not the default site layers. */
    for (int i = 0; ok && i < cli->allow_lua_count; i++)
        ok = triage_allow_lua(engine, cli->allow_lua[i]) == 0;
    if (ok && cli->record_count == 0)
        ok = triage_load_default_records(engine) >= 0;
    for (int i = 0; ok && i < cli->record_count; i++)
        ok = triage_load_records(engine, cli->records[i]) >= 0;
    for (int i = 0; ok && i < cli->site_count; i++)
        ok = triage_load_site(engine, cli->sites[i]) == 0;
    if (!ok) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return NULL;
    }
    report_rejected(engine, cli->quiet);
    return engine;
}

triage_render_options render_options(const struct cli *cli)
{
    triage_render_options ro = {0};
    ro.format = cli->format ? cli->format : "text";
    ro.lang = cli->lang ? cli->lang : "en";
    ro.top = cli->top;
    ro.color = use_color(cli->color) && strcmp(ro.format, "text") == 0;
    ro.explain = cli->explain;
    ro.min_score = cli->min_score;
    return ro;
}

int print_new_problems(const triage_engine *engine, size_t before)
{
    int failed_rules = 0;
    for (size_t i = before; i < triage_problem_count(engine); i++) {
        const triage_problem *p = triage_problem_at(engine, i);
        print_problem(p);
        failed_rules += p->severity == TRIAGE_ERROR && strcmp(p->field, "rule") == 0;
    }
    return failed_rules;
}

/* Write the remediation steps for text to cli->emit_script as a shell
** script ("script" format). Returns 0, or -1 after printing why not. */
static int emit_script(triage_engine *engine, const struct cli *cli, const char *text, size_t len)
{
    triage_render_options ro = render_options(cli);
    ro.format = "script";
    ro.color = 0;
    char *script = NULL;
    size_t script_len = 0;
    if (triage_diagnose(engine, text, len, &ro, &script, &script_len) < 0) {
        fail("cannot render the remediation script: %s", triage_last_error());
        return -1;
    }
    FILE *f = fopen(cli->emit_script, "w");
    int ok = f != NULL && fwrite(script, 1, script_len, f) == script_len;
    int saved = errno;
    if (f != NULL && fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    triage_free(script);
    if (!ok) {
        fail("cannot write the remediation script to '%s': %s; choose a writable path for --emit-script",
             cli->emit_script, strerror(saved));
        return -1;
    }
    if (!cli->quiet)
        fprintf(stderr, "triage: wrote the remediation steps to %s; read it before you run it\n", cli->emit_script);
    return 0;
}

int run_diagnose(struct cli *cli)
{
    size_t len;
    /* No words, or a lone "-", means the message comes on standard input. */
    int from_stdin = cli->arg_count == 0 || (cli->arg_count == 1 && strcmp(cli->args[0], "-") == 0);
    char *text = from_stdin ? read_stdin(&len) : join_args(cli->args, cli->arg_count, &len);
    if (text == NULL)
        return fail("out of memory reading the message");
    triage_engine *engine = open_engine(cli);
    if (engine == NULL) {
        free(text);
        return TRIAGE_EXIT_ERROR;
    }
    triage_render_options ro = render_options(cli);
    ro.guess = !cli->no_guess; /* only diagnose guesses; scan never does */
    char *out = NULL;
    size_t out_len = 0;
    size_t problems_before = triage_problem_count(engine);
    int diagnosed = triage_diagnose(engine, text, len, &ro, &out, &out_len);
    /* Problems added by matching (regexes that hit a limit or were
    ** quarantined) and by rules that failed. */
    int failed_rules = print_new_problems(engine, problems_before);
    if (diagnosed < 0) {
        free(text);
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    fwrite(out, 1, out_len, stdout);
    triage_free(out);
    int rc = diagnosed > 0 ? TRIAGE_EXIT_MATCH : TRIAGE_EXIT_NO_MATCH;
    if (cli->emit_script != NULL && emit_script(engine, cli, text, len) != 0)
        rc = TRIAGE_EXIT_ERROR;
    free(text);
    triage_close(&engine);
    return failed_rules > 0 ? TRIAGE_EXIT_ERROR : rc;
}

int run_show(struct cli *cli)
{
    if (cli->arg_count != 1)
        return fail("show needs exactly one record ID; e.g. 'triage show communication/smtp-554-5-7-0-relay-denied'");
    triage_engine *engine = open_engine(cli);
    if (engine == NULL)
        return TRIAGE_EXIT_ERROR;
    triage_render_options ro = render_options(cli);
    char *out = NULL;
    size_t out_len = 0;
    int rc = triage_show(engine, cli->args[0], &ro, &out, &out_len);
    if (rc != 0) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    fwrite(out, 1, out_len, stdout);
    triage_free(out);
    triage_close(&engine);
    return TRIAGE_EXIT_MATCH;
}

static int validate(const struct cli *cli)
{
    if (cli->lang != NULL && strcmp(cli->lang, "en") != 0 && strcmp(cli->lang, "zh") != 0)
        return fail("invalid value '%s' for --lang: expected en or zh", cli->lang);
    if (cli->color != NULL && strcmp(cli->color, "auto") != 0 && strcmp(cli->color, "always") != 0 &&
        strcmp(cli->color, "never") != 0)
        return fail("invalid value '%s' for --color: expected auto, always or never", cli->color);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    cli.jobs = -1; /* not given */
    int rc = parse_args(argc, argv, &cli);
    if (rc == 0)
        rc = validate(&cli);
    if (rc == 0) {
        rc = cli.command(&cli);
    } else if (rc < 0) {
        rc = TRIAGE_EXIT_MATCH;
    }
    free(cli.args);
    return rc;
}
