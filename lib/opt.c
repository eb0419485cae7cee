/* Option tables: see opt.h. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "opt.h"

int hs_parse_count(const char *s, long min, long max, long *v)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (!*s || *end || errno || n < min || n > max)
		return -EINVAL;
	*v = n;
	return 0;
}

int hs_opt_has_arg(const struct hs_opt *o)
{
	return o->kind == HS_OPT_FLAG ? no_argument : o->has_arg ? o->has_arg : required_argument;
}

int hs_opt_value(const struct hs_opt *o, const char *arg, struct hs_optval *v)
{
	*v = (struct hs_optval){ .set = true, .n = o->val, .s = arg };
	switch (o->kind) {
	case HS_OPT_FLAG:
	case HS_OPT_STR: return 0;
	case HS_OPT_COUNT: return arg ? hs_parse_count(arg, o->min, o->max, &v->n) : 0;
	case HS_OPT_MS: return hs_parse_count(arg, o->min, INT_MAX, &v->n);
	case HS_OPT_SIZE: return hs_parse_size(arg, &v->u);
	case HS_OPT_CHOICE:
		for (v->n = 0; o->choices[v->n] && strcmp(o->choices[v->n], arg); v->n++)
			;
		return o->choices[v->n] ? 0 : -EINVAL;
	}
	return -EINVAL;
}

void hs_opt_getopt_init(struct hs_opt_getopt *g, const struct hs_opt *const *groups, size_t ngroups)
{
	size_t ns = 0;
	g->n = 0;
	for (size_t k = 0; k < ngroups; k++)
		for (const struct hs_opt *o = groups[k]; o && o->name && g->n < HS_OPT_MAX; o++) {
			int has = hs_opt_has_arg(o);
			g->tab[g->n] = o;
			g->lo[g->n] = (struct option){ o->name, has, NULL, 256 + (int)g->n };
			g->n++;
			if (o->letter && ns + 3 < sizeof(g->shorts)) {
				g->shorts[ns++] = o->letter;
				if (has == required_argument)
					g->shorts[ns++] = ':';
			}
		}
	g->lo[g->n] = (struct option){ 0 };
	g->shorts[ns] = '\0';
}

const struct hs_opt *hs_opt_getopt_find(const struct hs_opt_getopt *g, int ch)
{
	if (ch >= 256 && (size_t)(ch - 256) < g->n)
		return g->tab[ch - 256];
	for (size_t i = 0; i < g->n && ch != '?'; i++)
		if (g->tab[i]->letter == ch)
			return g->tab[i];
	return NULL;
}

/* "-o, --output FILE", "--top[=N]" */
static void help_left(const struct hs_opt *o, char *left, size_t len)
{
	bool opt_arg = o->has_arg == optional_argument;
	int n = o->letter ? snprintf(left, len, "-%c, ", o->letter) : 0;
	snprintf(left + n, len - n, "--%s%s%s%s", o->name, opt_arg ? "[=" : o->arg ? " " : "", o->arg ? o->arg : "",
		 opt_arg ? "]" : "");
}

void hs_opt_help(FILE *fp, const struct hs_opt *const *groups, size_t ngroups)
{
	for (size_t g = 0; g < ngroups; g++)
		for (const struct hs_opt *o = groups[g]; o && o->name; o++) {
			if (!o->help)
				continue;
			char left[64];
			help_left(o, left, sizeof(left));
			if (strlen(left) > 16)
				fprintf(fp, "  %s\n%19s", left, "");
			else
				fprintf(fp, "  %-17s", left);
			/* the text, wrapped at 79 columns */
			for (const char *p = o->help; *p;) {
				size_t w = strlen(p);
				if (w > 60)
					for (w = 60; w && p[w] != ' '; w--)
						;
				if (!w)
					w = strcspn(p, " ");
				fprintf(fp, "%.*s\n", (int)w, p);
				p += w + (p[w] == ' ');
				if (*p)
					fprintf(fp, "%19s", "");
			}
		}
}
