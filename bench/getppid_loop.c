/* The streams benchmark's workload: N getppid() syscalls as fast as possible.
 *
 * usage: getppid_loop N
 * It waits for one byte on stdin before starting, so that the benchmark can
 * aim its probe at this pid first, and prints the loop's duration in ns. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char go;
    struct timespec start, end;

    if (read(0, &go, 1) != 1)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++)
        getppid();
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%ld\n", (end.tv_sec - start.tv_sec) * 1000000000L + (end.tv_nsec - start.tv_nsec));
    return 0;
}
