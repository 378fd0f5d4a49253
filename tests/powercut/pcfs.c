/*
 * pcfs.c - the power-cut model served over FUSE, and its commands (see
 * pcfs.h). The server is one thread polling the FUSE device and its
 * control connections; every request is handled to the end before the
 * next one is read.
 */
#define FUSE_USE_VERSION 35
#include "pcfs.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Within one mount every access goes through its kernel: caching is safe. */
#define PC_TIMEOUT  3600.0
#define PC_MAXCONNS 16

static struct server {
	struct pcm *m;	  /* what the system sees, and what is pending */
	struct pcm *snap; /* the frozen moment of a cut */
	int frozen;
	uint64_t events, arm;
	struct fuse_session *se;
	const char *mnt;
	volatile sig_atomic_t quit;
} srv;

/* --- events --------------------------------------------------------------- */

/* Take the moment of a cut: a copy to cut from, as often as asked. */
static void freeze(void)
{
	if (srv.frozen)
		return; /* nothing changed since */
	srv.frozen = 1;
	srv.arm = 0;
	pcm_free(srv.snap);
	srv.snap = pcm_copy(srv.m);
}

/*
 * Count an event of process pid; 0 to go on, EIO when the power is off: at
 * the armed event the process is killed first, so it never sees the error.
 */
static int event(pid_t pid)
{
	if (srv.frozen)
		return EIO;
	srv.events++;
	if (srv.arm && srv.events >= srv.arm) {
		kill(pid, SIGKILL);
		freeze();
		return EIO;
	}
	return 0;
}

static int req_event(fuse_req_t req)
{
	int e = event(fuse_req_ctx(req)->pid);

	if (e)
		fuse_reply_err(req, e);
	return e;
}

/* --- FUSE operations ------------------------------------------------------ */

static int fill_attr(uint64_t ino, struct stat *st)
{
	unsigned int nlink;
	uint64_t size;
	mode_t mode;

	memset(st, 0, sizeof(*st));
	if (pcm_attr(srv.m, ino, &mode, &nlink, &size))
		return -1;
	st->st_ino = ino;
	st->st_mode = mode;
	st->st_nlink = nlink;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

static void reply_entry(fuse_req_t req, uint64_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (fill_attr(ino, &e.attr)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = e.entry_timeout = PC_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, uint64_t ino)
{
	struct stat st;

	if (fill_attr(ino, &st))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, PC_TIMEOUT);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* every write reaches the model before write() returns */
	conn->want &=
	    ~(unsigned int)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t ino = parent == PCM_ROOT ? pcm_lookup(srv.m, name) : 0;

	if (!ino)
		fuse_reply_err(req, ENOENT);
	else
		reply_entry(req, ino);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)fi;
	reply_attr(req, ino);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	int e = 0;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (req_event(req))
			return;
		e = pcm_truncate(srv.m, ino, (uint64_t)attr->st_size);
	}
	if (!e && (to_set & FUSE_SET_ATTR_MODE))
		e = pcm_chmod(srv.m, ino, attr->st_mode);
	if (e)
		fuse_reply_err(req, e);
	else
		reply_attr(req, ino);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!pcm_exists(srv.m, ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fi->keep_cache = 0;
	fi->direct_io = 0;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	uint64_t ino = 0;
	int err;

	if (parent != PCM_ROOT || !S_ISREG(mode | S_IFREG)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (req_event(req))
		return;
	err = pcm_create(srv.m, name, mode, &ino);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	memset(&e, 0, sizeof(e));
	fill_attr(ino, &e.attr);
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = e.entry_timeout = PC_TIMEOUT;
	fi->keep_cache = 0;
	fi->direct_io = 0;
	fi->noflush = 1;
	fuse_reply_create(req, &e, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	uint64_t ino = 0;
	int err;

	(void)rdev;
	if (parent != PCM_ROOT || !S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (req_event(req))
		return;
	err = pcm_create(srv.m, name, mode, &ino);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, ino);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	size_t n;

	(void)fi;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pcm_read(srv.m, ino, buf, size, (uint64_t)off);
	fuse_reply_buf(req, buf, n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	int err;

	(void)fi;
	if (req_event(req))
		return;
	err = pcm_write(srv.m, ino, buf, size, (uint64_t)off);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	char *buf;
	size_t n;
	int err;

	(void)fi_in;
	(void)fi_out;
	(void)flags;
	if (req_event(req))
		return;
	buf = malloc(len ? len : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pcm_read(srv.m, ino_in, buf, len, (uint64_t)off_in);
	err = pcm_write(srv.m, ino_out, buf, n, (uint64_t)off_out);
	free(buf);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, n);
}

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)datasync; /* fdatasync writes the size too: model.h */
	(void)fi;
	if (req_event(req))
		return;
	pcm_fsync(srv.m, ino);
	fuse_reply_err(req, 0);
}

/* A listing is taken whole at opendir: names removed meanwhile stay in it. */
struct listing {
	size_t n;
	char **names;
	uint64_t *inos;
};

static void listing_free(struct listing *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->inos);
	free(l);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct listing *l;
	const char **names;
	uint64_t *inos;
	size_t i, n;

	if (ino != PCM_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	n = pcm_names(srv.m, &names, &inos);
	l = calloc(1, sizeof(*l));
	if (l) {
		l->names = calloc(n + 1, sizeof(*l->names));
		l->inos = calloc(n + 1, sizeof(*l->inos));
	}
	if (!l || !l->names || !l->inos) {
		listing_free(l);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = 0; i < n; i++) {
		l->names[i] = strdup(names[i]);
		l->inos[i] = inos[i];
		if (!l->names[i]) {
			listing_free(l);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		l->n++;
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct listing *l = (const struct listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t pos = 0, i;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = (size_t)off; i < l->n + 2; i++) {
		struct stat st;
		const char *name = i == 0   ? "."
				   : i == 1 ? ".."
					    : l->names[i - 2];
		size_t need;

		memset(&st, 0, sizeof(st));
		st.st_ino = i < 2 ? PCM_ROOT : l->inos[i - 2];
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		need = fuse_add_direntry(req, buf + pos, size - pos, name, &st,
					 (off_t)(i + 1));
		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	listing_free((struct listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	if (req_event(req))
		return;
	pcm_fsyncdir(srv.m);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	memset(&st, 0, sizeof(st));
	st.f_bsize = st.f_frsize = 4096;
	st.f_blocks = st.f_bfree = st.f_bavail = 1 << 20;
	st.f_files = st.f_ffree = st.f_favail = 1 << 20;
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	int err;

	if (newparent != PCM_ROOT) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (req_event(req))
		return;
	err = pcm_link(srv.m, ino, newname);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, ino);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != PCM_ROOT) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (req_event(req))
		return;
	fuse_reply_err(req, pcm_unlink(srv.m, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	if (parent != PCM_ROOT || newparent != PCM_ROOT) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	if (req_event(req))
		return;
	fuse_reply_err(req, pcm_rename(srv.m, name, newname, flags));
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .unlink = op_unlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_ok,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .create = op_create,
    .copy_file_range = op_copy_file_range,
};

/* --- mounting ------------------------------------------------------------- */

static void unmount_fs(void)
{
	if (!srv.se)
		return;
	fuse_session_unmount(srv.se);
	fuse_session_destroy(srv.se);
	srv.se = NULL;
}

static int mount_fs(void)
{
	static char name[] = "pcfs";
	char *argv[] = {name, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);

	srv.se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!srv.se)
		return -1;
	if (fuse_session_mount(srv.se, srv.mnt)) {
		fuse_session_destroy(srv.se);
		srv.se = NULL;
		return -1;
	}
	return 0;
}

/* A fresh mount: the kernel keeps nothing of the previous one. */
static int remount(void)
{
	unmount_fs();
	return mount_fs();
}

/* --- commands ------------------------------------------------------------- */

static void command(const struct pcfs_msg *msg, struct pcfs_reply *rep)
{
	struct pcm_cut_stats st;

	memset(rep, 0, sizeof(*rep));
	switch (msg->cmd) {
	case PCFS_RESET:
		pcm_free(srv.m);
		pcm_free(srv.snap);
		srv.m = pcm_new();
		srv.snap = NULL;
		srv.frozen = 0;
		srv.events = srv.arm = 0;
		rep->err = remount() ? EIO : 0;
		break;
	case PCFS_ARM:
		srv.arm = (uint64_t)msg->a;
		break;
	case PCFS_SYNC:
		rep->err = event(msg->pid);
		if (!rep->err)
			pcm_syncfs(srv.m);
		break;
	case PCFS_EVENTS:
		rep->a = (int64_t)srv.events;
		rep->b = srv.frozen;
		break;
	case PCFS_FREEZE:
		freeze();
		break;
	case PCFS_CUT:
		if (!srv.snap) {
			rep->err = EINVAL;
			break;
		}
		pcm_free(srv.m);
		srv.m = pcm_copy(srv.snap);
		pcm_cut(srv.m, (enum pcm_cut)msg->a, (uint64_t)msg->b, &st);
		srv.frozen = 0;
		rep->a = (int64_t)st.names_pending;
		rep->b = (int64_t)st.names_kept;
		rep->c = (int64_t)st.data_pending;
		rep->d = (int64_t)st.files_lost;
		rep->err = remount() ? EIO : 0;
		break;
	case PCFS_PENDING:
		rep->a = (int64_t)pcm_pending(srv.m);
		break;
	case PCFS_QUIT:
		srv.quit = 1;
		break;
	default:
		rep->err = EINVAL;
	}
}

/* One command from fd; -1 when the connection is gone. */
static int serve_conn(int fd)
{
	struct pcfs_msg msg;
	struct pcfs_reply rep;
	ssize_t n = recv(fd, &msg, sizeof(msg), 0);

	if (n != (ssize_t)sizeof(msg))
		return -1;
	command(&msg, &rep);
	/* a caller killed at its event has no use for the answer */
	if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
		return -1;
	return 0;
}

static void serve_fuse(void)
{
	struct fuse_buf buf;
	int n;

	memset(&buf, 0, sizeof(buf));
	n = fuse_session_receive_buf(srv.se, &buf);
	if (n > 0)
		fuse_session_process_buf(srv.se, &buf);
	free(buf.mem);
}

static void server_loop(int parent, int lsock)
{
	int conns[PC_MAXCONNS];
	size_t nconns = 0, i;

	while (!srv.quit) {
		struct pollfd p[3 + PC_MAXCONNS];

		p[0].fd = srv.se ? fuse_session_fd(srv.se) : -1;
		p[1].fd = parent;
		p[2].fd = lsock;
		for (i = 0; i < nconns; i++)
			p[3 + i].fd = conns[i];
		for (i = 0; i < 3 + nconns; i++) {
			p[i].events = POLLIN;
			p[i].revents = 0;
		}
		if (poll(p, 3 + nconns, -1) < 0) {
			if (errno == EINTR)
				continue; /* srv.quit says whether to stop */
			break;
		}
		/* the file system first: a command may replace the mount */
		if (p[0].revents & POLLIN)
			serve_fuse();
		if (p[1].revents && serve_conn(parent))
			break; /* the test is gone */
		for (i = 0; i < nconns; i++) {
			if (!p[3 + i].revents || !serve_conn(conns[i]))
				continue;
			close(conns[i]);
			conns[i] = -1;
		}
		for (i = 0; i < nconns;)
			if (conns[i] < 0)
				conns[i] = conns[--nconns];
			else
				i++;
		if ((p[2].revents & POLLIN) && nconns < PC_MAXCONNS) {
			int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0)
				conns[nconns++] = c;
		}
	}
	for (i = 0; i < nconns; i++)
		close(conns[i]);
}

/* SIGTERM (the test died: PR_SET_PDEATHSIG) ends the loop, which unmounts. */
static void on_term(int sig)
{
	(void)sig;
	srv.quit = 1;
}

static void server_main(int parent, int lsock, const char *mnt)
{
	struct sigaction sa;
	struct pcfs_reply rep;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1); /* the test is gone already */
	srv.mnt = mnt;
	srv.m = pcm_new();
	memset(&rep, 0, sizeof(rep));
	rep.err = mount_fs() ? EIO : 0;
	if (send(parent, &rep, sizeof(rep), MSG_NOSIGNAL) < 0 || rep.err)
		_exit(1);
	server_loop(parent, lsock);
	unmount_fs();
	pcm_free(srv.m);
	pcm_free(srv.snap);
	_exit(0);
}

/* --- the client ----------------------------------------------------------- */

int pcfs_call(int fd, enum pcfs_cmd cmd, int64_t a, int64_t b,
	      struct pcfs_reply *rep)
{
	struct pcfs_msg msg;
	struct pcfs_reply tmp;

	if (!rep)
		rep = &tmp;
	memset(&msg, 0, sizeof(msg));
	memset(rep, 0, sizeof(*rep));
	msg.cmd = cmd;
	msg.pid = (int32_t)getpid();
	msg.a = a;
	msg.b = b;
	if (send(fd, &msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg) ||
	    recv(fd, rep, sizeof(*rep), 0) != (ssize_t)sizeof(*rep)) {
		rep->err = EPIPE;
		return -1;
	}
	return rep->err ? -1 : 0;
}

int pcfs_connect(const char *sock)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int pcfs_start(struct pcfs *fs, const char *mnt, const char *sock)
{
	struct sockaddr_un sa;
	struct pcfs_reply rep;
	int sv[2] = {-1, -1}, lsock = -1;

	memset(fs, 0, sizeof(*fs));
	fs->fd = -1;
	snprintf(fs->mnt, sizeof(fs->mnt), "%s", mnt);
	snprintf(fs->sock, sizeof(fs->sock), "%s", sock);
	if (access("/dev/fuse", R_OK | W_OK)) {
		fprintf(stderr,
			"powercut: /dev/fuse: %s (the power-cut model "
			"is a FUSE file system; it needs root and "
			"/dev/fuse)\n",
			strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(lsock, 16) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		perror("powercut: control socket");
		goto fail;
	}
	fflush(NULL);
	fs->pid = fork();
	if (fs->pid < 0)
		goto fail;
	if (fs->pid == 0) {
		close(sv[0]);
		server_main(sv[1], lsock, fs->mnt);
	}
	close(sv[1]);
	close(lsock);
	fs->fd = sv[0];
	if (recv(fs->fd, &rep, sizeof(rep), 0) != (ssize_t)sizeof(rep) ||
	    rep.err) {
		fprintf(stderr, "powercut: cannot mount the model at %s\n",
			mnt);
		pcfs_stop(fs);
		return -1;
	}
	return 0;
fail:
	if (lsock >= 0)
		close(lsock);
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	return -1;
}

void pcfs_stop(struct pcfs *fs)
{
	if (fs->fd >= 0) {
		pcfs_call(fs->fd, PCFS_QUIT, 0, 0, NULL);
		close(fs->fd);
		fs->fd = -1;
	}
	if (fs->pid > 0)
		waitpid(fs->pid, NULL, 0);
	fs->pid = 0;
	/* a server that died without unmounting leaves a dead mount */
	umount2(fs->mnt, MNT_DETACH);
	unlink(fs->sock);
}
