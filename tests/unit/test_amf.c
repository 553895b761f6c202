/*
 * test_amf.c - AMF0/AMF3 decoding, encoding, limits and the value API.
 */
#include "amf.h"
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Byte vectors are laid out by hand, one wire field per group: keep clang-format away. */
/* clang-format off */

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Doubles in network order. */
#define D_0_5  0x3F, 0xE0, 0, 0, 0, 0, 0, 0
#define D_1    0x3F, 0xF0, 0, 0, 0, 0, 0, 0
#define D_3    0x40, 0x08, 0, 0, 0, 0, 0, 0
#define D_239  0x40, 0x6D, 0xE0, 0, 0, 0, 0, 0
#define D_252  0x40, 0x6F, 0x80, 0, 0, 0, 0, 0
#define D_3575 0x40, 0xAB, 0xEE, 0, 0, 0, 0, 0
#define D_1_5E12 0x42, 0x75, 0xD3, 0xEF, 0x79, 0x80, 0, 0

/* A Flash Player connect command body: "connect", 1, {app, flashVer, tcUrl, ...}. */
static const uint8_t connect_cmd[] = {
	0x02, 0x00, 0x07, 'c', 'o', 'n', 'n', 'e', 'c', 't',
	0x00, D_1,
	0x03,
	0x00, 0x03, 'a', 'p', 'p', 0x02, 0x00, 0x04, 'e', 'c', 'h', 'o',
	0x00, 0x08, 'f', 'l', 'a', 's', 'h', 'V', 'e', 'r',
	0x02, 0x00, 0x0C, 'W', 'I', 'N', ' ', '3', '2', ',', '0', ',', '0', ',', '0',
	0x00, 0x05, 't', 'c', 'U', 'r', 'l',
	0x02, 0x00, 0x15, 'r', 't', 'm', 'p', ':', '/', '/', '1', '2', '7', '.', '0', '.', '0', '.',
	'1', '/', 'e', 'c', 'h', 'o',
	0x00, 0x04, 'f', 'p', 'a', 'd', 0x01, 0x00,
	0x00, 0x0C, 'c', 'a', 'p', 'a', 'b', 'i', 'l', 'i', 't', 'i', 'e', 's', 0x00, D_239,
	0x00, 0x0B, 'a', 'u', 'd', 'i', 'o', 'C', 'o', 'd', 'e', 'c', 's', 0x00, D_3575,
	0x00, 0x0B, 'v', 'i', 'd', 'e', 'o', 'C', 'o', 'd', 'e', 'c', 's', 0x00, D_252,
	0x00, 0x0D, 'v', 'i', 'd', 'e', 'o', 'F', 'u', 'n', 'c', 't', 'i', 'o', 'n', 0x00, D_1,
	0x00, 0x0E, 'o', 'b', 'j', 'e', 'c', 't', 'E', 'n', 'c', 'o', 'd', 'i', 'n', 'g', 0x00, D_3,
	0x00, 0x00, 0x09,
};
#define CONNECT_OBJ_OFF 19 /* where the command object starts */

static int dec0(const uint8_t *p, size_t n, const struct amf_limits *lim, struct amf_value **out)
{
	size_t used = 0;
	int ret = amf0_decode(p, n, &used, lim, out);

	if (ret == 0 && used != n)
		return -1000; /* the whole vector must be consumed */
	return ret;
}

static int dec3(const uint8_t *p, size_t n, const struct amf_limits *lim, struct amf_value **out)
{
	size_t used = 0;
	int ret = amf3_decode(p, n, &used, lim, out);

	if (ret == 0 && used != n)
		return -1000;
	return ret;
}

static double num(const struct amf_value *v)
{
	double d = NAN;

	amf_get_number(v, &d);
	return d;
}

static const char *str(const struct amf_value *v)
{
	return amf_get_string(v, NULL);
}

/* Renders @v with amf_dump into a static buffer (for CHECK_EQ_STR). */
static const char *dump(const struct amf_value *v)
{
	static char text[AMF_DUMP_MAX + 8];
	struct buf b = {0};

	text[0] = '\0';
	if (amf_dump(&b, v) == 0 && buf_used(&b) < sizeof(text)) {
		memcpy(text, buf_head(&b), buf_used(&b));
		text[buf_used(&b)] = '\0';
	}
	buf_free(&b);
	return text;
}

/* Every strict prefix of a single-value encoding must fail cleanly. */
static int prefixes_fail(int (*decode)(const uint8_t *, size_t, size_t *,
				       const struct amf_limits *, struct amf_value **),
			 const uint8_t *p, size_t n)
{
	struct amf_value *v;
	int bad = 0;
	size_t k;

	for (k = 0; k < n; k++) {
		uint8_t *copy = malloc(k ? k : 1); /* exact size so ASan sees overreads */

		memcpy(copy, p, k);
		v = (struct amf_value *)1;
		if (decode(copy, k, NULL, NULL, &v) >= 0 || v != NULL) {
			fprintf(stderr, "prefix %zu of %zu decoded\n", k, n);
			bad++;
		}
		amf_free(v == (struct amf_value *)1 ? NULL : v);
		free(copy);
	}
	return bad;
}

/* Encodes @v in AMF0 (or AMF3), decodes it back and compares. */
static bool round_trip(const struct amf_value *v, bool amf3)
{
	struct amf_value *back = NULL;
	struct buf b = {0};
	bool ok;
	int ret;

	ret = amf3 ? amf3_encode(&b, v) : amf0_encode(&b, v);
	if (ret < 0)
		return false;
	ret = amf3 ? dec3(buf_head(&b), buf_used(&b), NULL, &back)
		   : dec0(buf_head(&b), buf_used(&b), NULL, &back);
	ok = ret == 0 && amf_equal(v, back);
	if (!ok)
		fprintf(stderr, "round trip: ret %d, %s\n", ret, dump(back));
	amf_free(back);
	buf_free(&b);
	return ok;
}

/* A value with every type AMF0 can carry. */
static struct amf_value *rich_value(bool with_bytes)
{
	struct amf_value *o = amf_object(), *e = amf_ecma_array(), *a = amf_strict_array();
	struct amf_value *t = amf_typed_object("com.example.Point");
	static char big[70000];

	memset(big, 'L', sizeof(big) - 1);
	amf_object_set(t, "x", amf_number(1.25));
	amf_object_set(t, "y", amf_number(-3));
	amf_object_set(e, "0", amf_string("zero"));
	amf_object_set(e, "name", amf_string(""));
	amf_array_push(a, amf_number(0));
	amf_array_push(a, amf_number(-0.0));
	amf_array_push(a, amf_number(1e300));
	amf_array_push(a, amf_number(INFINITY));
	amf_array_push(a, amf_number(NAN));
	amf_array_push(a, amf_number(268435455));
	amf_array_push(a, amf_number(-268435456));
	amf_array_push(a, amf_number(268435456));
	amf_array_push(a, amf_bool(true));
	amf_array_push(a, amf_bool(false));
	amf_array_push(a, amf_null());
	amf_array_push(a, amf_undefined());
	amf_array_push(a, amf_string_len("a\0b", 3));
	amf_array_push(a, amf_strict_array());
	amf_object_set(o, "num", amf_number(42.5));
	amf_object_set(o, "str", amf_string("hello"));
	amf_object_set(o, "long", amf_string(big));
	amf_object_set(o, "date", amf_date(1.5e12, 0));
	amf_object_set(o, "xml", amf_xml("<a>b</a>", 8));
	amf_object_set(o, "ecma", e);
	amf_object_set(o, "arr", a);
	amf_object_set(o, "typed", t);
	amf_object_set(o, "empty", amf_object());
	if (with_bytes)
		amf_object_set(o, "bytes", amf_byte_array("\x00\x01\xff", 3));
	return o;
}

/* ---- AMF0 ---- */

static void test_amf0_scalars_round_trip(void)
{
	struct amf_value *v;
	static char big[65536 + 10];

	memset(big, 'x', sizeof(big) - 1);
	static const double nums[] = {0, -0.0, 1, -1, 0.1, 1e308, -1e-308, 4294967296.0};
	for (size_t i = 0; i < N(nums); i++) {
		v = amf_number(nums[i]);
		CHECK(round_trip(v, false));
		amf_free(v);
	}
	v = amf_number(NAN);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_bool(true);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_bool(false);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_string("");
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_string_len("nul\0inside", 10);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_string(big); /* long string */
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_string_len(big, 65535); /* largest short string */
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_null();
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_undefined();
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_date(1.5e12, -120);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_xml("<x/>", 4);
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_byte_array("\x01\x02", 2); /* via avmplus */
	CHECK(round_trip(v, false));
	amf_free(v);
}

static void test_amf0_containers_round_trip(void)
{
	struct amf_value *v = rich_value(true);

	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_ecma_array();
	CHECK(round_trip(v, false));
	amf_free(v);
	v = amf_typed_object("");
	CHECK(round_trip(v, false));
	amf_free(v);
}

static void test_amf0_exact_bytes(void)
{
	static const uint8_t obj[] = {0x03, 0x00, 0x01, 'a', 0x00, D_1, 0x00, 0x00, 0x09};
	static const uint8_t ecma[] = {0x08, 0, 0, 0, 1, 0x00, 0x01, 'k', 0x05, 0, 0, 9};
	static const uint8_t strict[] = {0x0A, 0, 0, 0, 2, 0x01, 0x01, 0x06};
	static const uint8_t date[] = {0x0B, D_1_5E12, 0xFF, 0x88};
	static const uint8_t typed[] = {0x10, 0, 1, 'C', 0, 1, 'b', 0x01, 0, 0, 0, 9};
	static const uint8_t replies[] = {0x02, 0, 7, '_', 'r', 'e', 's', 'u', 'l', 't',
					  0x00, D_0_5, 0x05, 0x01, 0x01};
	struct amf_value *v;
	struct buf b = {0};

	v = amf_object();
	amf_object_set(v, "a", amf_number(1));
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK(buf_used(&b) == sizeof(obj) && memcmp(buf_head(&b), obj, sizeof(obj)) == 0);
	amf_free(v);
	buf_reset(&b);

	v = amf_ecma_array();
	amf_object_set(v, "k", amf_null());
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK(buf_used(&b) == sizeof(ecma) && memcmp(buf_head(&b), ecma, sizeof(ecma)) == 0);
	amf_free(v);
	buf_reset(&b);

	v = amf_strict_array();
	amf_array_push(v, amf_bool(true));
	amf_array_push(v, amf_undefined());
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK(buf_used(&b) == sizeof(strict) && memcmp(buf_head(&b), strict, sizeof(strict)) == 0);
	amf_free(v);
	buf_reset(&b);

	v = amf_date(1.5e12, -120);
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK(buf_used(&b) == sizeof(date) && memcmp(buf_head(&b), date, sizeof(date)) == 0);
	amf_free(v);
	buf_reset(&b);

	v = amf_typed_object("C");
	amf_object_set(v, "b", amf_bool(false));
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK(buf_used(&b) == sizeof(typed) && memcmp(buf_head(&b), typed, sizeof(typed)) == 0);
	amf_free(v);
	buf_reset(&b);

	CHECK_EQ_INT(amf0_put_string(&b, "_result"), 0);
	CHECK_EQ_INT(amf0_put_number(&b, 0.5), 0);
	CHECK_EQ_INT(amf0_put_null(&b), 0);
	CHECK_EQ_INT(amf0_put_bool(&b, true), 0);
	CHECK(buf_used(&b) == sizeof(replies) &&
	      memcmp(buf_head(&b), replies, sizeof(replies)) == 0);
	buf_free(&b);
}

static void test_amf0_decode_vectors(void)
{
	static const uint8_t typed[] = {0x10, 0, 1, 'C', 0, 1, 'b', 0x01, 0x02, 0, 0, 9};
	static const uint8_t date[] = {0x0B, D_1_5E12, 0xFF, 0x88};
	static const uint8_t lstr[] = {0x0C, 0, 0, 0, 3, 'a', 'b', 'c'};
	static const uint8_t xml[] = {0x0F, 0, 0, 0, 4, '<', 'a', '/', '>'};
	static const uint8_t unsupported[] = {0x0D};
	static const uint8_t empty_key[] = {0x03, 0, 0, 0x05, 0, 0, 9};
	struct amf_value *v;
	double ms = 0;
	int16_t tz = 0;
	bool b = false;
	size_t n = 0;

	CHECK_EQ_INT(dec0(typed, sizeof(typed), NULL, &v), 0);
	CHECK_EQ_INT(amf_type_of(v), AMF_TYPED_OBJECT);
	CHECK_EQ_STR(amf_class_name(v, &n), "C");
	CHECK_EQ_INT(n, 1);
	CHECK(amf_get_bool(amf_get(v, "b"), &b) && b);
	CHECK(amf_is_true(amf_get(v, "b")));
	amf_free(v);

	CHECK_EQ_INT(dec0(date, sizeof(date), NULL, &v), 0);
	CHECK(amf_get_date(v, &ms, &tz));
	CHECK(ms == 1.5e12);
	CHECK_EQ_INT(tz, -120);
	amf_free(v);

	CHECK_EQ_INT(dec0(lstr, sizeof(lstr), NULL, &v), 0);
	CHECK_EQ_STR(str(v), "abc");
	amf_free(v);

	CHECK_EQ_INT(dec0(xml, sizeof(xml), NULL, &v), 0);
	CHECK_EQ_INT(amf_type_of(v), AMF_XML);
	CHECK_EQ_STR(str(v), "<a/>");
	amf_free(v);

	CHECK_EQ_INT(dec0(unsupported, sizeof(unsupported), NULL, &v), 0);
	CHECK_EQ_INT(amf_type_of(v), AMF_UNDEFINED);
	amf_free(v);

	/* An empty key followed by a value (not the end marker) is a property. */
	CHECK_EQ_INT(dec0(empty_key, sizeof(empty_key), NULL, &v), 0);
	CHECK_EQ_INT(amf_count(v), 1);
	CHECK_EQ_INT(amf_type_of(amf_get(v, "")), AMF_NULL);
	amf_free(v);
}

static void test_amf0_connect_command(void)
{
	struct amf_value *list, *obj;

	CHECK_EQ_INT(amf0_decode_all(connect_cmd, sizeof(connect_cmd), NULL, &list), 0);
	CHECK_EQ_INT(amf_count(list), 3);
	CHECK_EQ_STR(str(amf_index(list, 0)), "connect");
	CHECK(num(amf_index(list, 1)) == 1);
	obj = amf_index(list, 2);
	CHECK_EQ_INT(amf_type_of(obj), AMF_OBJECT);
	CHECK_EQ_INT(amf_count(obj), 9);
	CHECK_EQ_STR(str(amf_get(obj, "app")), "echo");
	CHECK_EQ_STR(str(amf_get(obj, "flashVer")), "WIN 32,0,0,0");
	CHECK_EQ_STR(str(amf_get(obj, "tcUrl")), "rtmp://127.0.0.1/echo");
	CHECK_EQ_INT(amf_type_of(amf_get(obj, "fpad")), AMF_BOOLEAN);
	CHECK(!amf_is_true(amf_get(obj, "fpad")));
	CHECK(num(amf_get(obj, "capabilities")) == 239);
	CHECK(num(amf_get(obj, "audioCodecs")) == 3575);
	CHECK(num(amf_get(obj, "videoCodecs")) == 252);
	CHECK(num(amf_get(obj, "videoFunction")) == 1);
	CHECK(num(amf_get(obj, "objectEncoding")) == 3);
	CHECK(amf_get(obj, "pageUrl") == NULL);
	CHECK_EQ_STR(dump(list),
		     "[\"connect\",1,{\"app\":\"echo\",\"flashVer\":\"WIN 32,0,0,0\","
		     "\"tcUrl\":\"rtmp://127.0.0.1/echo\",\"fpad\":false,\"capabilities\":239,"
		     "\"audioCodecs\":3575,\"videoCodecs\":252,\"videoFunction\":1,"
		     "\"objectEncoding\":3}]");

	/* Re-encoding the values gives back the exact body. */
	struct buf b = {0};
	for (size_t i = 0; i < amf_count(list); i++)
		CHECK_EQ_INT(amf0_encode(&b, amf_index(list, i)), 0);
	CHECK(buf_used(&b) == sizeof(connect_cmd) &&
	      memcmp(buf_head(&b), connect_cmd, sizeof(connect_cmd)) == 0);
	buf_free(&b);
	amf_free(list);

	/* Every truncation of the command object fails. */
	CHECK_EQ_INT(prefixes_fail(amf0_decode, connect_cmd + CONNECT_OBJ_OFF,
				   sizeof(connect_cmd) - CONNECT_OBJ_OFF), 0);
	/* A body cut inside a value fails; one cut between values decodes fewer values. */
	CHECK_EQ_INT(amf0_decode_all(connect_cmd, sizeof(connect_cmd) - 1, NULL, &list), -EPROTO);
	CHECK(list == NULL);
	CHECK_EQ_INT(amf0_decode_all(connect_cmd, CONNECT_OBJ_OFF, NULL, &list), 0);
	CHECK_EQ_INT(amf_count(list), 2);
	amf_free(list);
	CHECK_EQ_INT(amf0_decode_all(NULL, 0, NULL, &list), 0);
	CHECK_EQ_INT(amf_count(list), 0);
	amf_free(list);
}

static void test_amf0_truncation(void)
{
	struct amf_value *v = rich_value(true);
	struct buf b = {0};

	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK_EQ_INT(prefixes_fail(amf0_decode, buf_head(&b), buf_used(&b)), 0);
	buf_free(&b);
	amf_free(v);
}

static void test_amf0_malformed(void)
{
	static const uint8_t end_as_value[] = {0x09};
	static const uint8_t end_in_object[] = {0x03, 0, 1, 'a', 0x09};
	static const uint8_t end_in_array[] = {0x0A, 0, 0, 0, 1, 0x09};
	static const uint8_t movieclip[] = {0x04};
	static const uint8_t recordset[] = {0x0E};
	static const uint8_t unknown[] = {0x12};
	static const uint8_t unknown_ff[] = {0xFF};
	static const uint8_t no_end[] = {0x03, 0, 1, 'a', 0x05};
	static const uint8_t bad_end[] = {0x03, 0, 0, 0x0A};
	static const uint8_t short_str[] = {0x02, 0, 5, 'a', 'b'};
	static const uint8_t short_lstr[] = {0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 'a'};
	static const uint8_t short_xml[] = {0x0F, 0x80, 0, 0, 0};
	static const uint8_t bad_avm[] = {0x11, 0x11};
	struct amf_value *v = NULL;

	CHECK_EQ_INT(dec0(end_as_value, sizeof(end_as_value), NULL, &v), -EPROTO);
	CHECK(v == NULL);
	CHECK_EQ_INT(dec0(end_in_object, sizeof(end_in_object), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(end_in_array, sizeof(end_in_array), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(movieclip, sizeof(movieclip), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(recordset, sizeof(recordset), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(unknown, sizeof(unknown), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(unknown_ff, sizeof(unknown_ff), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(no_end, sizeof(no_end), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(bad_end, sizeof(bad_end), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(short_str, sizeof(short_str), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(short_lstr, sizeof(short_lstr), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(short_xml, sizeof(short_xml), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(bad_avm, sizeof(bad_avm), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(NULL, 0, NULL, &v), -EPROTO);
	CHECK(v == NULL);
}

static void test_amf0_ecma_lying_count(void)
{
	static const uint8_t zero[] = {0x08, 0, 0, 0, 0,    0, 1, 'a', 0x05,
				       0, 1, 'b', 0x01, 1, 0, 0, 9};
	static const uint8_t huge[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 'a', 0x05, 0, 0, 9};
	static const uint8_t empty[] = {0x08, 0, 0, 0, 7, 0, 0, 9};
	static const uint8_t no_end[] = {0x08, 0, 0, 0, 1, 0, 1, 'a', 0x05};
	struct amf_value *v;

	CHECK_EQ_INT(dec0(zero, sizeof(zero), NULL, &v), 0);
	CHECK_EQ_INT(amf_type_of(v), AMF_ECMA_ARRAY);
	CHECK_EQ_INT(amf_count(v), 2);
	CHECK(amf_is_true(amf_get(v, "b")));
	amf_free(v);
	CHECK_EQ_INT(dec0(huge, sizeof(huge), NULL, &v), 0);
	CHECK_EQ_INT(amf_count(v), 1);
	amf_free(v);
	CHECK_EQ_INT(dec0(empty, sizeof(empty), NULL, &v), 0);
	CHECK_EQ_INT(amf_count(v), 0);
	amf_free(v);
	CHECK_EQ_INT(dec0(no_end, sizeof(no_end), NULL, &v), -EPROTO);
	CHECK(v == NULL);
}

static void test_amf0_references(void)
{
	/* [ {a:1}, ref 1 ] : the strict array is complex value 0, the object 1. */
	static const uint8_t ok[] = {0x0A, 0, 0, 0, 2,    0x03, 0, 1, 'a', 0x00, D_1, 0, 0, 9,
				     0x07, 0x00, 0x01};
	static const uint8_t out_of_range[] = {0x0A, 0, 0, 0, 2, 0x03, 0, 0, 9, 0x07, 0x00, 0x02};
	static const uint8_t empty_table[] = {0x07, 0x00, 0x00};
	/* An object whose member refers to itself while it is decoded. */
	static const uint8_t self[] = {0x03, 0, 1, 'a', 0x07, 0x00, 0x00, 0, 0, 9};
	/* ... and to its enclosing array. */
	static const uint8_t parent[] = {0x0A, 0, 0, 0, 1, 0x03, 0, 1, 'a', 0x07, 0, 0, 0, 0, 9};
	struct amf_value *v, *list;

	CHECK_EQ_INT(dec0(ok, sizeof(ok), NULL, &v), 0);
	CHECK_EQ_INT(amf_count(v), 2);
	CHECK(amf_equal(amf_index(v, 0), amf_index(v, 1)));
	CHECK(amf_index(v, 0) != amf_index(v, 1)); /* a copy, not shared */
	CHECK(num(amf_get(amf_index(v, 1), "a")) == 1);
	amf_free(v);
	CHECK_EQ_INT(dec0(out_of_range, sizeof(out_of_range), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(empty_table, sizeof(empty_table), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(self, sizeof(self), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec0(parent, sizeof(parent), NULL, &v), -EPROTO);
	CHECK(v == NULL);

	/* The table spans a whole command body. */
	static const uint8_t body[] = {0x03, 0, 1, 'k', 0x05, 0, 0, 9, 0x07, 0, 0};
	CHECK_EQ_INT(amf0_decode_all(body, sizeof(body), NULL, &list), 0);
	CHECK_EQ_INT(amf_count(list), 2);
	CHECK(amf_equal(amf_index(list, 0), amf_index(list, 1)));
	amf_free(list);
}

/* An object with @n numbers followed by a strict array of @refs references to it. */
static void build_ref_bomb(struct buf *b, size_t n, size_t refs, size_t pad)
{
	size_t i;

	buf_put_u8(b, 0x0A);
	buf_put_be32(b, 2);
	buf_put_u8(b, 0x03);
	for (i = 0; i < n; i++) {
		char key[24];

		snprintf(key, sizeof(key), "k%zu", i);
		buf_put_be16(b, (uint16_t)strlen(key));
		buf_append(b, key, strlen(key));
		amf0_put_number(b, (double)i);
	}
	if (pad) {
		char *s = malloc(pad + 1);

		memset(s, 'p', pad);
		s[pad] = '\0';
		buf_put_be16(b, 3);
		buf_append(b, "pad", 3);
		amf0_put_string(b, s);
		free(s);
	}
	buf_put_be24(b, 9);
	buf_put_u8(b, 0x0A);
	buf_put_be32(b, (uint32_t)refs);
	for (i = 0; i < refs; i++) {
		buf_put_u8(b, 0x07);
		buf_put_be16(b, 1);
	}
}

static void test_amf0_reference_bombs(void)
{
	struct amf_value *v = NULL;
	struct buf b = {0};

	/* 100 numbers copied 1000 times: 100k elements from 3 KB. */
	build_ref_bomb(&b, 100, 1000, 0);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &v), -E2BIG);
	CHECK(v == NULL);
	buf_free(&b);

	/* A 1 MB string copied 100 times: bounded by max_total_bytes. */
	build_ref_bomb(&b, 1, 100, 1 << 20);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &v), -E2BIG);
	buf_free(&b);

	/* Few enough copies pass. */
	build_ref_bomb(&b, 3, 4, 1000);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &v), 0);
	CHECK_EQ_INT(amf_count(amf_index(v, 1)), 4);
	CHECK(num(amf_get(amf_index(amf_index(v, 1), 3), "k2")) == 2);
	amf_free(v);
	buf_free(&b);
}

/* ---- limits ---- */

static struct amf_value *nested_objects(unsigned depth)
{
	struct amf_value *v = amf_object(), *inner;

	for (unsigned i = 1; i < depth; i++) {
		inner = v;
		v = amf_object();
		amf_object_set(v, "o", inner);
	}
	return v;
}

static void test_limit_depth(void)
{
	struct amf_value *v, *back = NULL;
	struct amf_limits lim = {.max_depth = 32};
	struct buf b = {0};

	v = nested_objects(32);
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), 0);
	CHECK(amf_equal(v, back));
	amf_free(back);
	buf_reset(&b);
	CHECK_EQ_INT(amf3_encode(&b, v), 0);
	CHECK_EQ_INT(dec3(buf_head(&b), buf_used(&b), &lim, &back), 0);
	CHECK(amf_equal(v, back));
	amf_free(back);
	buf_reset(&b);
	amf_free(v);

	v = nested_objects(33);
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG);
	CHECK(back == NULL);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &back), -E2BIG); /* default 32 */
	buf_reset(&b);
	CHECK_EQ_INT(amf3_encode(&b, v), 0);
	CHECK_EQ_INT(dec3(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG);
	buf_reset(&b);
	amf_free(v);

	/* Strict arrays nest too; a deep enough value passes a deeper limit. */
	v = amf_strict_array();
	for (int i = 0; i < 40; i++) {
		struct amf_value *outer = amf_strict_array();

		amf_array_push(outer, v);
		v = outer;
	}
	CHECK_EQ_INT(amf0_encode(&b, v), 0);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &back), -E2BIG);
	lim.max_depth = 41;
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), 0);
	amf_free(back);
	buf_free(&b);
	amf_free(v);
}

/* @n0 AMF0 objects {o: ...} around an avmplus value holding @n3 nested AMF3 objects. */
static void build_mixed_depth(struct buf *b, unsigned n0, unsigned n3)
{
	struct amf_value *inner = nested_objects(n3);
	unsigned i;

	for (i = 0; i < n0; i++) {
		buf_put_u8(b, 0x03);
		buf_put_be16(b, 1);
		buf_put_u8(b, 'o');
	}
	buf_put_u8(b, 0x11);
	amf3_encode(b, inner);
	for (i = 0; i < n0; i++)
		buf_put_be24(b, 9);
	amf_free(inner);
}

static void test_limit_depth_across_avmplus(void)
{
	struct amf_value *v = NULL;
	struct buf b = {0};

	build_mixed_depth(&b, 20, 12);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &v), 0);
	amf_free(v);
	buf_reset(&b);
	build_mixed_depth(&b, 20, 13);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &v), -E2BIG);
	buf_reset(&b);

	/* A reference copy is as deep as the original plus where it lands. */
	struct amf_value *deep = nested_objects(30), *list = NULL;
	amf0_encode(&b, deep);
	static const uint8_t wrap2[] = {0x0A, 0, 0, 0, 1, 0x0A, 0, 0, 0, 1, 0x07, 0, 0};
	buf_append(&b, wrap2, sizeof(wrap2));
	CHECK_EQ_INT(amf0_decode_all(buf_head(&b), buf_used(&b), NULL, &list), 0);
	CHECK(amf_equal(deep, amf_index(amf_index(amf_index(list, 1), 0), 0)));
	amf_free(list);
	buf_reset(&b);
	amf0_encode(&b, deep);
	static const uint8_t wrap3[] = {0x0A, 0, 0, 0, 1, 0x0A, 0, 0, 0, 1,
					0x0A, 0, 0, 0, 1, 0x07, 0, 0};
	buf_append(&b, wrap3, sizeof(wrap3));
	CHECK_EQ_INT(amf0_decode_all(buf_head(&b), buf_used(&b), NULL, &list), -E2BIG);
	amf_free(deep);
	buf_free(&b);
}

static void test_limit_elements(void)
{
	struct amf_limits lim = {.max_elements = 10};
	struct amf_value *v = amf_strict_array(), *back = NULL;
	struct buf b = {0};

	for (int i = 0; i < 10; i++)
		amf_array_push(v, amf_number(i));
	amf0_encode(&b, v);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG); /* 11 values */
	lim.max_elements = 11;
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), 0);
	amf_free(back);
	buf_reset(&b);
	amf3_encode(&b, v);
	CHECK_EQ_INT(dec3(buf_head(&b), buf_used(&b), &lim, &back), 0);
	amf_free(back);
	lim.max_elements = 10;
	CHECK_EQ_INT(dec3(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG);
	buf_reset(&b);
	amf_free(v);

	/* The count is shared by the values of a body. */
	for (int i = 0; i < 6; i++)
		amf0_put_number(&b, i);
	lim.max_elements = 5;
	CHECK_EQ_INT(amf0_decode_all(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG);
	CHECK(back == NULL);
	lim.max_elements = 6;
	CHECK_EQ_INT(amf0_decode_all(buf_head(&b), buf_used(&b), &lim, &back), 0);
	amf_free(back);
	buf_reset(&b);

	/* A strict array count beyond the budget fails before allocating. */
	buf_put_u8(&b, 0x0A);
	buf_put_be32(&b, 1000);
	for (int i = 0; i < 1000; i++)
		buf_put_u8(&b, 0x05);
	lim.max_elements = 100;
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), &lim, &back), -E2BIG);
	CHECK_EQ_INT(dec0(buf_head(&b), buf_used(&b), NULL, &back), 0);
	CHECK_EQ_INT(amf_count(back), 1000);
	amf_free(back);
	buf_free(&b);
}

static void test_limit_string(void)
{
	static const uint8_t s4[] = {0x02, 0, 4, 'a', 'b', 'c', 'd'};
	static const uint8_t s5[] = {0x02, 0, 5, 'a', 'b', 'c', 'd', 'e'};
	static const uint8_t l5[] = {0x0C, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e'};
	static const uint8_t key5[] = {0x03, 0, 5, 'a', 'b', 'c', 'd', 'e', 0x05, 0, 0, 9};
	static const uint8_t cls5[] = {0x10, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 9};
	static const uint8_t a3_5[] = {0x06, 0x0B, 'a', 'b', 'c', 'd', 'e'};
	static const uint8_t a3_4[] = {0x06, 0x09, 'a', 'b', 'c', 'd'};
	static const uint8_t a3_ba5[] = {0x0C, 0x0B, 1, 2, 3, 4, 5};
	struct amf_limits lim = {.max_string = 4};
	struct amf_value *v = NULL;

	CHECK_EQ_INT(dec0(s4, sizeof(s4), &lim, &v), 0);
	amf_free(v);
	CHECK_EQ_INT(dec0(s5, sizeof(s5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec0(l5, sizeof(l5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec0(key5, sizeof(key5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec0(cls5, sizeof(cls5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec3(a3_5, sizeof(a3_5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec3(a3_ba5, sizeof(a3_ba5), &lim, &v), -E2BIG);
	CHECK_EQ_INT(dec3(a3_4, sizeof(a3_4), &lim, &v), 0);
	amf_free(v);
	CHECK_EQ_INT(dec0(s5, sizeof(s5), NULL, &v), 0);
	amf_free(v);

	/* The default allows a long string as big as an RTMP message. */
	CHECK(amf_default_limits.max_string >= 0xFFFFFF);
	size_t n = 0xFFFFFF - 5;
	uint8_t *big = malloc(n + 5);
	big[0] = 0x0C;
	wr_be32(big + 1, (uint32_t)n);
	memset(big + 5, 'z', n);
	CHECK_EQ_INT(dec0(big, n + 5, NULL, &v), 0);
	size_t got = 0;
	CHECK(amf_get_string(v, &got) != NULL && got == n);
	amf_free(v);
	free(big);

	/* The total materialised bytes are bounded too. */
	lim = (struct amf_limits){.max_total_bytes = 8};
	CHECK_EQ_INT(dec0(s4, sizeof(s4), &lim, &v), 0);
	amf_free(v);
	CHECK_EQ_INT(dec0(key5, sizeof(key5), &lim, &v), 0);
	amf_free(v);
	lim.max_total_bytes = 4;
	CHECK_EQ_INT(dec0(key5, sizeof(key5), &lim, &v), -E2BIG);
}

static void test_limit_counts_vs_bytes(void)
{
	/* Counts larger than the bytes left fail at once, without allocating by them. */
	static const uint8_t strict[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05, 0x05, 0x05, 0x05, 0x05};
	static const uint8_t a3_dense[] = {0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01};
	static const uint8_t a3_sealed[] = {0x0A, 0xFF, 0xFF, 0xFF, 0xF3, 0x01, 0x01, 0x01};
	static const uint8_t a3_vec[] = {0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0, 0, 0, 0};
	static const uint8_t a3_bytes[] = {0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
	static const uint8_t a3_str[] = {0x06, 0xBF, 0xFF, 0xFF, 0xFF, 0x00};
	struct amf_value *v = NULL;

	CHECK_EQ_INT(dec0(strict, sizeof(strict), NULL, &v), -EPROTO);
	CHECK(v == NULL);
	CHECK_EQ_INT(dec3(a3_dense, sizeof(a3_dense), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(a3_sealed, sizeof(a3_sealed), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(a3_vec, sizeof(a3_vec), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(a3_bytes, sizeof(a3_bytes), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(a3_str, sizeof(a3_str), NULL, &v), -EPROTO);
	CHECK(v == NULL);
}

/* ---- AMF3 ---- */

static void test_amf3_integers(void)
{
	static const struct {
		uint8_t b[5];
		size_t n;
		double want;
	} cases[] = {
		{{0x04, 0x00}, 2, 0},
		{{0x04, 0x7F}, 2, 127},
		{{0x04, 0x81, 0x00}, 3, 128},
		{{0x04, 0xFF, 0x7F}, 3, 0x3FFF},
		{{0x04, 0x81, 0x80, 0x00}, 4, 0x4000},
		{{0x04, 0xFF, 0xFF, 0x7F}, 4, 0x1FFFFF},
		{{0x04, 0x80, 0xC0, 0x80, 0x00}, 5, 0x200000},
		{{0x04, 0xBF, 0xFF, 0xFF, 0xFF}, 5, 0x0FFFFFFF},
		{{0x04, 0xC0, 0x80, 0x80, 0x00}, 5, -268435456},
		{{0x04, 0xFF, 0xFF, 0xFF, 0xFF}, 5, -1},
		{{0x04, 0xFF, 0xFF, 0xFF, 0xFE}, 5, -2},
		{{0x04, 0x80, 0x80, 0x80, 0x80}, 5, 128}, /* 4th byte is 8 bits: 0x80 */
	};
	struct amf_value *v;
	struct buf b = {0};

	for (size_t i = 0; i < N(cases); i++) {
		CHECK_EQ_INT(dec3(cases[i].b, cases[i].n, NULL, &v), 0);
		CHECK(num(v) == cases[i].want);
		CHECK_EQ_INT(prefixes_fail(amf3_decode, cases[i].b, cases[i].n), 0);
		/* Re-encoding gives the minimal form (the same bytes, except the overlong one). */
		buf_reset(&b);
		CHECK_EQ_INT(amf3_encode(&b, v), 0);
		if (i + 1 < N(cases))
			CHECK(buf_used(&b) == cases[i].n &&
			      memcmp(buf_head(&b), cases[i].b, cases[i].n) == 0);
		amf_free(v);
	}
	/* Beyond 29 bits and -0 become doubles. */
	static const double dbl[] = {268435456, -268435457, 0.5, -0.0, 1e20};
	for (size_t i = 0; i < N(dbl); i++) {
		v = amf_number(dbl[i]);
		buf_reset(&b);
		CHECK_EQ_INT(amf3_encode(&b, v), 0);
		CHECK_EQ_INT(buf_used(&b), 9);
		CHECK_EQ_INT(buf_head(&b)[0], 0x05);
		CHECK(round_trip(v, true));
		amf_free(v);
	}
	buf_free(&b);
}

static void test_amf3_strings(void)
{
	/* ["abc", ref 0, "", "x", ref 1] */
	static const uint8_t ok[] = {0x09, 0x0B, 0x01, 0x06, 0x07, 'a', 'b', 'c', 0x06, 0x00,
				     0x06, 0x01, 0x06, 0x03, 'x', 0x06, 0x02};
	static const uint8_t empty_not_in_table[] = {0x09, 0x05, 0x01, 0x06, 0x01, 0x06, 0x00};
	static const uint8_t bad_ref[] = {0x06, 0x00};
	struct amf_value *v;

	CHECK_EQ_INT(dec3(ok, sizeof(ok), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[\"abc\",\"abc\",\"\",\"x\",\"x\"]");
	amf_free(v);
	CHECK_EQ_INT(dec3(empty_not_in_table, sizeof(empty_not_in_table), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(bad_ref, sizeof(bad_ref), NULL, &v), -EPROTO);
	CHECK(v == NULL);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, ok, sizeof(ok)), 0);
}

/* [ Foo{a:1,b:"hi",c:false}, Foo{a:2,b:"hi",c:true,d:null} (traits by reference), ref obj 1 ] */
static const uint8_t a3_objects[] = {
	0x09, 0x07, 0x01,
	0x0A, 0x2B, 0x07, 'F', 'o', 'o', 0x03, 'a', 0x03, 'b', /* traits: Foo, dynamic, [a, b] */
	0x04, 0x01, 0x06, 0x05, 'h', 'i',                      /* a=1, b="hi" */
	0x03, 'c', 0x02, 0x01,                                 /* c=false, end */
	0x0A, 0x01,                                            /* traits reference 0 */
	0x04, 0x02, 0x06, 0x06,                                /* a=2, b=ref "hi" */
	0x08, 0x03, 0x03, 'd', 0x01, 0x01,                     /* ref "c"=true, d=null, end */
	0x0A, 0x02,                                            /* object reference 1 */
};

static void test_amf3_objects(void)
{
	static const uint8_t anon[] = {0x0A, 0x0B, 0x01, 0x03, 'a', 0x04, 0x05, 0x01};
	static const uint8_t sealed_anon[] = {0x0A, 0x13, 0x01, 0x03, 'k', 0x01};
	static const uint8_t self[] = {0x0A, 0x0B, 0x01, 0x03, 'x', 0x0A, 0x00, 0x01};
	static const uint8_t ext[] = {0x0A, 0x07, 0x07, 'F', 'o', 'o', 0x00};
	static const uint8_t bad_traits[] = {0x0A, 0x05};
	static const uint8_t bad_obj_ref[] = {0x0A, 0x02};
	static const uint8_t dict[] = {0x11, 0x03, 0x00};
	struct amf_value *v, *o;

	CHECK_EQ_INT(dec3(a3_objects, sizeof(a3_objects), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[<Foo>{\"a\":1,\"b\":\"hi\",\"c\":false},"
			      "<Foo>{\"a\":2,\"b\":\"hi\",\"c\":true,\"d\":null},"
			      "<Foo>{\"a\":1,\"b\":\"hi\",\"c\":false}]");
	o = amf_index(v, 1);
	CHECK_EQ_INT(amf_type_of(o), AMF_TYPED_OBJECT);
	CHECK_EQ_STR(amf_class_name(o, NULL), "Foo");
	CHECK_EQ_STR(amf_prop_key(o, 3, NULL), "d");
	CHECK(amf_equal(amf_index(v, 0), amf_index(v, 2)));
	CHECK(round_trip(v, true));
	amf_free(v);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, a3_objects, sizeof(a3_objects)), 0);

	CHECK_EQ_INT(dec3(anon, sizeof(anon), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "{\"a\":5}");
	amf_free(v);
	/* Sealed member "k" of an anonymous class, value null. */
	CHECK_EQ_INT(dec3(sealed_anon, sizeof(sealed_anon), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "{\"k\":null}");
	amf_free(v);

	CHECK_EQ_INT(dec3(self, sizeof(self), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(ext, sizeof(ext), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(bad_traits, sizeof(bad_traits), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(bad_obj_ref, sizeof(bad_obj_ref), NULL, &v), -EPROTO);
	CHECK_EQ_INT(dec3(dict, sizeof(dict), NULL, &v), -EPROTO);
	CHECK(v == NULL);
}

static void test_amf3_arrays_and_leaves(void)
{
	static const uint8_t mixed[] = {0x09, 0x05, 0x03, 'k', 0x04, 0x01, 0x01, 0x04, 0x02, 0x04, 0x03};
	static const uint8_t dense[] = {0x09, 0x05, 0x01, 0x02, 0x03};
	static const uint8_t dates[] = {0x09, 0x05, 0x01, 0x08, 0x01, D_1_5E12, 0x08, 0x02};
	static const uint8_t bytes[] = {0x0C, 0x07, 0x01, 0x02, 0xFF};
	static const uint8_t xml[] = {0x0B, 0x07, '<', 'a', '>'};
	static const uint8_t xmldoc[] = {0x07, 0x07, '<', 'b', '>'};
	static const uint8_t vint[] = {0x0D, 0x05, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 7};
	static const uint8_t vuint[] = {0x0E, 0x03, 0x01, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t vdbl[] = {0x0F, 0x03, 0x00, D_0_5};
	static const uint8_t vobj[] = {0x10, 0x05, 0x00, 0x01, 0x04, 0x01, 0x06, 0x03, 'z'};
	static const uint8_t simple[] = {0x09, 0x09, 0x01, 0x00, 0x01, 0x02, 0x03};
	struct amf_value *v;
	const uint8_t *p;
	size_t n = 0;

	CHECK_EQ_INT(dec3(mixed, sizeof(mixed), NULL, &v), 0);
	CHECK_EQ_INT(amf_type_of(v), AMF_ECMA_ARRAY);
	CHECK_EQ_STR(dump(v), "ecma{\"k\":1,\"0\":2,\"1\":3}");
	CHECK(round_trip(v, true));
	amf_free(v);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, mixed, sizeof(mixed)), 0);

	CHECK_EQ_INT(dec3(dense, sizeof(dense), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[false,true]");
	amf_free(v);

	CHECK_EQ_INT(dec3(dates, sizeof(dates), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[date(1500000000000,0),date(1500000000000,0)]");
	amf_free(v);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, dates, sizeof(dates)), 0);

	CHECK_EQ_INT(dec3(bytes, sizeof(bytes), NULL, &v), 0);
	p = amf_get_bytes(v, &n);
	CHECK(p && n == 3 && p[0] == 1 && p[2] == 0xFF);
	CHECK(amf_get_string(v, NULL) == NULL);
	CHECK(round_trip(v, true));
	amf_free(v);

	CHECK_EQ_INT(dec3(xml, sizeof(xml), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "xml(\"<a>\")");
	amf_free(v);
	CHECK_EQ_INT(dec3(xmldoc, sizeof(xmldoc), NULL, &v), 0);
	CHECK_EQ_STR(str(v), "<b>");
	amf_free(v);

	CHECK_EQ_INT(dec3(vint, sizeof(vint), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[-1,7]");
	amf_free(v);
	CHECK_EQ_INT(dec3(vuint, sizeof(vuint), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[4294967295]");
	amf_free(v);
	CHECK_EQ_INT(dec3(vdbl, sizeof(vdbl), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[0.5]");
	amf_free(v);
	CHECK_EQ_INT(dec3(vobj, sizeof(vobj), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[1,\"z\"]");
	amf_free(v);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, vobj, sizeof(vobj)), 0);

	CHECK_EQ_INT(dec3(simple, sizeof(simple), NULL, &v), 0);
	CHECK_EQ_STR(dump(v), "[undefined,null,false,true]");
	amf_free(v);
}

static void test_amf3_round_trip(void)
{
	struct amf_value *v = rich_value(true), *o;
	struct buf b = {0};

	/* AMF3 has no time zone: use 0 so the trees compare equal. */
	CHECK(round_trip(v, true));
	CHECK_EQ_INT(amf3_encode(&b, v), 0);
	CHECK_EQ_INT(prefixes_fail(amf3_decode, buf_head(&b), buf_used(&b)), 0);
	buf_free(&b);
	amf_free(v);

	/* An anonymous object with an empty key goes out with sealed traits. */
	o = amf_object();
	amf_object_set(o, "", amf_number(1));
	amf_object_set(o, "b", amf_number(2));
	CHECK(round_trip(o, true));
	amf_free(o);

	/* An ECMA array with an empty key cannot be expressed. */
	o = amf_ecma_array();
	amf_object_set(o, "", amf_number(1));
	amf_array_push(o, amf_null());
	b = (struct buf){0};
	buf_put_u8(&b, 0x42);
	CHECK_EQ_INT(amf3_encode(&b, o), -EINVAL);
	CHECK_EQ_INT(buf_used(&b), 1); /* unchanged */
	buf_free(&b);
	amf_free(o);
}

static void test_avmplus_switch(void)
{
	/* "x", then an AMF3 object {a:5}, then an AMF3 integer. */
	static const uint8_t body[] = {0x02, 0x00, 0x01, 'x', 0x11, 0x0A, 0x0B, 0x01, 0x03,
				       'a',  0x04, 0x05, 0x01, 0x11, 0x04, 0x81, 0x00};
	/* Each avmplus value has fresh AMF3 tables: the second cannot see "a". */
	static const uint8_t no_share[] = {0x11, 0x06, 0x03, 'a', 0x11, 0x06, 0x00};
	struct amf_value *list;

	CHECK_EQ_INT(amf0_decode_all(body, sizeof(body), NULL, &list), 0);
	CHECK_EQ_STR(dump(list), "[\"x\",{\"a\":5},128]");
	amf_free(list);
	CHECK_EQ_INT(amf0_decode_all(no_share, sizeof(no_share), NULL, &list), -EPROTO);
	CHECK(list == NULL);
	CHECK_EQ_INT(prefixes_fail(amf0_decode, body + 4, 9), 0);
}

/* ---- API ---- */

static void test_api(void)
{
	struct amf_value *o = amf_object(), *a = amf_strict_array(), *c;
	struct buf b = {0};
	char longkey[70000];
	size_t n = 0;

	CHECK_EQ_INT(amf_object_set(o, "k", amf_number(1)), 0);
	CHECK_EQ_INT(amf_object_set(o, "k", amf_string("two")), 0); /* replaces */
	CHECK_EQ_INT(amf_count(o), 1);
	CHECK_EQ_STR(str(amf_get(o, "k")), "two");
	CHECK_EQ_STR(amf_prop_key(o, 0, &n), "k");
	CHECK_EQ_INT(n, 1);
	CHECK(amf_prop_value(o, 0) == amf_get(o, "k"));
	CHECK(amf_prop_key(o, 1, NULL) == NULL);
	CHECK_EQ_INT(amf_object_set(o, "x", NULL), -ENOMEM);
	CHECK_EQ_INT(amf_object_set(a, "x", amf_null()), -EINVAL);
	CHECK_EQ_INT(amf_array_push(o, amf_null()), -EINVAL);
	CHECK_EQ_INT(amf_array_push(a, NULL), -ENOMEM);
	CHECK_EQ_INT(amf_array_push(a, amf_number(0)), 0);
	CHECK(amf_index(a, 0) != NULL && amf_index(a, 1) == NULL);
	CHECK(amf_index(o, 0) == NULL);
	CHECK(amf_get(a, "k") == NULL);
	CHECK(amf_get(NULL, "k") == NULL);
	CHECK_EQ_INT(amf_count(NULL), 0);
	CHECK_EQ_INT(amf_type_of(NULL), AMF_UNDEFINED);
	CHECK(amf_get_string(amf_index(a, 0), NULL) == NULL);
	CHECK(amf_class_name(o, NULL) == NULL);

	CHECK(!amf_is_true(amf_index(a, 0)));
	c = amf_number(NAN);
	CHECK(!amf_is_true(c));
	amf_free(c);
	c = amf_number(-2);
	CHECK(amf_is_true(c));
	amf_free(c);
	CHECK(!amf_is_true(amf_get(o, "k"))); /* strings are not "true" */

	c = amf_clone(o);
	CHECK(c != NULL && c != o && amf_equal(c, o));
	amf_free(c);
	CHECK(!amf_equal(o, a));
	CHECK(amf_equal(NULL, NULL));

	/* A key over 65535 bytes cannot be AMF0: -EINVAL and the buffer is unchanged. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	amf_object_set(o, longkey, amf_null());
	amf0_put_null(&b);
	CHECK_EQ_INT(amf0_encode(&b, o), -EINVAL);
	CHECK_EQ_INT(buf_used(&b), 1);
	CHECK_EQ_INT(amf3_encode(&b, o), 0); /* AMF3 lengths go to 2^28 - 1 */
	CHECK_EQ_INT(amf0_encode(&b, NULL), -EINVAL);
	buf_free(&b);

	/* The dump is bounded. */
	CHECK(strlen(dump(o)) <= AMF_DUMP_MAX + 3);
	CHECK(strcmp(dump(o) + strlen(dump(o)) - 3, "...") == 0);
	CHECK_EQ_STR(dump(NULL), "(nil)");
	amf_free(o);
	amf_free(a);
	amf_free(NULL);

	c = amf_string_len("q\"\\\x01\xc3\xa9", 6);
	CHECK_EQ_STR(dump(c), "\"q\\\"\\\\\\x01\\xc3\\xa9\"");
	amf_free(c);
	c = amf_strict_array();
	amf_array_push(c, amf_number(0.1));
	amf_array_push(c, amf_number(-INFINITY));
	amf_array_push(c, amf_number(1e21));
	amf_array_push(c, amf_byte_array(NULL, 0));
	amf_array_push(c, amf_typed_object("T"));
	CHECK_EQ_STR(dump(c), "[0.1,-Infinity,1e+21,bytes(0),<T>{}]");
	amf_free(c);
}

int main(void)
{
	TEST_RUN(test_amf0_scalars_round_trip);
	TEST_RUN(test_amf0_containers_round_trip);
	TEST_RUN(test_amf0_exact_bytes);
	TEST_RUN(test_amf0_decode_vectors);
	TEST_RUN(test_amf0_connect_command);
	TEST_RUN(test_amf0_truncation);
	TEST_RUN(test_amf0_malformed);
	TEST_RUN(test_amf0_ecma_lying_count);
	TEST_RUN(test_amf0_references);
	TEST_RUN(test_amf0_reference_bombs);
	TEST_RUN(test_limit_depth);
	TEST_RUN(test_limit_depth_across_avmplus);
	TEST_RUN(test_limit_elements);
	TEST_RUN(test_limit_string);
	TEST_RUN(test_limit_counts_vs_bytes);
	TEST_RUN(test_amf3_integers);
	TEST_RUN(test_amf3_strings);
	TEST_RUN(test_amf3_objects);
	TEST_RUN(test_amf3_arrays_and_leaves);
	TEST_RUN(test_amf3_round_trip);
	TEST_RUN(test_avmplus_switch);
	TEST_RUN(test_api);
	return TEST_DONE();
}

/* clang-format on */
