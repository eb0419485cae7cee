/* Error reporting for the library: functions return 0 or -errno and may
 * fill an optional struct hs_err with one full sentence, lowercase, no
 * final period ("read 0x7f12a000+4096: Input/output error"). */
#ifndef HS_ERR_H
#define HS_ERR_H

#include <stdarg.h>

struct hs_err {
	int code;       /* positive errno, or 0 */
	char msg[512];
};

/* Fill err (if not NULL) and return -code. code must be a positive errno. */
int hs_err_set(struct hs_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like hs_err_set but appends ": strerror(code)". */
int hs_err_sys(struct hs_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
