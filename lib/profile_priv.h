/* Inside the profile analysis: what the writers share with the analysis
 * (the report's private part) and the pieces unit tests reach directly
 * (the protobuf encoder, the estimator).  Not for cmd/. */
#ifndef HS_PROFILE_PRIV_H
#define HS_PROFILE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* An object the report's frames lie in, for pprof's mappings. */
struct hs_profile_object {
	const char *path;               /* interned */
	uint64_t start, limit, offset;  /* its mappings' span; offset of the first */
	char build_id[81];              /* hex, "" when none */
};

/* ---- a growable byte buffer and protobuf's wire format ---- */

struct hs_pb {
	unsigned char *p;
	size_t len, cap;
	int oom;                        /* set once an allocation failed */
};

void hs_pb_release(struct hs_pb *b);
void hs_pb_bytes(struct hs_pb *b, const void *p, size_t n);
void hs_pb_varint(struct hs_pb *b, uint64_t v);
/* field number + wire type 0 (varint) / 2 (length-delimited) */
void hs_pb_tag(struct hs_pb *b, unsigned field, unsigned wire);
void hs_pb_u64(struct hs_pb *b, unsigned field, uint64_t v);       /* omitted when 0 */
void hs_pb_i64(struct hs_pb *b, unsigned field, int64_t v);        /* int64: two's complement varint */
void hs_pb_lenbytes(struct hs_pb *b, unsigned field, const void *p, size_t n);
void hs_pb_string(struct hs_pb *b, unsigned field, const char *s);
/* Packed repeated varints. */
void hs_pb_packed(struct hs_pb *b, unsigned field, const uint64_t *v, size_t n);

/* The unbiased estimate for Poisson byte sampling at a mean of rate bytes:
 * a block of size bytes was sampled with p = 1 - exp(-size/rate), so it
 * stands for size/p bytes and 1/p blocks.  rate 0: every block sampled. */
void hs_profile_estimate(uint64_t size, uint64_t rate, double *bytes, double *objects);

/* The objects of the report (for pprof). */
const struct hs_profile_object *hs_profile_report_objects(const struct hs_profile_report *r, size_t *n);

/* "file:LINE" -> LINE, 0 when none; the file's length in *flen. */
int hs_profile_split_line(const char *file, size_t *flen);

#endif
