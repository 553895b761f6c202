/*
 * fuzz_amf0.c - libFuzzer target for the AMF0 decoder (and, via avmplus, AMF3).
 *
 * Properties checked beyond "no crash, no leak, no UB":
 *  - a decoded command body re-encodes, and decoding that again succeeds with the same limits
 *    and gives an equal tree (unless a value cannot be expressed in AMF0: -EINVAL);
 *  - a decoded single value consumed no more than the input, clones equal, dumps boundedly;
 *  - its AMF3 encoding decodes again;
 *  - tight limits only ever turn a success into -E2BIG, never into another tree.
 */
#include "amf.h"

#include <errno.h>
#include <stdlib.h>

#include "fuzz_target.h"

/* buf_head() of a never-grown buffer would be NULL + 0. */
static const uint8_t *head(const struct buf *b)
{
	return b->data ? buf_head(b) : NULL;
}

static void check_single(const uint8_t *data, size_t size)
{
	struct amf_value *v = NULL, *copy, *back = NULL;
	struct buf b = {0};
	size_t used = 0;
	int ret;

	if (amf0_decode(data, size, &used, NULL, &v) < 0) {
		if (v)
			abort();
		return;
	}
	if (used == 0 || used > size)
		abort();
	copy = amf_clone(v);
	if (!copy || !amf_equal(copy, v))
		abort();
	amf_free(copy);
	if (amf_dump(&b, v) < 0 || buf_used(&b) > AMF_DUMP_MAX + 3)
		abort();
	buf_reset(&b);
	ret = amf3_encode(&b, v);
	if (ret == 0) {
		if (amf3_decode(head(&b), buf_used(&b), &used, NULL, &back) < 0 ||
		    used != buf_used(&b))
			abort();
		amf_free(back);
	} else if (ret != -EINVAL) {
		abort();
	}
	buf_free(&b);
	amf_free(v);
}

static const struct amf_limits tight = {
    .max_depth = 4,
    .max_elements = 64,
    .max_string = 64,
    .max_total_bytes = 256,
};

static void check_body(const uint8_t *data, size_t size)
{
	struct amf_value *list = NULL, *again = NULL, *small = NULL;
	struct buf b = {0};
	size_t i;
	int ret = 0;

	ret = amf0_decode_all(data, size, &tight, &small);
	if (ret < 0 && (small || ret == -ENOMEM))
		abort();
	if (amf0_decode_all(data, size, NULL, &list) < 0) {
		if (list || small)
			abort();
		return;
	}
	if (small && !amf_equal(small, list))
		abort();
	amf_free(small);
	ret = 0;
	for (i = 0; ret == 0 && i < amf_count(list); i++)
		ret = amf0_encode(&b, amf_index(list, i));
	if (ret == 0) {
		if (amf0_decode_all(head(&b), buf_used(&b), NULL, &again) < 0)
			abort();
		if (!amf_equal(list, again))
			abort();
		amf_free(again);
	} else if (ret != -EINVAL) {
		abort();
	}
	buf_free(&b);
	amf_free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_single(data, size);
	check_body(data, size);
	return 0;
}
