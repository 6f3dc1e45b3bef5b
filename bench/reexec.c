/* What husk's CVE-2019-5736 re-exec costs, and what an alternative would cost.
 *
 *   reexec time MODE BINARY N   N times: fork, prepare, exec `BINARY --version`, wait;
 *                               prints the mean ms per exec
 *   reexec probe MODE BINARY    exec BINARY (a copy of sleep: "0.3" is its argument), then
 *                               try what CVE-2019-5736 does through /proc/PID/exe; the last
 *                               step appends a byte to BINARY when the defence fails
 *
 * MODE: plain  execve(BINARY): no defence (the floor)
 *       memfd  copy BINARY into a sealed memfd and execveat it (husk's fallback)
 *       bind   execveat a detached read-only bind mount of BINARY (open_tree(OPEN_TREE_CLONE)
 *              + mount_setattr(MOUNT_ATTR_RDONLY)): no copy; the mount is in no namespace,
 *              so nothing can remount it read-write or clone it
 *       overlay execveat BINARY through a detached overlayfs whose lower layers are BINARY's
 *              directory and an empty one (husk today, as runc 1.2): no copy, and an inode
 *              of its own on a read-only superblock
 *
 * Built and run by bench/bench.py when a C compiler is available.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

static int prepare(const char *mode, const char *bin)
{
    if (!strcmp(mode, "memfd")) {
        int m = memfd_create("reexec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int s = open(bin, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (m < 0 || s < 0 || fstat(s, &st) < 0)
            return -1;
        for (off_t left = st.st_size; left > 0;) {
            ssize_t n = sendfile(m, s, NULL, left);
            if (n <= 0)
                return -1;
            left -= n;
        }
        if (fcntl(m, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
            return -1;
        return m;
    }
    if (!strcmp(mode, "bind")) {
        int t = syscall(SYS_open_tree, AT_FDCWD, bin, OPEN_TREE_CLONE | O_CLOEXEC);
        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
        if (t < 0 || syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof a) < 0)
            return -1;
        return t;
    }
    if (!strcmp(mode, "overlay")) {
        char dir[4096], name[4096], empty[] = "/run/reexec-empty.XXXXXX", lower[8300];
        snprintf(dir, sizeof dir, "%s", bin);
        snprintf(name, sizeof name, "%s", bin);
        if (!mkdtemp(empty))
            return -1;
        snprintf(lower, sizeof lower, "%s:%s", dirname(dir), empty);
        int fs = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
        if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
            syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "xino", "off", 0) < 0 ||
            syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
            return -1;
        rmdir(empty);
        int m = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
        if (m < 0)
            return -1;
        return openat(m, basename(name), O_PATH | O_CLOEXEC);
    }
    return AT_FDCWD;
}

static void exec_mode(const char *mode, const char *bin, char **argv)
{
    char *envp[] = { NULL };
    int fd = prepare(mode, bin);
    if (fd == AT_FDCWD)
        execve(bin, argv, envp);
    else if (fd >= 0)
        syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    perror(mode);
    _exit(127);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int time_mode(const char *mode, const char *bin, int n)
{
    char *argv[] = { (char *)bin, "--version", NULL };
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            exec_mode(mode, bin, argv);
        }
        int st;
        if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "reexec: %s exec of %s failed\n", mode, bin);
            return 1;
        }
    }
    printf("%.3f\n", (now_ms() - t0) / n);
    return 0;
}

static const char *outcome(int ret)
{
    return ret < 0 ? strerror(errno) : "ALLOWED";
}

static int probe(const char *mode, const char *bin)
{
    char *argv[] = { (char *)bin, "0.3", NULL };
    pid_t p = fork();
    if (p == 0)
        exec_mode(mode, bin, argv);
    usleep(100000);
    char exe[64], fdpath[64];
    snprintf(exe, sizeof exe, "/proc/%d/exe", p);
    int keep = open(exe, O_PATH | O_CLOEXEC);
    struct mount_attr clr = { .attr_clr = MOUNT_ATTR_RDONLY };
    printf("remount read-write through /proc/PID/exe: %s\n",
           outcome(syscall(SYS_mount_setattr, AT_FDCWD, exe, 0, &clr, sizeof clr)));
    printf("clone the mount through /proc/PID/exe: %s\n",
           outcome(syscall(SYS_open_tree, AT_FDCWD, exe, OPEN_TREE_CLONE | O_CLOEXEC)));
    waitpid(p, NULL, 0);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", keep);
    int w = open(fdpath, O_WRONLY | O_APPEND);
    printf("reopen the exe for writing after exit: %s\n", outcome(w));
    if (w >= 0)
        printf("append one byte to it: %s\n", outcome(write(w, "x", 1)));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "time"))
        return time_mode(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 4 && !strcmp(argv[1], "probe"))
        return probe(argv[2], argv[3]);
    fprintf(stderr, "usage: reexec time MODE BINARY N | reexec probe MODE BINARY\n");
    return 2;
}
