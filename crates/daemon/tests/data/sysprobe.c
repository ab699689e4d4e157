/* sysprobe WHAT: makes one system call and prints "ok" or the errno's name (EPERM,
 * ENOSYS...), exit 0 / 1. Built static at test time (gcc -static) and run inside
 * containers by tests/security_seccomp.rs. "euid" prints the effective uid. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long child_done(long r) {
    if (r == 0)
        _exit(0);
    if (r > 0) {
        waitpid((pid_t)r, NULL, 0);
        return 0;
    }
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sysprobe WHAT\n");
        return 2;
    }
    const char *w = argv[1];
    long r;
    if (!strcmp(w, "loop")) {
        /* ns per system call: getppid (nr 110) and fstat on fd 0 (nr 5), 1e6 times each */
        struct timespec a, b;
        struct stat st;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < 1000000; i++)
            syscall(SYS_getppid);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double g = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < 1000000; i++)
            syscall(SYS_fstat, 0, &st);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double f = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6;
        printf("getppid %.1f ns, fstat %.1f ns\n", g, f);
        return 0;
    }
    if (!strcmp(w, "euid")) {
        printf("%u\n", (unsigned)geteuid());
        return 0;
    } else if (!strcmp(w, "add_key")) {
        r = syscall(SYS_add_key, "user", "berth-probe", "x", 1, -4 /* user keyring */);
    } else if (!strcmp(w, "keyctl")) {
        r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -4 /* user keyring */, 0);
    } else if (!strcmp(w, "perf_event_open")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.type = PERF_TYPE_SOFTWARE;
        a.size = sizeof a;
        a.config = PERF_COUNT_SW_CPU_CLOCK;
        a.disabled = 1;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    } else if (!strcmp(w, "set_mempolicy")) {
        r = syscall(SYS_set_mempolicy, 0 /* MPOL_DEFAULT */, NULL, 0);
    } else if (!strcmp(w, "mbind")) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        r = syscall(SYS_mbind, p, 4096, 0 /* MPOL_DEFAULT */, NULL, 0, 0);
    } else if (!strcmp(w, "unshare_user")) {
        r = unshare(CLONE_NEWUSER);
    } else if (!strcmp(w, "unshare_mnt")) {
        r = unshare(CLONE_NEWNS);
    } else if (!strcmp(w, "clone_newns")) {
        r = child_done(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
    } else if (!strcmp(w, "clone_newuser")) {
        r = child_done(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    } else if (!strcmp(w, "clone")) {
        r = child_done(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    } else if (!strcmp(w, "clone3")) {
        struct clone_args ca;
        memset(&ca, 0, sizeof ca);
        ca.exit_signal = SIGCHLD;
        r = child_done(syscall(SYS_clone3, &ca, sizeof ca));
    } else if (!strcmp(w, "personality_bad")) {
        r = syscall(SYS_personality, 0x0004 /* PER_BSD */);
    } else if (!strcmp(w, "fchmodat2")) {
        /* 452, Linux 6.6: newer than every call docker's profile names */
        r = syscall(452, -100 /* AT_FDCWD */, "/tmp", 01777, 0);
    } else if (!strcmp(w, "mkdir")) {
        r = mkdir("/tmp/sysprobe-dir", 0755);
    } else {
        fprintf(stderr, "sysprobe: unknown %s\n", w);
        return 2;
    }
    if (r < 0) {
        printf("%s\n", strerrorname_np(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}
