/* heapscope map: a picture of each arena heap, page by page. */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"
#include "format.h"
#include "heapmap.h"

static const char help[] =
	"usage: heapscope map [--svg FILE] [--width N] [--json] PID\n"
	"\n"
	"A picture of each glibc arena heap of PID, page by page: in use, free and\n"
	"resident (held, not used), free and returned to the system (madvised or\n"
	"trimmed, not resident), never touched.  From the walk (free chunks, top)\n"
	"and /proc/PID/pagemap.  In the terminal each cell is a run of pages shown\n"
	"by its most common class (colours when stdout is a terminal); --svg draws\n"
	"every page.  The legend gives the exact bytes of each class.\n";

static const char *glyph[HS_PAGE_NCLASS] = { "\u2588", "\u2593", "\u2591", "\u00b7" };
static const char *ansi[HS_PAGE_NCLASS] = { "\033[34m", "\033[31m", "\033[32m", "\033[90m" };

static void legend_text(const struct hs_heapmap *m, bool colour)
{
	char b[HS_SIZE_BUF];
	for (int c = 0; c < HS_PAGE_NCLASS; c++)
		printf("  %s%s%s %-15s %8s  %" PRIu64 " bytes, %" PRIu64 " pages\n", colour ? ansi[c] : "", glyph[c],
		       colour ? "\033[0m" : "", hs_page_class_name[c], hs_fmt_size(m->count[c] * m->page, b), m->count[c] * m->page,
		       m->count[c]);
}

static void render_text(const struct hs_snapshot *s, const struct hs_heapmap *m, size_t width, bool colour)
{
	char b[HS_SIZE_BUF];
	printf("pid %d: %zu arena heap%s, %" PRIu64 "-byte pages\n", (int)s->pid, m->n, m->n == 1 ? "" : "s", m->page);
	legend_text(m, colour);
	for (size_t k = 0; k < m->n; k++) {
		const struct hs_heapmap_heap *hp = &m->v[k];
		/* at most 8 lines a heap: a cell is a run of pages */
		size_t per = hs_heapmap_per_cell(hp, width, 8);
		printf("\narena %d heap 0x%" PRIx64 "-0x%" PRIx64 " (%s, %zu page%s a cell):", hp->arena, hp->start,
		       hp->end, hs_fmt_size(hp->end - hp->start, b), per, per == 1 ? "" : "s");
		for (int c = 0; c < HS_PAGE_NCLASS; c++)
			printf(" %s %s", hs_page_class_key[c], hs_fmt_size(hp->count[c] * m->page, b));
		for (size_t i = 0; i * per < hp->npages; i++) {
			enum hs_page_class c = hs_heapmap_cell(hp, i, per);
			printf("%s%s%s", i % width == 0 ? "\n  " : "", colour ? ansi[c] : "", glyph[c]);
		}
		printf("%s\n", colour ? "\033[0m" : "");
	}
}

static int cmd_map(struct hs_cli *cli)
{
	const char *svg = hs_cli_str(cli, 's');
	long width = hs_cli_num(cli, 'w', 64);
	pid_t pid = cli->pid;
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot(cli, pid, true, &s)) < 0)
		return -r;
	struct hs_heapmap m;
	struct hs_err err = { 0 };
	if (hs_heapmap_build(&s.heap, s.pagemap_fd, &m, &err) < 0) {
		hs_snapshot_release(&s);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	}
	int status = hs_cli_report_partial(cli, &s);
	FILE *f = svg ? fopen(svg, "w") : NULL;
	int w = f ? hs_heapmap_write_svg(f, pid, &m) : -1;
	if (f && fclose(f) != 0)
		w = -1;
	if (svg && w < 0) {
		hs_cli_warn(cli, "cannot write %s", svg);
		status = HS_EXIT_FATAL;
	}
	struct hs_out o = hs_cli_out(cli);
	hs_out_obj_begin(&o, NULL);
	hs_print_int(&o, HS_PRINT_JSON, "pid", NULL, pid);
	hs_print_u64(&o, HS_PRINT_JSON, "page_size", NULL, m.page);
	hs_out_obj_begin(&o, "pages");
	for (int k = 0; k < HS_PAGE_NCLASS; k++)
		hs_print_u64(&o, HS_PRINT_JSON, hs_page_class_key[k], NULL, m.count[k]);
	hs_out_obj_end(&o);
	hs_out_arr_begin(&o, "heaps");
	for (size_t k = 0; k < m.n && hs_out_json(&o); k++) {
		hs_out_obj_begin(&o, NULL);
		hs_print_int(&o, HS_PRINT_JSON, "arena", NULL, m.v[k].arena);
		hs_print_hex(&o, HS_PRINT_JSON, "start", NULL, m.v[k].start);
		hs_print_hex(&o, HS_PRINT_JSON, "end", NULL, m.v[k].end);
		for (int q = 0; q < HS_PAGE_NCLASS; q++)
			hs_print_u64(&o, HS_PRINT_JSON, hs_page_class_key[q], NULL, m.v[k].count[q]);
		hs_out_obj_end(&o);
	}
	hs_out_arr_end(&o);
	hs_out_doc_end(&o);
	if (!cli->json)
		render_text(&s, &m, (size_t)width, isatty(1));
	hs_heapmap_release(&m);
	hs_snapshot_release(&s);
	return status;
}

static const struct hs_opt opts[] = {
	{ .name = "svg", .key = 's', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "also write an SVG picture, one square per page" },
	{ .name = "width", .key = 'w', .kind = HS_OPT_COUNT, .min = 8, .max = 1024, .bad = "--width wants 8 to 1024",
	  .arg = "N", .help = "terminal cells per line (default 64)" },
	{ 0 },
};

const struct hs_command hs_cmd_map = {
	.name = "map", .run = cmd_map, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "a picture of each arena heap, page by page; --svg",
};
