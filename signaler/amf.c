/*
 * amf.c - the AMF value tree, the AMF0 codec and the debug dump. AMF3 lives in amf3.c.
 *
 * Decoding walks the input with a cursor (struct rd) and charges every node, string byte and
 * nesting level to the call's budget (struct amf_dec) before allocating anything, so no length
 * or count read from the wire is trusted: each is checked against the bytes that remain and
 * against the limits first. Markers dispatch through a table; a NULL slot is a rejected marker.
 *
 *   value    := marker payload
 *   object   := 0x03 (u16 key, value)* 00 00 09      typed := 0x10 u16 class (key value)* 00 00 09
 *   ecma     := 0x08 u32 hint (key, value)* 00 00 09  strict := 0x0A u32 count value{count}
 *   reference:= 0x07 u16 index into the complex values (object, ecma, strict, typed) seen so far
 */
#include "amf_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum amf0_marker {
	AMF0_NUMBER = 0x00,
	AMF0_BOOLEAN = 0x01,
	AMF0_STRING = 0x02,
	AMF0_OBJECT = 0x03,
	AMF0_MOVIECLIP = 0x04,
	AMF0_NULL = 0x05,
	AMF0_UNDEFINED = 0x06,
	AMF0_REFERENCE = 0x07,
	AMF0_ECMA_ARRAY = 0x08,
	AMF0_OBJECT_END = 0x09,
	AMF0_STRICT_ARRAY = 0x0A,
	AMF0_DATE = 0x0B,
	AMF0_LONG_STRING = 0x0C,
	AMF0_UNSUPPORTED = 0x0D,
	AMF0_RECORDSET = 0x0E,
	AMF0_XML_DOC = 0x0F,
	AMF0_TYPED_OBJECT = 0x10,
	AMF0_AVMPLUS = 0x11,
};

#define DEFAULT_MAX_DEPTH    32u
#define DEFAULT_MAX_ELEMENTS 4096u
#define AUTO_TOTAL_SLACK     ((size_t)1 << 20)

const struct amf_limits amf_default_limits = {
    .max_depth = DEFAULT_MAX_DEPTH,
    .max_elements = DEFAULT_MAX_ELEMENTS,
    .max_string = AMF_DEFAULT_MAX_STRING,
    .max_total_bytes = 0, /* 4 * input + 1 MiB */
};

struct amf_prop {
	char *key; /* NUL-terminated copy */
	size_t key_len;
	struct amf_value *val;
};

struct amf_value {
	enum amf_type type;
	union {
		double num;
		bool boolean;
		struct {
			double ms;
			int16_t tz;
		} date;
		struct {
			char *p; /* NUL-terminated copy */
			size_t len;
		} str; /* string, XML, byte array */
		struct {
			struct amf_prop *v;
			size_t n, cap;
			char *cls; /* typed objects only */
			size_t cls_len;
		} obj; /* object, ECMA array, typed object */
		struct {
			struct amf_value **v;
			size_t n, cap;
		} arr; /* strict array */
	} u;
};

/* What a node holds, by type: drives freeing, copying, comparing. */
enum amf_kind { KIND_SCALAR, KIND_BYTES, KIND_PROPS, KIND_ITEMS };

/* clang-format off */
static const enum amf_kind kind_of[] = {
	[AMF_NUMBER] = KIND_SCALAR,      [AMF_BOOLEAN] = KIND_SCALAR,
	[AMF_STRING] = KIND_BYTES,       [AMF_OBJECT] = KIND_PROPS,
	[AMF_NULL] = KIND_SCALAR,        [AMF_UNDEFINED] = KIND_SCALAR,
	[AMF_ECMA_ARRAY] = KIND_PROPS,   [AMF_STRICT_ARRAY] = KIND_ITEMS,
	[AMF_DATE] = KIND_SCALAR,        [AMF_XML] = KIND_BYTES,
	[AMF_TYPED_OBJECT] = KIND_PROPS, [AMF_BYTE_ARRAY] = KIND_BYTES,
};
/* clang-format on */

static enum amf_kind kind(const struct amf_value *v)
{
	return kind_of[v->type];
}

static bool has_kind(const struct amf_value *v, enum amf_kind k)
{
	return v && kind(v) == k;
}

/* ---- nodes ---- */

static struct amf_value *node_new(enum amf_type t)
{
	struct amf_value *v = calloc(1, sizeof(*v));

	if (v)
		v->type = t;
	return v;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *s;

	if (n == SIZE_MAX)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static struct amf_value *bytes_new(enum amf_type t, const void *p, size_t n)
{
	struct amf_value *v = node_new(t);

	if (!v)
		return NULL;
	v->u.str.p = dup_bytes(p, n);
	if (!v->u.str.p) {
		free(v);
		return NULL;
	}
	v->u.str.len = n;
	return v;
}

void amf_free(struct amf_value *v)
{
	size_t i;

	if (!v)
		return;
	switch (kind(v)) {
	case KIND_SCALAR:
		break;
	case KIND_BYTES:
		free(v->u.str.p);
		break;
	case KIND_PROPS:
		for (i = 0; i < v->u.obj.n; i++) {
			free(v->u.obj.v[i].key);
			amf_free(v->u.obj.v[i].val);
		}
		free(v->u.obj.v);
		free(v->u.obj.cls);
		break;
	case KIND_ITEMS:
		for (i = 0; i < v->u.arr.n; i++)
			amf_free(v->u.arr.v[i]);
		free(v->u.arr.v);
		break;
	}
	free(v);
}

struct amf_value *amf_number(double d)
{
	struct amf_value *v = node_new(AMF_NUMBER);

	if (v)
		v->u.num = d;
	return v;
}

struct amf_value *amf_bool(bool b)
{
	struct amf_value *v = node_new(AMF_BOOLEAN);

	if (v)
		v->u.boolean = b;
	return v;
}

struct amf_value *amf_string(const char *s)
{
	return bytes_new(AMF_STRING, s, strlen(s));
}

struct amf_value *amf_string_len(const char *s, size_t len)
{
	return bytes_new(AMF_STRING, s, len);
}

struct amf_value *amf_null(void)
{
	return node_new(AMF_NULL);
}

struct amf_value *amf_undefined(void)
{
	return node_new(AMF_UNDEFINED);
}

struct amf_value *amf_object(void)
{
	return node_new(AMF_OBJECT);
}

struct amf_value *amf_ecma_array(void)
{
	return node_new(AMF_ECMA_ARRAY);
}

struct amf_value *amf_strict_array(void)
{
	return node_new(AMF_STRICT_ARRAY);
}

struct amf_value *amf_typed_object(const char *class_name)
{
	return amf_typed_object_len(class_name, strlen(class_name));
}

struct amf_value *amf_typed_object_len(const char *class_name, size_t len)
{
	struct amf_value *v = node_new(AMF_TYPED_OBJECT);

	if (!v)
		return NULL;
	v->u.obj.cls = dup_bytes(class_name, len);
	if (!v->u.obj.cls) {
		free(v);
		return NULL;
	}
	v->u.obj.cls_len = len;
	return v;
}

struct amf_value *amf_date(double ms, int16_t tz_minutes)
{
	struct amf_value *v = node_new(AMF_DATE);

	if (v) {
		v->u.date.ms = ms;
		v->u.date.tz = tz_minutes;
	}
	return v;
}

struct amf_value *amf_xml(const char *s, size_t len)
{
	return bytes_new(AMF_XML, s, len);
}

struct amf_value *amf_byte_array(const void *p, size_t len)
{
	return bytes_new(AMF_BYTE_ARRAY, p, len);
}

int amfi_grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap : 4;
	while (ncap <= n) {
		if (ncap > SIZE_MAX / 2 / size)
			return -ENOMEM;
		ncap *= 2;
	}
	p = realloc(*v, ncap * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

/* Appends a property whose key was already copied; takes both @key and @val. */
static int props_add(struct amf_value *obj, char *key, size_t klen, struct amf_value *val)
{
	struct amf_prop *pr;
	int ret;

	ret = amfi_grow((void **)&obj->u.obj.v, &obj->u.obj.cap, obj->u.obj.n, sizeof(*pr));
	if (ret < 0) {
		free(key);
		amf_free(val);
		return ret;
	}
	pr = &obj->u.obj.v[obj->u.obj.n++];
	pr->key = key;
	pr->key_len = klen;
	pr->val = val;
	return 0;
}

static struct amf_prop *props_find(const struct amf_value *obj, const char *key, size_t klen)
{
	size_t i;

	for (i = 0; i < obj->u.obj.n; i++) {
		struct amf_prop *pr = &obj->u.obj.v[i];

		if (pr->key_len == klen && memcmp(pr->key, key, klen) == 0)
			return pr;
	}
	return NULL;
}

int amf_object_set(struct amf_value *obj, const char *key, struct amf_value *val)
{
	struct amf_prop *pr;
	size_t klen;
	char *k;

	if (!val)
		return -ENOMEM;
	if (!has_kind(obj, KIND_PROPS) || !key) {
		amf_free(val);
		return -EINVAL;
	}
	klen = strlen(key);
	pr = props_find(obj, key, klen);
	if (pr) {
		amf_free(pr->val);
		pr->val = val;
		return 0;
	}
	k = dup_bytes(key, klen);
	if (!k) {
		amf_free(val);
		return -ENOMEM;
	}
	return props_add(obj, k, klen, val);
}

int amfi_items_reserve(struct amf_value *arr, size_t n)
{
	if (n > SIZE_MAX - arr->u.arr.n)
		return -ENOMEM;
	if (n == 0)
		return 0;
	return amfi_grow((void **)&arr->u.arr.v, &arr->u.arr.cap, arr->u.arr.n + n - 1,
			 sizeof(*arr->u.arr.v));
}

int amf_array_push(struct amf_value *arr, struct amf_value *val)
{
	int ret;

	if (!val)
		return -ENOMEM;
	if (!has_kind(arr, KIND_ITEMS)) {
		amf_free(val);
		return -EINVAL;
	}
	ret = amfi_items_reserve(arr, 1);
	if (ret < 0) {
		amf_free(val);
		return ret;
	}
	arr->u.arr.v[arr->u.arr.n++] = val;
	return 0;
}

/* ---- accessors ---- */

enum amf_type amf_type_of(const struct amf_value *v)
{
	return v ? v->type : AMF_UNDEFINED;
}

size_t amf_count(const struct amf_value *v)
{
	if (has_kind(v, KIND_PROPS))
		return v->u.obj.n;
	if (has_kind(v, KIND_ITEMS))
		return v->u.arr.n;
	return 0;
}

struct amf_value *amf_index(const struct amf_value *v, size_t i)
{
	if (!has_kind(v, KIND_ITEMS) || i >= v->u.arr.n)
		return NULL;
	return v->u.arr.v[i];
}

struct amf_value *amf_get(const struct amf_value *obj, const char *key)
{
	struct amf_prop *pr;

	if (!has_kind(obj, KIND_PROPS) || !key)
		return NULL;
	pr = props_find(obj, key, strlen(key));
	return pr ? pr->val : NULL;
}

const char *amf_prop_key(const struct amf_value *obj, size_t i, size_t *len)
{
	if (!has_kind(obj, KIND_PROPS) || i >= obj->u.obj.n)
		return NULL;
	if (len)
		*len = obj->u.obj.v[i].key_len;
	return obj->u.obj.v[i].key;
}

struct amf_value *amf_prop_value(const struct amf_value *obj, size_t i)
{
	if (!has_kind(obj, KIND_PROPS) || i >= obj->u.obj.n)
		return NULL;
	return obj->u.obj.v[i].val;
}

const char *amf_class_name(const struct amf_value *v, size_t *len)
{
	if (!v || v->type != AMF_TYPED_OBJECT)
		return NULL;
	if (len)
		*len = v->u.obj.cls_len;
	return v->u.obj.cls;
}

bool amf_get_number(const struct amf_value *v, double *out)
{
	if (!v || v->type != AMF_NUMBER)
		return false;
	*out = v->u.num;
	return true;
}

bool amf_get_bool(const struct amf_value *v, bool *out)
{
	if (!v || v->type != AMF_BOOLEAN)
		return false;
	*out = v->u.boolean;
	return true;
}

bool amf_get_date(const struct amf_value *v, double *ms, int16_t *tz_minutes)
{
	if (!v || v->type != AMF_DATE)
		return false;
	if (ms)
		*ms = v->u.date.ms;
	if (tz_minutes)
		*tz_minutes = v->u.date.tz;
	return true;
}

const char *amf_get_string(const struct amf_value *v, size_t *len)
{
	if (!v || (v->type != AMF_STRING && v->type != AMF_XML))
		return NULL;
	if (len)
		*len = v->u.str.len;
	return v->u.str.p;
}

const uint8_t *amf_get_bytes(const struct amf_value *v, size_t *len)
{
	if (!v || v->type != AMF_BYTE_ARRAY)
		return NULL;
	if (len)
		*len = v->u.str.len;
	return (const uint8_t *)v->u.str.p;
}

bool amf_is_true(const struct amf_value *v)
{
	if (!v)
		return false;
	if (v->type == AMF_BOOLEAN)
		return v->u.boolean;
	if (v->type == AMF_NUMBER)
		return v->u.num != 0 && !isnan(v->u.num);
	return false;
}

static bool equal_at(const struct amf_value *a, const struct amf_value *b, unsigned depth)
{
	size_t i;

	if (!a || !b)
		return a == b;
	if (a->type != b->type || depth > AMF_MAX_NESTING)
		return false;
	switch (a->type) {
	case AMF_NUMBER:
		return memcmp(&a->u.num, &b->u.num, sizeof(double)) == 0;
	case AMF_BOOLEAN:
		return a->u.boolean == b->u.boolean;
	case AMF_DATE:
		return memcmp(&a->u.date.ms, &b->u.date.ms, sizeof(double)) == 0 &&
		       a->u.date.tz == b->u.date.tz;
	default:
		break;
	}
	switch (kind(a)) {
	case KIND_SCALAR:
		return true;
	case KIND_BYTES:
		return a->u.str.len == b->u.str.len &&
		       memcmp(a->u.str.p, b->u.str.p, a->u.str.len) == 0;
	case KIND_PROPS:
		if (a->u.obj.n != b->u.obj.n || a->u.obj.cls_len != b->u.obj.cls_len ||
		    (a->u.obj.cls_len && memcmp(a->u.obj.cls, b->u.obj.cls, a->u.obj.cls_len)))
			return false;
		for (i = 0; i < a->u.obj.n; i++) {
			const struct amf_prop *pa = &a->u.obj.v[i], *pb = &b->u.obj.v[i];

			if (pa->key_len != pb->key_len || memcmp(pa->key, pb->key, pa->key_len) ||
			    !equal_at(pa->val, pb->val, depth + 1))
				return false;
		}
		return true;
	case KIND_ITEMS:
		if (a->u.arr.n != b->u.arr.n)
			return false;
		for (i = 0; i < a->u.arr.n; i++)
			if (!equal_at(a->u.arr.v[i], b->u.arr.v[i], depth + 1))
				return false;
		return true;
	}
	return false;
}

bool amf_equal(const struct amf_value *a, const struct amf_value *b)
{
	return equal_at(a, b, 0);
}

/* ---- decode budget ---- */

struct amf0_ref {
	struct amf_value *v;
	bool done; /* false while its members are being decoded */
};

void amfi_dec_init(struct amf_dec *d, const struct amf_limits *lim, size_t input_len)
{
	if (!lim)
		lim = &amf_default_limits;
	memset(d, 0, sizeof(*d));
	d->max_depth = lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
	if (d->max_depth > AMF_MAX_NESTING)
		d->max_depth = AMF_MAX_NESTING;
	d->max_elements = lim->max_elements ? lim->max_elements : DEFAULT_MAX_ELEMENTS;
	d->max_string = lim->max_string ? lim->max_string : AMF_DEFAULT_MAX_STRING;
	if (lim->max_total_bytes)
		d->max_total = lim->max_total_bytes;
	else if (input_len > (SIZE_MAX - AUTO_TOTAL_SLACK) / 4)
		d->max_total = SIZE_MAX;
	else
		d->max_total = input_len * 4 + AUTO_TOTAL_SLACK;
}

void amfi_dec_fini(struct amf_dec *d)
{
	free(d->refs0);
	d->refs0 = NULL;
	d->nrefs0 = 0;
	d->refs0_cap = 0;
}

int amfi_account(struct amf_dec *d, size_t elements, size_t bytes)
{
	if (elements > d->max_elements - d->elements || bytes > d->max_total - d->bytes)
		return -E2BIG;
	d->elements += elements;
	d->bytes += bytes;
	return 0;
}

int amfi_enter(struct amf_dec *d)
{
	if (d->depth >= d->max_depth)
		return -E2BIG;
	d->depth++;
	return 0;
}

void amfi_leave(struct amf_dec *d)
{
	d->depth--;
}

int amfi_prop_append(struct amf_dec *d, struct amf_value *obj, const void *key, size_t klen,
		     struct amf_value *val)
{
	int ret;
	char *k;

	ret = klen > d->max_string ? -E2BIG : amfi_account(d, 0, klen);
	if (ret < 0) {
		amf_free(val);
		return ret;
	}
	k = dup_bytes(key, klen);
	if (!k) {
		amf_free(val);
		return -ENOMEM;
	}
	return props_add(obj, k, klen, val);
}

static int copy_props(struct amf_dec *d, const struct amf_value *src, struct amf_value *dst)
{
	size_t i;
	int ret;

	for (i = 0; i < src->u.obj.n; i++) {
		const struct amf_prop *pr = &src->u.obj.v[i];
		struct amf_value *val;

		ret = amfi_copy(d, pr->val, &val);
		if (ret < 0)
			return ret;
		ret = amfi_prop_append(d, dst, pr->key, pr->key_len, val);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int copy_items(struct amf_dec *d, const struct amf_value *src, struct amf_value *dst)
{
	size_t i;
	int ret;

	ret = amfi_items_reserve(dst, src->u.arr.n);
	if (ret < 0)
		return ret;
	for (i = 0; i < src->u.arr.n; i++) {
		ret = amfi_copy(d, src->u.arr.v[i], &dst->u.arr.v[dst->u.arr.n]);
		if (ret < 0)
			return ret;
		dst->u.arr.n++;
	}
	return 0;
}

int amfi_copy(struct amf_dec *d, const struct amf_value *src, struct amf_value **out)
{
	struct amf_value *v;
	int ret;

	*out = NULL;
	switch (kind(src)) {
	case KIND_SCALAR:
		ret = amfi_account(d, 1, 0);
		if (ret < 0)
			return ret;
		v = node_new(src->type);
		if (!v)
			return -ENOMEM;
		v->u = src->u;
		*out = v;
		return 0;
	case KIND_BYTES:
		ret = amfi_account(d, 1, src->u.str.len);
		if (ret < 0)
			return ret;
		*out = bytes_new(src->type, src->u.str.p, src->u.str.len);
		return *out ? 0 : -ENOMEM;
	case KIND_PROPS:
	case KIND_ITEMS:
		break;
	}
	ret = amfi_account(d, 1, src->type == AMF_TYPED_OBJECT ? src->u.obj.cls_len : 0);
	if (ret < 0)
		return ret;
	if (src->type == AMF_TYPED_OBJECT)
		v = amf_typed_object_len(src->u.obj.cls, src->u.obj.cls_len);
	else
		v = node_new(src->type);
	if (!v)
		return -ENOMEM;
	ret = amfi_enter(d);
	if (ret < 0)
		goto out_free;
	ret = kind(src) == KIND_PROPS ? copy_props(d, src, v) : copy_items(d, src, v);
	amfi_leave(d);
	if (ret < 0)
		goto out_free;
	*out = v;
	return 0;

out_free:
	amf_free(v);
	return ret;
}

struct amf_value *amf_clone(const struct amf_value *v)
{
	struct amf_limits unlimited = {
	    .max_depth = AMF_MAX_NESTING,
	    .max_elements = SIZE_MAX,
	    .max_string = SIZE_MAX,
	    .max_total_bytes = SIZE_MAX,
	};
	struct amf_value *copy = NULL;
	struct amf_dec d;

	if (!v)
		return NULL;
	amfi_dec_init(&d, &unlimited, 0);
	if (amfi_copy(&d, v, &copy) < 0)
		copy = NULL;
	amfi_dec_fini(&d);
	return copy;
}

/* ---- AMF0 decoding ---- */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static size_t rd_left(const struct rd *r)
{
	return r->len - r->pos;
}

static const uint8_t *rd_at(const struct rd *r)
{
	return r->p + r->pos;
}

double amfi_rd_double(const uint8_t *p)
{
	uint64_t u = (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

typedef int (*dec0_fn)(struct amf_dec *d, struct rd *r, struct amf_value **out);

static int dec0_value(struct amf_dec *d, struct rd *r, struct amf_value **out);

/* Charges and stores a freshly built scalar node (NULL: out of memory). */
static int dec0_scalar(struct amf_dec *d, struct amf_value *v, struct amf_value **out)
{
	int ret = amfi_account(d, 1, 0);

	if (ret < 0 || !v) {
		amf_free(v);
		return ret < 0 ? ret : -ENOMEM;
	}
	*out = v;
	return 0;
}

static int dec0_number(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	if (rd_left(r) < 8)
		return -EPROTO;
	r->pos += 8;
	return dec0_scalar(d, amf_number(amfi_rd_double(rd_at(r) - 8)), out);
}

static int dec0_boolean(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	if (rd_left(r) < 1)
		return -EPROTO;
	r->pos++;
	return dec0_scalar(d, amf_bool(rd_at(r)[-1] != 0), out);
}

static int dec0_null(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	(void)r;
	return dec0_scalar(d, amf_null(), out);
}

static int dec0_undefined(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	(void)r;
	return dec0_scalar(d, amf_undefined(), out);
}

static int dec0_date(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	const uint8_t *p = rd_at(r);
	int tz;

	if (rd_left(r) < 10)
		return -EPROTO;
	r->pos += 10;
	tz = (int)rd_be16(p + 8);
	if (tz >= 0x8000)
		tz -= 0x10000;
	return dec0_scalar(d, amf_date(amfi_rd_double(p), (int16_t)tz), out);
}

/* A string-like payload with a @hdr-byte (2 or 4) length header. */
static int dec0_bytes(struct amf_dec *d, struct rd *r, size_t hdr, enum amf_type t,
		      struct amf_value **out)
{
	size_t n;
	int ret;

	if (rd_left(r) < hdr)
		return -EPROTO;
	n = hdr == 2 ? rd_be16(rd_at(r)) : rd_be32(rd_at(r));
	r->pos += hdr;
	if (n > rd_left(r))
		return -EPROTO;
	if (n > d->max_string)
		return -E2BIG;
	ret = amfi_account(d, 1, n);
	if (ret < 0)
		return ret;
	*out = bytes_new(t, rd_at(r), n);
	if (!*out)
		return -ENOMEM;
	r->pos += n;
	return 0;
}

static int dec0_string(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	return dec0_bytes(d, r, 2, AMF_STRING, out);
}

static int dec0_long_string(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	return dec0_bytes(d, r, 4, AMF_STRING, out);
}

static int dec0_xml(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	return dec0_bytes(d, r, 4, AMF_XML, out);
}

/* Registers a complex value in the reference table before its members are decoded. */
static int ref_add(struct amf_dec *d, struct amf_value *v, size_t *idx)
{
	int ret;

	ret = amfi_grow((void **)&d->refs0, &d->refs0_cap, d->nrefs0, sizeof(*d->refs0));
	if (ret < 0)
		return ret;
	*idx = d->nrefs0++;
	d->refs0[*idx].v = v;
	d->refs0[*idx].done = false;
	return 0;
}

/* Properties (u16 key, value) up to the 00 00 09 end marker. */
static int dec0_props_body(struct amf_dec *d, struct rd *r, struct amf_value *obj)
{
	struct amf_value *val;
	const uint8_t *key;
	size_t klen;
	int ret;

	for (;;) {
		if (rd_left(r) < 2)
			return -EPROTO;
		klen = rd_be16(rd_at(r));
		if (rd_left(r) - 2 < klen)
			return -EPROTO;
		key = rd_at(r) + 2;
		r->pos += 2 + klen;
		if (klen == 0 && rd_left(r) > 0 && *rd_at(r) == AMF0_OBJECT_END) {
			r->pos++;
			return 0;
		}
		ret = dec0_value(d, r, &val);
		if (ret < 0)
			return ret;
		ret = amfi_prop_append(d, obj, key, klen, val);
		if (ret < 0)
			return ret;
	}
}

static int dec0_items_body(struct amf_dec *d, struct rd *r, struct amf_value *arr, size_t n)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = dec0_value(d, r, &arr->u.arr.v[arr->u.arr.n]);
		if (ret < 0)
			return ret;
		arr->u.arr.n++;
	}
	return 0;
}

/*
 * Decodes the members of complex value @v (already charged) one level deeper, with @v in the
 * reference table while it is incomplete. Takes @v: stores it in *out or frees it.
 */
static int dec0_complex(struct amf_dec *d, struct rd *r, struct amf_value *v, size_t nitems,
			struct amf_value **out)
{
	size_t idx;
	int ret;

	if (!v)
		return -ENOMEM;
	ret = amfi_enter(d);
	if (ret < 0)
		goto out_free;
	ret = ref_add(d, v, &idx);
	if (ret < 0)
		goto out_leave;
	if (kind(v) == KIND_PROPS)
		ret = dec0_props_body(d, r, v);
	else
		ret = dec0_items_body(d, r, v, nitems);
	if (ret < 0) {
		d->refs0[idx].v = NULL;
		goto out_leave;
	}
	d->refs0[idx].done = true;
	amfi_leave(d);
	*out = v;
	return 0;

out_leave:
	amfi_leave(d);
out_free:
	amf_free(v);
	return ret;
}

static int dec0_object(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	int ret = amfi_account(d, 1, 0);

	return ret < 0 ? ret : dec0_complex(d, r, amf_object(), 0, out);
}

static int dec0_ecma_array(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	int ret;

	/* The u32 count is only a hint, often wrong: read up to the end marker. */
	if (rd_left(r) < 4)
		return -EPROTO;
	r->pos += 4;
	ret = amfi_account(d, 1, 0);
	return ret < 0 ? ret : dec0_complex(d, r, amf_ecma_array(), 0, out);
}

static int dec0_typed_object(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	const uint8_t *cls;
	size_t n;
	int ret;

	if (rd_left(r) < 2)
		return -EPROTO;
	n = rd_be16(rd_at(r));
	if (rd_left(r) - 2 < n)
		return -EPROTO;
	if (n > d->max_string)
		return -E2BIG;
	cls = rd_at(r) + 2;
	r->pos += 2 + n;
	ret = amfi_account(d, 1, n);
	if (ret < 0)
		return ret;
	return dec0_complex(d, r, amf_typed_object_len((const char *)cls, n), 0, out);
}

static int dec0_strict_array(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	struct amf_value *v;
	size_t n;
	int ret;

	if (rd_left(r) < 4)
		return -EPROTO;
	n = rd_be32(rd_at(r));
	r->pos += 4;
	/* Every item takes at least one byte and one element: check before allocating. */
	if (n > rd_left(r))
		return -EPROTO;
	ret = amfi_account(d, 1, 0);
	if (ret < 0)
		return ret;
	if (n > d->max_elements - d->elements)
		return -E2BIG;
	v = amf_strict_array();
	if (v && amfi_items_reserve(v, n) < 0) {
		amf_free(v);
		return -ENOMEM;
	}
	return dec0_complex(d, r, v, n, out);
}

static int dec0_reference(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	size_t idx;

	if (rd_left(r) < 2)
		return -EPROTO;
	idx = rd_be16(rd_at(r));
	r->pos += 2;
	/* Out of range, or a value still being decoded (a cycle): a tree cannot hold it. */
	if (idx >= d->nrefs0 || !d->refs0[idx].done)
		return -EPROTO;
	return amfi_copy(d, d->refs0[idx].v, out);
}

static int dec0_avmplus(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	size_t used = 0;
	int ret;

	ret = amfi_amf3_value(d, rd_at(r), rd_left(r), &used, out);
	if (ret == 0)
		r->pos += used;
	return ret;
}

/* NULL: movieclip, object end (where a value is expected), recordset, unknown markers. */
static const dec0_fn dec0_table[] = {
    [AMF0_NUMBER] = dec0_number,
    [AMF0_BOOLEAN] = dec0_boolean,
    [AMF0_STRING] = dec0_string,
    [AMF0_OBJECT] = dec0_object,
    [AMF0_MOVIECLIP] = NULL,
    [AMF0_NULL] = dec0_null,
    [AMF0_UNDEFINED] = dec0_undefined,
    [AMF0_REFERENCE] = dec0_reference,
    [AMF0_ECMA_ARRAY] = dec0_ecma_array,
    [AMF0_OBJECT_END] = NULL,
    [AMF0_STRICT_ARRAY] = dec0_strict_array,
    [AMF0_DATE] = dec0_date,
    [AMF0_LONG_STRING] = dec0_long_string,
    [AMF0_UNSUPPORTED] = dec0_undefined,
    [AMF0_RECORDSET] = NULL,
    [AMF0_XML_DOC] = dec0_xml,
    [AMF0_TYPED_OBJECT] = dec0_typed_object,
    [AMF0_AVMPLUS] = dec0_avmplus,
};

static int dec0_value(struct amf_dec *d, struct rd *r, struct amf_value **out)
{
	uint8_t m;

	*out = NULL;
	if (rd_left(r) < 1)
		return -EPROTO;
	m = *rd_at(r);
	r->pos++;
	if (m >= sizeof(dec0_table) / sizeof(dec0_table[0]) || !dec0_table[m])
		return -EPROTO;
	return dec0_table[m](d, r, out);
}

int amf0_decode(const uint8_t *p, size_t len, size_t *used, const struct amf_limits *lim,
		struct amf_value **out)
{
	struct rd r = {.p = p, .len = len, .pos = 0};
	struct amf_dec d;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (used)
		*used = 0;
	if (!p && len)
		return -EINVAL;
	amfi_dec_init(&d, lim, len);
	ret = dec0_value(&d, &r, out);
	amfi_dec_fini(&d);
	if (ret == 0 && used)
		*used = r.pos;
	return ret;
}

int amf0_decode_all(const uint8_t *p, size_t len, const struct amf_limits *lim,
		    struct amf_value **list_out)
{
	struct rd r = {.p = p, .len = len, .pos = 0};
	struct amf_value *list, *v;
	struct amf_dec d;
	int ret = 0;

	if (!list_out)
		return -EINVAL;
	*list_out = NULL;
	if (!p && len)
		return -EINVAL;
	list = amf_strict_array();
	if (!list)
		return -ENOMEM;
	amfi_dec_init(&d, lim, len);
	while (rd_left(&r) > 0) {
		ret = dec0_value(&d, &r, &v);
		if (ret < 0)
			break;
		ret = amf_array_push(list, v);
		if (ret < 0)
			break;
	}
	amfi_dec_fini(&d);
	if (ret < 0) {
		amf_free(list);
		return ret;
	}
	*list_out = list;
	return 0;
}

/* ---- AMF0 encoding ---- */

int amfi_put_double(struct buf *out, double d)
{
	uint8_t b[8];
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	wr_be32(b, (uint32_t)(u >> 32));
	wr_be32(b + 4, (uint32_t)u);
	return buf_append(out, b, sizeof(b));
}

/* A length (@hdr = 2 or 4 bytes) and the bytes. */
static int put_sized(struct buf *out, size_t hdr, const void *p, size_t n)
{
	int ret;

	if (n > (hdr == 2 ? 0xFFFFu : 0xFFFFFFFFu))
		return -EINVAL;
	ret = hdr == 2 ? buf_put_be16(out, (uint16_t)n) : buf_put_be32(out, (uint32_t)n);
	return ret < 0 ? ret : buf_append(out, p, n);
}

/* String as 0x02 (up to 65535 bytes) or long string 0x0C. */
static int put_string(struct buf *out, const char *s, size_t n)
{
	bool is_long = n > 0xFFFF;
	int ret = buf_put_u8(out, is_long ? AMF0_LONG_STRING : AMF0_STRING);

	return ret < 0 ? ret : put_sized(out, is_long ? 4 : 2, s, n);
}

static int enc0_value(struct buf *out, const struct amf_value *v, unsigned depth);

/* (u16 key, value)* 00 00 09 */
static int enc0_props(struct buf *out, const struct amf_value *v, unsigned depth)
{
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < v->u.obj.n; i++) {
		ret = put_sized(out, 2, v->u.obj.v[i].key, v->u.obj.v[i].key_len);
		if (ret == 0)
			ret = enc0_value(out, v->u.obj.v[i].val, depth + 1);
	}
	return ret < 0 ? ret : buf_put_be24(out, AMF0_OBJECT_END);
}

static int enc0_items(struct buf *out, const struct amf_value *v, unsigned depth)
{
	size_t i;
	int ret = 0;

	if (v->u.arr.n > 0xFFFFFFFFu)
		return -EINVAL;
	ret = buf_put_be32(out, (uint32_t)v->u.arr.n);
	for (i = 0; ret == 0 && i < v->u.arr.n; i++)
		ret = enc0_value(out, v->u.arr.v[i], depth + 1);
	return ret;
}

/* The payload after the marker (the marker table below), by type. */
static int enc0_payload(struct buf *out, const struct amf_value *v, unsigned depth)
{
	int ret;

	switch (v->type) {
	case AMF_NUMBER:
		return amfi_put_double(out, v->u.num);
	case AMF_BOOLEAN:
		return buf_put_u8(out, v->u.boolean ? 1 : 0);
	case AMF_NULL:
	case AMF_UNDEFINED:
		return 0;
	case AMF_DATE:
		ret = amfi_put_double(out, v->u.date.ms);
		return ret < 0 ? ret : buf_put_be16(out, (uint16_t)v->u.date.tz);
	case AMF_XML:
		return put_sized(out, 4, v->u.str.p, v->u.str.len);
	case AMF_BYTE_ARRAY:
		return amf3_encode(out, v);
	case AMF_OBJECT:
		return enc0_props(out, v, depth);
	case AMF_ECMA_ARRAY:
		if (v->u.obj.n > 0xFFFFFFFFu)
			return -EINVAL;
		ret = buf_put_be32(out, (uint32_t)v->u.obj.n);
		return ret < 0 ? ret : enc0_props(out, v, depth);
	case AMF_TYPED_OBJECT:
		ret = put_sized(out, 2, v->u.obj.cls, v->u.obj.cls_len);
		return ret < 0 ? ret : enc0_props(out, v, depth);
	case AMF_STRICT_ARRAY:
		return enc0_items(out, v, depth);
	case AMF_STRING:
		break;
	}
	return -EINVAL;
}

static const uint8_t enc0_marker[] = {
    [AMF_NUMBER] = AMF0_NUMBER,
    [AMF_BOOLEAN] = AMF0_BOOLEAN,
    [AMF_STRING] = AMF0_STRING, /* or AMF0_LONG_STRING: put_string() decides */
    [AMF_OBJECT] = AMF0_OBJECT,
    [AMF_NULL] = AMF0_NULL,
    [AMF_UNDEFINED] = AMF0_UNDEFINED,
    [AMF_ECMA_ARRAY] = AMF0_ECMA_ARRAY,
    [AMF_STRICT_ARRAY] = AMF0_STRICT_ARRAY,
    [AMF_DATE] = AMF0_DATE,
    [AMF_XML] = AMF0_XML_DOC,
    [AMF_TYPED_OBJECT] = AMF0_TYPED_OBJECT,
    [AMF_BYTE_ARRAY] = AMF0_AVMPLUS,
};

static int enc0_value(struct buf *out, const struct amf_value *v, unsigned depth)
{
	int ret;

	if (!v || depth > AMF_MAX_NESTING)
		return -EINVAL;
	if (v->type == AMF_STRING)
		return put_string(out, v->u.str.p, v->u.str.len);
	ret = buf_put_u8(out, enc0_marker[v->type]);
	return ret < 0 ? ret : enc0_payload(out, v, depth);
}

/* Forgets whatever was appended since buf_used(@out) was @used. */
static void rollback(struct buf *out, size_t used)
{
	out->len = out->off + used;
}

int amf0_encode(struct buf *out, const struct amf_value *v)
{
	size_t used = buf_used(out);
	int ret = enc0_value(out, v, 0);

	if (ret < 0)
		rollback(out, used);
	return ret;
}

int amf0_put_string(struct buf *out, const char *s)
{
	size_t used = buf_used(out);
	int ret = s ? put_string(out, s, strlen(s)) : -EINVAL;

	if (ret < 0)
		rollback(out, used);
	return ret;
}

int amf0_put_number(struct buf *out, double d)
{
	uint8_t b[9] = {AMF0_NUMBER};
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	wr_be32(b + 1, (uint32_t)(u >> 32));
	wr_be32(b + 5, (uint32_t)u);
	return buf_append(out, b, sizeof(b));
}

int amf0_put_null(struct buf *out)
{
	return buf_put_u8(out, AMF0_NULL);
}

int amf0_put_bool(struct buf *out, bool b)
{
	uint8_t v[2] = {AMF0_BOOLEAN, b ? 1 : 0};

	return buf_append(out, v, sizeof(v));
}

/* ---- debug dump ---- */

struct dumper {
	struct buf *out;
	size_t left; /* bytes still allowed */
	bool cut;
	int err;
};

static void dput(struct dumper *dp, const char *s, size_t n)
{
	if (dp->cut || dp->err)
		return;
	if (n > dp->left) {
		n = dp->left;
		dp->cut = true;
	}
	if (buf_append(dp->out, s, n) < 0)
		dp->err = -ENOMEM;
	dp->left -= n;
}

static void dputs(struct dumper *dp, const char *s)
{
	dput(dp, s, strlen(s));
}

static void dump_escaped(struct dumper *dp, const char *s, size_t n)
{
	char esc[8];
	size_t i;

	for (i = 0; i < n && !dp->cut; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			dput(dp, esc, 2);
		} else if (c < 0x20 || c >= 0x7F) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			dput(dp, esc, 4);
		} else {
			dput(dp, &s[i], 1);
		}
	}
}

static void dump_quoted(struct dumper *dp, const char *s, size_t n)
{
	dput(dp, "\"", 1);
	dump_escaped(dp, s, n);
	dput(dp, "\"", 1);
}

static void dump_number(struct dumper *dp, double d)
{
	char tmp[40];

	if (isnan(d)) {
		dputs(dp, "NaN");
		return;
	}
	if (isinf(d)) {
		dputs(dp, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	snprintf(tmp, sizeof(tmp), "%.15g", d);
	if (strtod(tmp, NULL) != d)
		snprintf(tmp, sizeof(tmp), "%.17g", d);
	dputs(dp, tmp);
}

static void dump_value(struct dumper *dp, const struct amf_value *v, unsigned depth)
{
	char tmp[64];
	size_t i;

	if (!v) {
		dputs(dp, "(nil)");
		return;
	}
	if (depth > AMF_MAX_NESTING) {
		dp->cut = true;
		return;
	}
	switch (v->type) {
	case AMF_NUMBER:
		dump_number(dp, v->u.num);
		return;
	case AMF_BOOLEAN:
		dputs(dp, v->u.boolean ? "true" : "false");
		return;
	case AMF_STRING:
		dump_quoted(dp, v->u.str.p, v->u.str.len);
		return;
	case AMF_NULL:
		dputs(dp, "null");
		return;
	case AMF_UNDEFINED:
		dputs(dp, "undefined");
		return;
	case AMF_DATE:
		dputs(dp, "date(");
		dump_number(dp, v->u.date.ms);
		snprintf(tmp, sizeof(tmp), ",%d)", v->u.date.tz);
		dputs(dp, tmp);
		return;
	case AMF_XML:
		dputs(dp, "xml(");
		dump_quoted(dp, v->u.str.p, v->u.str.len);
		dputs(dp, ")");
		return;
	case AMF_BYTE_ARRAY:
		snprintf(tmp, sizeof(tmp), "bytes(%zu)", v->u.str.len);
		dputs(dp, tmp);
		return;
	case AMF_STRICT_ARRAY:
		dputs(dp, "[");
		for (i = 0; i < v->u.arr.n && !dp->cut; i++) {
			if (i)
				dputs(dp, ",");
			dump_value(dp, v->u.arr.v[i], depth + 1);
		}
		dputs(dp, "]");
		return;
	case AMF_ECMA_ARRAY:
		dputs(dp, "ecma");
		break;
	case AMF_TYPED_OBJECT:
		dputs(dp, "<");
		dump_escaped(dp, v->u.obj.cls, v->u.obj.cls_len);
		dputs(dp, ">");
		break;
	case AMF_OBJECT:
		break;
	}
	dputs(dp, "{");
	for (i = 0; i < v->u.obj.n && !dp->cut; i++) {
		if (i)
			dputs(dp, ",");
		dump_quoted(dp, v->u.obj.v[i].key, v->u.obj.v[i].key_len);
		dputs(dp, ":");
		dump_value(dp, v->u.obj.v[i].val, depth + 1);
	}
	dputs(dp, "}");
}

int amf_dump(struct buf *out, const struct amf_value *v)
{
	struct dumper dp = {.out = out, .left = AMF_DUMP_MAX, .cut = false, .err = 0};

	dump_value(&dp, v, 0);
	if (dp.cut && !dp.err && buf_append(out, "...", 3) < 0)
		dp.err = -ENOMEM;
	return dp.err;
}
