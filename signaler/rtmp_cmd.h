/*
 * rtmp_cmd.h - NetConnection and NetStream commands (connect, createStream, publish, play...),
 * dispatched from a table; commands the core does not know go to the connection's app.
 */
#ifndef RS_RTMP_CMD_H
#define RS_RTMP_CMD_H

#include "rtmp_conn.h"

/* Decodes and executes one command message (type 20, or 17 with its format byte). Malformed
 * commands close the connection with a logged reason; unknown ones get an _error. */
void rtmp_cmd_dispatch(struct rtmp_conn *c, const struct rtmp_msg *m);

#endif
