/*
 * LD_PRELOAD fault injector for benches/faults.py: makes a running agent's libc calls fail on
 * command, without touching the agent. While the file $FLUMEN_FAULTS_DIR/rename exists,
 * rename() onto a `checkpoint-*` path fails with EXDEV (as across filesystems); while
 * $FLUMEN_FAULTS_DIR/fdatasync exists, fdatasync() of a `seg-*` segment fails with EIO (as a
 * failing disk). flumen's std I/O backend makes both calls through libc (std::fs::rename,
 * File::sync_data); its io_uring backend syncs through the ring, which this cannot reach, so the
 * campaign runs the agent on the std backend.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int armed(const char *what) {
    const char *dir = getenv("FLUMEN_FAULTS_DIR");
    char path[PATH_MAX];
    if (dir == NULL) {
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", dir, what);
    return access(path, F_OK) == 0;
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (real == NULL) {
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    }
    if (armed("rename") && strstr(to, "/checkpoint-") != NULL) {
        errno = EXDEV;
        return -1;
    }
    return real(from, to);
}

int fdatasync(int fd) {
    static int (*real)(int);
    char link[64], target[PATH_MAX];
    ssize_t n;
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    if (armed("fdatasync")) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strstr(target, "/seg-") != NULL) {
                errno = EIO;
                return -1;
            }
        }
    }
    return real(fd);
}
