/*
 * nft.c — loading a rule set into the kernel.
 *
 * Two ways, one result (one nftables transaction per load):
 *
 *   - in process, through libnftables (the library `nft` itself is built
 *     on), when no --nft program is configured and libnftables.so.1 can be
 *     loaded.  It is opened with dlopen() because the machines we build on
 *     have the library but not its development headers; the handful of
 *     functions used are libnftables(3)'s stable API of soname 1, declared
 *     here.  One context lives as long as the agent, so its cache is warm:
 *     a load is then a netlink transaction, not a process start —
 *     measured on a loaded 2-CPU machine, ~1 ms in process against
 *     200-400 ms for exec'ing nft, which is most of the revocation path;
 *   - by running a program (`--nft PROGRAM -f FILE`, or `nft` when the
 *     library is missing), its output captured for the log.
 *
 * --check-only uses the library's dry run, or `nft -c`.
 *
 * Not thread-safe (one agent thread).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enforcer.h"

extern char **environ;

/* libnftables(3), soname 1 */
struct nft_ctx;
struct nftlib {
	void *dl;
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	int (*buffer_output)(struct nft_ctx *ctx);
	int (*buffer_error)(struct nft_ctx *ctx);
	const char *(*get_output)(struct nft_ctx *ctx);
	const char *(*get_error)(struct nft_ctx *ctx);
	void (*set_dry_run)(struct nft_ctx *ctx, bool dry);
	int (*run_buffer)(struct nft_ctx *ctx, const char *buf);
};

struct enf_nft {
	char *program;		/* NULL: the library */
	bool check_only;
	struct nftlib lib;
	struct nft_ctx *ctx;
};

static bool
lib_open(struct enf_nft *n)
{
	struct nftlib *l = &n->lib;

	l->dl = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!l->dl)
		return false;
	/* POSIX: a void * from dlsym() converts to a function pointer */
	*(void **)&l->ctx_new = dlsym(l->dl, "nft_ctx_new");
	*(void **)&l->ctx_free = dlsym(l->dl, "nft_ctx_free");
	*(void **)&l->buffer_output = dlsym(l->dl, "nft_ctx_buffer_output");
	*(void **)&l->buffer_error = dlsym(l->dl, "nft_ctx_buffer_error");
	*(void **)&l->get_output = dlsym(l->dl, "nft_ctx_get_output_buffer");
	*(void **)&l->get_error = dlsym(l->dl, "nft_ctx_get_error_buffer");
	*(void **)&l->set_dry_run = dlsym(l->dl, "nft_ctx_set_dry_run");
	*(void **)&l->run_buffer = dlsym(l->dl, "nft_run_cmd_from_buffer");
	if (!l->ctx_new || !l->ctx_free || !l->buffer_output || !l->buffer_error ||
	    !l->get_output || !l->get_error || !l->set_dry_run || !l->run_buffer)
		goto fail;
	n->ctx = l->ctx_new(0);	/* NFT_CTX_DEFAULT */
	if (!n->ctx)
		goto fail;
	l->buffer_output(n->ctx);
	l->buffer_error(n->ctx);
	l->set_dry_run(n->ctx, n->check_only);
	return true;
fail:
	dlclose(l->dl);
	memset(l, 0, sizeof(*l));
	return false;
}

struct enf_nft *
enf_nft_new(const char *program, bool check_only)
{
	struct enf_nft *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->check_only = check_only;
	if (!program && lib_open(n))
		return n;
	n->program = strdup(program ? program : "nft");
	if (!n->program) {
		free(n);
		return NULL;
	}
	return n;
}

void
enf_nft_free(struct enf_nft *n)
{
	if (!n)
		return;
	if (n->ctx)
		n->lib.ctx_free(n->ctx);
	if (n->lib.dl)
		dlclose(n->lib.dl);
	free(n->program);
	free(n);
}

const char *
enf_nft_how(const struct enf_nft *n)
{
	return n->program ? n->program : "libnftables";
}

/* Runs PROGRAM [-c] -f path; its output (cut) into out.  Its exit status or -1. */
static int
run_program(const struct enf_nft *n, const char *path, char *out, size_t outlen)
{
	posix_spawn_file_actions_t fa;
	char *argv[5];
	int p[2], st, i = 0, rc = -1;
	size_t got = 0;
	ssize_t r;
	pid_t pid;
	char sink[512];

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(out, outlen, "pipe: %s", strerror(errno));
		return -1;
	}
	argv[i++] = n->program;
	if (n->check_only)
		argv[i++] = (char *)(uintptr_t)"-c";
	argv[i++] = (char *)(uintptr_t)"-f";
	argv[i++] = (char *)(uintptr_t)path;
	argv[i] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	errno = posix_spawnp(&pid, n->program, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (errno != 0) {
		snprintf(out, outlen, "cannot run %s: %s", n->program, strerror(errno));
		close(p[0]);
		return -1;
	}
	for (;;) {
		if (got + 1 < outlen)
			r = read(p[0], out + got, outlen - 1 - got);
		else
			r = read(p[0], sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (got + 1 < outlen)
			got += (size_t)r;
	}
	out[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(out, outlen, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(st))
		rc = WEXITSTATUS(st);
	return rc;
}

int
enf_nft_load(struct enf_nft *n, const char *path, const char *text, char *out, size_t outlen)
{
	const char *e;
	int rc;

	if (n->program)
		return run_program(n, path, out, outlen);
	rc = n->lib.run_buffer(n->ctx, text);
	e = n->lib.get_error(n->ctx);
	snprintf(out, outlen, "%s", e ? e : "");
	(void)n->lib.get_output(n->ctx);	/* drained: nothing is expected */
	return rc == 0 ? 0 : 1;
}
