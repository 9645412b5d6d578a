/* memleak tests: allocations from known stacks, held until told to free.
 *
 * Prints "ready" and waits for a line on stdin; then allocates:
 *   alloc_blocks:  20 x malloc(1000)
 *   alloc_others:  calloc(4, 250), malloc(100) grown by realloc to 3000,
 *                  posix_memalign(64, 2000), aligned_alloc(64, 4096)
 * prints "allocated" and waits for a line; frees everything, prints "freed"
 * and waits for a last line before it exits.
 * Build: gcc -O1 -g -fno-omit-frame-pointer (the kernel walks frame pointers).
 */
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 20
#define BLOCK_SIZE 1000
#define OTHERS 4

static void *blocks[BLOCKS];
static void *others[OTHERS];

static void pause_for_line(const char *say)
{
    char line[16];

    printf("%s\n", say);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        exit(1);
}

__attribute__((noinline)) void alloc_blocks(void)
{
    for (int i = 0; i < BLOCKS; i++)
        blocks[i] = malloc(BLOCK_SIZE);
    __asm__ volatile("" ::: "memory"); /* not a tail call: alloc_blocks stays on the stack */
}

__attribute__((noinline)) void alloc_others(void)
{
    void *p = malloc(100);

    others[0] = calloc(4, 250);
    others[1] = realloc(p, 3000); /* the 100 bytes are gone, 3000 outstanding */
    if (posix_memalign(&others[2], 64, 2000))
        others[2] = NULL;
    others[3] = aligned_alloc(64, 4096);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void free_all(void)
{
    for (int i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    for (int i = 0; i < OTHERS; i++)
        free(others[i]);
}

int main(void)
{
    pause_for_line("ready");
    alloc_blocks();
    alloc_others();
    pause_for_line("allocated");
    free_all();
    pause_for_line("freed");
    return 0;
}
