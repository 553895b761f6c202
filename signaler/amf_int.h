/*
 * amf_int.h - what signaler/amf.c shares with signaler/amf3.c: the budget of one decode call
 * (struct amf_dec, shared when AMF0 switches to AMF3) and the helpers both codecs charge to it.
 * Not a public header: callers use amf.h.
 */
#ifndef RS_AMF_INT_H
#define RS_AMF_INT_H

#include "amf.h"

#include <stddef.h>
#include <stdint.h>

struct amf0_ref;

/* The budget of one decode call: its limits, resolved, and what it has used so far. */
struct amf_dec {
	unsigned max_depth;
	size_t max_elements;
	size_t max_string;
	size_t max_total;
	unsigned depth;		/* containers currently open */
	size_t elements;	/* values created so far */
	size_t bytes;		/* string bytes materialised so far */
	struct amf0_ref *refs0; /* AMF0 complex values in decode order (amf.c only) */
	size_t nrefs0, refs0_cap;
};

/* Resolves @lim (NULL or zero fields: defaults) for an input of @input_len bytes. */
void amfi_dec_init(struct amf_dec *d, const struct amf_limits *lim, size_t input_len);
void amfi_dec_fini(struct amf_dec *d);

/* Charges @elements values and @bytes string bytes; 0 or -E2BIG. */
int amfi_account(struct amf_dec *d, size_t elements, size_t bytes);

/* Opens a container level (0 or -E2BIG) / closes it. */
int amfi_enter(struct amf_dec *d);
void amfi_leave(struct amf_dec *d);

/* Appends property (@key, @klen) to @obj without looking for duplicates, charging the key. Takes
 * ownership of @val (freed on failure). Returns 0, -E2BIG or -ENOMEM. */
int amfi_prop_append(struct amf_dec *d, struct amf_value *obj, const void *key, size_t klen,
		     struct amf_value *val);

/* Makes room for @n more items in strict array @arr; 0 or -ENOMEM. */
int amfi_items_reserve(struct amf_value *arr, size_t n);

/* Deep copy of @src charged to @d (elements, bytes, depth); 0, -E2BIG or -ENOMEM. */
int amfi_copy(struct amf_dec *d, const struct amf_value *src, struct amf_value **out);

/* Grows array *@v of @size-byte items so that it holds more than @n; 0 or -ENOMEM. */
int amfi_grow(void **v, size_t *cap, size_t n, size_t size);

/* Network-order IEEE-754 double. */
double amfi_rd_double(const uint8_t *p);
int amfi_put_double(struct buf *out, double d);

/* Decodes one AMF3 value charged to @d, with fresh AMF3 reference tables (amf3.c). */
int amfi_amf3_value(struct amf_dec *d, const uint8_t *p, size_t len, size_t *used,
		    struct amf_value **out);

#endif
