/* lib/out.c: each printing call in text mode and in JSON mode, the JSON
 * compared whole (escaping, nesting, commas) and the text line by line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "tap.h"

/* The same calls, in either mode: what each kind prints. */
static void emit(struct hs_out *o)
{
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "index", "arena %d", 3);
	hs_print_u64(o, HS_PRINT_ANY, "count", " %" PRIu64 " chunks", UINT64_MAX);
	hs_print_i64(o, HS_PRINT_ANY, "tid", " tid %" PRId64, (int64_t)-42);
	hs_print_hex(o, HS_PRINT_ANY, "address", " at 0x%012" PRIx64, 0x7f12a000);
	hs_print_str(o, HS_PRINT_ANY, "name", " [%s]", "a\"b\\c\n\t\x01/");
	hs_print_str(o, HS_PRINT_ANY, "missing", " <%s>", NULL);
	hs_print_size(o, HS_PRINT_ANY, "bytes", " %8s", 64 << 20);
	hs_print_us(o, HS_PRINT_ANY, "pause_us", " paused %s", 12300);
	hs_print_bool(o, HS_PRINT_ANY, "corrupt", ": CORRUPT", true);
	hs_print_bool(o, HS_PRINT_ANY, "partial", ": PARTIAL", false);
	hs_print_null(o, HS_PRINT_ANY, "arena", " -");
	hs_print_text(o, "\n");
	hs_print_u64(o, HS_PRINT_JSON, "json_only", "never %" PRIu64, 7);
	hs_print_u64(o, HS_PRINT_TEXT, "text_only", "text %" PRIu64 "\n", 8);
	hs_print_u64(o, HS_PRINT_ANY, "no_text", NULL, 9);
	hs_out_arr_begin(o, "list");
	hs_print_hex(o, HS_PRINT_ANY, NULL, "  0x%" PRIx64 "\n", 0x10);
	hs_print_hex(o, HS_PRINT_ANY, NULL, "  0x%" PRIx64 "\n", 0x20);
	hs_out_arr_end(o);
	hs_out_arr_begin(o, "empty");
	hs_out_arr_end(o);
	hs_out_obj_begin(o, "sub");
	hs_print_bool(o, HS_PRINT_JSON, "x", "never", false);
	hs_out_obj_end(o);
	hs_out_doc_end(o);
}

static const char want_text[] =
	"arena 3 18446744073709551615 chunks tid -42 at 0x00007f12a000 [a\"b\\c\n\t\x01/] <>    64.0M paused 12.3ms"
	": CORRUPT -\n"
	"text 8\n"
	"  0x10\n"
	"  0x20\n";

static const char want_json[] =
	"{\n"
	"  \"index\": 3,\n"
	"  \"count\": 18446744073709551615,\n"
	"  \"tid\": -42,\n"
	"  \"address\": \"0x7f12a000\",\n"
	"  \"name\": \"a\\\"b\\\\c\\n\\t\\u0001/\",\n"
	"  \"missing\": null,\n"
	"  \"bytes\": 67108864,\n"
	"  \"pause_us\": 12300,\n"
	"  \"corrupt\": true,\n"
	"  \"partial\": false,\n"
	"  \"arena\": null,\n"
	"  \"json_only\": 7,\n"
	"  \"no_text\": 9,\n"
	"  \"list\": [\n"
	"    \"0x10\",\n"
	"    \"0x20\"\n"
	"  ],\n"
	"  \"empty\": [],\n"
	"  \"sub\": {\n"
	"    \"x\": false\n"
	"  }\n"
	"}\n";

static char *run(bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct hs_json j;
	struct hs_out o;
	hs_json_init(&j, fp);
	hs_out_init(&o, fp, json ? &j : NULL);
	emit(&o);
	fclose(fp);
	return buf;
}

/* The first line where a and b differ, for the failure message. */
static void show_diff(const char *a, const char *b)
{
	int line = 1;
	for (; *a && *a == *b; a++, b++)
		line += *a == '\n';
	printf("# first difference on line %d: got \"%.40s\", want \"%.40s\"\n", line, a, b);
}

int main(void)
{
	char *t = run(false), *js = run(true);
	OK(!strcmp(t, want_text), "text mode: each kind printed with its format, JSON-only calls silent");
	if (strcmp(t, want_text))
		show_diff(t, want_text);
	OK(!strcmp(js, want_json), "JSON mode: each kind as its JSON type, escaped, text-only calls silent");
	if (strcmp(js, want_json))
		show_diff(js, want_json);
	free(t);
	free(js);
	return tap_done();
}
