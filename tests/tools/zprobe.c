/*
 * zprobe.c - talks to a mediaworker's ZeroMQ socket the way an attacker (or a misconfigured
 * peer) would: with no CURVE key, with any key pair, under any signaler id and routing id, and
 * sends the requests a signaler sends. For tests/integration/test_zmq_auth.sh.
 *
 *   zprobe --endpoint EP [--key-file F --server-key K] [--id SIGNALER_ID] [--rid ROUTING_ID]
 *          [--timeout MS] STEP...
 *
 *   hello                   HELLO as --id
 *   create LEG OWNER        CREATE_LEG (PCMU both sides) naming OWNER
 *   update LEG IP PORT      UPDATE_LEG sending the leg's RTP to IP:PORT
 *   stats LEG | dtmf LEG | destroy LEG | adopt LEG
 *
 * One line per step: "STEP <name>: <reply>" where the reply is HELLO_OK, OK, "ERROR <code>
 * <text>" or NO_REPLY (nothing within --timeout ms, default 1500: what a client gets whose
 * handshake the worker refused). Exit 0 once every step ran, 2 for bad usage or keys.
 */
#include "curve.h"
#include "wire.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for the reply to @req_id; prints it. */
static void await_reply(void *s, const char *step, uint32_t req_id, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	static uint8_t hdr[64], body[70000];

	while (now_ms() < end) {
		zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
		struct wire_msg m;
		struct wire_err e;
		int hl, bl, more = 0;
		size_t ml = sizeof(more);
		char text[WIRE_MAX_STR + 1] = "";
		uint32_t code = 0;

		if (zmq_poll(&it, 1, (long)(end - now_ms())) <= 0)
			continue;
		hl = zmq_recv(s, hdr, sizeof(hdr), 0);
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
		if (hl < 0 || !more)
			continue;
		bl = zmq_recv(s, body, sizeof(body), 0);
		if (bl < 0 || hl > (int)sizeof(hdr) || bl > (int)sizeof(body) ||
		    wire_parse(hdr, (size_t)hl, body, (size_t)bl, &m, &e) < 0)
			continue; /* MEDIA_BATCH, or junk */
		if (m.h.req_id != req_id)
			continue; /* heartbeats, events */
		if (m.h.type == WIRE_ERROR) {
			wire_get_u32(&m, WIRE_T_ERR_CODE, &code);
			wire_get_cstr(&m, WIRE_T_ERR_TEXT, text, sizeof(text));
			printf("STEP %s: ERROR %u %s\n", step, code, text);
		} else {
			printf("STEP %s: %s\n", step, wire_type_name(m.h.type));
		}
		return;
	}
	printf("STEP %s: NO_REPLY\n", step);
}

static const struct wire_codec pcmu = {.pt = 0, .channels = 1, .rate = 8000, .name = "PCMU"};

/* Builds the request of step @argv[0] (its arguments after it) into @b; the words it used, or 0
 * for an unknown step. */
static int build(struct wire_builder *b, char **argv, int argc, const char *id, uint32_t req_id)
{
	const char *step = argv[0];

	if (strcmp(step, "hello") == 0) {
		wire_builder_init(b, WIRE_HELLO, req_id);
		wire_put_str(b, WIRE_T_SIGNALER_ID, id);
		return 1;
	}
	if (argc < 2)
		return 0;
	if (strcmp(step, "create") == 0 && argc >= 3) {
		wire_builder_init(b, WIRE_CREATE_LEG, req_id);
		wire_put_str(b, WIRE_T_LEG_ID, argv[1]);
		wire_put_str(b, WIRE_T_CALL_ID, "zprobe-call");
		wire_put_str(b, WIRE_T_OWNER, argv[2]);
		wire_put_codec(b, WIRE_T_RTMP_CODEC, &pcmu);
		wire_put_codec(b, WIRE_T_SIP_CODEC, &pcmu);
		return 3;
	}
	if (strcmp(step, "update") == 0 && argc >= 4) {
		wire_builder_init(b, WIRE_UPDATE_LEG, req_id);
		wire_put_str(b, WIRE_T_LEG_ID, argv[1]);
		wire_put_str(b, WIRE_T_REMOTE_IP, argv[2]);
		wire_put_u16(b, WIRE_T_REMOTE_PORT, (uint16_t)atoi(argv[3]));
		return 4;
	}
	if (strcmp(step, "stats") == 0)
		wire_builder_init(b, WIRE_LEG_STATS, req_id);
	else if (strcmp(step, "destroy") == 0)
		wire_builder_init(b, WIRE_DESTROY_LEG, req_id);
	else if (strcmp(step, "adopt") == 0)
		wire_builder_init(b, WIRE_ADOPT_LEG, req_id);
	else if (strcmp(step, "dtmf") == 0)
		wire_builder_init(b, WIRE_SEND_DTMF, req_id);
	else
		return 0;
	wire_put_str(b, WIRE_T_LEG_ID, argv[1]);
	if (strcmp(step, "dtmf") == 0)
		wire_put_u8(b, WIRE_T_DIGIT, '5');
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"endpoint", required_argument, NULL, 'e'}, {"key-file", required_argument, NULL, 'k'},
		{"server-key", required_argument, NULL, 's'}, {"id", required_argument, NULL, 'i'},
		{"rid", required_argument, NULL, 'r'}, {"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	const char *ep = NULL, *key_file = NULL, *server_key = NULL, *id = "zprobe", *rid = NULL;
	char pub[CURVE_KEY_LEN + 1], sec[CURVE_KEY_LEN + 1], why[512] = "";
	struct wire_builder b = {0};
	int timeout = 1500, linger = 0, c, n;
	uint32_t req_id = 1000;
	void *ctx, *s;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'e': ep = optarg; break;
		case 'k': key_file = optarg; break;
		case 's': server_key = optarg; break;
		case 'i': id = optarg; break;
		case 'r': rid = optarg; break;
		case 't': timeout = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!ep || optind >= argc || !key_file != !server_key) {
		fprintf(stderr, "usage: zprobe --endpoint EP [--key-file F --server-key K] [--id ID] "
				"[--rid RID] [--timeout MS] STEP...\n");
		return 2;
	}
	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (rid)
		zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
	if (key_file) {
		if (curve_keyfile_read(key_file, pub, sec, why, sizeof(why)) < 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, strlen(server_key)) < 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, CURVE_KEY_LEN) < 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, CURVE_KEY_LEN) < 0) {
			fprintf(stderr, "zprobe: keys: %s\n", why[0] ? why : "a key libzmq refuses");
			return 2;
		}
	}
	if (zmq_connect(s, ep) < 0) {
		fprintf(stderr, "zprobe: connect %s: %s\n", ep, zmq_strerror(errno));
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = optind; i < argc; i += n) {
		n = build(&b, argv + i, argc - i, id, ++req_id);
		if (n == 0 || wire_builder_finish(&b) < 0) {
			fprintf(stderr, "zprobe: bad step at '%s'\n", argv[i]);
			return 2;
		}
		/* Queued until the handshake completes, for ever if it never does. */
		zmq_send(s, b.hdr, WIRE_HDR_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
		zmq_send(s, wire_builder_body(&b), wire_builder_body_len(&b), ZMQ_DONTWAIT);
		await_reply(s, argv[i], req_id, timeout);
	}
	wire_builder_free(&b);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}
