/* glibc's own reports, rebuilt from a walked heap. */
#ifndef HS_INFO_H
#define HS_INFO_H

#include <stdio.h>

#include "heap.h"

/* Write exactly what malloc_info(0, fp) would write in the target.
 * -ENOTSUP for a glibc whose malloc_info format is not reproduced yet. */
int hs_info_malloc_info(const struct hs_heap *h, FILE *fp);
/* The same as a string (the caller frees it), or NULL: not reproduced for
 * this glibc, or out of memory. */
char *hs_info_malloc_info_str(const struct hs_heap *h);

#endif
