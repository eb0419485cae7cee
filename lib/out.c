#include <stdarg.h>

#include "format.h"
#include "out.h"

/* The text formats are the callers', checked by the tests that compare the
 * text: printf cannot check a format that is not a literal. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

void hs_out_init(struct hs_out *o, FILE *fp, struct hs_json *j)
{
	o->fp = fp;
	o->j = j;
}

void hs_out_obj_begin(struct hs_out *o, const char *key)
{
	if (o->j)
		hs_json_obj_begin(o->j, key);
}

void hs_out_obj_end(struct hs_out *o)
{
	if (o->j)
		hs_json_obj_end(o->j);
}

void hs_out_arr_begin(struct hs_out *o, const char *key)
{
	if (o->j)
		hs_json_arr_begin(o->j, key);
}

void hs_out_arr_end(struct hs_out *o)
{
	if (o->j)
		hs_json_arr_end(o->j);
}

void hs_out_doc_end(struct hs_out *o)
{
	if (o->j) {
		hs_json_obj_end(o->j);
		hs_json_finish(o->j);
	}
}

/* Whether this call writes JSON, and whether it writes text. */
static bool to_json(const struct hs_out *o, int what)
{
	return o->j && (what & HS_PRINT_JSON);
}

static bool to_text(const struct hs_out *o, const char *fmt, int what)
{
	return !o->j && fmt && (what & HS_PRINT_TEXT);
}

void hs_print_int(struct hs_out *o, int what, const char *key, const char *fmt, int v)
{
	if (to_json(o, what))
		hs_json_i64(o->j, key, v);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, v);
}

void hs_print_u64(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t v)
{
	if (to_json(o, what))
		hs_json_u64(o->j, key, v);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, v);
}

void hs_print_i64(struct hs_out *o, int what, const char *key, const char *fmt, int64_t v)
{
	if (to_json(o, what))
		hs_json_i64(o->j, key, v);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, v);
}

void hs_print_hex(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t v)
{
	if (to_json(o, what))
		hs_json_hex(o->j, key, v);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, v);
}

void hs_print_str(struct hs_out *o, int what, const char *key, const char *fmt, const char *s)
{
	if (to_json(o, what))
		hs_json_str(o->j, key, s);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, s ? s : "");
}

void hs_print_size(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t bytes)
{
	char b[HS_SIZE_BUF];
	if (to_json(o, what))
		hs_json_u64(o->j, key, bytes);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, hs_fmt_size(bytes, b));
}

void hs_print_us(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t us)
{
	char b[HS_SIZE_BUF];
	if (to_json(o, what))
		hs_json_u64(o->j, key, us);
	else if (to_text(o, fmt, what))
		fprintf(o->fp, fmt, hs_fmt_us(us, b));
}

void hs_print_bool(struct hs_out *o, int what, const char *key, const char *fmt, bool v)
{
	if (to_json(o, what))
		hs_json_bool(o->j, key, v);
	else if (v && to_text(o, fmt, what))
		fputs(fmt, o->fp);
}

void hs_print_null(struct hs_out *o, int what, const char *key, const char *fmt)
{
	if (to_json(o, what))
		hs_json_null(o->j, key);
	else if (to_text(o, fmt, what))
		fputs(fmt, o->fp);
}

void hs_print_u64_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, uint64_t v)
{
	if (have)
		hs_print_u64(o, what, key, fmt, v);
	else
		hs_print_null(o, what & HS_PRINT_JSON, key, NULL);
}

void hs_print_hex_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, uint64_t v)
{
	if (have)
		hs_print_hex(o, what, key, fmt, v);
	else
		hs_print_null(o, what & HS_PRINT_JSON, key, NULL);
}

void hs_print_bool_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, bool v)
{
	if (have)
		hs_print_bool(o, what, key, fmt, v);
	else
		hs_print_null(o, what & HS_PRINT_JSON, key, NULL);
}

void hs_print_text(struct hs_out *o, const char *fmt, ...)
{
	if (o->j)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(o->fp, fmt, ap);
	va_end(ap);
}
