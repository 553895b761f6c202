/*
 * test_callrec.c - the call counters of signaler/callrec.c, without Redis (as a signaler
 * without one counts them): started by callrec_start for the sip and call apps only, answered
 * once at the first "up", ended once by callrec_end with the reason from the answer, the final
 * SIP status or the local cause; active = started - ended. (callrec links the SIP UA, which
 * needs the su_root event loop: the Makefile lists this test in SIP_UNIT_BIN.)
 */
#include "harness.h"
#include "callrec.h"

#include <stdint.h>
#include <string.h>

/* Ends a new unanswered sip/out call with @status and @local; the reason it was counted under
 * (CALLREC_END_REASONS when none or more than one counter moved). */
static enum callrec_end_reason ended_as(int status, enum callrec_end_reason local)
{
	struct callrec_stats before, after;
	struct call_record rec = {0};
	int found = CALLREC_END_REASONS, moved = 0;

	callrec_start(&rec, "sip", "out");
	callrec_update(&rec, "ringing", NULL, NULL);
	callrec_get_stats(&before);
	callrec_end(&rec, status, local);
	callrec_get_stats(&after);
	for (int r = 0; r < CALLREC_END_REASONS; r++)
		if (after.ended[CALLREC_APP_SIP][r] != before.ended[CALLREC_APP_SIP][r]) {
			found = r;
			moved++;
		}
	return moved == 1 ? (enum callrec_end_reason)found : CALLREC_END_REASONS;
}

static void test_status_reasons(void)
{
	static const struct {
		int status;
		enum callrec_end_reason reason;
	} cases[] = {
	    {486, CALLREC_END_BUSY},	       {600, CALLREC_END_BUSY},
	    {603, CALLREC_END_DECLINED},       {404, CALLREC_END_NOT_FOUND},
	    {484, CALLREC_END_NOT_FOUND},      {604, CALLREC_END_NOT_FOUND},
	    {401, CALLREC_END_AUTH},	       {403, CALLREC_END_AUTH},
	    {407, CALLREC_END_AUTH},	       {488, CALLREC_END_NOT_ACCEPTABLE},
	    {606, CALLREC_END_NOT_ACCEPTABLE}, {415, CALLREC_END_NOT_ACCEPTABLE},
	    {408, CALLREC_END_NO_ANSWER},      {480, CALLREC_END_NO_ANSWER},
	    {487, CALLREC_END_CANCELLED},      {500, CALLREC_END_SERVER_ERROR},
	    {503, CALLREC_END_SERVER_ERROR},   {302, CALLREC_END_OTHER_SIP},
	    {410, CALLREC_END_OTHER_SIP},      {699, CALLREC_END_OTHER_SIP},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum callrec_end_reason got = ended_as(cases[i].status, CALLREC_END_ERROR);

		if (got != cases[i].reason)
			fprintf(stderr, "status %d: %s, not %s\n", cases[i].status,
				callrec_end_reason_name(got),
				callrec_end_reason_name(cases[i].reason));
		CHECK_EQ_INT(got, cases[i].reason);
	}
}

static void test_local_reasons(void)
{
	/* No SIP status (or not a peer's: nua's own 9xx): the local cause. */
	CHECK_EQ_INT(ended_as(0, CALLREC_END_NO_MEDIA), CALLREC_END_NO_MEDIA);
	CHECK_EQ_INT(ended_as(0, CALLREC_END_CLIENT_LEFT), CALLREC_END_CLIENT_LEFT);
	CHECK_EQ_INT(ended_as(0, CALLREC_END_REJECTED_BY_CLIENT), CALLREC_END_REJECTED_BY_CLIENT);
	CHECK_EQ_INT(ended_as(0, CALLREC_END_CANCELLED), CALLREC_END_CANCELLED);
	CHECK_EQ_INT(ended_as(200, CALLREC_END_ERROR), CALLREC_END_ERROR);
	CHECK_EQ_INT(ended_as(900, CALLREC_END_NO_MEDIA), CALLREC_END_NO_MEDIA);
	/* A normal end without an answer is no completed call. */
	CHECK_EQ_INT(ended_as(0, CALLREC_END_COMPLETED), CALLREC_END_ERROR);
}

static void test_answered_call(void)
{
	struct callrec_stats before, mid, after;
	struct call_record rec = {0};

	callrec_get_stats(&before);
	callrec_start(&rec, "call", "out");
	CHECK_EQ_STR(rec.app, "call");
	CHECK_EQ_STR(rec.direction, "out");
	CHECK(rec.call_id[0] != '\0');
	callrec_update(&rec, "setup", NULL, NULL);
	callrec_update(&rec, "up", NULL, NULL);
	callrec_update(&rec, "held", NULL, NULL);
	callrec_update(&rec, "up", NULL, NULL);
	callrec_get_stats(&mid);
	CHECK_EQ_INT(mid.started[CALLREC_APP_CALL][CALLREC_DIR_OUT] -
			 before.started[CALLREC_APP_CALL][CALLREC_DIR_OUT],
		     1);
	CHECK_EQ_INT(mid.answered[CALLREC_APP_CALL][CALLREC_DIR_OUT] -
			 before.answered[CALLREC_APP_CALL][CALLREC_DIR_OUT],
		     1);
	CHECK_EQ_INT(mid.active[CALLREC_APP_CALL] - before.active[CALLREC_APP_CALL], 1);
	/* Answered: completed, whatever the status; a second end counts nothing. */
	callrec_end(&rec, 486, CALLREC_END_NO_MEDIA);
	CHECK_EQ_STR(rec.call_id, "");
	callrec_end(&rec, 486, CALLREC_END_NO_MEDIA);
	callrec_get_stats(&after);
	CHECK_EQ_INT(after.ended[CALLREC_APP_CALL][CALLREC_END_COMPLETED] -
			 before.ended[CALLREC_APP_CALL][CALLREC_END_COMPLETED],
		     1);
	CHECK_EQ_INT(after.ended[CALLREC_APP_CALL][CALLREC_END_BUSY],
		     before.ended[CALLREC_APP_CALL][CALLREC_END_BUSY]);
	CHECK_EQ_INT(after.active[CALLREC_APP_CALL], before.active[CALLREC_APP_CALL]);
}

static void test_not_counted(void)
{
	struct callrec_stats before, after;
	struct call_record rec = {0}, never = {0};

	callrec_get_stats(&before);
	/* Another app's call, and a record never started. */
	callrec_start(&rec, "rtp", "out");
	callrec_update(&rec, "up", NULL, NULL);
	callrec_end(&rec, 0, CALLREC_END_ERROR);
	callrec_end(&never, 486, CALLREC_END_ERROR);
	callrec_get_stats(&after);
	CHECK(memcmp(&before, &after, sizeof(before)) == 0);
}

static void test_names(void)
{
	CHECK_EQ_STR(callrec_app_name(CALLREC_APP_SIP), "sip");
	CHECK_EQ_STR(callrec_app_name(CALLREC_APP_CALL), "call");
	CHECK_EQ_STR(callrec_dir_name(CALLREC_DIR_IN), "in");
	CHECK_EQ_STR(callrec_end_reason_name(CALLREC_END_REJECTED_BY_CLIENT), "rejected_by_client");
	CHECK_EQ_STR(callrec_end_reason_name(CALLREC_END_REASONS), "");
	for (int r = 0; r < CALLREC_END_REASONS; r++)
		CHECK(callrec_end_reason_name(r)[0] != '\0');
}

int main(void)
{
	TEST_RUN(test_status_reasons);
	TEST_RUN(test_local_reasons);
	TEST_RUN(test_answered_call);
	TEST_RUN(test_not_counted);
	TEST_RUN(test_names);
	return TEST_DONE();
}
