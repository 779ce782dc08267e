#define _GNU_SOURCE
#include "srppo_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

const unsigned int srppo_mfd_cloexec = MFD_CLOEXEC;
const unsigned int srppo_mfd_allow_sealing = MFD_ALLOW_SEALING;
const unsigned int srppo_mfd_hugetlb = MFD_HUGETLB;

const int srppo_f_seal_seal = F_SEAL_SEAL;
const int srppo_f_seal_shrink = F_SEAL_SHRINK;
const int srppo_f_seal_grow = F_SEAL_GROW;
const int srppo_f_seal_write = F_SEAL_WRITE;

// Older headers lack these; the values are the kernel's ABI.
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
const int srppo_madv_populate_read = MADV_POPULATE_READ;
const int srppo_madv_populate_write = MADV_POPULATE_WRITE;

int srppo_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }

int srppo_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals); }

int srppo_get_seals(int fd) { return fcntl(fd, F_GET_SEALS); }

ssize_t srppo_send_with_fd(int socket, const void *bytes, size_t length, int fd_to_send) {
    struct iovec iov = {.iov_base = (void *)bytes, .iov_len = length};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    if (fd_to_send >= 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof control.buffer;
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &fd_to_send, sizeof(int));
    }
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

ssize_t srppo_recv_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds,
                            int *fd_count, int *truncated) {
    struct iovec iov = {.iov_base = bytes, .iov_len = capacity};
    // Room for a few descriptors: a peer that sends more has them closed below, never leaked.
    union {
        char buffer[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    *fd_count = 0;
    *truncated = 0;
    ssize_t n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    if (message.msg_flags & MSG_CTRUNC) *truncated = 1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (*fd_count < max_fds) {
                fds[(*fd_count)++] = fd;
            } else {
                close(fd);
                *truncated = 1;
            }
        }
    }
    return n;
}

int srppo_accept_cloexec(int socket) { return accept4(socket, NULL, NULL, SOCK_CLOEXEC); }

int srppo_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int srppo_dup_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

int srppo_peer_credentials(int socket, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}
