// Linux system calls and constants that Swift's Glibc module does not expose: memfd_create and its
// flags, file seals, madvise populate advice, file descriptors passed over Unix sockets (SCM_RIGHTS,
// which needs the CMSG_* macros) and the peer's credentials (struct ucred). Each function is one
// system call; errors come back as -1 with errno set, and the Swift side (SystemCall.swift) retries
// EINTR and throws.
#ifndef SRPPO_LINUX_H
#define SRPPO_LINUX_H

#include <stddef.h>
#include <sys/types.h>

// memfd_create(2) flags.
extern const unsigned int srppo_mfd_cloexec;
extern const unsigned int srppo_mfd_allow_sealing;
// MFD_HUGETLB without a size flag: pages of the default huge page size.
extern const unsigned int srppo_mfd_hugetlb;

// fcntl(2) file seals.
extern const int srppo_f_seal_seal;
extern const int srppo_f_seal_shrink;
extern const int srppo_f_seal_grow;
extern const int srppo_f_seal_write;

// madvise(2) advice that faults a whole range in up front (Linux 5.14+): POPULATE_WRITE commits memory
// and reports ENOMEM instead of a later SIGBUS; POPULATE_READ maps pages without breaking
// copy-on-write.
extern const int srppo_madv_populate_read;
extern const int srppo_madv_populate_write;

int srppo_memfd_create(const char *name, unsigned int flags);
// fcntl(fd, F_ADD_SEALS, seals) and fcntl(fd, F_GET_SEALS).
int srppo_add_seals(int fd, int seals);
int srppo_get_seals(int fd);

// sendmsg(2) of `length` bytes with MSG_NOSIGNAL; when `fd_to_send` >= 0 it travels with the first
// byte as SCM_RIGHTS ancillary data. Returns bytes sent or -1.
ssize_t srppo_send_with_fd(int socket, const void *bytes, size_t length, int fd_to_send);

// recvmsg(2) of up to `capacity` bytes with MSG_CMSG_CLOEXEC. Descriptors received with these bytes
// are stored in fds[0..<*fd_count] (at most `max_fds`; any beyond that are closed and *truncated is
// set, as when the kernel truncated the control data). Returns bytes read (0 at end of stream) or -1.
ssize_t srppo_recv_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds,
                            int *fd_count, int *truncated);

// accept4(socket, NULL, NULL, SOCK_CLOEXEC) and pipe2(fds, O_CLOEXEC): GNU extensions.
int srppo_accept_cloexec(int socket);
int srppo_pipe_cloexec(int fds[2]);
// fcntl(fd, F_DUPFD_CLOEXEC, 0): a second descriptor of the same open file.
int srppo_dup_cloexec(int fd);

// getsockopt(SO_PEERCRED): the process at the other end of a connected Unix socket (as of connect).
int srppo_peer_credentials(int socket, pid_t *pid, uid_t *uid, gid_t *gid);

#endif
