// N threads that each sleep and wake every period_ms for secs seconds, so
// that each one has run queue samples (runqlat -L map read benchmark).
// usage: threads N period_ms secs   (prints "ready N" once all exist)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long period_ns;
static struct timespec deadline;

static void *worker(void *arg)
{
	// spread the first wake-ups over one period, not all at once
	struct timespec ts = {0, (long)(size_t)arg % period_ns}, now;

	for (;;) {
		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline.tv_sec)
			return NULL;
		ts.tv_sec = period_ns / 1000000000;
		ts.tv_nsec = period_ns % 1000000000;
	}
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	pthread_t *tids;
	int i, n;

	if (argc != 4)
		return 2;
	n = atoi(argv[1]);
	period_ns = atol(argv[2]) * 1000000L;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += atoi(argv[3]);
	tids = calloc(n, sizeof(*tids));
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);	// 10,000 x 8 MB would not do
	for (i = 0; i < n; i++) {
		if (pthread_create(&tids[i], &attr, worker,
				   (void *)(size_t)((long)i * (period_ns / n)))) {
			perror("pthread_create");
			return 1;
		}
	}
	printf("ready %d\n", n);
	fflush(stdout);
	for (i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
