/* glibc's own reports, rebuilt from a walked heap. */
#ifndef HS_INFO_H
#define HS_INFO_H

#include <stdio.h>

#include "heap.h"

/* Write exactly what malloc_info(0, fp) would write in the target.
 * -ENOTSUP for a glibc whose malloc_info format is not reproduced yet. */
int hs_info_malloc_info(const struct hs_heap *h, FILE *fp);

#endif
