#include <inttypes.h>
#include <string.h>

#include "json.h"

void hs_json_init(struct hs_json *j, FILE *fp)
{
	j->fp = fp;
	j->depth = 0;
	j->first[0] = true;
}

static void indent(struct hs_json *j)
{
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->fp);
}

static void put_string(FILE *fp, const char *s, size_t n)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + n; p++) {
		switch (*p) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\t': fputs("\\t", fp); break;
		case '\r': fputs("\\r", fp); break;
		default:
			if (*p < 0x20)
				fprintf(fp, "\\u%04x", *p);
			else
				fputc(*p, fp);
		}
	}
	fputc('"', fp);
}

static void key(struct hs_json *j, const char *k)
{
	if (j->depth > 0) {
		fputs(j->first[j->depth] ? "\n" : ",\n", j->fp);
		j->first[j->depth] = false;
		indent(j);
	}
	if (k) {
		put_string(j->fp, k, strlen(k));
		fputs(": ", j->fp);
	}
}

static void open_(struct hs_json *j, const char *k, char c)
{
	key(j, k);
	fputc(c, j->fp);
	if (j->depth + 1 < HS_JSON_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
	j->array[j->depth] = c == '[';
}

static void close_(struct hs_json *j, char c)
{
	bool empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty) {
		fputc('\n', j->fp);
		indent(j);
	}
	fputc(c, j->fp);
}

void hs_json_obj_begin(struct hs_json *j, const char *k) { open_(j, k, '{'); }
void hs_json_obj_end(struct hs_json *j) { close_(j, '}'); }
void hs_json_arr_begin(struct hs_json *j, const char *k) { open_(j, k, '['); }
void hs_json_arr_end(struct hs_json *j) { close_(j, ']'); }

void hs_json_u64(struct hs_json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->fp, "%" PRIu64, v);
}

void hs_json_i64(struct hs_json *j, const char *k, int64_t v)
{
	key(j, k);
	fprintf(j->fp, "%" PRId64, v);
}

void hs_json_str(struct hs_json *j, const char *k, const char *s)
{
	key(j, k);
	if (s)
		put_string(j->fp, s, strlen(s));
	else
		fputs("null", j->fp);
}

void hs_json_strn(struct hs_json *j, const char *k, const char *s, size_t n)
{
	key(j, k);
	put_string(j->fp, s, n);
}

void hs_json_hex(struct hs_json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->fp, "\"0x%" PRIx64 "\"", v);
}

void hs_json_bool(struct hs_json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->fp);
}

void hs_json_null(struct hs_json *j, const char *k)
{
	key(j, k);
	fputs("null", j->fp);
}

void hs_json_unwind(struct hs_json *j)
{
	while (j->depth > 1)
		close_(j, j->array[j->depth] ? ']' : '}');
}

void hs_json_finish(struct hs_json *j)
{
	fputc('\n', j->fp);
	fflush(j->fp);
}

void hs_json_fail(struct hs_json *j, const char *msg, int status)
{
	hs_json_unwind(j);
	if (j->depth == 0)
		hs_json_obj_begin(j, NULL);
	hs_json_str(j, "error", msg);
	hs_json_i64(j, "exit_status", status);
	hs_json_obj_end(j);
	hs_json_finish(j);
}
