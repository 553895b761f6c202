/*
 * fuzz_amf3.c - libFuzzer target for the AMF3 decoder and encoder.
 *
 * Properties checked beyond "no crash, no leak, no UB": whatever decodes re-encodes (AMF3 can
 * express every tree the AMF3 decoder builds), decodes again with the same limits, consuming
 * exactly the encoding, into an equal tree; the AMF0 encoding of it decodes too, when AMF0 can
 * express it. Tight limits only ever turn a success into an error, never into another tree.
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

static const struct amf_limits tight = {
    .max_depth = 4,
    .max_elements = 64,
    .max_string = 64,
    .max_total_bytes = 256,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amf_value *v = NULL, *back = NULL, *small = NULL;
	struct buf b = {0};
	size_t used = 0;
	int ret;

	ret = amf3_decode(data, size, NULL, &tight, &small);
	if (ret < 0 && (small || ret == -ENOMEM))
		abort();
	if (amf3_decode(data, size, &used, NULL, &v) < 0) {
		if (v || small)
			abort();
		return 0;
	}
	if (small && !amf_equal(small, v))
		abort();
	amf_free(small);
	if (used == 0 || used > size)
		abort();
	if (amf3_encode(&b, v) < 0)
		abort();
	if (amf3_decode(head(&b), buf_used(&b), &used, NULL, &back) < 0 || used != buf_used(&b) ||
	    !amf_equal(v, back))
		abort();
	amf_free(back);
	back = NULL;
	buf_reset(&b);
	ret = amf0_encode(&b, v);
	if (ret == 0) {
		if (amf0_decode(head(&b), buf_used(&b), &used, NULL, &back) < 0 ||
		    used != buf_used(&b) || !amf_equal(v, back))
			abort();
		amf_free(back);
	} else if (ret != -EINVAL) {
		abort();
	}
	buf_reset(&b);
	if (amf_dump(&b, v) < 0 || buf_used(&b) > AMF_DUMP_MAX + 3)
		abort();
	buf_free(&b);
	amf_free(v);
	return 0;
}
