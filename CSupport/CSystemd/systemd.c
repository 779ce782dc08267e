#include "srppo_systemd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

int srppo_sd_notify(const char *state) {
    return sd_notify(0, state);
}

int srppo_sd_notify_with_fds(const char *state, const int *fds, unsigned n_fds) {
    return sd_pid_notify_with_fds(0, 0, state, fds, n_fds);
}

int srppo_sd_listen_fds_with_names(char ***names) {
    *names = NULL;
    return sd_listen_fds_with_names(0, names);
}

void srppo_sd_free_names(char **names) {
    if (names == NULL) return;
    for (char **name = names; *name != NULL; name++) free(*name);
    free(names);
}

int srppo_sd_watchdog_enabled(uint64_t *usec) {
    return sd_watchdog_enabled(0, usec);
}

int srppo_sd_journal_send(int priority, const char *identifier, const char *message,
                          const char *const *fields, int n_fields) {
    if (n_fields < 0 || n_fields > 64) return -22;  // -EINVAL
    char priority_field[16];
    snprintf(priority_field, sizeof priority_field, "PRIORITY=%d", priority < 0 ? 0 : priority > 7 ? 7 : priority);
    size_t identifier_length = strlen("SYSLOG_IDENTIFIER=") + strlen(identifier) + 1;
    size_t message_length = strlen("MESSAGE=") + strlen(message) + 1;
    char *identifier_field = malloc(identifier_length);
    char *message_field = malloc(message_length);
    if (identifier_field == NULL || message_field == NULL) {
        free(identifier_field);
        free(message_field);
        return -12;  // -ENOMEM
    }
    snprintf(identifier_field, identifier_length, "SYSLOG_IDENTIFIER=%s", identifier);
    snprintf(message_field, message_length, "MESSAGE=%s", message);

    struct iovec iov[3 + 64];
    iov[0] = (struct iovec){.iov_base = message_field, .iov_len = strlen(message_field)};
    iov[1] = (struct iovec){.iov_base = priority_field, .iov_len = strlen(priority_field)};
    iov[2] = (struct iovec){.iov_base = identifier_field, .iov_len = strlen(identifier_field)};
    for (int i = 0; i < n_fields; i++) {
        iov[3 + i] = (struct iovec){.iov_base = (void *)fields[i], .iov_len = strlen(fields[i])};
    }
    int result = sd_journal_sendv(iov, 3 + n_fields);
    free(identifier_field);
    free(message_field);
    return result;
}
