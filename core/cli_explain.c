/*
** triage explain ID MESSAGE: show why a record matches a message or, the
** more frequent question, why it does not: which part of its pattern fails
** and on which text. Exit status 0 when the record matches, 1 when not.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Characters of context shown from the text where the pattern failed. */
#define CONTEXT_CHARS 60

static void json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* Length of the rest of the line from offset, at most CONTEXT_CHARS. */
static size_t context_length(const char *text, size_t len, size_t offset)
{
    size_t n = 0;
    while (offset + n < len && text[offset + n] != '\n' && text[offset + n] != '\r' && n < CONTEXT_CHARS)
        n++;
    return n;
}

static void print_json(const char *id, const triage_why *why, const char *text, size_t len)
{
    printf("{\"schema\": \"triage.explain/1\", \"id\": ");
    json_string(stdout, id, strlen(id));
    printf(", \"matched\": %s, \"by_signature\": %s, \"line\": %zu, \"start\": %zu, \"end\": %zu, \"text\": ",
           why->matched ? "true" : "false", why->by_signature ? "true" : "false", why->line, why->start,
           why->end);
    json_string(stdout, text + why->start, why->end - why->start);
    printf(", \"branch\": %d, \"branch_count\": %d, \"pattern\": ", why->branch, why->branch_count);
    json_string(stdout, why->pattern, strlen(why->pattern));
    if (!why->matched) {
        printf(", \"matched_pattern\": ");
        json_string(stdout, why->pattern, why->pattern_ok);
        printf(", \"failed_element\": ");
        json_string(stdout, why->failed, strlen(why->failed));
        printf(", \"remaining_pattern\": ");
        json_string(stdout, why->pattern + why->pattern_ok, strlen(why->pattern + why->pattern_ok));
        printf(", \"text_at_failure\": ");
        json_string(stdout, text + why->end, context_length(text, len, why->end));
        printf(", \"partial\": %s", why->partial ? "true" : "false");
    }
    printf("}\n");
}

static void print_text(const char *id, const triage_why *why, const char *text, size_t len)
{
    if (why->matched) {
        printf("%s matches line %zu%s: %.*s\n", id, why->line, why->by_signature ? " by its signature" : "",
               (int)(why->end - why->start), text + why->start);
        printf("  pattern: %s\n", why->pattern);
        return;
    }
    printf("%s does not match.\n", id);
    if (why->branch > 0)
        printf("  closest branch: %d of %d: %s\n", why->branch, why->branch_count, why->pattern);
    else
        printf("  pattern: %s\n", why->pattern);
    if (why->pattern_ok > 0)
        printf("  matches up to: %.*s  (on line %zu: \"%.*s\")\n", (int)why->pattern_ok, why->pattern, why->line,
               (int)(why->end - why->start), text + why->start);
    else
        printf("  matches up to: nothing; its first element never matches\n");
    printf("  fails at:      %s  (the rest: %s)\n", why->failed, why->pattern + why->pattern_ok);
    size_t n = context_length(text, len, why->end);
    if (why->pattern_ok > 0)
        printf("  text there:    \"%.*s\"%s\n", (int)n, text + why->end, n == 0 ? " (end of line)" : "");
    if (why->partial)
        printf("  note: a line ends in the middle of a possible match; the message may be cut short.\n");
}

int run_explain(struct cli *cli)
{
    if (cli->arg_count < 1)
        return fail("explain needs a record ID and a message; e.g. 'triage explain "
                    "communication/smtp-554-5-7-0-relay-denied \"554 5.7.1 Relay access denied\"'");
    const char *id = cli->args[0];
    size_t len;
    char *text = cli->arg_count == 1 ? read_stdin(&len) : join_args(cli->args + 1, cli->arg_count - 1, &len);
    if (text == NULL)
        return fail("out of memory reading the message");
    triage_engine *engine = open_engine(cli);
    if (engine == NULL) {
        free(text);
        return TRIAGE_EXIT_ERROR;
    }
    triage_why why;
    int rc = triage_why_not(engine, id, text, len, &why);
    if (rc < 0) {
        fail("%s", triage_last_error());
    } else if (cli->format != NULL && strcmp(cli->format, "json") == 0) {
        print_json(id, &why, text, len);
    } else if (cli->format == NULL || strcmp(cli->format, "text") == 0) {
        print_text(id, &why, text, len);
    } else {
        fail("invalid value '%s' for --format with explain: expected text or json", cli->format);
        rc = -1;
    }
    triage_why_free(&why);
    triage_close(&engine);
    free(text);
    if (rc < 0)
        return TRIAGE_EXIT_ERROR;
    return rc == 1 ? TRIAGE_EXIT_MATCH : TRIAGE_EXIT_NO_MATCH;
}
