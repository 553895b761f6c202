/*
 * test_regrec.c - signaler/regrec.c against a real redis-server (SKIP without one): a write
 * stamps the record with the bound signaler and instance and indexes it; a delete removes only a
 * record this signaler owns; unbound, nothing is written. The record's fields themselves are
 * tested in test_state.c.
 */
#include "harness.h"
#include "log.h"
#include "redis.h"
#include "redis_fixture.h"
#include "regrec.h"
#include "state.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define AOR	 "alice@sip.example.com"
#define INSTANCE "0123456789abcdef"

static void sample(struct reg_record *rec, const char *aor)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->aor, sizeof(rec->aor), "%s", aor);
	snprintf(rec->registrar, sizeof(rec->registrar), "sip:registrar.example.com");
	snprintf(rec->rtmp_client, sizeof(rec->rtmp_client), "c1 127.0.0.1:40000");
	rec->expires_s = 60;
	rec->registered_ms = state_now_ms();
}

static void test_write_delete(void)
{
	struct counts c = {0};
	struct redis *r = connect_main(&c, 1000, 0);
	struct reg_record rec;
	struct cmd_reply res;

	CHECK(r != NULL);
	if (!r)
		return;
	regrec_init(r, "sig-r", INSTANCE);
	sample(&rec, AOR);
	regrec_write(&rec);
	CHECK_EQ_STR(rec.signaler, "sig-r");
	CHECK_EQ_STR(rec.instance, INSTANCE);
	/* Replies come in order: the write is done when a later command is answered. */
	res = cmd(r, "HGET rs:v1:reg:" AOR " signaler");
	CHECK_EQ_STR(res.str, "sig-r");
	res = cmd(r, "HGET rs:v1:reg:" AOR " instance");
	CHECK_EQ_STR(res.str, INSTANCE);
	res = cmd(r, "SISMEMBER rs:v1:signaler:sig-r:regs " AOR);
	CHECK_EQ_INT(res.integer, 1);

	/* Another signaler's delete leaves the record alone. */
	regrec_init(r, "sig-other", INSTANCE);
	regrec_delete(AOR);
	res = cmd(r, "EXISTS rs:v1:reg:" AOR);
	CHECK_EQ_INT(res.integer, 1);

	regrec_init(r, "sig-r", INSTANCE);
	regrec_delete(AOR);
	regrec_delete("");
	regrec_delete(NULL);
	res = cmd(r, "EXISTS rs:v1:reg:" AOR);
	CHECK_EQ_INT(res.integer, 0);
	res = cmd(r, "SISMEMBER rs:v1:signaler:sig-r:regs " AOR);
	CHECK_EQ_INT(res.integer, 0);

	/* Unbound: nothing is written, the record is left as it was. */
	regrec_init(NULL, NULL, NULL);
	sample(&rec, AOR);
	regrec_write(&rec);
	CHECK_EQ_STR(rec.signaler, "");
	res = cmd(r, "EXISTS rs:v1:reg:" AOR);
	CHECK_EQ_INT(res.integer, 0);
	redis_destroy(&r);
}

int main(void)
{
	int ret;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_regrec", LOG_LVL_WARN);
	ret = redis_fixture_start("test_regrec");
	if (ret <= 0)
		return ret < 0 ? 1 : TEST_DONE();
	TEST_RUN(test_write_delete);
	evloop_destroy(&loop);
	return TEST_DONE();
}
