/* The directory-fsync negative control of benches/powerloss.py (--skip-dir-fsync): an
 * LD_PRELOAD library that turns fsync and fdatasync of a directory into no-ops that report
 * success, as a channel that forgot its directory fsyncs would behave. Under LazyFS with
 * patch 0003 the renames and creates it leaves unsynced are undone at each cut, so the
 * campaign must then lose acknowledged lines. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/stat.h>

static int is_dir(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int fsync(int fd) {
    static int (*real)(int);
    if (is_dir(fd))
        return 0;
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (is_dir(fd))
        return 0;
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
