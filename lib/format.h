/* Human-readable figures. */
#ifndef HS_FORMAT_H
#define HS_FORMAT_H

#include <stdint.h>

#define HS_SIZE_BUF 16
/* "0", "812", "4.0K", "64.0M", "1.5G"; returns buf. */
const char *hs_fmt_size(uint64_t bytes, char buf[HS_SIZE_BUF]);
/* "850us", "12.3ms", "1.20s" */
const char *hs_fmt_us(uint64_t us, char buf[HS_SIZE_BUF]);

#endif
