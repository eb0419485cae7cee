/* A flame graph of the report drawn by heapscope itself, as one SVG
 * document: the stacks merged into a tree (outermost frame at the
 * bottom), each frame a rectangle as wide as its bytes, titled with the
 * exact figure; no script, no external tool. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

#define WIDTH 1200.0
#define PAD 10.0
#define ROW 16.0
#define CHAR_W 7.0      /* of the 12px monospace font, roughly */
#define MIN_W 0.1       /* narrower frames are not drawn */

struct node {
	const char *name;
	double value;
	struct node *child, *next;
};

static struct node *node_new(const char *name)
{
	struct node *n = calloc(1, sizeof(*n));
	if (n)
		n->name = name;
	return n;
}

static void node_free(struct node *n)
{
	while (n) {
		struct node *next = n->next;
		node_free(n->child);
		free(n);
		n = next;
	}
}

/* names are interned: one pointer per distinct name */
static struct node *child_of(struct node *p, const char *name)
{
	struct node **pp = &p->child;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->name == name || !strcmp((*pp)->name, name))
			return *pp;
	*pp = node_new(name);
	return *pp;
}

static int depth_of(const struct node *n)
{
	int d = 0;
	for (const struct node *c = n->child; c; c = c->next) {
		int x = depth_of(c);
		if (x > d)
			d = x;
	}
	return d + 1;
}

static void put_escaped(FILE *fp, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '<': fputs("&lt;", fp); break;
		case '>': fputs("&gt;", fp); break;
		case '&': fputs("&amp;", fp); break;
		case '"': fputs("&quot;", fp); break;
		case '\'': fputs("&apos;", fp); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			fputc(c < 0x20 ? ' ' : c, fp);
		}
	}
}

/* a warm colour from the name, stable across runs */
static void colour(const char *name, int *r, int *g, int *b)
{
	uint32_t h = 2166136261u;
	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	*r = 205 + (int)(h % 50);
	*g = 80 + (int)((h >> 8) % 130);
	*b = (int)((h >> 16) % 55);
}

static void draw(FILE *fp, const struct node *n, double x, int level, double scale, double total, double height)
{
	double w = n->value * scale;
	if (w < MIN_W)
		return;
	double y = height - PAD - ROW * (level + 1) - 20;
	int r, g, b;
	colour(n->name, &r, &g, &b);
	fputs("<g><title>", fp);
	put_escaped(fp, n->name, SIZE_MAX);
	fprintf(fp, " (%" PRIu64 " bytes, %.2f%%)</title>", (uint64_t)llround(n->value),
		total > 0 ? 100.0 * n->value / total : 0.0);
	fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>",
		x, y, w, ROW - 1, r, g, b);
	size_t fit = (size_t)((w - 6) / CHAR_W);
	if (fit >= 3) {
		size_t len = strlen(n->name);
		fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + ROW - 5);
		if (len <= fit) {
			put_escaped(fp, n->name, len);
		} else {
			put_escaped(fp, n->name, fit - 2);
			fputs("..", fp);
		}
		fputs("</text>", fp);
	}
	fputs("</g>\n", fp);
	double cx = x;
	for (const struct node *c = n->child; c; c = c->next) {
		draw(fp, c, cx, level + 1, scale, total, height);
		cx += c->value * scale;
	}
}

int hs_profile_write_svg(FILE *fp, const struct hs_profile_report *r, bool inuse)
{
	struct node *root = node_new(inuse ? "all (in use)" : "all (allocated)");
	if (!root)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < r->nstacks && rc == 0; i++) {
		const struct hs_profile_stack *s = &r->stacks[i];
		double v = inuse ? s->inuse_bytes : s->alloc_bytes;
		if (!(v > 0))
			continue;
		struct node *n = root;
		n->value += v;
		if (s->truncated) {
			n = child_of(n, "[truncated]");
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			n->value += v;
		}
		for (size_t f = s->nframes; f-- > 0;) {
			n = child_of(n, s->frames[f].name ? s->frames[f].name : "?");
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			n->value += v;
		}
	}
	if (rc == 0) {
		int depth = depth_of(root);
		double height = depth * ROW + 2 * PAD + 40;
		double scale = root->value > 0 ? (WIDTH - 2 * PAD) / root->value : 0;
		fprintf(fp, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
			"<svg version=\"1.1\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
			"xmlns=\"http://www.w3.org/2000/svg\">\n",
			WIDTH, height, WIDTH, height);
		fputs("<style>text { font-family: monospace; font-size: 12px; fill: #000; } "
		      "rect:hover { stroke: #000; stroke-width: 0.5; }</style>\n", fp);
		fprintf(fp, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#f8f8f0\"/>\n", WIDTH, height);
		fprintf(fp, "<text x=\"%.0f\" y=\"24\" style=\"font-size: 16px\">heapscope profile of pid %d: %s, "
			"%" PRIu64 " bytes (rate %" PRIu64 ")</text>\n",
			PAD, (int)r->pid, inuse ? "in use at the end" : "allocated", (uint64_t)llround(root->value),
			r->rate);
		if (root->value > 0)
			draw(fp, root, PAD, 0, scale, root->value, height);
		fputs("</svg>\n", fp);
		fflush(fp);
		if (ferror(fp))
			rc = -EIO;
	}
	node_free(root);
	return rc;
}
