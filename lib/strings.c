/* The printable-run scanner behind dump --strings (declared in dump.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

/* ---- strings ------------------------------------------------------------------- */

static bool graphic(unsigned c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e);
}

static bool graphic_tab[256];

int hs_strings_init(struct hs_strings *s, enum hs_encoding enc, unsigned min,
		    void (*fn)(void *, uint64_t, const char *, size_t, bool, bool), void *ctx)
{
	memset(s, 0, sizeof(*s));
	if (min < 1 || min > HS_STRING_MAX)
		return -EINVAL;
	s->buf = malloc(HS_STRING_MAX);
	if (!s->buf)
		return -ENOMEM;
	for (unsigned c = 0; c < 256; c++)
		graphic_tab[c] = graphic(c);
	s->width = enc == HS_ENC_UTF16LE ? 2 : 1;
	s->min = min;
	s->fn = fn;
	s->ctx = ctx;
	s->next = UINT64_MAX;
	return 0;
}

static void end_run(struct hs_strings *s)
{
	if (s->emitted)
		s->fn(s->ctx, s->run_addr, s->buf, s->len, false, s->cont);
	s->len = 0;
	s->emitted = false;
	s->cont = false;
}

static void good_char(struct hs_strings *s, uint64_t addr, unsigned char c)
{
	if (s->len == 0 && !s->cont)
		s->run_addr = addr;
	if (s->len == HS_STRING_MAX) {
		/* a huge run: hand on what we have, go on with the rest */
		s->fn(s->ctx, s->run_addr, s->buf, s->len, true, s->cont);
		s->cont = true;
		s->len = 0;
	}
	s->buf[s->len++] = (char)c;
	if (!s->emitted && s->len >= s->min)
		s->emitted = true;
}

/* A run of good one-byte characters, appended at once. */
static void good_run(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	if (s->len == 0 && !s->cont)
		s->run_addr = addr;
	while (n) {
		if (s->len == HS_STRING_MAX) {
			s->fn(s->ctx, s->run_addr, s->buf, s->len, true, s->cont);
			s->cont = true;
			s->len = 0;
		}
		size_t k = HS_STRING_MAX - s->len < n ? HS_STRING_MAX - s->len : n;
		memcpy(s->buf + s->len, b, k);
		s->len += k;
		b += k;
		n -= k;
		if (!s->emitted && s->len >= s->min)
			s->emitted = true;
	}
}

void hs_strings_feed(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	if (addr != s->next) {
		end_run(s);
		s->have_carry = false;
	}
	if (s->width == 1) {
		/* The hot loop: whole runs of characters, then whole runs of
		 * others, a table lookup a byte. */
		size_t i = 0;
		while (i < n) {
			size_t j = i;
			while (j < n && graphic_tab[b[j]])
				j++;
			if (j > i)
				good_run(s, addr + i, b + i, j - i);
			if (j == n)
				break;
			end_run(s);
			i = j + 1;
			while (i < n && !graphic_tab[b[i]])
				i++;
		}
		s->next = addr + n;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t a = addr + i;
		if (s->width == 1) {
			if (graphic(b[i]))
				good_char(s, a, b[i]);
			else
				end_run(s);
			continue;
		}
		if (!s->have_carry) {
			s->carry = b[i];
			s->carry_addr = a;
			s->have_carry = true;
			continue;
		}
		if (b[i] == 0 && graphic(s->carry)) {
			good_char(s, s->carry_addr, s->carry);
			s->have_carry = false;
		} else {
			/* strings(1) ungets all but the first byte of a bad
			 * character: the search resumes at this byte. */
			end_run(s);
			s->carry = b[i];
			s->carry_addr = a;
		}
	}
	s->next = addr + n;
}

void hs_strings_end(struct hs_strings *s)
{
	end_run(s);
	s->have_carry = false;
	s->next = UINT64_MAX;
}

void hs_strings_release(struct hs_strings *s)
{
	free(s->buf);
	s->buf = NULL;
}
