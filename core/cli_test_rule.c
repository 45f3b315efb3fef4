/*
** triage test-rule RULE [LOGFILE]: run one rule file on every line of a
** log, as fail2ban-regex runs a filter, and show what the rule returned for
** each line that a record it handles matched. Exit status: 0 when the rule
** returned remediation for some line, 1 when for none, 2 when it failed to
** load or failed on a line.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Read the whole file at path; NULL after printing why. */
static char *read_log(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail("cannot open the log '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        free(buf);
        fail("cannot read the log '%s'%s", path, buf == NULL ? ": out of memory" : "");
        return NULL;
    }
    *len = n;
    return buf;
}

int run_test_rule(struct cli *cli)
{
    if (cli->arg_count < 1 || cli->arg_count > 2)
        return fail("test-rule needs a RULE file and at most one LOGFILE; e.g. 'triage test-rule "
                    "rules/postfix-relay.lua /var/log/mail.log'");
    if (cli->format != NULL && strcmp(cli->format, "text") != 0 && strcmp(cli->format, "json") != 0)
        return fail("invalid value '%s' for --format with test-rule: expected text or json", cli->format);
    size_t len;
    int from_stdin = cli->arg_count == 1 || strcmp(cli->args[1], "-") == 0;
    char *text = from_stdin ? read_stdin(&len) : read_log(cli->args[1], &len);
    if (text == NULL)
        return from_stdin ? fail("out of memory reading standard input") : TRIAGE_EXIT_ERROR;
    triage_engine *engine = open_engine(cli);
    if (engine == NULL) {
        free(text);
        return TRIAGE_EXIT_ERROR;
    }
    triage_render_options ro = render_options(cli);
    char *out = NULL;
    size_t out_len = 0;
    int failures = 0;
    int remediated = triage_test_rule(engine, cli->args[0], text, len, &ro, &out, &out_len, &failures);
    free(text);
    if (remediated < 0) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    fwrite(out, 1, out_len, stdout);
    triage_free(out);
    triage_close(&engine);
    if (failures > 0)
        return fail("the rule failed on %d match(es); the errors are in the output above", failures);
    return remediated > 0 ? TRIAGE_EXIT_MATCH : TRIAGE_EXIT_NO_MATCH;
}
