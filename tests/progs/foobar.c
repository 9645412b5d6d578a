/* funclatency and stackcount tests: main -> Bar -> Foo, Foo sleeps.
 * Usage: foobar CALLS SECONDS_PER_CALL (a float); prints "ready" first,
 * then waits for a line on stdin, so the test can attach before the calls. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) void Foo(double seconds)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };

    nanosleep(&ts, NULL);
}

__attribute__((noinline)) void Bar(double seconds)
{
    Foo(seconds);
    __asm__ volatile("" ::: "memory"); /* not a tail call: Bar stays on the stack */
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    char line[16];

    printf("ready\n");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    for (int i = 0; i < calls; i++)
        Bar(seconds);
    return 0;
}
