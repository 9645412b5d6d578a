/* The day test's churn (tests/test_day.py), in C so that thousands of
 * cgroups come and go in a minute on a loaded machine:
 *
 *     churn DIR COUNT RATE LIVE BUSY_US SLEEP_MS
 *
 * makes COUNT cgroups DIR/c0, DIR/c1... (DIR: a cgroup2 directory), RATE a
 * second, each with a child process that moves itself in and then, for
 * ever, runs for BUSY_US microseconds and sleeps for SLEEP_MS milliseconds
 * (so it waits on a run queue now and then); past LIVE alive, the oldest is removed: its child killed and
 * reaped, its directory removed. Prints "removed c<i> <Unix time in ns>"
 * for each, and "done" when all COUNT are made and removed. On SIGTERM or
 * SIGINT it removes what it made and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static long long busy_ns, sleep_ms;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long long ns)
{
	struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};

	nanosleep(&ts, NULL);
}

/* The child: into its cgroup ("0": the writer), then run and sleep. */
static void contained(const char *dir)
{
	char procs[4096];
	long long end;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	fd = open(procs, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(1);
	close(fd);
	for (;;) {
		for (end = clock_ns(CLOCK_MONOTONIC) + busy_ns; clock_ns(CLOCK_MONOTONIC) < end;)
			;
		sleep_ns(sleep_ms * 1000000);
	}
}

static const char *base;
static pid_t *pids;
static long oldest, made;

static void make_one(void)
{
	char dir[1024];
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/c%ld", base, made);
	if (mkdir(dir, 0755)) {
		perror(dir);
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (!pid)
		contained(dir);
	pids[made++] = pid;
}

static void remove_oldest(void)
{
	char dir[4096];
	int tries;

	snprintf(dir, sizeof(dir), "%s/c%ld", base, oldest);
	kill(pids[oldest], SIGKILL);
	waitpid(pids[oldest], NULL, 0);
	/* the cgroup empties a moment after its last task is reaped */
	for (tries = 0; rmdir(dir) && errno == EBUSY && tries < 10000; tries++)
		sleep_ns(1000000);
	if (access(dir, F_OK) == 0)
		fprintf(stderr, "churn: %s not removed\n", dir);
	printf("removed c%ld %lld\n", oldest++, clock_ns(CLOCK_REALTIME));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long count, rate, live;
	long long start;

	if (argc != 7)
		return 2;
	base = argv[1];
	count = atol(argv[2]);
	rate = atol(argv[3]);
	live = atol(argv[4]);
	busy_ns = atoll(argv[5]) * 1000;
	sleep_ms = atoll(argv[6]);
	pids = calloc(count, sizeof(*pids));
	if (!pids || rate <= 0)
		return 2;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	start = clock_ns(CLOCK_MONOTONIC);
	while (made < count && !stop) {
		if (made < (clock_ns(CLOCK_MONOTONIC) - start) * rate / 1000000000LL + 1) {
			make_one();
			if (made - oldest > live)
				remove_oldest();
		} else {
			sleep_ns(1000000);
		}
	}
	while (oldest < made)
		remove_oldest();
	if (stop)
		return 1;
	printf("done\n");
	return 0;
}
