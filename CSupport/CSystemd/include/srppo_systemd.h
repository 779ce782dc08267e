// libsystemd (libsystemd-dev) for srppod: the service manager's notification protocol (sd_notify),
// socket activation and the file descriptor store (sd_listen_fds_with_names), the watchdog, and
// structured logging to journald. libsystemd's own entry points are partly variadic or macros, which
// Swift cannot call; these are plain functions over them. Errors come back as negative errno values,
// as libsystemd returns them.
#ifndef SRPPO_SYSTEMD_H
#define SRPPO_SYSTEMD_H

#include <stdint.h>

// sd_notify(0, state): sends a state string ("READY=1", "STATUS=...") to $NOTIFY_SOCKET.
// Returns > 0 when sent, 0 when no NOTIFY_SOCKET is set, < 0 on failure.
int srppo_sd_notify(const char *state);

// sd_pid_notify_with_fds(0, 0, state, fds, n_fds): the same with descriptors attached (SCM_RIGHTS),
// as FDSTORE=1 needs.
int srppo_sd_notify_with_fds(const char *state, const int *fds, unsigned n_fds);

// sd_listen_fds_with_names(0, &names): the descriptors passed by socket activation or restored from
// the fd store start at 3; returns how many (0 when none were passed to this process). `*names`
// receives a NULL-terminated array of their names ("unknown" when unnamed); release it with
// srppo_sd_free_names. The environment is left as is.
int srppo_sd_listen_fds_with_names(char ***names);
void srppo_sd_free_names(char **names);

// sd_watchdog_enabled(0, &usec): > 0 with *usec set when the service manager expects WATCHDOG=1
// pings at least every *usec microseconds (WATCHDOG_USEC, and WATCHDOG_PID naming this process).
int srppo_sd_watchdog_enabled(uint64_t *usec);

// sd_journal_sendv with MESSAGE=message, PRIORITY=priority (syslog levels, 0..7),
// SYSLOG_IDENTIFIER=identifier and `n_fields` further "KEY=value" fields (keys in upper case).
int srppo_sd_journal_send(int priority, const char *identifier, const char *message,
                          const char *const *fields, int n_fields);

#endif
