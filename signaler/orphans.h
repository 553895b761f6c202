/*
 * orphans.h - the orphan finder: ends the calls of dead signalers (and of this signaler's own
 * previous run) cleanly, from any live signaler.
 *
 * Every second each signaler looks for signalers whose heartbeat (rs:v1:signalers, written by
 * callrec.c) is older than STATE_SIGNALER_LIVENESS_MS; one at a time, under a short lock
 * (rs:v1:lock:orphans:<id>, 10 s) so that two live signalers never act on the same one, it reads
 * that signaler's calls index and, for each call record: sends the BYE from the dialog data in the
 * record (sip_ua_bye_dialog), destroys the media leg on its worker (DESTROY_LEG, which also
 * deletes the leg's record) and deletes the call record. Then it deletes the dead signaler's
 * registration records (the registrar lets the bindings expire), and drops the signaler from
 * rs:v1:signalers once both its indexes are empty.
 *
 * A restarted signaler (same SIGNALER_ID, new instance) does the same, once, for the records of
 * its previous run: as soon as callrec_alone() says that run is silent. Records of a live
 * instance are never touched. Every action is logged with the call id; a malformed record is
 * skipped with a log line (and the signaler retried 30 s later).
 */
#ifndef RS_ORPHANS_H
#define RS_ORPHANS_H

struct evloop;
struct redis;
struct sip_ua;
struct media;
struct orphans;

/*
 * Starts the finder for signaler @signaler_id (copied). @redis is required (NULL: returns NULL,
 * errno 0: nothing to do without Redis); @ua (NULL: no BYEs can be sent, logged) and @media
 * (NULL: legs are only deleted from Redis) are borrowed and must outlive the finder. NULL with
 * errno on failure.
 */
struct orphans *orphans_new(struct evloop *loop, struct redis *redis, const char *signaler_id,
			    struct sip_ua *ua, struct media *media);

/* Stops the finder (pending Redis requests cancelled; BYEs sent finish on their own). NULL-safe,
 * clears *op. */
void orphans_destroy(struct orphans **op);

#endif
