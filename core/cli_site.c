/*
** triage site [--show]: print the effective site values, one per line,
** each with the file that set it, after every layer has loaded (installed
** defaults, /etc/triage/site.lua, the user's file, then each --site).
*/
#include <stdio.h>

#include "cli.h"

int run_site(struct cli *cli)
{
    if (cli->arg_count > 0)
        return fail("site takes options only, not '%s'; e.g. 'triage site --show --site my-site.lua'",
                    cli->args[0]);
    /* --show is the only action, so it is also the default. */
    triage_engine *engine = open_engine(cli);
    if (engine == NULL)
        return TRIAGE_EXIT_ERROR;
    char *out = NULL;
    size_t out_len = 0;
    if (triage_site_show(engine, &out, &out_len) != 0) {
        fail("%s", triage_last_error());
        triage_close(&engine);
        return TRIAGE_EXIT_ERROR;
    }
    fwrite(out, 1, out_len, stdout);
    triage_free(out);
    triage_close(&engine);
    return TRIAGE_EXIT_MATCH;
}
