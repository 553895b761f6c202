/*
 * amf3.c - the AMF3 codec (decoding into the amf.h value tree, encoding from it).
 *
 * Decoding keeps three reference tables for one top-level value:
 *   strings  - every non-empty inline string (values, keys, class names, sealed names); entries
 *              point into the input, so they cost no allocation
 *   objects  - every inline complex value (object, array, date, XML, byte array, vector), added
 *              before its members are read; a reference to one whose members are still being
 *              read is a cycle and is rejected with -EPROTO
 *   traits   - every inline trait description (class name, sealed member names, dynamic flag)
 * A reference is resolved by a deep copy charged to the call's budget (struct amf_dec).
 *
 *   U29     := 1-4 bytes, 7 bits per byte with a continuation bit, all 8 bits in the 4th byte
 *   U29S/O  := low bit 1 = inline (length/count in the upper bits), 0 = reference index
 *   object  := 0x0A U29O-traits [class sealed-names] sealed-values [(key value)* ""]
 *   array   := 0x09 U29A(dense count) (key value)* "" value{dense}
 *
 * Vectors (0x0D-0x10) decode into strict arrays; dictionaries (0x11) and externalizable objects
 * are rejected with -EPROTO.
 */
#include "amf_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum amf3_marker {
	AMF3_UNDEFINED = 0x00,
	AMF3_NULL = 0x01,
	AMF3_FALSE = 0x02,
	AMF3_TRUE = 0x03,
	AMF3_INTEGER = 0x04,
	AMF3_DOUBLE = 0x05,
	AMF3_STRING = 0x06,
	AMF3_XML_DOC = 0x07,
	AMF3_DATE = 0x08,
	AMF3_ARRAY = 0x09,
	AMF3_OBJECT = 0x0A,
	AMF3_XML = 0x0B,
	AMF3_BYTE_ARRAY = 0x0C,
	AMF3_VECTOR_INT = 0x0D,
	AMF3_VECTOR_UINT = 0x0E,
	AMF3_VECTOR_DOUBLE = 0x0F,
	AMF3_VECTOR_OBJECT = 0x10,
	AMF3_DICTIONARY = 0x11,
};

#define U29_MAX	      0x1FFFFFFFu
#define U29_LEN_MAX   (U29_MAX >> 1) /* lengths and counts carry a flag bit */
#define INT29_MIN     (-268435456.0)
#define INT29_MAX     268435455.0
#define TRAITS_INLINE 0x02u
#define TRAITS_EXT    0x04u
#define TRAITS_DYN    0x08u

struct str3 {
	const uint8_t *p;
	size_t n;
};

struct traits3 {
	struct str3 cls;
	struct str3 *sealed;
	size_t nsealed;
	bool dynamic;
};

struct obj3 {
	struct amf_value *v;
	bool done;
};

struct ctx3 {
	struct amf_dec *d;
	const uint8_t *p;
	size_t len, pos;
	struct str3 *strs;
	size_t nstrs, strs_cap;
	struct obj3 *objs;
	size_t nobjs, objs_cap;
	struct traits3 *traits;
	size_t ntraits, traits_cap;
};

static size_t left(const struct ctx3 *c)
{
	return c->len - c->pos;
}

static const uint8_t *at(const struct ctx3 *c)
{
	return c->p + c->pos;
}

static int rd_u8(struct ctx3 *c, uint8_t *v)
{
	if (left(c) < 1)
		return -EPROTO;
	*v = c->p[c->pos++];
	return 0;
}

static int rd_u29(struct ctx3 *c, uint32_t *v)
{
	uint32_t x = 0;
	uint8_t b;
	int i, ret;

	for (i = 0; i < 3; i++) {
		ret = rd_u8(c, &b);
		if (ret < 0)
			return ret;
		x = x << 7 | (b & 0x7Fu);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	ret = rd_u8(c, &b);
	if (ret < 0)
		return ret;
	*v = x << 8 | b;
	return 0;
}

/* UTF-8-vr: an inline string (added to the table unless empty) or a string reference. */
static int rd_str(struct ctx3 *c, struct str3 *s)
{
	uint32_t u;
	size_t n;
	int ret;

	ret = rd_u29(c, &u);
	if (ret < 0)
		return ret;
	if (!(u & 1)) {
		if (u >> 1 >= c->nstrs)
			return -EPROTO;
		*s = c->strs[u >> 1];
		return 0;
	}
	n = u >> 1;
	if (n > left(c))
		return -EPROTO;
	if (n > c->d->max_string)
		return -E2BIG;
	s->p = at(c);
	s->n = n;
	c->pos += n;
	if (n == 0)
		return 0;
	ret = amfi_grow((void **)&c->strs, &c->strs_cap, c->nstrs, sizeof(*c->strs));
	if (ret < 0)
		return ret;
	c->strs[c->nstrs++] = *s;
	return 0;
}

/* Reads a U29 with the inline flag; for a reference, stores the copy in *out and sets *ref. */
static int rd_header(struct ctx3 *c, uint32_t *u, bool *ref, struct amf_value **out)
{
	size_t idx;
	int ret;

	*ref = false;
	ret = rd_u29(c, u);
	if (ret < 0 || (*u & 1))
		return ret;
	*ref = true;
	idx = *u >> 1;
	if (idx >= c->nobjs || !c->objs[idx].done)
		return -EPROTO;
	return amfi_copy(c->d, c->objs[idx].v, out);
}

/* Adds a complex value to the object table; *idx is its slot. */
static int obj_add(struct ctx3 *c, struct amf_value *v, bool done, size_t *idx)
{
	int ret;

	ret = amfi_grow((void **)&c->objs, &c->objs_cap, c->nobjs, sizeof(*c->objs));
	if (ret < 0)
		return ret;
	c->objs[c->nobjs].v = v;
	c->objs[c->nobjs].done = done;
	if (idx)
		*idx = c->nobjs;
	c->nobjs++;
	return 0;
}

/* Charges and stores a freshly built leaf with @bytes string bytes (NULL: out of memory). */
static int leaf(struct ctx3 *c, struct amf_value *v, size_t bytes, struct amf_value **out)
{
	int ret = amfi_account(c->d, 1, bytes);

	if (ret < 0 || !v) {
		amf_free(v);
		return ret < 0 ? ret : -ENOMEM;
	}
	*out = v;
	return 0;
}

typedef int (*dec3_fn)(struct ctx3 *c, uint8_t marker, struct amf_value **out);

static int dec3_value(struct ctx3 *c, struct amf_value **out);

static int dec3_simple(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	static const enum amf_type types[] = {
	    [AMF3_UNDEFINED] = AMF_UNDEFINED,
	    [AMF3_NULL] = AMF_NULL,
	    [AMF3_FALSE] = AMF_BOOLEAN,
	    [AMF3_TRUE] = AMF_BOOLEAN,
	};
	struct amf_value *v;

	if (types[marker] == AMF_BOOLEAN)
		v = amf_bool(marker == AMF3_TRUE);
	else
		v = types[marker] == AMF_NULL ? amf_null() : amf_undefined();
	return leaf(c, v, 0, out);
}

static int dec3_integer(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	uint32_t u;
	int32_t i;
	int ret;

	(void)marker;
	ret = rd_u29(c, &u);
	if (ret < 0)
		return ret;
	i = (u & 0x10000000u) ? (int32_t)u - 0x20000000 : (int32_t)u;
	return leaf(c, amf_number(i), 0, out);
}

static int dec3_double(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	(void)marker;
	if (left(c) < 8)
		return -EPROTO;
	c->pos += 8;
	return leaf(c, amf_number(amfi_rd_double(at(c) - 8)), 0, out);
}

static int dec3_string(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	struct str3 s;
	int ret;

	(void)marker;
	ret = rd_str(c, &s);
	if (ret < 0)
		return ret;
	return leaf(c, amf_string_len((const char *)s.p, s.n), s.n, out);
}

/* XMLDocument, XML, ByteArray: U29 length (or object reference) and bytes. */
static int dec3_bytes(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	struct amf_value *v;
	uint32_t u;
	bool ref;
	size_t n;
	int ret;

	ret = rd_header(c, &u, &ref, out);
	if (ret < 0 || ref)
		return ret;
	n = u >> 1;
	if (n > left(c))
		return -EPROTO;
	if (n > c->d->max_string)
		return -E2BIG;
	if (marker == AMF3_BYTE_ARRAY)
		v = amf_byte_array(at(c), n);
	else
		v = amf_xml((const char *)at(c), n);
	c->pos += n;
	ret = leaf(c, v, n, out);
	if (ret == 0)
		ret = obj_add(c, *out, true, NULL);
	return ret;
}

static int dec3_date(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	uint32_t u;
	bool ref;
	int ret;

	(void)marker;
	ret = rd_header(c, &u, &ref, out);
	if (ret < 0 || ref)
		return ret;
	if (left(c) < 8)
		return -EPROTO;
	c->pos += 8;
	ret = leaf(c, amf_date(amfi_rd_double(at(c) - 8), 0), 0, out);
	if (ret == 0)
		ret = obj_add(c, *out, true, NULL);
	return ret;
}

/*
 * Starts complex value @v (NULL: out of memory; already charged): opens a nesting level and
 * registers it, incomplete, in the object table. Frees @v on failure.
 */
static int complex_begin(struct ctx3 *c, struct amf_value *v, size_t *idx)
{
	int ret;

	if (!v)
		return -ENOMEM;
	ret = amfi_enter(c->d);
	if (ret < 0)
		goto out_free;
	ret = obj_add(c, v, false, idx);
	if (ret < 0)
		goto out_leave;
	return 0;

out_leave:
	amfi_leave(c->d);
out_free:
	amf_free(v);
	return ret;
}

/* Ends complex value c->objs[idx]: on success stores it in *out, else frees it. */
static int complex_end(struct ctx3 *c, size_t idx, int ret, struct amf_value **out)
{
	amfi_leave(c->d);
	if (ret < 0) {
		amf_free(c->objs[idx].v);
		c->objs[idx].v = NULL;
		return ret;
	}
	c->objs[idx].done = true;
	*out = c->objs[idx].v;
	return 0;
}

/* Checks that @n items of at least @size bytes each fit the input and the element budget. */
static int check_count(struct ctx3 *c, size_t n, size_t size)
{
	if (n > left(c) / size)
		return -EPROTO;
	if (n > c->d->max_elements - c->d->elements)
		return -E2BIG;
	return 0;
}

/* Key/value pairs until the empty key. */
static int dec3_dynamic(struct ctx3 *c, struct amf_value *obj)
{
	struct amf_value *val;
	struct str3 key;
	int ret;

	for (;;) {
		ret = rd_str(c, &key);
		if (ret < 0 || key.n == 0)
			return ret;
		ret = dec3_value(c, &val);
		if (ret < 0)
			return ret;
		ret = amfi_prop_append(c->d, obj, key.p, key.n, val);
		if (ret < 0)
			return ret;
	}
}

static int dec3_dense(struct ctx3 *c, struct amf_value *arr, size_t n, bool keyed)
{
	struct amf_value *val;
	char key[24];
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = dec3_value(c, &val);
		if (ret < 0)
			return ret;
		if (keyed) {
			snprintf(key, sizeof(key), "%zu", i);
			ret = amfi_prop_append(c->d, arr, key, strlen(key), val);
		} else {
			ret = amf_array_push(arr, val);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int dec3_array(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	struct amf_value *v, *val;
	struct str3 key;
	size_t n, idx;
	uint32_t u;
	bool ref;
	int ret;

	(void)marker;
	ret = rd_header(c, &u, &ref, out);
	if (ret < 0 || ref)
		return ret;
	n = u >> 1;
	/* The first key decides the shape; reading it touches no object table slot. */
	ret = rd_str(c, &key);
	if (ret == 0)
		ret = amfi_account(c->d, 1, 0);
	if (ret == 0)
		ret = check_count(c, n, 1);
	if (ret < 0)
		return ret;
	v = key.n ? amf_ecma_array() : amf_strict_array();
	if (v && !key.n && amfi_items_reserve(v, n) < 0) {
		amf_free(v);
		return -ENOMEM;
	}
	ret = complex_begin(c, v, &idx);
	if (ret < 0)
		return ret;
	if (key.n) {
		ret = dec3_value(c, &val);
		if (ret == 0)
			ret = amfi_prop_append(c->d, v, key.p, key.n, val);
		if (ret == 0)
			ret = dec3_dynamic(c, v);
	}
	if (ret == 0)
		ret = dec3_dense(c, v, n, key.n != 0);
	return complex_end(c, idx, ret, out);
}

/* Inline traits: class name, sealed member names; added to the trait table. */
static int rd_traits(struct ctx3 *c, uint32_t u, struct traits3 **t)
{
	struct traits3 tr = {.nsealed = u >> 4, .dynamic = (u & TRAITS_DYN) != 0};
	size_t i;
	int ret;

	ret = rd_str(c, &tr.cls);
	if (ret < 0)
		return ret;
	if (u & TRAITS_EXT)
		return -EPROTO; /* externalizable: class-specific format */
	/* Each sealed member needs a name byte, a value byte and an element. */
	ret = check_count(c, tr.nsealed, 2);
	if (ret < 0)
		return ret;
	ret = amfi_grow((void **)&c->traits, &c->traits_cap, c->ntraits, sizeof(*c->traits));
	if (ret < 0)
		return ret;
	if (tr.nsealed) {
		tr.sealed = calloc(tr.nsealed, sizeof(*tr.sealed));
		if (!tr.sealed)
			return -ENOMEM;
	}
	for (i = 0; i < tr.nsealed; i++) {
		ret = rd_str(c, &tr.sealed[i]);
		if (ret < 0) {
			free(tr.sealed);
			return ret;
		}
	}
	c->traits[c->ntraits] = tr;
	*t = &c->traits[c->ntraits++];
	return 0;
}

static int dec3_object(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	struct amf_value *v, *val;
	struct traits3 *t, tr;
	size_t i, idx;
	uint32_t u;
	bool ref;
	int ret;

	(void)marker;
	ret = rd_header(c, &u, &ref, out);
	if (ret < 0 || ref)
		return ret;
	if (u & TRAITS_INLINE) {
		ret = rd_traits(c, u, &t);
		if (ret < 0)
			return ret;
	} else {
		if (u >> 2 >= c->ntraits)
			return -EPROTO;
		t = &c->traits[u >> 2];
	}
	/* Nested objects may grow (move) the trait table: keep a copy, not the pointer. */
	tr = *t;
	ret = amfi_account(c->d, 1, tr.cls.n);
	if (ret < 0)
		return ret;
	if (tr.cls.n)
		v = amf_typed_object_len((const char *)tr.cls.p, tr.cls.n);
	else
		v = amf_object();
	ret = complex_begin(c, v, &idx);
	if (ret < 0)
		return ret;
	for (i = 0; ret == 0 && i < tr.nsealed; i++) {
		ret = dec3_value(c, &val);
		if (ret == 0)
			ret = amfi_prop_append(c->d, v, tr.sealed[i].p, tr.sealed[i].n, val);
	}
	if (ret == 0 && tr.dynamic)
		ret = dec3_dynamic(c, v);
	return complex_end(c, idx, ret, out);
}

/* Vector.<int>, <uint>, <Number>, <Object>: a strict array of numbers or values. */
static int dec3_vector(struct ctx3 *c, uint8_t marker, struct amf_value **out)
{
	static const size_t item_size[] = {
	    [AMF3_VECTOR_INT - AMF3_VECTOR_INT] = 4,
	    [AMF3_VECTOR_UINT - AMF3_VECTOR_INT] = 4,
	    [AMF3_VECTOR_DOUBLE - AMF3_VECTOR_INT] = 8,
	    [AMF3_VECTOR_OBJECT - AMF3_VECTOR_INT] = 1,
	};
	size_t n, i, idx, size = item_size[marker - AMF3_VECTOR_INT];
	struct amf_value *v, *val;
	struct str3 type_name;
	uint8_t fixed;
	uint32_t u;
	bool ref;
	int ret;

	ret = rd_header(c, &u, &ref, out);
	if (ret < 0 || ref)
		return ret;
	n = u >> 1;
	ret = rd_u8(c, &fixed);
	if (ret == 0 && marker == AMF3_VECTOR_OBJECT)
		ret = rd_str(c, &type_name);
	if (ret == 0)
		ret = amfi_account(c->d, 1, 0);
	if (ret == 0)
		ret = check_count(c, n, size);
	if (ret < 0)
		return ret;
	v = amf_strict_array();
	if (v && amfi_items_reserve(v, n) < 0) {
		amf_free(v);
		return -ENOMEM;
	}
	ret = complex_begin(c, v, &idx);
	if (ret < 0)
		return ret;
	for (i = 0; ret == 0 && i < n; i++) {
		const uint8_t *p = at(c);

		if (marker == AMF3_VECTOR_OBJECT) {
			ret = dec3_value(c, &val);
		} else {
			c->pos += size;
			if (marker == AMF3_VECTOR_INT)
				val = amf_number(rd_be32(p) >= 0x80000000u
						     ? (double)rd_be32(p) - 4294967296.0
						     : (double)rd_be32(p));
			else if (marker == AMF3_VECTOR_UINT)
				val = amf_number(rd_be32(p));
			else
				val = amf_number(amfi_rd_double(p));
			ret = leaf(c, val, 0, &val);
		}
		if (ret == 0)
			ret = amf_array_push(v, val);
	}
	return complex_end(c, idx, ret, out);
}

/* NULL: dictionary and unknown markers. */
static const dec3_fn dec3_table[] = {
    [AMF3_UNDEFINED] = dec3_simple,
    [AMF3_NULL] = dec3_simple,
    [AMF3_FALSE] = dec3_simple,
    [AMF3_TRUE] = dec3_simple,
    [AMF3_INTEGER] = dec3_integer,
    [AMF3_DOUBLE] = dec3_double,
    [AMF3_STRING] = dec3_string,
    [AMF3_XML_DOC] = dec3_bytes,
    [AMF3_DATE] = dec3_date,
    [AMF3_ARRAY] = dec3_array,
    [AMF3_OBJECT] = dec3_object,
    [AMF3_XML] = dec3_bytes,
    [AMF3_BYTE_ARRAY] = dec3_bytes,
    [AMF3_VECTOR_INT] = dec3_vector,
    [AMF3_VECTOR_UINT] = dec3_vector,
    [AMF3_VECTOR_DOUBLE] = dec3_vector,
    [AMF3_VECTOR_OBJECT] = dec3_vector,
    [AMF3_DICTIONARY] = NULL,
};

static int dec3_value(struct ctx3 *c, struct amf_value **out)
{
	uint8_t m;
	int ret;

	*out = NULL;
	ret = rd_u8(c, &m);
	if (ret < 0)
		return ret;
	if (m >= sizeof(dec3_table) / sizeof(dec3_table[0]) || !dec3_table[m])
		return -EPROTO;
	return dec3_table[m](c, m, out);
}

int amfi_amf3_value(struct amf_dec *d, const uint8_t *p, size_t len, size_t *used,
		    struct amf_value **out)
{
	struct ctx3 c = {.d = d, .p = p, .len = len, .pos = 0};
	size_t i;
	int ret;

	ret = dec3_value(&c, out);
	if (ret == 0)
		*used = c.pos;
	for (i = 0; i < c.ntraits; i++)
		free(c.traits[i].sealed);
	free(c.traits);
	free(c.objs);
	free(c.strs);
	return ret;
}

int amf3_decode(const uint8_t *p, size_t len, size_t *used, const struct amf_limits *lim,
		struct amf_value **out)
{
	struct amf_dec d;
	size_t n = 0;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (used)
		*used = 0;
	if (!p && len)
		return -EINVAL;
	amfi_dec_init(&d, lim, len);
	ret = amfi_amf3_value(&d, p, len, &n, out);
	amfi_dec_fini(&d);
	if (ret == 0 && used)
		*used = n;
	return ret;
}

/* ---- encoding ---- */

static int put_u29(struct buf *out, uint32_t v)
{
	uint8_t b[4];
	size_t n;

	if (v > U29_MAX)
		return -EINVAL;
	if (v < 0x80) {
		b[0] = (uint8_t)v;
		n = 1;
	} else if (v < 0x4000) {
		b[0] = (uint8_t)(v >> 7 | 0x80);
		b[1] = (uint8_t)(v & 0x7F);
		n = 2;
	} else if (v < 0x200000) {
		b[0] = (uint8_t)(v >> 14 | 0x80);
		b[1] = (uint8_t)((v >> 7 & 0x7F) | 0x80);
		b[2] = (uint8_t)(v & 0x7F);
		n = 3;
	} else {
		b[0] = (uint8_t)(v >> 22 | 0x80);
		b[1] = (uint8_t)((v >> 15 & 0x7F) | 0x80);
		b[2] = (uint8_t)((v >> 8 & 0x7F) | 0x80);
		b[3] = (uint8_t)v;
		n = 4;
	}
	return buf_append(out, b, n);
}

/* U29 length/count with the inline flag. */
static int put_len(struct buf *out, size_t n)
{
	if (n > U29_LEN_MAX)
		return -EINVAL;
	return put_u29(out, (uint32_t)(n << 1 | 1));
}

static int put_str(struct buf *out, const char *s, size_t n)
{
	int ret = put_len(out, n);

	return ret < 0 ? ret : buf_append(out, s, n);
}

static int enc3_value(struct buf *out, const struct amf_value *v, unsigned depth);

static bool is_int29(double d)
{
	return d >= INT29_MIN && d <= INT29_MAX && d == (double)(int32_t)d &&
	       !(d == 0 && signbit(d));
}

/* Integer when the value fits 29 bits (and is not -0), double otherwise. */
static int enc3_number(struct buf *out, double d)
{
	int ret;

	if (is_int29(d)) {
		ret = buf_put_u8(out, AMF3_INTEGER);
		return ret < 0 ? ret : put_u29(out, (uint32_t)(int32_t)d & U29_MAX);
	}
	ret = buf_put_u8(out, AMF3_DOUBLE);
	return ret < 0 ? ret : amfi_put_double(out, d);
}

/* Key/value pairs ended by the empty string; an empty key cannot be expressed. */
static int put_dynamic(struct buf *out, const struct amf_value *v, unsigned depth)
{
	size_t i, klen;
	const char *key;
	int ret;

	for (i = 0; i < amf_count(v); i++) {
		key = amf_prop_key(v, i, &klen);
		if (klen == 0)
			return -EINVAL;
		ret = put_str(out, key, klen);
		if (ret == 0)
			ret = enc3_value(out, amf_prop_value(v, i), depth + 1);
		if (ret < 0)
			return ret;
	}
	return put_u29(out, 1);
}

static bool has_empty_key(const struct amf_value *v)
{
	size_t i, klen;

	for (i = 0; i < amf_count(v); i++)
		if (amf_prop_key(v, i, &klen) && klen == 0)
			return true;
	return false;
}

/*
 * Objects: inline traits. Anonymous objects are dynamic (class "", no sealed members) unless a
 * key is empty; typed objects and those carry every property as a sealed member.
 */
static int enc3_object(struct buf *out, const struct amf_value *v, unsigned depth)
{
	size_t i, n = amf_count(v), klen, cls_len = 0;
	const char *cls = amf_class_name(v, &cls_len);
	const char *key;
	int ret;

	if (!cls && !has_empty_key(v)) {
		ret = put_u29(out, 0x0B); /* inline object, inline traits, dynamic, 0 sealed */
		if (ret == 0)
			ret = put_str(out, "", 0);
		return ret < 0 ? ret : put_dynamic(out, v, depth);
	}
	if (n > U29_MAX >> 4)
		return -EINVAL;
	ret = put_u29(out, (uint32_t)(n << 4 | 0x03));
	if (ret == 0)
		ret = put_str(out, cls ? cls : "", cls_len);
	for (i = 0; ret == 0 && i < n; i++) {
		key = amf_prop_key(v, i, &klen);
		ret = put_str(out, key, klen);
	}
	for (i = 0; ret == 0 && i < n; i++)
		ret = enc3_value(out, amf_prop_value(v, i), depth + 1);
	return ret;
}

static int enc3_ecma_array(struct buf *out, const struct amf_value *v, unsigned depth)
{
	int ret = put_len(out, 0);

	return ret < 0 ? ret : put_dynamic(out, v, depth);
}

static int enc3_strict_array(struct buf *out, const struct amf_value *v, unsigned depth)
{
	size_t i, n = amf_count(v);
	int ret = put_len(out, n);

	if (ret == 0)
		ret = put_str(out, "", 0);
	for (i = 0; ret == 0 && i < n; i++)
		ret = enc3_value(out, amf_index(v, i), depth + 1);
	return ret;
}

static const uint8_t enc3_marker[] = {
    [AMF_NUMBER] = AMF3_DOUBLE, /* or AMF3_INTEGER: enc3_number() decides */
    [AMF_BOOLEAN] = AMF3_FALSE, /* or AMF3_TRUE */
    [AMF_STRING] = AMF3_STRING,	      [AMF_OBJECT] = AMF3_OBJECT,
    [AMF_NULL] = AMF3_NULL,	      [AMF_UNDEFINED] = AMF3_UNDEFINED,
    [AMF_ECMA_ARRAY] = AMF3_ARRAY,    [AMF_STRICT_ARRAY] = AMF3_ARRAY,
    [AMF_DATE] = AMF3_DATE,	      [AMF_XML] = AMF3_XML,
    [AMF_TYPED_OBJECT] = AMF3_OBJECT, [AMF_BYTE_ARRAY] = AMF3_BYTE_ARRAY,
};

static int enc3_value(struct buf *out, const struct amf_value *v, unsigned depth)
{
	const char *s;
	double d = 0;
	size_t n = 0;
	bool b = false;
	int ret;

	if (!v || depth > AMF_MAX_NESTING)
		return -EINVAL;
	if (amf_get_number(v, &d))
		return enc3_number(out, d);
	if (amf_get_bool(v, &b))
		return buf_put_u8(out, b ? AMF3_TRUE : AMF3_FALSE);
	ret = buf_put_u8(out, enc3_marker[amf_type_of(v)]);
	if (ret < 0)
		return ret;
	switch (amf_type_of(v)) {
	case AMF_STRING:
	case AMF_XML:
		s = amf_get_string(v, &n);
		return put_str(out, s, n);
	case AMF_BYTE_ARRAY:
		s = (const char *)amf_get_bytes(v, &n);
		return put_str(out, s, n);
	case AMF_DATE:
		amf_get_date(v, &d, NULL);
		ret = put_u29(out, 1); /* inline */
		return ret < 0 ? ret : amfi_put_double(out, d);
	case AMF_OBJECT:
	case AMF_TYPED_OBJECT:
		return enc3_object(out, v, depth);
	case AMF_ECMA_ARRAY:
		return enc3_ecma_array(out, v, depth);
	case AMF_STRICT_ARRAY:
		return enc3_strict_array(out, v, depth);
	case AMF_NULL:
	case AMF_UNDEFINED:
		return 0;
	case AMF_NUMBER:
	case AMF_BOOLEAN:
		break;
	}
	return -EINVAL;
}

int amf3_encode(struct buf *out, const struct amf_value *v)
{
	size_t used = buf_used(out);
	int ret = enc3_value(out, v, 0);

	if (ret < 0)
		out->len = out->off + used;
	return ret;
}
