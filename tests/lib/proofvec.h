/*
 * proofvec.h - tests/proof-vectors.json: loading it, reading its proofs
 * into struct store_page_proof, and making a state directory whose
 * commits store holds the vectors' commit (modules deployed by id, their
 * pages written in a session, committed and persisted).
 */
#ifndef PROOFVEC_H
#define PROOFVEC_H

#include <jansson.h>

#include "store.h"

/*
 * The vectors: $MODSTORE_PROOF_VECTORS, else tests/proof-vectors.json,
 * else beside the test program's build directory. NULL with a message.
 */
json_t *pv_load(const char *argv0);

/* A proof object of the vectors into p; 0, or -1 when malformed. */
int pv_proof(const json_t *j, struct store_page_proof *p);

/*
 * Make dir's store hold the vectors' commit, persisted: each module of the
 * proofs deployed by id with its pages, one commit. *commit gets the id
 * the store gave it. 0, or -1 with a message.
 */
int pv_make_state(const json_t *vectors, const char *dir,
		  struct store_id *commit);

#endif /* PROOFVEC_H */
