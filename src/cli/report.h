/*
 * report — the one-line-per-step report that `outpost doctor` and
 * `outpost dns check` print ("ok   dns       ..." with indented cause and
 * fix lines), or collect as JSON objects for --json.
 */
#ifndef OUTPOST_CLI_REPORT_H
#define OUTPOST_CLI_REPORT_H

#include <jansson.h>

/*
 * Prints one step, or (json != 0) appends {step, verdict, message[,
 * cause][, fix]} to steps.  cause and fix may be NULL; fixlabel is the
 * word shown before the fix in text form ("fix:", "publish:").
 */
void	cli_report_step(int json, json_t *steps, const char *name,
	    const char *verdict, const char *msg, const char *cause,
	    const char *fixlabel, const char *fix);

#endif
