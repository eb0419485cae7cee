#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static void vset(struct hs_err *err, int code, int with_errno, const char *fmt, va_list ap)
{
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(code));
}

int hs_err_set(struct hs_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vset(err, code, 0, fmt, ap);
		va_end(ap);
	}
	return -code;
}

int hs_err_sys(struct hs_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vset(err, code, 1, fmt, ap);
		va_end(ap);
	}
	return -code;
}
