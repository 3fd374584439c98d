/*
 * The practical limit: each mechanism `ticketlab bench` measures, written
 * as plainly as C allows, so a ticketlab figure can be set beside what the
 * machine itself does with the same system calls.
 *
 * Build:  cc -O2 -pthread -o anchor bench/anchors/anchor.c
 * Run:    anchor MODE WORKERS TICKETS [DIR]
 *
 *   mutex   a count in shared memory under a process-shared pthread mutex
 *   atomic  a compare-and-swap loop on a count in shared memory
 *   file    a JSON file {"count": N} rewritten whole under that mutex:
 *           open/read/close, then open O_TRUNC/write/close (DIR holds it)
 *   pipe    a seller process owns the count; buyers send 4-byte requests
 *           down one pipe and read 8-byte replies from their own pipes
 *   fork    fork WORKERS children that _exit(0) at once, then reap them
 *
 * Like ticketlab, every buyer is forked before a start line and released
 * together; the clock runs from the release to the last reap. Prints one
 * JSON line; exits 1 if the sale did not sell exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1000

struct shared {
	pthread_mutex_t mutex;
	_Atomic int64_t count;
	atomic_int start;
	_Atomic uint64_t sold;
};

static struct shared *sh;
static char path[4096];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	_exit(2);
}

static void wait_for_start(void)
{
	while (!atomic_load_explicit(&sh->start, memory_order_acquire))
		sched_yield();
}

static int64_t file_read(void)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open");
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		die("read");
	buf[n] = '\0';
	const char *colon = strchr(buf, ':');
	if (!colon)
		die("not a store");
	return strtoll(colon + 1, NULL, 10);
}

static void file_write(int64_t count)
{
	char buf[64];
	int len = snprintf(buf, sizeof buf, "{\"count\":%lld}", (long long)count);
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		die("open");
	if (write(fd, buf, len) != len)
		die("write");
	close(fd);
}

/* One buyer of the mutex, atomic or file sale: buys until none are left. */
static uint64_t buy_all(const char *mode)
{
	uint64_t mine = 0;
	if (strcmp(mode, "atomic") == 0) {
		int64_t seen = atomic_load_explicit(&sh->count, memory_order_relaxed);
		while (seen > 0) {
			if (atomic_compare_exchange_weak_explicit(&sh->count, &seen, seen - 1,
								  memory_order_acq_rel,
								  memory_order_relaxed))
				mine++, seen--;
		}
		return mine;
	}
	int file = strcmp(mode, "file") == 0;
	for (;;) {
		pthread_mutex_lock(&sh->mutex);
		int64_t count = file ? file_read()
				     : atomic_load_explicit(&sh->count, memory_order_relaxed);
		if (count <= 0) {
			pthread_mutex_unlock(&sh->mutex);
			return mine;
		}
		if (file)
			file_write(count - 1);
		else
			atomic_store_explicit(&sh->count, count - 1, memory_order_relaxed);
		pthread_mutex_unlock(&sh->mutex);
		mine++;
	}
}

static int requests[2];
static int replies[MAX_WORKERS][2];

static void seller(int workers, int64_t count)
{
	close(requests[1]);
	for (int i = 0; i < workers; i++)
		close(replies[i][0]);
	uint32_t buf[1024];
	for (;;) {
		ssize_t n = read(requests[0], buf, sizeof buf);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		/* Each request is one 4-byte write, so reads never split one. */
		for (ssize_t i = 0; i < n / 4; i++) {
			int64_t reply = count;
			if (count > 0)
				count--;
			if (write(replies[buf[i]][1], &reply, sizeof reply) != sizeof reply)
				die("write");
		}
	}
	atomic_store(&sh->count, count);
}

static uint64_t ask_seller(int id)
{
	uint64_t mine = 0;
	uint32_t word = (uint32_t)id;
	for (;;) {
		int64_t reply;
		if (write(requests[1], &word, sizeof word) != sizeof word)
			die("write");
		if (read(replies[id][0], &reply, sizeof reply) != sizeof reply)
			die("read");
		if (reply <= 0)
			return mine;
		mine++;
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s mutex|atomic|file|pipe|fork WORKERS TICKETS [DIR]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	int workers = atoi(argv[2]);
	int64_t tickets = atoll(argv[3]);
	const char *dir = argc > 4 ? argv[4] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (workers < 1 || workers > MAX_WORKERS || tickets < 0) {
		fprintf(stderr, "WORKERS is 1 to %d, TICKETS 0 or more\n", MAX_WORKERS);
		return 2;
	}
	int pipe_mode = strcmp(mode, "pipe") == 0;
	int fork_mode = strcmp(mode, "fork") == 0;
	if (!pipe_mode && !fork_mode && strcmp(mode, "mutex") && strcmp(mode, "atomic") &&
	    strcmp(mode, "file")) {
		fprintf(stderr, "unknown mode '%s' (allowed: mutex, atomic, file, pipe, fork)\n", mode);
		return 2;
	}

	if (fork_mode) {
		double t0 = now_s();
		for (int i = 0; i < workers; i++) {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0)
				_exit(0);
		}
		while (wait(NULL) > 0)
			;
		double secs = now_s() - t0;
		printf("{\"mode\":\"fork\",\"workers\":%d,\"elapsed_ms\":%.3f,\"buyers_per_sec\":%.1f}\n",
		       workers, secs * 1e3, workers / secs);
		return 0;
	}

	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap");
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&sh->mutex, &attr);
	atomic_store(&sh->count, tickets);

	if (strcmp(mode, "file") == 0) {
		snprintf(path, sizeof path, "%s/anchor-%d.json", dir, (int)getpid());
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			die(path);
		close(fd);
		file_write(tickets);
	}
	pid_t seller_pid = 0;
	if (pipe_mode) {
		if (pipe(requests) < 0)
			die("pipe");
		for (int i = 0; i < workers; i++)
			if (pipe(replies[i]) < 0)
				die("pipe");
		seller_pid = fork();
		if (seller_pid < 0)
			die("fork");
		if (seller_pid == 0) {
			seller(workers, tickets);
			_exit(0);
		}
	}
	for (int i = 0; i < workers; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			wait_for_start();
			uint64_t mine = pipe_mode ? ask_seller(i) : buy_all(mode);
			atomic_fetch_add(&sh->sold, mine);
			_exit(0);
		}
	}
	if (pipe_mode) {
		/* Only the buyers may hold the write end: the seller ends at EOF. */
		close(requests[0]);
		close(requests[1]);
		for (int i = 0; i < workers; i++)
			close(replies[i][0]), close(replies[i][1]);
	}
	double t0 = now_s();
	atomic_store_explicit(&sh->start, 1, memory_order_release);
	while (wait(NULL) > 0)
		;
	double secs = now_s() - t0;
	int64_t left = strcmp(mode, "file") == 0 ? file_read() : atomic_load(&sh->count);
	if (strcmp(mode, "file") == 0)
		unlink(path);
	uint64_t sold = atomic_load(&sh->sold);
	printf("{\"mode\":\"%s\",\"workers\":%d,\"tickets\":%lld,\"sold\":%llu,\"remaining\":%lld,"
	       "\"elapsed_ms\":%.3f,\"purchases_per_sec\":%.1f}\n",
	       mode, workers, (long long)tickets, (unsigned long long)sold, (long long)left,
	       secs * 1e3, sold / secs);
	return sold == (uint64_t)tickets && left == 0 ? 0 : 1;
}
