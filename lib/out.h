/* One printing call for text and JSON, as iproute2's json_print: each call
 * names the JSON key and the text format of one fact, and writes whichever
 * the output is in.  In JSON mode the value goes to the document (through
 * struct hs_json); in text mode fmt is printed with it.  The object and
 * array calls are no-ops in text mode.
 *
 * what says on which side a call prints: HS_PRINT_ANY both, HS_PRINT_JSON
 * only in JSON mode, HS_PRINT_TEXT only in text mode.  key is NULL inside a
 * JSON array.  fmt is a printf format with one conversion of the value's
 * type ("%8s" for sizes, durations and strings), or NULL to print no text. */
#ifndef HS_OUT_H
#define HS_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"

enum { HS_PRINT_TEXT = 1, HS_PRINT_JSON = 2, HS_PRINT_ANY = 3 };

struct hs_out {
	FILE *fp;                /* text mode: where the text goes */
	struct hs_json *j;       /* JSON mode: the document; NULL in text mode */
};

/* j: the JSON writer (already hs_json_init'ed) for JSON mode, NULL for text. */
void hs_out_init(struct hs_out *o, FILE *fp, struct hs_json *j);
static inline bool hs_out_json(const struct hs_out *o)
{
	return o->j != NULL;
}

void hs_out_obj_begin(struct hs_out *o, const char *key);
void hs_out_obj_end(struct hs_out *o);
void hs_out_arr_begin(struct hs_out *o, const char *key);
void hs_out_arr_end(struct hs_out *o);
/* JSON mode: close the root object and end the document. */
void hs_out_doc_end(struct hs_out *o);

void hs_print_int(struct hs_out *o, int what, const char *key, const char *fmt, int v);
void hs_print_u64(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t v);
void hs_print_i64(struct hs_out *o, int what, const char *key, const char *fmt, int64_t v);
/* JSON: the "0x..." string; text: fmt with v ("0x%012" PRIx64). */
void hs_print_hex(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t v);
/* JSON: the string, or null if s is NULL; text: fmt with s ("" if NULL). */
void hs_print_str(struct hs_out *o, int what, const char *key, const char *fmt, const char *s);
/* JSON: the exact bytes; text: fmt with the human-readable size ("64.0M"). */
void hs_print_size(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t bytes);
/* JSON: the microseconds; text: fmt with the readable duration ("12.3ms"). */
void hs_print_us(struct hs_out *o, int what, const char *key, const char *fmt, uint64_t us);
/* JSON: true or false; text: fmt as it is (no conversion), only when v. */
void hs_print_bool(struct hs_out *o, int what, const char *key, const char *fmt, bool v);
/* JSON: null; text: fmt as it is (no conversion). */
void hs_print_null(struct hs_out *o, int what, const char *key, const char *fmt);
/* A value that may be missing: with have, as hs_print_u64, hs_print_hex
 * or hs_print_bool; without, null in JSON and no text. */
void hs_print_u64_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, uint64_t v);
void hs_print_hex_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, uint64_t v);
void hs_print_bool_opt(struct hs_out *o, int what, const char *key, const char *fmt, bool have, bool v);
/* Text mode only: printf. */
void hs_print_text(struct hs_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
