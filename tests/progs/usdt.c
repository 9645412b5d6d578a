/* A program with USDT probes (sys/sdt.h, as the JVM and others declare
 * them): fires pyrunq:tick(i) for i = 0 .. N-1, then exits. */
#include <stdlib.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1;

	for (long i = 0; i < n; i++)
		DTRACE_PROBE1(pyrunq, tick, i);
	return 0;
}
