#include <inttypes.h>
#include <stdio.h>

#include "format.h"

const char *hs_fmt_size(uint64_t b, char buf[HS_SIZE_BUF])
{
	static const char unit[] = "KMGTPE";
	if (b < 1024) {
		snprintf(buf, HS_SIZE_BUF, "%" PRIu64, b);
		return buf;
	}
	double v = (double)b / 1024;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, HS_SIZE_BUF, v < 1000 ? "%.1f%c" : "%.0f%c", v, unit[u]);
	return buf;
}

const char *hs_fmt_us(uint64_t us, char buf[HS_SIZE_BUF])
{
	if (us < 1000)
		snprintf(buf, HS_SIZE_BUF, "%" PRIu64 "us", us);
	else if (us < 1000000)
		snprintf(buf, HS_SIZE_BUF, "%.1fms", us / 1000.0);
	else
		snprintf(buf, HS_SIZE_BUF, "%.2fs", us / 1e6);
	return buf;
}
