/*
 * disk-read: reads a whole block device with O_DIRECT in 1 MiB blocks and
 * prints "DISKREAD bytes=<n> ns=<t>", timed inside the guest.
 *
 * Usage: disk-read DEVICE
 *
 * O_DIRECT bypasses the guest's page cache, so every byte crosses the
 * emulated virtio-blk device: that is what is compared with our own block
 * driver. The clock is the guest's monotonic clock, so the figure excludes
 * the boot and the power-off around it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 1 << 20, ALIGN = 4096 };

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: disk-read DEVICE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "disk-read: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    void *buf;
    /* O_DIRECT needs the buffer aligned to the device's logical block size. */
    if (posix_memalign(&buf, ALIGN, BLOCK) != 0) {
        fprintf(stderr, "disk-read: out of memory\n");
        return 1;
    }

    long long bytes = 0;
    long long start = now_ns();
    for (;;) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "disk-read: read at %lld: %s\n", bytes, strerror(errno));
            return 1;
        }
        if (n == 0)
            break;
        bytes += n;
    }
    long long ns = now_ns() - start;

    printf("DISKREAD bytes=%lld ns=%lld\n", bytes, ns);
    fflush(stdout);
    return 0;
}
