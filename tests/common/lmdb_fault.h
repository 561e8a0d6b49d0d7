/* tests/common/lmdb_fault.h — makes an open LMDB environment's writes fail, for tests of what
 * a failed commit does (group commit: held replies become errors, nothing is notified).
 *
 * tf_break_data_file(path) finds this process's descriptors open on `path` (an environment's
 * data.mdb) through /proc/self/fd and replaces each with a read-only descriptor of the same
 * file (dup2), so LMDB's next pwrite/fdatasync of the data file fails with EBADF while reads
 * keep working. Returns how many descriptors were replaced (0: the file is not open here).
 * Linux only; header-only. */
#ifndef POSTLY_TESTS_COMMON_LMDB_FAULT_H
#define POSTLY_TESTS_COMMON_LMDB_FAULT_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int tf_break_data_file(const char *path)
{
    char fdpath[300], link[600];
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(fdpath, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, path) != 0)
            continue;
        int ro = open(path, O_RDONLY);
        int fd = (int)strtol(e->d_name, NULL, 10);
        if (ro >= 0 && dup2(ro, fd) == fd)
            n++;
        if (ro >= 0)
            close(ro);
    }
    if (d)
        closedir(d);
    return n;
}

#endif
