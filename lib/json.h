/* A small streaming JSON writer: one document per run, keys in snake_case,
 * addresses as "0x..." strings, sizes and counts as integers. */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HS_JSON_DEPTH 32

struct hs_json {
	FILE *fp;
	int depth;
	bool first[HS_JSON_DEPTH];
	bool array[HS_JSON_DEPTH];   /* the value open at each depth is an array */
};

void hs_json_init(struct hs_json *j, FILE *fp);
/* key is NULL inside an array and for the root value. */
void hs_json_obj_begin(struct hs_json *j, const char *key);
void hs_json_obj_end(struct hs_json *j);
void hs_json_arr_begin(struct hs_json *j, const char *key);
void hs_json_arr_end(struct hs_json *j);
void hs_json_u64(struct hs_json *j, const char *key, uint64_t v);
void hs_json_i64(struct hs_json *j, const char *key, int64_t v);
void hs_json_str(struct hs_json *j, const char *key, const char *s);
/* n bytes of s, which need not end in a NUL. */
void hs_json_strn(struct hs_json *j, const char *key, const char *s, size_t n);
void hs_json_hex(struct hs_json *j, const char *key, uint64_t v);
void hs_json_bool(struct hs_json *j, const char *key, bool v);
void hs_json_null(struct hs_json *j, const char *key);
/* Close every array and object still open but the root. */
void hs_json_unwind(struct hs_json *j);
/* A failure: the document ends with "error": msg and "exit_status":
 * status; one begun ends as that one (one document per run), else it is
 * the whole document. */
void hs_json_fail(struct hs_json *j, const char *msg, int status);
/* Ends the document with a newline. */
void hs_json_finish(struct hs_json *j);

#endif
