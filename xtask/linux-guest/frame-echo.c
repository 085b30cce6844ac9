/*
 * frame-echo: sends every Ethernet frame received on an interface back out of
 * it, unchanged. The Linux counterpart of the project's echo PD, so that the
 * two can be measured against each other with the same host-side sender.
 *
 * Usage: frame-echo IFNAME
 *
 * A raw packet socket sees whole frames below IP. Frames are taken and given
 * back in batches (recvmmsg/sendmmsg), which is how a Linux program that cares
 * about packet rates would do it, so the comparison is not tilted by one
 * syscall per frame.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

enum { BATCH = 64, FRAME_MAX = 2048 };

static unsigned char buffers[BATCH][FRAME_MAX];
static struct iovec iovs[BATCH];
static struct mmsghdr msgs[BATCH];

static int die(const char *what)
{
    fprintf(stderr, "frame-echo: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Sends frames [0, n) of the batch, each with the length it was received with. */
static int send_batch(int fd, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        iovs[i].iov_len = msgs[i].msg_len;
    unsigned sent = 0;
    while (sent < n) {
        int r = sendmmsg(fd, msgs + sent, n - sent, 0);
        if (r < 0) {
            /* Transmit queue full: drop the rest, as a switch would. */
            if (errno == ENOBUFS || errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        sent += (unsigned)r;
    }
    for (unsigned i = 0; i < n; i++)
        iovs[i].iov_len = FRAME_MAX;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: frame-echo IFNAME\n");
        return 2;
    }
    unsigned ifindex = if_nametoindex(argv[1]);
    if (ifindex == 0)
        return die(argv[1]);

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0)
        return die("socket(AF_PACKET)");
    struct sockaddr_ll addr = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = (int)ifindex,
    };
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        return die("bind");
    /* Without this, each frame sent would be seen again as outgoing traffic
       and echoed once more, forever. */
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
        return die("PACKET_IGNORE_OUTGOING");

    for (unsigned i = 0; i < BATCH; i++) {
        iovs[i] = (struct iovec){ .iov_base = buffers[i], .iov_len = FRAME_MAX };
        msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iovs[i], .msg_iovlen = 1 };
    }

    printf("ECHO READY\n");
    fflush(stdout);

    for (;;) {
        /* Blocks for the first frame, then takes whatever else is queued. */
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return die("recvmmsg");
        }
        if (send_batch(fd, (unsigned)n) < 0)
            return die("sendmmsg");
    }
}
