/* offcputime tests: blocks in a read of stdin from a known stack,
 * main -> waits_for_a_byte -> blocked_in_read, whose own instruction makes
 * the read system call (not libc's, which has no frame pointer): the user
 * stack starts in blocked_in_read, and every frame up to main is found.
 * Prints "ready", waits for a line, prints "blocking", blocks until a byte
 * comes, prints "unblocked", then waits for the end of its input. */
#include <stdio.h>
#include <unistd.h>

/* Called after the read: blocked_in_read is no leaf, so it gets a frame
 * (gcc leaves leaf functions without one even with frame pointers). */
__attribute__((noinline)) void after_read(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) long blocked_in_read(int fd, char *buf)
{
	long ret;
#if defined(__x86_64__)
	register long nr __asm__("rax") = 0;	/* read */
	__asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(fd), "S"(buf), "d"(1L)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = 63;	/* read */
	register long x0 __asm__("x0") = fd;
	register long x1 __asm__("x1") = (long)buf;
	register long x2 __asm__("x2") = 1;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	ret = x0;
#else
	ret = read(fd, buf, 1);
#endif
	after_read();
	return ret;
}

__attribute__((noinline)) long waits_for_a_byte(int fd)
{
	char c;
	long ret = blocked_in_read(fd, &c);

	__asm__ volatile("" ::: "memory"); /* not a tail call: this frame stays */
	return ret;
}

int main(void)
{
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (read(0, line, 3) != 3)	/* "go\n", unbuffered: the byte after stays in the pipe */
		return 1;
	printf("blocking\n");
	fflush(stdout);
	if (waits_for_a_byte(0) != 1)
		return 1;
	printf("unblocked\n");
	fflush(stdout);
	while (read(0, line, sizeof(line)) > 0)
		;
	return 0;
}
