/*
 * flv_read.h - the video messages of an FLV file, for the tools that send a real H.264 stream
 * (bench_video, sipphone's publish ... video FILE). Header only: the tools are single files.
 *
 *   struct flv_tag *t;
 *   ssize_t n = flv_read_video(path, 0, &t);   t[i].ts, t[i].data (t[i].len bytes)
 *   flv_tags_free(t, n);
 */
#ifndef RS_FLV_READ_H
#define RS_FLV_READ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define FLV_READ_MAX_TAG (1u << 20) /* a longer tag ends the reading */

struct flv_tag {
	uint32_t ts;	/* milliseconds (the FLV timestamp with its extension byte) */
	uint32_t len;
	uint8_t *data; /* the message, after @room bytes of the allocation */
	uint8_t *mem;  /* the allocation (free it) */
};

static inline void flv_tags_free(struct flv_tag *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].mem);
	free(t);
}

/*
 * Reads the video tags (type 9) of the FLV file @path into *@out (malloc'd), each message with
 * @room free bytes in front of it (a sender's header). Returns the count, or -errno (-EINVAL:
 * not an FLV file).
 */
static inline ssize_t flv_read_video(const char *path, size_t room, struct flv_tag **out)
{
	FILE *f = fopen(path, "rb");
	uint8_t h[13];
	size_t n = 0, cap = 0;

	*out = NULL;
	if (!f)
		return -errno;
	if (fread(h, 1, 13, f) != 13 || memcmp(h, "FLV", 3) != 0) {
		fclose(f);
		return -EINVAL;
	}
	while (fread(h, 1, 11, f) == 11) {
		uint32_t len = (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		uint32_t ts = (uint32_t)h[4] << 16 | (uint32_t)h[5] << 8 | h[6] | (uint32_t)h[7] << 24;
		uint8_t *m;

		if (len > FLV_READ_MAX_TAG)
			break;
		m = malloc(room + len + 4);
		if (!m || fread(m + room, 1, len + 4, f) != len + 4) { /* + the previous tag size */
			free(m);
			break;
		}
		if (h[0] != 9 || len < 2) {
			free(m);
			continue;
		}
		if (n == cap) {
			struct flv_tag *t = realloc(*out, (cap = cap ? 2 * cap : 256) * sizeof(**out));

			if (!t) {
				free(m);
				break;
			}
			*out = t;
		}
		(*out)[n++] = (struct flv_tag){.ts = ts, .len = len, .data = m + room, .mem = m};
	}
	fclose(f);
	return (ssize_t)n;
}

#endif
