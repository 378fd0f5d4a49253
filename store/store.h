/*
 * store.h - the modstore engine: versioned memory images of VM modules in
 * one state directory.
 *
 * Layout (see README.md, "On disk"): for every module MOD (64 hex):
 *
 *   MOD              current memory (hard link to the current commit file,
 *                    or to .MOD_init while the module has no commit)
 *   MOD_MODCOMMIT    the memory of one module commit, never modified
 *   MOD_last         current module commit (hard link to MOD_MODCOMMIT)
 *   MOD_last_id      "MODCOMMIT\n"
 *   commits          the commits store, written by store_persist()
 *   .MOD_init        sparse all-zero memory of the deployed size
 *   .MOD_bytecode    the module's bytecode, whose hash is MOD (absent for a
 *                    module deployed before bytecode was kept)
 *   .journal         intent record of the last commit or restore
 *   .lock            held (flock) while a process has the store open
 *   .tmp-*           temporaries; removed when the store is opened
 *
 * Ids are BLAKE2b-256 digests (../docs or hashing.md): module id =
 * H(bytecode), module commit id = RFC 6962 Merkle tree hash over the page
 * leaves, commit id = Merkle tree hash over the module leaves.
 *
 * Every function is safe to call from many threads at once. Nothing here
 * prints, aborts or exits; every failure is an enum store_err and leaves the
 * store consistent and usable.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_ID_BYTES		 32
#define STORE_HEX_LEN		 64
#define STORE_PAGE_SIZE		 4096
#define STORE_DEFAULT_MEMORY	 65536
#define STORE_DEFAULT_MAX_MODULE (1024ULL * 1024 * 1024)
/*
 * The largest max_module_size: 64 GiB. No offset arithmetic can wrap below
 * it, and a session's bitmap of dirty pages for one module stays at most
 * 2 MiB.
 */
#define STORE_MAX_MODULE_LIMIT (64ULL << 30)
/* Sessions' written pages held in memory, at most (then in files). */
#define STORE_DEFAULT_SESSION_MEMORY (64ULL << 20)
#define STORE_BACKGROUND_LOAD	     (16ULL << 20)

struct store;

/* A 32-byte id: module, module commit, commit, root or session. */
struct store_id {
	unsigned char b[STORE_ID_BYTES];
};

/* A module and its module commit, as in the commits store. */
struct store_pair {
	struct store_id module;
	struct store_id commit;
};

enum store_err {
	STORE_OK = 0,
	STORE_EINVAL,	   /* malformed argument: size, offset, empty code */
	STORE_ENOMODULE,   /* module not deployed */
	STORE_ENOSESSION,  /* no such session (or it has committed) */
	STORE_ENOCOMMIT,   /* commit unknown (also after reading `commits`) */
	STORE_ENOBYTECODE, /* module deployed before its bytecode was kept */
	STORE_ETOOBIG,	   /* memory would exceed the configured maximum */
	STORE_ERANGE,	   /* read past the end of memory */
	STORE_EBUSY,	   /* too many open sessions */
	STORE_EMISMATCH,   /* expected root does not match the current root */
	STORE_ENOSPC,	   /* no space left on the state directory's disk */
	STORE_ENOMEM,	   /* allocation failed */
	STORE_EIO,	   /* any other I/O error */
	STORE_ECORRUPT,	   /* a file of the state directory is malformed */
	STORE_ELOCKED,	   /* another process has the directory open */
	STORE_ERR_COUNT
};

/* A static English description of err; never NULL. */
const char *store_strerror(enum store_err err);

/* A stable snake_case name for err ("module_not_found", "disk_full"...). */
const char *store_errname(enum store_err err);

/*
 * Test hook, called before each I/O step of deploy, commit, persist and
 * restore with the step's name ("switch.sync", "switch.rename", ...).
 * Returning 0 lets the step run; returning an errno value makes the step
 * fail as if the system call had failed with it. A hook may also _exit().
 * For a flush step (fsync, fdatasync or syncfs: "switch.sync",
 * "delete.fsync", "dir.fsync", ...), STORE_FAULT_SKIP makes the step report
 * success without flushing: the power-cut tests use it to show that each
 * flush is needed.
 */
typedef int (*store_fault_fn)(void *ctx, const char *step);
#define STORE_FAULT_SKIP (-1)

struct store_options {
	const char *dir; /* state directory; created 0700 if missing */
	/* bytes, a multiple of the page size up to STORE_MAX_MODULE_LIMIT;
	 * 0 means the default of 1 GiB (others are STORE_EINVAL) */
	uint64_t max_module_size;
	/* bytes of sessions' written pages kept in memory, in all; past it a
	 * session's overlay moves to a file. 0 means 64 MiB. */
	uint64_t max_session_memory;
	unsigned int max_sessions; /* 0 means no limit */
	/* after each commit, delete the oldest beyond the newest N; 0: none */
	unsigned int keep_commits;
	/* bytes of page trees of module commits kept for proofs and diffs
	 * (beyond the current state's); 0 means STORE_DEFAULT_TREE_CACHE */
	uint64_t tree_cache_size;
	/* pages a diff lists, in all; 0 means STORE_DEFAULT_MAX_DIFF_PAGES */
	uint64_t max_diff_pages;
	/* a file `commits` larger than this many bytes is read after open
	 * returns, by a thread of the store, so the state answers at once
	 * (0 means 16 MiB); what needs the commits store waits for it */
	uint64_t background_load_bytes;
	/* keep FS_TMP_POOL empty temporaries made ahead by a thread, so a
	 * commit does not wait for new inodes (store/fs.h); the daemon sets
	 * it. Not for a store whose process forks while it is open. */
	int tmp_pool;
	store_fault_fn fault; /* NULL in production */
	void *fault_ctx;
};

/*
 * Open (creating it if missing) the state directory opts->dir: take its
 * lock, finish an interrupted commit or restore from .journal, remove
 * temporaries, load the current state from the _last_id files and the
 * commits store from `commits` if present (a large one in the background:
 * see background_load_bytes). *out is freed with store_close().
 */
enum store_err store_open(struct store **out, const struct store_options *opts);

/*
 * Wait until the commits store holds the file `commits` (at once unless a
 * background load runs); the load's error, such as STORE_ECORRUPT, which
 * every call that needs the commits store returns from then on.
 */
enum store_err store_commits_ready(struct store *s);

/* Drop every session and release the store. NULL is a no-op. */
void store_close(struct store *s);

/* --- ids ---------------------------------------------------------------- */

/* Parse exactly 64 hex digits (either case); STORE_EINVAL otherwise. */
enum store_err store_id_parse(struct store_id *out, const char *hex,
			      size_t len);

/* Write 64 uppercase hex digits and a NUL into out. */
void store_id_hex(const struct store_id *id, char out[STORE_HEX_LEN + 1]);

int store_id_equal(const struct store_id *a, const struct store_id *b);

/* Module id of bytecode: H(code). */
void store_module_id(const void *code, size_t len, struct store_id *out);

/* Module commit id of a memory image; len a multiple of the page size. */
void store_memory_id(const void *mem, size_t len, struct store_id *out);

/* Commit id (state root) of n pairs in any order. */
enum store_err store_state_id(const struct store_pair *pairs, size_t n,
			      struct store_id *out);

/* --- modules ------------------------------------------------------------ */

struct store_module_info {
	struct store_id id;
	uint64_t size;		     /* bytes of current memory */
	int has_commit;		     /* 0: initial all-zero memory */
	struct store_id last_commit; /* valid when has_commit */
};

/*
 * Deploy a module whose memory is `size` bytes of zeros (a positive multiple
 * of the page size, at most the maximum), keeping code as its bytecode in
 * .MOD_bytecode, durable on return like the module. *created is 1 when it
 * is new, 0 when it was already deployed (then size is ignored, info
 * describes the module as it is, and its bytecode file stays as it is; a
 * module that had none, deployed before bytecode was kept, gets this
 * one). info and created may be NULL.
 */
enum store_err store_deploy(struct store *s, const void *code, size_t len,
			    uint64_t size, struct store_module_info *info,
			    int *created);

/*
 * The bytecode of a deploy as it arrives in pieces (an HTTP body), kept in
 * a temporary file of the state directory and hashed on the way, so that
 * no more than a piece is ever in memory. store_upload_new() makes one;
 * store_upload_write() appends to it; store_deploy_upload() deploys the
 * module whose id is the hash of everything written, as store_deploy()
 * does with code; store_upload_free() releases it whatever happened,
 * removing the temporary unless a deploy kept it. One thread at a time
 * uses an upload; it must not outlive its store.
 */
struct store_upload;

enum store_err store_upload_new(struct store *s, struct store_upload **out);

/*
 * Append len bytes. After a failure the upload is unusable: every later
 * write and its deploy return that error.
 */
enum store_err store_upload_write(struct store_upload *u, const void *buf,
				  size_t len);

/*
 * Deploy the module of u's bytes (STORE_EINVAL when none were written, or
 * when u was deployed already). Otherwise as store_deploy().
 */
enum store_err store_deploy_upload(struct store *s, struct store_upload *u,
				   uint64_t size,
				   struct store_module_info *info,
				   int *created);

/* Remove u's temporary if it is still there and free u. NULL is a no-op. */
void store_upload_free(struct store_upload *u);

/*
 * Deploy a module by its id alone, keeping no bytecode: the module is as
 * one deployed before bytecode was kept (store_bytecode_open() answers
 * STORE_ENOBYTECODE until a store_deploy() of its code). Otherwise as
 * store_deploy().
 */
enum store_err store_deploy_id(struct store *s, const struct store_id *mod,
			       uint64_t size, struct store_module_info *info,
			       int *created);

/*
 * A read-only descriptor on the module's bytecode (the file .MOD_bytecode,
 * never modified) and its length in bytes, checked first: the bytes must
 * hash to the module id, else STORE_ECORRUPT. STORE_ENOMODULE for an
 * unknown module, STORE_ENOBYTECODE for one deployed before bytecode was
 * kept. Caller closes *fd.
 */
enum store_err store_bytecode_open(struct store *s, const struct store_id *mod,
				   int *fd, uint64_t *len);

enum store_err store_module_get(struct store *s, const struct store_id *mod,
				struct store_module_info *info);

/* All modules sorted by id. Caller frees *out with free(). */
enum store_err store_module_list(struct store *s,
				 struct store_module_info **out, size_t *n);

/*
 * A read-only descriptor on the module's current memory, which is never
 * modified while open, and its info (size = bytes to serve, last_commit =
 * the ETag; info may be NULL). Caller closes *fd.
 */
enum store_err store_module_open(struct store *s, const struct store_id *mod,
				 int *fd, struct store_module_info *info);

/* --- state -------------------------------------------------------------- */

/* The Merkle root of the current state (H("") when no module has a commit). */
enum store_err store_root(struct store *s, struct store_id *root);

/* --- sessions ----------------------------------------------------------- */

struct store_session_info {
	struct store_id id;
	int has_base;
	struct store_id base;
};

/*
 * Begin a session on commit *base, or on the current state when base is
 * NULL. info->has_base is 0 when the session starts from a state with no
 * module commit at all; otherwise info->base is the commit id (the root) of
 * the state it starts from. STORE_ENOCOMMIT for an unknown base (the file
 * `commits` is not consulted), STORE_EBUSY when max_sessions are open.
 */
enum store_err store_session_begin(struct store *s, const struct store_id *base,
				   struct store_session_info *info);

/* Open sessions, oldest first. Caller frees *out with free(). */
enum store_err store_session_list(struct store *s,
				  struct store_session_info **out, size_t *n);

/* Size in bytes of the session's view of a module. */
enum store_err store_session_size(struct store *s, const struct store_id *sid,
				  const struct store_id *mod, uint64_t *size);

/*
 * Read len bytes at off of the session's view of a module into buf:
 * STORE_ERANGE unless off + len <= size.
 */
enum store_err store_session_read(struct store *s, const struct store_id *sid,
				  const struct store_id *mod, uint64_t off,
				  void *buf, size_t len);

/*
 * Write len bytes at off into the session's view. Past the end the memory
 * grows, zero-filled, to the smallest whole number of pages holding the
 * write; STORE_ETOOBIG beyond the maximum (nothing is written then).
 */
enum store_err store_session_write(struct store *s, const struct store_id *sid,
				   const struct store_id *mod, uint64_t off,
				   const void *buf, size_t len);

/* Drop a session and its writes. */
enum store_err store_session_drop(struct store *s, const struct store_id *sid);

/*
 * Drop sessions not used for idle_seconds or more; *dropped (may be NULL)
 * gets their number.
 */
enum store_err store_session_expire(struct store *s, unsigned int idle_seconds,
				    size_t *dropped);

/* --- commits ------------------------------------------------------------ */

struct store_commit_info {
	struct store_id id;
	int has_base;
	struct store_id base;
	size_t n;
	struct store_pair *pairs; /* sorted by module id; owned */
};

/* Free what a store_commit_info holds (not the struct itself). */
void store_commit_info_release(struct store_commit_info *ci);

/*
 * Commit a session: the new state is its base plus its writes, for every
 * module deployed now. With expect_root non-NULL, STORE_EMISMATCH (and the
 * session stays open) unless it equals the current root. On success the
 * session is gone and *out (caller releases) holds the commit id, the base
 * and the full module -> module commit map. Durable on return.
 */
enum store_err store_session_commit(struct store *s, const struct store_id *sid,
				    const struct store_id *expect_root,
				    struct store_commit_info *out);

/* Pairs of a commit in the commits store (caller frees *pairs). */
enum store_err store_commit_get(struct store *s, const struct store_id *commit,
				struct store_pair **pairs, size_t *n);

/*
 * A read-only descriptor on the memory of module mod as commit holds it
 * (the file MOD_MODCOMMIT, never modified) and its size in bytes.
 * STORE_ENOCOMMIT when commit is not in the commits store (the file
 * `commits` is not consulted), STORE_ENOMODULE when it does not hold mod.
 * Caller closes *fd.
 */
enum store_err store_commit_open(struct store *s, const struct store_id *commit,
				 const struct store_id *mod, int *fd,
				 uint64_t *size);

/*
 * Call fn for every commit in the commits store as it was when the walk
 * began, oldest first. No lock of the store is held while fn runs. A
 * nonzero return from fn stops the walk.
 */
typedef int (*store_commit_fn)(void *ctx, const struct store_id *commit,
			       const struct store_pair *pairs, size_t n);
enum store_err store_commits_foreach(struct store *s, store_commit_fn fn,
				     void *ctx);

/*
 * The commits store as the JSON text the file `commits` holds,
 * {"COMMIT":{"MOD":"MODCOMMIT",...},...} and a newline; caller frees.
 * Formatted without holding the store's lock.
 */
enum store_err store_commits_text(struct store *s, char **out, size_t *len);

/*
 * That text in pieces, for answers too large to hold at once: the commits
 * of the store when the reader was opened, oldest first (one deleted
 * meanwhile is left out). No lock of the store is held while it formats.
 */
struct store_commits_reader;
enum store_err store_commits_reader_open(struct store *s,
					 struct store_commits_reader **r);
/* Up to cap bytes of the text into buf; *got is 0 at the end. */
enum store_err store_commits_read(struct store_commits_reader *r, char *buf,
				  size_t cap, size_t *got);
void store_commits_reader_close(struct store_commits_reader *r);

/* Number of commits in the commits store. */
size_t store_commits_count(struct store *s);

/*
 * Write the commits store to the file `commits`, durably. Sessions, reads
 * and commits go on meanwhile: no lock they take is held while it formats
 * and writes. Once the file holds commits, a persist appends only those it
 * does not hold yet (commits_file.h tells how a cut cannot damage it).
 */
enum store_err store_persist(struct store *s);

/*
 * Make commit the current state: every module of it points at its module
 * commit again, every other module goes back to its initial memory. When
 * the commit is unknown, the file `commits` is merged in first. Durable on
 * return. Copies no module memory.
 */
enum store_err store_restore(struct store *s, const struct store_id *commit);

/*
 * Forget commit: out of the commits store and, when the file `commits`
 * holds it, out of that file too (durably, the rest of the file as it is),
 * then remove the module commit files that nothing needs any more (see
 * store_gc). It may be the current state's commit: the state stays. Files
 * an open session still needs are removed when the last such session ends.
 * STORE_ENOCOMMIT when the commit is unknown.
 */
enum store_err store_commit_delete(struct store *s,
				   const struct store_id *commit);

struct store_gc_info {
	uint64_t removed_files;
	uint64_t freed_bytes; /* bytes allocated by the files removed */
};

/*
 * Remove every module commit file MOD_MODCOMMIT that nothing needs: no
 * commit of the commits store (nor of the file `commits`), not the current
 * state, no open session. .MOD_init, .MOD_bytecode and MOD stay. info may
 * be NULL.
 */
enum store_err store_gc(struct store *s, struct store_gc_info *info);

/* --- figures ------------------------------------------------------------ */

struct store_stats {
	uint64_t modules;
	uint64_t commits;
	uint64_t sessions;
	uint64_t bytes_written;	  /* module memory written to disk since open */
	uint64_t bytes_on_disk;	  /* allocated bytes in the state directory */
	uint64_t session_memory;  /* sessions' written pages held in memory */
	uint64_t commits_deleted; /* by delete and retention, since open */
	uint64_t files_removed;	  /* module commit files, since open */
	uint64_t bytes_freed;	  /* allocated bytes of those files */
	/* temporary files named from the pool made ahead (store_options */
	uint64_t tmp_pooled; /* .tmp_pool), and made when asked for, */
	uint64_t tmp_made;   /* the pool being empty or off; since open */
};

enum store_err store_get_stats(struct store *s, struct store_stats *st);

/* --- proofs and diffs (pages.c, proof.c) --------------------------------- */

/* Page trees kept for proofs and diffs, by default: 256 MiB. */
#define STORE_DEFAULT_TREE_CACHE (256ULL << 20)
/* Pages one diff lists, by default: 1 Mi pages (4 GiB of changed memory). */
#define STORE_DEFAULT_MAX_DIFF_PAGES (1ULL << 20)
/* Longest audit path: a tree of 2^64 leaves. */
#define STORE_PROOF_MAX_PATH 64

/*
 * The proof that a page belongs to a commit (http-api.md, "Proof of one
 * page"): the page, its audit path among the page leaves of the module
 * commit (RFC 6962 PATH(i, D[n]), nearest the leaf first) and the module
 * leaf's audit path among the commit's module leaves ordered by id.
 */
struct store_page_proof {
	struct store_id commit, module, module_commit;
	uint64_t page_index, page_count;
	unsigned char page[STORE_PAGE_SIZE];
	size_t page_path_len;
	struct store_id page_path[STORE_PROOF_MAX_PATH];
	uint64_t module_index, module_count;
	size_t module_path_len;
	struct store_id module_path[STORE_PROOF_MAX_PATH];
};

/*
 * The proof of page index of module mod in commit. STORE_ENOCOMMIT for a
 * commit not in the commits store, STORE_ENOMODULE when the commit does
 * not hold mod, STORE_ERANGE when index >= the module's pages. The page
 * tree comes from the current state when the module commit is current,
 * else from the tree cache, else it is rebuilt from the commit file (the
 * whole memory hashed once, then cached; see README.md).
 */
enum store_err store_page_proof(struct store *s, const struct store_id *commit,
				const struct store_id *mod, uint64_t index,
				struct store_page_proof *out);

/* H(0x00 || page): the leaf of a page of STORE_PAGE_SIZE bytes. */
void store_page_leaf(const void *page, struct store_id *out);

/* H(0x00 || mod || mc): a module's leaf in a commit. */
void store_module_leaf(const struct store_id *mod, const struct store_id *mc,
		       struct store_id *out);

/*
 * RFC 9162 section 2.1.3.2: 1 when the audit path of n ids proves that
 * leaf is leaf number index of a tree of count leaves whose root is root,
 * 0 otherwise (also for index >= count or a path of the wrong length).
 */
int store_proof_verify(uint64_t index, uint64_t count,
		       const struct store_id *leaf, const struct store_id *path,
		       size_t n, const struct store_id *root);

/*
 * Both steps of a page proof, as a client makes them: the page's leaf and
 * page_path give module_commit, then the module leaf and module_path give
 * commit. STORE_OK, or STORE_EMISMATCH and *step (may be NULL) = 1 when
 * the page step fails, 2 when the module step does.
 */
enum store_err store_page_proof_check(const struct store_page_proof *p,
				      int *step);

/* One module whose module commit differs between two commits. */
struct store_diff_module {
	struct store_id module;
	int has_from, has_to; /* 0: that commit does not hold the module */
	struct store_id from, to;
	uint64_t size_from, size_to; /* bytes; valid with has_from, has_to */
	size_t npages;
	uint64_t *pages; /* ascending page indices to fetch; owned */
};

struct store_diff {
	size_t n;
	struct store_diff_module *m; /* sorted by module id; owned */
	uint64_t total_pages;	     /* sum of the npages */
};

/*
 * The modules whose module commit differs between commits from and to,
 * sorted by id. With pages, each lists the pages of to that are beyond the
 * end of from or differ from it (none when to does not hold the module),
 * found by walking both page trees and pruning equal subtrees; without, no
 * tree is needed. STORE_ENOCOMMIT when either commit is unknown,
 * STORE_ETOOBIG when more than max_diff_pages pages would be listed.
 * Release *out with store_diff_release().
 */
enum store_err store_commit_diff(struct store *s, const struct store_id *from,
				 const struct store_id *to, int pages,
				 struct store_diff *out);
void store_diff_release(struct store_diff *d);

/*
 * The module commit of mod in commit: STORE_ENOCOMMIT, STORE_ENOMODULE as
 * store_commit_open().
 */
enum store_err store_commit_module(struct store *s,
				   const struct store_id *commit,
				   const struct store_id *mod,
				   struct store_id *mc);

struct store_tree_cache_stats {
	uint64_t bytes, limit; /* bytes of trees held; the bound */
	uint64_t trees;	       /* trees held */
	uint64_t builds;       /* trees rebuilt from commit files, since open */
	uint64_t hits;	       /* trees found in the cache, since open */
};

void store_tree_cache_stats(struct store *s, struct store_tree_cache_stats *st);

/* --- replication (import.c): what a cluster's follower receives ----------- */

/* 1 when the module commit file of (mod, mc) is in the directory. */
int store_commit_file_exists(struct store *s, const struct store_id *mod,
			     const struct store_id *mc);

/*
 * Keep the bytes written to u (store_upload_new/_write) as the module
 * commit file of (mod, mc), durably, once their Merkle id is checked to be
 * mc: STORE_EMISMATCH when it is not (nothing kept), STORE_EINVAL for a
 * length that is not a positive multiple of the page size up to the
 * maximum, STORE_ENOMODULE for a module not deployed. STORE_OK at once
 * when the file is there already. The current state does not change;
 * free u with store_upload_free() afterwards.
 */
enum store_err store_commit_file_import(struct store *s,
					const struct store_id *mod,
					const struct store_id *mc,
					struct store_upload *u);

/*
 * store_commit_file_import() of n files at once, each pairs[i] from u[i]:
 * each checked as there, then one flush (syncfs) for all their data, the
 * names, one flush of the directory. errs[i] is each file's result; the
 * first failure is returned. Free each u[i] afterwards.
 */
enum store_err store_commit_files_import(struct store *s, size_t n,
					 const struct store_pair *pairs,
					 struct store_upload **u,
					 enum store_err *errs);

/*
 * A module commit file made from another one of the same module that is
 * here (a follower that holds the memory before a commit fetches only the
 * pages that differ): store_patch_new() starts a temporary file of size
 * bytes as a copy of the file of (mod, base), all but the n pages listed
 * in changed (ascending, unique, below size / STORE_PAGE_SIZE), which
 * stay zero, as does anything past base's end. The copy is made with
 * copy_file_range (on XFS the blocks are shared, not copied); the pages
 * the base's page tree, when one is at hand, says are zero stay holes.
 * STORE_ENOCOMMIT when the file of (mod, base) is not here,
 * STORE_ENOMODULE for a module not deployed, STORE_EINVAL for a size or a
 * list out of bounds.
 *
 * store_patch_write() writes bytes at off (within size): the changed
 * pages. store_patch_import() then hashes the whole file and keeps it as
 * the module commit file of (mod, mc) as store_commit_file_import() does
 * (STORE_EMISMATCH when its Merkle id is not mc: nothing kept; durable
 * before it returns); its page tree goes to the tree cache, for the next
 * patch of the module. Free p with store_patch_free() in every case.
 */
struct store_patch;
enum store_err store_patch_new(struct store *s, const struct store_id *mod,
			       const struct store_id *base, uint64_t size,
			       const uint64_t *changed, size_t n,
			       struct store_patch **p);
enum store_err store_patch_write(struct store_patch *p, uint64_t off,
				 const void *buf, size_t len);
enum store_err store_patch_import(struct store_patch *p,
				  const struct store_id *mc);
/*
 * store_patch_import() of n patches at once, p[i] as mc[i]: each checked,
 * then one flush (syncfs) for all, the names, one flush of the directory.
 * errs[i] is each one's result; the first failure is returned.
 */
enum store_err store_patches_import(struct store *s, size_t n,
				    struct store_patch **p,
				    const struct store_id *mc,
				    enum store_err *errs);
void store_patch_free(struct store_patch *p);

/*
 * Add commit, of the n pairs (any order), to the commits store without
 * changing the current state: STORE_EMISMATCH unless commit is the root of
 * the pairs (n > 0), STORE_ENOMODULE for a module not deployed,
 * STORE_ENOCOMMIT when a module commit file is missing. Already there:
 * STORE_OK. store_restore() then makes it current.
 */
enum store_err store_commit_add(struct store *s, const struct store_id *commit,
				const struct store_pair *pairs, size_t n);

#endif /* STORE_H */
