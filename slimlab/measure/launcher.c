/*
 * slimlab-launch: start one program, time it and report its kernel rusage.
 *
 * Why a C helper and not Python's subprocess: Linux carries a process's peak RSS
 * (ru_maxrss) across execve -- exec_mmap() folds the old address space's high-water
 * mark into signal->maxrss. A child forked from a Python interpreter therefore reports
 * Python's RSS (about 14 MiB here) instead of a Go hello's 2 MiB. Forking from this
 * tiny static process keeps that floor below anything a Go program uses, exactly
 * as /usr/bin/time and hyperfine do.
 *
 * Usage: slimlab-launch TIMEOUT_MS STDOUT STDERR -- PROGRAM [ARGS...]
 *   TIMEOUT_MS  0 for none; on expiry the whole process group gets SIGKILL
 *   STDOUT      file to write the program's stdout to ("-" for /dev/null)
 *   STDERR      likewise for stderr
 *
 * On its own stdout it writes two lines, each flushed at once:
 *   started pid=<pid> start_ns=<CLOCK_MONOTONIC ns before fork>
 *   exited end_ns=<ns after wait4> status=<raw wait status> exit=<code|-1>
 *          signal=<signo|0> maxrss_kib=<ru_maxrss> utime_us=<n> stime_us=<n> timed_out=<0|1>
 * (the second on one line). Exit code: 0 when it reported, 2 on usage or launch errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_fired = 0;

static void on_alarm(int sig) {
    (void)sig;
    alarm_fired = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_sink(const char *path) {
    if (strcmp(path, "-") == 0) return open("/dev/null", O_WRONLY | O_CLOEXEC);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: %s TIMEOUT_MS STDOUT STDERR -- PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    long timeout_ms = strtol(argv[1], NULL, 10);
    int out_fd = open_sink(argv[2]);
    int err_fd = open_sink(argv[3]);
    if (out_fd < 0 || err_fd < 0) {
        perror("slimlab-launch: open output");
        return 2;
    }
    /* If whoever started us dies (a killed sweep), take the measured program with us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 must return EINTR on expiry */
    sigaction(SIGALRM, &sa, NULL);

    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("slimlab-launch: fork");
        return 2;
    }
    if (pid == 0) {
        setpgid(0, 0); /* own process group, so a hang can be killed whole */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        execvp(argv[5], &argv[5]);
        dprintf(STDERR_FILENO, "slimlab-launch: exec %s: %s\n", argv[5], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent, so the group exists before any kill */
    printf("started pid=%d start_ns=%lld\n", (int)pid, start);
    fflush(stdout);

    if (timeout_ms > 0) {
        struct itimerval it;
        memset(&it, 0, sizeof it);
        it.it_value.tv_sec = timeout_ms / 1000;
        it.it_value.tv_usec = (timeout_ms % 1000) * 1000;
        setitimer(ITIMER_REAL, &it, NULL);
    }

    int status = 0;
    struct rusage ru;
    int timed_out = 0;
    for (;;) {
        pid_t r = wait4(pid, &status, 0, &ru);
        if (r == pid) break;
        if (r < 0 && errno == EINTR && alarm_fired) {
            timed_out = 1;
            kill(-pid, SIGKILL);
            alarm_fired = 0;
            continue;
        }
        if (r < 0 && errno != EINTR) {
            perror("slimlab-launch: wait4");
            return 2;
        }
    }
    long long end = now_ns();
    /* Leave nothing behind: children the program started in its group go too. */
    kill(-pid, SIGKILL);

    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    printf("exited end_ns=%lld status=%d exit=%d signal=%d maxrss_kib=%ld utime_us=%lld stime_us=%lld timed_out=%d\n",
           end, status, code, sig, ru.ru_maxrss,
           (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, timed_out);
    fflush(stdout);
    return 0;
}
