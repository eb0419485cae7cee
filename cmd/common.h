#ifndef HS_CMD_COMMON_H
#define HS_CMD_COMMON_H

#include "cli.h"
#include "out.h"
#include "snapshot.h"

/* Take a snapshot with the CLI's options; on failure the error is reported
 * and the negated exit status returned. */
int hs_cli_snapshot(struct hs_cli *cli, pid_t pid, bool residency, struct hs_snapshot *s);
/* The same with a choice of walk (HS_WALK_*). */
int hs_cli_snapshot_walk(struct hs_cli *cli, pid_t pid, bool residency, unsigned walk, struct hs_snapshot *s);
/* The same with options of the caller's (from hs_cli_snapshot_opts). */
int hs_cli_snapshot_take(struct hs_cli *cli, pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s);
/* Warn about partial arenas and tcaches; HS_EXIT_PARTIAL if any. */
int hs_cli_report_partial(struct hs_cli *cli, const struct hs_snapshot *s);
/* What to add to the message of a remote call's failure r (-errno) after
 * calls calls were started: that the thread was put back, when it was
 * (not when the target died, the thread was released, or none ran). */
const char *hs_cli_call_failed(size_t calls, int r);
/* Where a command prints: stdout, through the CLI's JSON writer with --json. */
static inline struct hs_out hs_cli_out(struct hs_cli *cli)
{
	return (struct hs_out){ .fp = stdout, .j = cli->json ? &cli->j : NULL };
}
/* JSON only: "partial", and "problem" and "bad_address" when it is. */
void hs_cli_arena_status(struct hs_out *o, const struct hs_arena *a);
/* JSON only: "walk_cut": what a budget cut from the walk (struct hs_heap cut_msg), or null. */
void hs_cli_cut(struct hs_out *o, const struct hs_heap *h);
/* JSON only: "glibc": the libc found, where its symbols and layout came from. */
void hs_cli_glibc(struct hs_out *o, const struct hs_snapshot *s);
/* The ten mallinfo2 fields, as an object under key (or inline if NULL);
 * in text one "name value" line each. */
void hs_cli_mallinfo2(struct hs_out *o, const char *key, const struct hs_heap *h);

#endif
