/*
 * test_rtp_latch.c - strict latching of the RTP leg (mediaworker/rtp_latch.c), on loopback
 * through a real evloop, with raw UDP "peer" sockets that forge packets (rtp_leg_testlib.h).
 *
 * Covers: an attacker sending first never captures a leg whose signalled peer talks; a peer
 * behind NAT learned after N packets in a row, kept by a re-INVITE, released by the RTP timeout
 * and by another address; a single forged packet moves nothing; the guard and the runs to the
 * packet and the millisecond; nothing learned before a remote is signalled; SRTP latching at the
 * first authentic packet, and an adopted leg taking over once the old source fell silent.
 */
#include "rtp_leg_testlib.h"

#include <errno.h>

/* ------------------------------------------------------------ strict latching */

#define OUR_BYTE   0x11 /* what the leg under test sends */
#define PEER_BYTE  0xaa /* what the real peer sends */
#define SPRAY_BYTE 0x55 /* what an attacker sends */

/*
 * Opens @n peer sockets whose ports are at least 2 apart, so that RTCP a leg sends to "port + 1"
 * of one of them never lands on another.
 */
static void peers_open(struct peer **ps, int n)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		bool spaced = true;

		for (int i = 0; i < n; i++)
			peer_open(ps[i]);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (i != j && ps[i]->port + 1 == ps[j]->port)
					spaced = false;
		if (spaced)
			return;
		for (int i = 0; i < n; i++)
			peer_close(ps[i]);
	}
	CHECK(!"no spaced ports");
}

/* A plain PCMU leg whose signalled remote is 127.0.0.1:@port (RTP timeout @timeout_ms). */
static struct rtp_leg *leg_toward(struct rtp_leg_params *p, const char *sid, struct events *e,
				  uint16_t port, unsigned timeout_ms)
{
	struct rtp_leg *leg;

	params(p, sid, e);
	p->remote_ip = "127.0.0.1";
	p->remote_port = port;
	p->rtp_timeout_ms = timeout_ms;
	leg = rtp_leg_new(p);
	CHECK(leg != NULL);
	return leg;
}

/* Sends one PCMU packet of @fill bytes from @p to the leg's port: sequence @seq, SSRC @ssrc. */
static void peer_rtp(struct peer *p, const struct rtp_leg *leg, uint16_t seq, uint32_t ssrc,
		     uint8_t fill)
{
	uint8_t pkt[256], pl[160];

	memset(pl, fill, sizeof(pl));
	peer_send(p, rtp_leg_local_port(leg), pkt,
		  rtp_build(pkt, 0, false, seq, 160u * seq, ssrc, pl, sizeof(pl)));
}

/* Injects the same packet from 127.0.0.1:@port as arriving at @at (monotonic ms). */
static int inject_at(struct rtp_leg *leg, uint16_t port, uint16_t seq, uint32_t ssrc, uint8_t fill,
		     uint64_t at)
{
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(port)};
	uint8_t pkt[256], pl[160];

	from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(pl, fill, sizeof(pl));
	return rtp_leg_input_packet_at(
	    leg, pkt, rtp_build(pkt, 0, false, seq, 160u * seq, ssrc, pl, sizeof(pl)),
	    (struct sockaddr *)&from, sizeof(from), at);
}

/* The leg sends one frame; true when it arrives at @to (and nowhere else is checked here). */
static bool frame_reaches(struct rtp_leg *leg, struct peer *to)
{
	uint8_t pl[160], b[256];
	ssize_t n;

	memset(pl, OUR_BYTE, sizeof(pl));
	if (rtp_leg_send(leg, pl, sizeof(pl), 160) < 0)
		return false;
	n = peer_recv(to, b, sizeof(b), 200);
	return n == 12 + 160 && b[12] == OUR_BYTE;
}

/* Nothing waits on @p's socket (datagrams to loopback are queued before sendto() returns). */
static bool got_nothing(struct peer *p)
{
	uint8_t b[2048];

	return recv(p->fd, b, sizeof(b), 0) < 0;
}

/*
 * Once what was sent to the leg has been read: @received packets accepted and @changes latch
 * changes so far, and the leg's media goes to @to, not to @not_to.
 */
static void check_latch(struct rtp_leg *leg, uint64_t received, uint64_t changes, struct peer *to,
			struct peer *not_to)
{
	struct rtp_leg_stats st;

	run_ms(20);
	rtp_leg_get_stats(leg, &st);
	CHECK_EQ_INT(st.packets_received, received);
	CHECK_EQ_INT(st.latch_changes, changes);
	CHECK(frame_reaches(leg, to));
	CHECK(got_nothing(not_to));
}

/* Pulls @ticks frames at 20 ms; counts frames, and frames made of @bad. */
static void pull_frames(struct rtp_leg *leg, int ticks, uint8_t bad, int *frames, int *bad_frames)
{
	uint8_t out[400];

	*frames = *bad_frames = 0;
	for (int i = 0; i < ticks; i++) {
		size_t len = sizeof(out);
		bool lost;

		run_ms(20);
		if (rtp_leg_pull(leg, out, &len, &lost) == 0 && len) {
			(*frames)++;
			*bad_frames += memchr(out, bad, len) != NULL;
		}
	}
}

/*
 * An attacker on another port of 127.0.0.1 sends first: one forged packet, then most of a
 * learning run; the signalled peer's first packet latches at once, and while it talks the
 * attacker's stream (well-formed, one SSRC, rising sequence) never captures the leg, never
 * reaches the decoder, and receives nothing. An attacker with a full run before the peer's
 * first packet is learned (it cannot be told from a peer behind NAT): the peer's next packet
 * takes the leg back at once.
 */
static void test_latch_attacker_first(void)
{
	struct rtp_leg_params pb;
	struct rtp_leg *b;
	struct events eb;
	struct rtp_leg_stats sb;
	struct peer real, real2, spray;
	int frames, bad, n_spray = 0, n_real = 0;
	uint16_t s_seq = 1000, r_seq = 1;

	peers_open((struct peer *[]){&real, &real2, &spray}, 3);
	b = leg_toward(&pb, "latch-first", &eb, real.port, 0);
	if (!b)
		goto out;

	/* One forged packet: dropped, nothing latched, media still goes to the signalled peer. */
	peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
	n_spray++;
	check_latch(b, 0, 0, &real, &spray);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.unexpected_source, 1);

	/* Most of a learning run (N - 2 more: N - 1 in a row), then the peer talks. */
	for (int i = 0; i < RTP_LEG_LATCH_PACKETS - 2; i++, n_spray++)
		peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
	peer_rtp(&real, b, r_seq++, 0x0c0ffee0, PEER_BYTE);
	n_real++;
	/* From now on the attacker sprays a well-formed stream around every packet of the peer. */
	for (int round = 0; round < 40; round++) {
		for (int k = 0; k < 3; k++, n_spray++)
			peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
		peer_rtp(&real, b, r_seq++, 0x0c0ffee0, PEER_BYTE);
		n_real++;
		if (round % 8 == 0)
			run_ms(5);
	}
	for (int k = 0; k < 3; k++, n_spray++)
		peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
	pull_frames(b, 10, SPRAY_BYTE, &frames, &bad);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.packets_received, n_real);
	CHECK_EQ_INT(sb.unexpected_source, n_spray);
	CHECK_EQ_INT(sb.latch_changes, 0);
	CHECK_EQ_INT(eb.n_latched, 0);
	CHECK(frames >= 1);
	CHECK_EQ_INT(bad, 0);
	for (int i = 0; i < 5; i++)
		CHECK(frame_reaches(b, &real));
	CHECK(got_nothing(&spray));
	printf("  attacker first: %d sprayed packets dropped, %d of the peer's accepted\n", n_spray,
	       n_real);

	/* A full run before the peer's first packet (a new remote: nothing latched) is learned,
	 * and the peer's first packet takes the leg back at once. */
	CHECK_EQ_INT(rtp_leg_set_remote(b, "127.0.0.1", real2.port, 0), 0);
	for (int i = 0; i < RTP_LEG_LATCH_PACKETS; i++)
		peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
	check_latch(b, (uint64_t)n_real + 1, 1, &spray, &real2);
	CHECK_EQ_INT(eb.n_latched, 1);
	peer_rtp(&real2, b, 1, 0x0c0ffee1, PEER_BYTE);
	for (int k = 0; k < 3; k++)
		peer_rtp(&spray, b, s_seq++, 0x5badf00d, SPRAY_BYTE);
	check_latch(b, (uint64_t)n_real + 2, 2, &real2, &spray);
	CHECK(got_nothing(&real));
	rtp_leg_destroy(&b);
out:
	peer_close(&real);
	peer_close(&real2);
	peer_close(&spray);
}

/*
 * The peer is behind NAT: its SDP (the signalled address) is not where its packets come from.
 * It is learned after exactly N packets in a row, which never reach the decoder before; a
 * re-INVITE with the same address keeps the latch, the RTP timeout releases it (and the peer
 * is learned again), another address releases it. The state for adoption carries the
 * signalled address, never the learned one.
 */
static void test_latch_nat_learned(void)
{
	struct rtp_leg_params pb;
	struct rtp_leg *b;
	struct events eb;
	struct rtp_leg_stats sb;
	struct rtp_leg_state st;
	struct peer sdp, nat, other;
	uint16_t seq = 500;
	int frames, bad;

	peers_open((struct peer *[]){&sdp, &nat, &other}, 3);
	b = leg_toward(&pb, "latch-nat", &eb, sdp.port, 400);
	if (!b)
		goto out;
	for (int i = 0; i < RTP_LEG_LATCH_PACKETS - 1; i++)
		peer_rtp(&nat, b, seq++, 0x7a7a7a7a, PEER_BYTE);
	pull_frames(b, 5, PEER_BYTE, &frames, &bad);
	CHECK_EQ_INT(frames, 0); /* not played while being learned */
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.unexpected_source, RTP_LEG_LATCH_PACKETS - 1);
	CHECK_EQ_INT(eb.n_latched, 0);
	check_latch(b, 0, 0, &sdp, &nat); /* media still to the signalled address */

	peer_rtp(&nat, b, seq++, 0x7a7a7a7a, PEER_BYTE); /* the N-th */
	check_latch(b, 1, 1, &nat, &sdp);
	CHECK_EQ_INT(eb.n_latched, 1);
	rtp_leg_get_state(b, &st);
	CHECK_EQ_STR(st.remote_ip, "127.0.0.1");
	CHECK_EQ_INT(st.remote_port, sdp.port);

	/* A re-INVITE that keeps the address keeps the latch. */
	CHECK_EQ_INT(rtp_leg_set_remote(b, "127.0.0.1", sdp.port, 0), 0);
	CHECK(frame_reaches(b, &nat));

	/* The peer goes silent: the RTP timeout releases the latch; it is learned again. */
	run_ms(1300);
	CHECK_EQ_INT(eb.n_timeout, 1);
	CHECK(frame_reaches(b, &sdp));
	for (int i = 0; i < RTP_LEG_LATCH_PACKETS; i++)
		peer_rtp(&nat, b, seq++, 0x7a7a7a7a, PEER_BYTE);
	run_ms(20);
	CHECK_EQ_INT(eb.n_latched, 2);
	CHECK(frame_reaches(b, &nat));

	/* Another address releases it: media goes there until something latches. */
	CHECK_EQ_INT(rtp_leg_set_remote(b, "127.0.0.1", other.port, 0), 0);
	CHECK(frame_reaches(b, &other));
	CHECK(got_nothing(&nat));
	rtp_leg_destroy(&b);
out:
	peer_close(&sdp);
	peer_close(&nat);
	peer_close(&other);
}

/*
 * The rule's boundaries, on injected arrival times: the guard T to the millisecond, N to the
 * packet, what breaks a learning run (another source, another SSRC, a sequence that does not
 * rise by 1..8, a packet from the latched source), a single spoofed packet, N from the params.
 */
static void test_latch_rule_boundaries(void)
{
	const unsigned T = RTP_LEG_LATCH_GUARD_MS, N = RTP_LEG_LATCH_PACKETS;
	struct rtp_leg_params pb;
	struct rtp_leg *b;
	struct events eb;
	struct rtp_leg_stats sb;
	struct peer sig;
	uint64_t t0 = now_ms() + 100000, t; /* any clock will do: only differences count */
	uint16_t xs = 100;

	peer_open(&sig);
	b = leg_toward(&pb, "latch-rule", &eb, sig.port, 0);
	if (!b)
		goto out;
	/* The signalled peer latches with one packet, without a "change". */
	CHECK_EQ_INT(inject_at(b, sig.port, 1, 0x51515151, PEER_BYTE, t0), 0);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.latch_changes, 0);

	/* Within T of the peer's last packet, a full run from X is dropped unchecked. */
	for (unsigned i = 0; i < 2 * N; i++)
		CHECK_EQ_INT(inject_at(b, 40000, xs++, 0xabababab, SPRAY_BYTE, t0 + T - 1), -EPERM);
	/* Even a malformed one: not looked at (not counted as bad). */
	{
		struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(40000)};
		uint8_t junk[4] = {0x40, 0, 0, 0};

		from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK_EQ_INT(rtp_leg_input_packet_at(b, junk, sizeof(junk),
						     (struct sockaddr *)&from, sizeof(from),
						     t0 + 1),
			     -EPERM);
	}
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.unexpected_source, 2 * N + 1);
	CHECK_EQ_INT(sb.bad_packets, 0);
	CHECK_EQ_INT(sb.latch_changes, 0);

	/* From T on, X learns: N - 1 packets do nothing, the N-th latches. */
	t = t0 + T;
	for (unsigned i = 0; i < N - 1; i++)
		CHECK_EQ_INT(inject_at(b, 40000, xs++, 0xabababab, SPRAY_BYTE, t++), -EPERM);
	CHECK_EQ_INT(inject_at(b, 40000, xs++, 0xabababab, SPRAY_BYTE, t++), 0);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.latch_changes, 1);
	CHECK_EQ_INT(eb.n_latched, 1);
	/* The signalled peer takes it back with one packet, even "at once". */
	CHECK_EQ_INT(inject_at(b, sig.port, 2, 0x51515151, PEER_BYTE, t), 0);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.latch_changes, 2);
	CHECK_EQ_INT(eb.n_latched, 1); /* on_latched: only for sources other than the signalled */

	/* Runs that break: each restarts at 1, so N - 1 more packets never latch. */
	t += T;
	for (int variant = 0; variant < 5; variant++) {
		uint16_t s = (uint16_t)(2000 + 100 * variant);
		uint32_t ssrc = 0x1000u + (uint32_t)variant;

		for (unsigned i = 0; i < N - 1; i++)
			CHECK_EQ_INT(inject_at(b, 40002, s++, ssrc, SPRAY_BYTE, t++), -EPERM);
		switch (variant) {
		case 0: /* another source in between */
			CHECK_EQ_INT(inject_at(b, 40004, 7, 0x2222, SPRAY_BYTE, t++), -EPERM);
			break;
		case 1: /* another SSRC from the same source */
			CHECK_EQ_INT(inject_at(b, 40002, s++, ssrc + 1, SPRAY_BYTE, t++), -EPERM);
			break;
		case 2: /* a sequence number going back (a replayed packet) */
			CHECK_EQ_INT(inject_at(b, 40002, (uint16_t)(s - 2), ssrc, SPRAY_BYTE, t++),
				     -EPERM);
			break;
		case 3: /* a jump beyond 8 */
			s = (uint16_t)(s + 8);
			break;
		case 4: /* the latched peer speaks: no run survives it, and it guards T again */
			CHECK_EQ_INT(inject_at(b, sig.port, (uint16_t)(3 + variant), 0x51515151,
					       PEER_BYTE, t),
				     0);
			t += T;
			break;
		}
		/* A run that did not break would have N by now. */
		for (unsigned i = 0; i < N - 2; i++)
			CHECK_EQ_INT(inject_at(b, 40002, s++, ssrc, SPRAY_BYTE, t++), -EPERM);
		rtp_leg_get_stats(b, &sb);
		CHECK_EQ_INT(sb.latch_changes, 2);
	}
	/* A jump of up to 8 (loss) keeps a run going. */
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ_INT(inject_at(b, 40006, (uint16_t)(3000 + 8 * i), 0x3333, SPRAY_BYTE, t++),
			     i + 1 < N ? -EPERM : 0);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.latch_changes, 3);
	rtp_leg_destroy(&b);

	/* N and T come from the params; one packet is never enough. */
	params(&pb, "latch-rule2", &eb);
	pb.latch_packets = 1;
	CHECK(rtp_leg_new(&pb) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	pb.latch_packets = 2;
	pb.latch_guard_ms = 50;
	b = rtp_leg_new(&pb);
	CHECK(b != NULL);
	if (!b)
		goto out;
	/* No remote signalled (the peer has not answered): nothing is learned, however long the
	 * run, or a sprayer would hear the caller while it rings. */
	for (int i = 1; i <= 8; i++)
		CHECK_EQ_INT(inject_at(b, 40000, (uint16_t)i, 0x44, SPRAY_BYTE, t0 + (uint64_t)i),
			     -EPERM);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.latch_changes, 0);
	CHECK_EQ_INT(sb.unexpected_source, 8);
	rtp_leg_destroy(&b);
out:
	peer_close(&sig);
}

/*
 * SRTP: the first authenticated packet latches, whatever its source (a peer behind NAT); an
 * attacker without the key latches nothing. A leg adopted elsewhere (same SSRC and keys, a new
 * port) takes over with one authenticated packet once the old source has been silent for T.
 */
static void test_latch_srtp(void)
{
	struct rtp_leg_params pa, pb, pc;
	struct rtp_leg *a, *b, *c = NULL;
	struct events eb;
	struct rtp_leg_stats sb;
	struct rtp_leg_state st;
	struct peer decoy, spray;
	struct flow f;

	peers_open((struct peer *[]){&decoy, &spray}, 2);
	params(&pa, "latch-srtp-a", NULL);
	params(&pb, "latch-srtp-b", &eb);
	pa.srtp_suite = pb.srtp_suite = RTP_LEG_SRTP_AES_CM_128_HMAC_SHA1_80;
	pa.local_key = KEY_A;
	pa.remote_key = KEY_B;
	pb.local_key = KEY_B;
	pb.remote_key = KEY_A;
	pb.remote_ip = "127.0.0.1";
	pb.remote_port = decoy.port; /* a's SDP says the decoy: a is "behind NAT" */
	b = rtp_leg_new(&pb);
	CHECK(b != NULL);
	pa.remote_ip = "127.0.0.1";
	pa.remote_port = b ? rtp_leg_local_port(b) : 9;
	a = rtp_leg_new(&pa);
	CHECK(a != NULL);
	if (!a || !b)
		goto out;
	/* The attacker first: without the key, nothing. */
	for (uint16_t i = 0; i < 8; i++)
		peer_rtp(&spray, b, (uint16_t)(i + 1), 0x5badf00d, SPRAY_BYTE);
	run_ms(20);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.srtp_auth_failures, 8);
	CHECK_EQ_INT(sb.latch_changes, 0);
	/* a's first packet latches at once: every packet it sends is received. */
	flow_run(&f, a, b, 10);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.packets_received, 10);
	CHECK_EQ_INT(sb.latch_changes, 1);
	CHECK_EQ_INT(eb.n_latched, 1);
	CHECK(f.got >= 5);
	/* While a talks, the attacker is dropped unchecked (no HMAC spent on it). */
	{
		uint8_t pl[160];

		memset(pl, PEER_BYTE, sizeof(pl));
		rtp_leg_send(a, pl, sizeof(pl), 160);
		peer_rtp(&spray, b, 100, 0x5badf00d, SPRAY_BYTE);
	}
	run_ms(20);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.packets_received, 11);
	CHECK_EQ_INT(sb.srtp_auth_failures, 8);
	CHECK_EQ_INT(sb.unexpected_source, 1);

	/* a's worker dies; the leg is adopted on a new port, the old source falls silent. */
	rtp_leg_get_state(a, &st);
	rtp_leg_destroy(&a);
	params(&pc, "latch-srtp-c", NULL);
	rtp_leg_params_adopt(&pc, &st, st.saved_at_ms);
	c = rtp_leg_new(&pc);
	CHECK(c != NULL);
	if (!c)
		goto out;
	run_ms(RTP_LEG_LATCH_GUARD_MS + 50);
	flow_run(&f, c, b, 10);
	rtp_leg_get_stats(b, &sb);
	CHECK_EQ_INT(sb.packets_received, 21);
	CHECK_EQ_INT(sb.latch_changes, 2);
	CHECK_EQ_INT(sb.srtp_auth_failures, 8);
	CHECK(f.got >= 5);
	CHECK_EQ_INT(f.bad_content, 0);
	flow_run(&f, b, c, 10); /* b's media goes to c now */
	CHECK(f.got >= 5);
	CHECK(got_nothing(&decoy));
out:
	rtp_leg_destroy(&a);
	rtp_leg_destroy(&b);
	rtp_leg_destroy(&c);
	peer_close(&decoy);
	peer_close(&spray);
}

int main(void)
{
	if (!rtp_testlib_setup("test_rtp_latch"))
		return 1;
	TEST_RUN(test_latch_attacker_first);
	TEST_RUN(test_latch_nat_learned);
	TEST_RUN(test_latch_rule_boundaries);
	TEST_RUN(test_latch_srtp);
	rtp_testlib_teardown();
	return TEST_DONE();
}
