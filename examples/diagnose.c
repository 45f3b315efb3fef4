/*
** Diagnose the message given as arguments with libtriage and print the id
** of the best-ranked record on the first line and its root cause on the
** second.
**
** Build against an installed triage and run:
**   cc examples/diagnose.c $(pkg-config --cflags --libs triage) -o diagnose
**   ./diagnose "554 5.7.1 <alice@example.org>: Relay access denied"
**
** Exit status as the triage tool's: 0 diagnosed, 1 nothing matched, 2 error.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <triage.h>

/* Join argv[1..] with spaces, as a shell user expects. */
static char *join_args(int argc, char **argv)
{
    size_t total = 1;
    for (int i = 1; i < argc; i++)
        total += strlen(argv[i]) + 1;
    char *text = calloc(1, total);
    if (text == NULL)
        return NULL;
    for (int i = 1; i < argc; i++) {
        if (i > 1)
            strcat(text, " ");
        strcat(text, argv[i]);
    }
    return text;
}

static int fail(const char *context)
{
    fprintf(stderr, "diagnose: %s: %s\n", context, triage_last_error());
    return TRIAGE_EXIT_ERROR;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MESSAGE...\n", argv[0]);
        return TRIAGE_EXIT_ERROR;
    }
    char *text = join_args(argc, argv);
    if (text == NULL) {
        fprintf(stderr, "diagnose: out of memory\n");
        return TRIAGE_EXIT_ERROR;
    }

    /* NULL options: the installed data folder and the usual site layers. */
    triage_engine *engine = triage_open(NULL);
    if (engine == NULL) {
        free(text);
        return fail("cannot open the engine");
    }
    int status = TRIAGE_EXIT_NO_MATCH;
    char *root_cause = NULL; /* ours to free */
    if (triage_load_default_records(engine) < 0) {
        status = fail("cannot load the records");
        goto done;
    }

    /* The best hit only; the id it points to is owned by the engine. */
    triage_hit best;
    int hits = triage_match(engine, text, strlen(text), &best, 1);
    if (hits < 0) {
        status = fail("matching failed");
        goto done;
    }
    if (hits == 0) {
        printf("no known problem matches\n");
        goto done;
    }

    if (triage_record_field(engine, best.id, "root_cause", &root_cause, NULL) != 0) {
        status = fail("cannot read the root cause");
        goto done;
    }
    printf("%s\n%s\n", best.id, root_cause);
    status = TRIAGE_EXIT_MATCH;

done:
    triage_free(root_cause);
    triage_close(&engine);
    free(text);
    return status;
}
