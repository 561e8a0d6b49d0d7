#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void core_log_write(const core_log *log, core_log_level level, const char *fmt, ...)
{
    char msg[2048], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (!log || level < log->level || level >= CORE_LOG_OFF)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(log->fp ? log->fp : stderr, "%s.%03ldZ %s %s %s\n", stamp, ts.tv_nsec / 1000000,
            level_names[level], log->component ? log->component : "-", msg);
}

int core_log_level_parse(const char *s)
{
    for (int i = 0; s && i <= CORE_LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}
