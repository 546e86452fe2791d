/*
 * report — see report.h.  Output only; a JSON allocation failure drops
 * the step (the exit status still says whether something failed).
 */
#include <stdio.h>

#include "cli/report.h"

void
cli_report_step(int json, json_t *steps, const char *name,
    const char *verdict, const char *msg, const char *cause,
    const char *fixlabel, const char *fix)
{
	json_t *o;

	if (!json) {
		printf("%-4s  %-9s %s\n", verdict, name, msg);
		if (cause != NULL)
			printf("      %-9s %s\n", "cause:", cause);
		if (fix != NULL)
			printf("      %-9s %s\n", fixlabel, fix);
		fflush(stdout);
		return;
	}
	o = json_pack("{s:s, s:s, s:s}", "step", name, "verdict", verdict,
	    "message", msg);
	if (o == NULL)
		return;
	if (cause != NULL)
		json_object_set_new(o, "cause", json_string(cause));
	if (fix != NULL)
		json_object_set_new(o, "fix", json_string(fix));
	json_array_append_new(steps, o);
}
