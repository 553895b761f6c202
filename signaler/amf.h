/*
 * amf.h - AMF0/AMF3 value trees: decoding, encoding, building and reading.
 *
 * A decoded or built value is a tree of opaque struct amf_value nodes. Each tree has one owner,
 * who releases it with amf_free(). Containers own their children: amf_object_set() and
 * amf_array_push() take ownership of the value handed to them (and free it if they fail).
 *
 * Value model (one model for both AMF versions):
 *   AMF_NUMBER        AMF0 number; AMF3 integer and double
 *   AMF_BOOLEAN       AMF0 boolean; AMF3 false/true
 *   AMF_STRING        AMF0 string and long string; AMF3 string
 *   AMF_OBJECT        anonymous object (properties in wire order; duplicates kept on decode)
 *   AMF_TYPED_OBJECT  object with a class name (AMF0 0x10; AMF3 object with non-empty class name)
 *   AMF_ECMA_ARRAY    AMF0 ECMA array; AMF3 array whose associative part is not empty (its dense
 *                     items follow the associative ones, keyed "0", "1", ...)
 *   AMF_STRICT_ARRAY  AMF0 strict array; AMF3 array with only a dense part; AMF3 vectors
 *                     (Vector.<int>, <uint>, <Number>, <Object> become strict arrays of values)
 *   AMF_DATE          milliseconds since the epoch plus the AMF0 time zone (0 from AMF3)
 *   AMF_XML           AMF0 XML document; AMF3 XMLDocument and XML
 *   AMF_BYTE_ARRAY    AMF3 ByteArray (AMF0 encodes it by switching to AMF3)
 *   AMF_NULL, AMF_UNDEFINED; the AMF0 "unsupported" marker decodes as undefined.
 * Rejected with -EPROTO: AMF0 movieclip, recordset and unknown markers; AMF3 externalizable
 * objects, dictionaries and unknown markers; any reference to a value that is still being
 * decoded (a cycle, which a tree cannot hold).
 *
 * References on the wire (AMF0 0x07, AMF3 string/object/trait references) are resolved by
 * copying: the tree never shares nodes. Copies count against the limits like inline values, so
 * a chain of references cannot blow up memory. Reference tables live for one decode call
 * (amf0_decode_all() shares one AMF0 table across the body); each AMF0 avmplus (0x11) value gets
 * fresh AMF3 tables.
 *
 * Strings keep their exact length (embedded NULs survive) and are always NUL-terminated.
 */
#ifndef RS_AMF_H
#define RS_AMF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum amf_type {
	AMF_NUMBER,
	AMF_BOOLEAN,
	AMF_STRING,
	AMF_OBJECT,
	AMF_NULL,
	AMF_UNDEFINED,
	AMF_ECMA_ARRAY,
	AMF_STRICT_ARRAY,
	AMF_DATE,
	AMF_XML,
	AMF_TYPED_OBJECT,
	AMF_BYTE_ARRAY, /* AMF3 only */
};

/* Largest RTMP message body (24-bit length): no string in a message can be longer. */
#define AMF_DEFAULT_MAX_STRING 0xFFFFFFu
/* Hard cap on nesting for decoding (max_depth is clamped to it), encoding, copying, dumping. */
#define AMF_MAX_NESTING 1024u
/* amf_dump() output bound, in bytes, not counting the "..." that marks a cut. */
#define AMF_DUMP_MAX 4096u

/*
 * Bounds for one decode call. A zero field means "the default" (see amf_default_limits), so a
 * caller can write (struct amf_limits){ .max_depth = 8 }.
 */
struct amf_limits {
	unsigned max_depth;	/* container nesting (objects, arrays); default 32 */
	size_t max_elements;	/* values created in one call, reference copies included; 4096 */
	size_t max_string;	/* bytes in one string, key, class name, XML or byte array;
				   default AMF_DEFAULT_MAX_STRING (room for an AMF0 long string
				   as big as an RTMP message) */
	size_t max_total_bytes; /* string/key bytes materialised in one call, copies made for
				   references included; default 4 * input length + 1 MiB */
};

extern const struct amf_limits amf_default_limits;

struct amf_value;

/*
 * Decoding. Every decoder reads from @p/@len, which it never modifies nor keeps. @lim may be NULL
 * (defaults). On success returns 0, stores a new tree in *out (caller frees with amf_free()) and,
 * if @used is not NULL, the number of bytes consumed. On failure returns -EPROTO (malformed or
 * truncated input), -E2BIG (a limit exceeded) or -ENOMEM; *out is NULL and nothing leaks.
 */

/* One AMF0 value; an avmplus marker (0x11) decodes the AMF3 value that follows it. */
int amf0_decode(const uint8_t *p, size_t len, size_t *used, const struct amf_limits *lim,
		struct amf_value **out);

/* One AMF3 value, with its own string, object and trait reference tables. */
int amf3_decode(const uint8_t *p, size_t len, size_t *used, const struct amf_limits *lim,
		struct amf_value **out);

/*
 * A whole command body: AMF0 values until the buffer ends (an empty buffer gives an empty list).
 * The limits and the AMF0 reference table cover the whole body. *list_out is an AMF_STRICT_ARRAY
 * holding the values in order (read them with amf_count()/amf_index()). For an AMF3 command
 * message (type 17) the caller skips the leading 0x00 byte first.
 */
int amf0_decode_all(const uint8_t *p, size_t len, const struct amf_limits *lim,
		    struct amf_value **list_out);

/* Frees a tree; NULL is fine. @v must not be inside another tree. */
void amf_free(struct amf_value *v);

/*
 * Constructors: each returns a new node owned by the caller, or NULL when out of memory.
 * String-like constructors copy their bytes; a NULL pointer with length 0 is an empty value.
 */
struct amf_value *amf_number(double d);
struct amf_value *amf_bool(bool b);
struct amf_value *amf_string(const char *s); /* s != NULL, NUL-terminated */
struct amf_value *amf_string_len(const char *s, size_t len);
struct amf_value *amf_null(void);
struct amf_value *amf_undefined(void);
struct amf_value *amf_object(void);
struct amf_value *amf_ecma_array(void);
struct amf_value *amf_strict_array(void);
struct amf_value *amf_typed_object(const char *class_name); /* class_name != NULL */
struct amf_value *amf_typed_object_len(const char *class_name, size_t len);
struct amf_value *amf_date(double ms, int16_t tz_minutes);
struct amf_value *amf_xml(const char *s, size_t len);
struct amf_value *amf_byte_array(const void *p, size_t len);

/* Deep copy of @v (NULL when out of memory, @v is NULL or nested deeper than AMF_MAX_NESTING). */
struct amf_value *amf_clone(const struct amf_value *v);

/*
 * Sets property @key (NUL-terminated, copied) of an object, ECMA array or typed object to @val,
 * replacing the value of the first property with that key or appending a new one. Takes ownership
 * of @val in every case (frees it on failure); @val NULL (a failed constructor) gives -ENOMEM.
 * Returns 0, -EINVAL (@obj is not such a container, @key NULL) or -ENOMEM.
 */
int amf_object_set(struct amf_value *obj, const char *key, struct amf_value *val);

/* Appends @val to a strict array; ownership and returns as amf_object_set(). */
int amf_array_push(struct amf_value *arr, struct amf_value *val);

/*
 * Accessors. All accept NULL and values of the wrong type, answering "nothing" (NULL, 0, false,
 * AMF_UNDEFINED). Returned pointers belong to the tree and live as long as the node.
 */
enum amf_type amf_type_of(const struct amf_value *v);

/* Items in a strict array, properties in an object, ECMA array or typed object; else 0. */
size_t amf_count(const struct amf_value *v);

/* Item @i of a strict array (or of an amf0_decode_all() list), or NULL. */
struct amf_value *amf_index(const struct amf_value *v, size_t i);

/* Value of the first property named @key of an object, ECMA array or typed object, or NULL. */
struct amf_value *amf_get(const struct amf_value *obj, const char *key);

/* Key (NUL-terminated; its length in *len if @len is not NULL) / value of property @i, or NULL. */
const char *amf_prop_key(const struct amf_value *obj, size_t i, size_t *len);
struct amf_value *amf_prop_value(const struct amf_value *obj, size_t i);

/* Class name of a typed object (NUL-terminated; length in *len if @len is not NULL), else NULL. */
const char *amf_class_name(const struct amf_value *v, size_t *len);

/* Stores the number in *out; false if @v is not a number. */
bool amf_get_number(const struct amf_value *v, double *out);

/* Stores the boolean in *out; false if @v is not a boolean. */
bool amf_get_bool(const struct amf_value *v, bool *out);

/* Stores the date (either pointer may be NULL); false if @v is not a date. */
bool amf_get_date(const struct amf_value *v, double *ms, int16_t *tz_minutes);

/* Bytes of a string or XML value (NUL-terminated; length in *len if @len is not NULL), or NULL. */
const char *amf_get_string(const struct amf_value *v, size_t *len);

/* Bytes of a byte array (length in *len if @len is not NULL), or NULL. */
const uint8_t *amf_get_bytes(const struct amf_value *v, size_t *len);

/* True for boolean true and for a number that is neither zero nor NaN. */
bool amf_is_true(const struct amf_value *v);

/*
 * True when both trees have the same types, class names, keys in the same order, items, bytes
 * and bit-identical numbers. Two NULLs are equal.
 */
bool amf_equal(const struct amf_value *a, const struct amf_value *b);

/*
 * Encoding: appends the encoding of @v to @out (references are never emitted; everything is
 * inline). Returns 0, -ENOMEM, or -EINVAL when @v cannot be expressed (AMF0 key or class name
 * over 65535 bytes, AMF3 length over 2^28-1, AMF3 ECMA key that is empty, nesting beyond
 * AMF_MAX_NESTING, @v NULL). On failure @out is left as it was.
 *
 * AMF0: strings over 65535 bytes become long strings (0x0C), typed objects 0x10, dates 0x0B with
 * their time zone, XML 0x0F, byte arrays an avmplus (0x11) AMF3 value.
 * AMF3: integral numbers in [-2^28, 2^28) (except -0) become integers, others doubles; anonymous
 * objects are dynamic (sealed if a key is empty); typed objects carry sealed members; ECMA arrays
 * are associative-only arrays; dates lose their time zone; XML uses the XML marker (0x0B).
 */
int amf0_encode(struct buf *out, const struct amf_value *v);
int amf3_encode(struct buf *out, const struct amf_value *v);

/* AMF0 shortcuts for replies; same returns as amf0_encode() (@s NUL-terminated, not NULL). */
int amf0_put_string(struct buf *out, const char *s);
int amf0_put_number(struct buf *out, double d);
int amf0_put_null(struct buf *out);
int amf0_put_bool(struct buf *out, bool b);

/*
 * Appends a compact JSON-like rendering of @v (NULL renders as "(nil)") for logs and tests, at
 * most AMF_DUMP_MAX bytes plus "..." when cut. Non-ASCII and control bytes are escaped as \xNN.
 * Shapes: 1.5, true, "s", null, undefined, {"k":v}, ecma{"k":v}, [v,v], <Class>{"k":v},
 * date(ms,tz), xml("..."), bytes(n). Returns 0 or -ENOMEM.
 */
int amf_dump(struct buf *out, const struct amf_value *v);

#endif
