/* The on-call view shared by arenas, top and map: the verdict and the
 * thread list, rendered. */
#ifndef HS_CMD_ONCALL_H
#define HS_CMD_ONCALL_H

#include "cli.h"
#include "openmetrics.h"
#include "out.h"
#include "snapshot.h"
#include "verdict.h"

void hs_cli_verdict(struct hs_out *o, const struct hs_verdict *v, const struct hs_procenv *e);
/* Each thread: tid, name (comm) and the arena its thread_arena names. */
void hs_cli_threads(struct hs_out *o, const struct hs_snapshot *s);

#endif
