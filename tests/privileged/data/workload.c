/* A process whose behaviour the tests know exactly: it calls getppid() and
 * bpfnb_target() a given number of times, then exits. */
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) int bpfnb_target(int i)
{
    asm volatile("" ::: "memory");
    return i * 2;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    long sum = 0;
    for (int i = 0; i < n; i++) {
        sum += getppid() > 0;
        sum += bpfnb_target(i);
    }
    return sum == 0;
}
