/*
 * core/log.h — one line per event on a stream (stderr by default):
 *   2026-11-29T04:47:06.123Z info authz listening url=http://127.0.0.1:8080
 *
 * A core_log is built once in main() and passed down (no globals). Messages must never
 * contain a token, a password, a code or a secret: log ids and hashes instead.
 * Thread-safe as far as stdio is (one fprintf per line).
 */
#ifndef POSTLY_CORE_LOG_H
#define POSTLY_CORE_LOG_H

#include <stdio.h>

typedef enum core_log_level {
    CORE_LOG_DEBUG,
    CORE_LOG_INFO,
    CORE_LOG_WARN,
    CORE_LOG_ERROR,
    CORE_LOG_OFF
} core_log_level;

typedef struct core_log {
    FILE *fp;              /* NULL means stderr */
    core_log_level level;  /* messages below this level are dropped */
    const char *component; /* "authz", "mcp", ... (borrowed, static) */
} core_log;

void core_log_write(const core_log *log, core_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define core_log_debug(l, ...) core_log_write((l), CORE_LOG_DEBUG, __VA_ARGS__)
#define core_log_info(l, ...)  core_log_write((l), CORE_LOG_INFO, __VA_ARGS__)
#define core_log_warn(l, ...)  core_log_write((l), CORE_LOG_WARN, __VA_ARGS__)
#define core_log_error(l, ...) core_log_write((l), CORE_LOG_ERROR, __VA_ARGS__)

/* Parses "debug", "info", "warn", "error", "off"; returns -1 for anything else. */
int core_log_level_parse(const char *s);

#endif
