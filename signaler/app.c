/*
 * app.c - the table of RTMP applications.
 */
#include "app.h"

#include <string.h>

static const struct rtmp_app *const apps[] = {
	&app_echo,
	&app_rtp,
	&app_call,
	&app_sip,
};

const struct rtmp_app *app_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
		if (strlen(apps[i]->name) == len && memcmp(apps[i]->name, name, len) == 0)
			return apps[i];
	return NULL;
}
