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
 * Usage: slimlab-launch [--cpu N] [--runs N] [--go] [--cgroup-peak] [--health PORT PATH] [--contain]
 *                       [--contain-cgroup PROCS]... TIMEOUT_MS STDOUT STDERR -- PROGRAM [ARGS...]
 *   --cpu N     pin this launcher and the program to CPU N (sched_setaffinity before
 *               the vfork, inherited by the program and all its threads)
 *   --runs N    start the program N times back to back (default 1), as hyperfine does
 *               between its runs; stops after a run that timed out or was killed by a
 *               signal (an exit code, expected or not, is for the caller to judge)
 *   --go        read one byte from stdin (or EOF) before the first start: the caller
 *               writes it when it is about to sleep in wait(), so that the caller's
 *               own wake-up after spawning us does not compete with the program
 *   --cgroup-peak  report the cgroup's peak memory after each run (below)
 *   --health PORT PATH  a server: poll http://127.0.0.1:PORT/PATH until it answers, then
 *               report the answer and the program's /proc status, and send it SIGTERM
 *               (used inside a full-system guest, where no host process can poll it)
 *   --contain   find and kill what each run leaves behind (below), and say how many: the
 *               launcher becomes a child subreaper, so an orphan of the program (a daemon,
 *               a child started with setsid) is re-parented to it, not to init
 *   --contain-cgroup PROCS  (implies --contain; up to 4) the cgroup.procs file of a cgroup the
 *               caller made for this batch (one per v1 controller, one in v2): the launcher
 *               moves itself there once, before the first start, so every program it starts
 *               is born inside, with nothing added to a timed start (see measure/contain.py);
 *               leftovers are then what the first one lists besides the launcher. Without a
 *               cgroup they are the launcher's descendants and whatever is in the program's
 *               process group or session
 *   TIMEOUT_MS  per run, 0 for none; on expiry the whole process group gets SIGKILL
 *   STDOUT      file to write the program's stdout to ("-" for /dev/null)
 *   STDERR      likewise for stderr (all runs append to it)
 *
 * For each run it writes two lines on its own stdout, each flushed at once:
 *   started pid=<pid> start_ns=<CLOCK_MONOTONIC ns before vfork>
 *   exited end_ns=<ns after wait4> status=<raw wait status> exit=<code|-1>
 *          signal=<signo|0> maxrss_kib=<ru_maxrss> utime_us=<n> stime_us=<n> timed_out=<0|1>
 *          nvcsw=<n> nivcsw=<n> minflt=<n> majflt=<n> cgroup_peak_bytes=<n|-1>
 *          escaped=<processes left running after the program was reaped, killed since; -1
 *          without --contain> escaped_comm=<the first one's name, or ->
 * (the second on one line; fields are only ever added at its end). With --health, between them:
 *   ready ready_ns=<ns at the first HTTP answer> http_status=<code> vmrss_kib=<n|-1>
 *         vmhwm_kib=<n|-1> body_hex=<the answer's body, up to 256 bytes, hex> nvcsw/nivcsw are the
 * program's voluntary and involuntary context switches, summed over its threads: a
 * program preempted for another task (nivcsw) ran on a busy CPU.
 * With --cgroup-peak, cgroup_peak_bytes is the peak memory of the cgroup the launcher is
 * in (v2 memory.peak, v1 memory.max_usage_in_bytes; -1 when neither is readable or
 * without the option). It means something in a container, where /sys/fs/cgroup shows
 * the container's own cgroup (see measure/container.py); on a host it would be the root's.
 *
 * SIGTERM and SIGINT sent to the launcher are passed on to the program's process group:
 * in a container the launcher is PID 1, and `docker stop`/`kill` signal PID 1 only.
 * Exit code: 0 when it reported, 2 on usage or launch errors.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_fired = 0;
static volatile sig_atomic_t stop_signal = 0; /* SIGTERM/SIGINT received, to pass on */
static int want_cgroup = 0;                     /* --cgroup-peak */
static long health_port = 0;                    /* --health PORT PATH: 0 for a CLI */
static const char *health_path = NULL;
static int contain = 0;                         /* --contain or --contain-cgroup */
#define MAX_CGROUPS 4
static const char *cgroup_procs[MAX_CGROUPS];   /* --contain-cgroup: their cgroup.procs files */
static int n_cgroups = 0;

static void on_alarm(int sig) {
    (void)sig;
    alarm_fired = 1;
}

static volatile pid_t child_group = 0; /* the running program's process group, 0 between runs */

/* Passed on from the handler itself (kill is async-signal-safe): a signal that lands just
 * before wait4 sleeps would otherwise wait for the next interruption, the run's timer. */
static void on_stop(int sig) {
    if (child_group > 0) kill(-child_group, sig);
    else stop_signal = sig;
}

/* The peak memory of our cgroup: v2's memory.peak, else v1's memory.max_usage_in_bytes. */
static long long cgroup_peak_bytes(void) {
    static const char *paths[] = {"/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        int fd = open(paths[k], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        char text[32];
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n <= 0) continue;
        text[n] = '\0';
        return atoll(text);
    }
    return -1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_sink(const char *path) {
    if (strcmp(path, "-") == 0) return open("/dev/null", O_WRONLY | O_CLOEXEC);
    /* Truncated once; with --runs every run appends after the one before. */
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
}

static long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *text == '\0' || *end != '\0' || n < 0) {
        fprintf(stderr, "slimlab-launch: %s must be a whole number >= 0, got '%s'\n", what, text);
        exit(2);
    }
    return n;
}

static void set_timer(long ms) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

/* VmRSS or VmHWM of /proc/PID/status in KiB, -1 when unreadable. */
static long status_kib(pid_t pid, const char *field) {
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = '\0';
    char *at = strstr(text, field);
    return at ? atol(at + strlen(field) + 1) : -1;
}

/* One GET of health_path on loopback: the HTTP status (body into body/len), or -1 while
 * nothing answers yet (refused, reset, or not HTTP yet). */
static int http_get(char *body, size_t *len, long long *first_ns) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)health_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8192];
    int status = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", health_path);
        size_t got = 0;
        if (write(fd, buf, (size_t)n) == n) {
            ssize_t r;
            /* Start-up ends at the answer's first byte, not when the server closes the
             * connection (one that keeps it open would add the read timeout). */
            while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
                if (got == 0) *first_ns = now_ns();
                got += (size_t)r;
            }
        }
        buf[got] = '\0';
        int code;
        if (got > 12 && sscanf(buf, "HTTP/%*d.%*d %d", &code) == 1) {
            status = code;
            char *start = strstr(buf, "\r\n\r\n");
            *len = 0;
            if (start) {
                start += 4;
                *len = got - (size_t)(start - buf);
                if (*len > 256) *len = 256;
                memcpy(body, start, *len);
            }
        }
    }
    close(fd);
    return status;
}

/* Poll the server until it answers (report it, then SIGTERM), it exits, or the timer fires. */
static void await_health(pid_t pid) {
    char body[256];
    size_t len = 0;
    const struct timespec pause = {0, 500000}; /* 0.5 ms between probes, as the host's poll */
    while (!alarm_fired) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        /* WNOWAIT: look without reaping, so wait4 below still gets its rusage. */
        if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return;
        long long ready = 0;
        int status = http_get(body, &len, &ready);
        if (status >= 0) {
            printf("ready ready_ns=%lld http_status=%d vmrss_kib=%ld vmhwm_kib=%ld body_hex=", ready, status,
                   status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
            for (size_t k = 0; k < len; k++) printf("%02x", (unsigned char)body[k]);
            printf("\n");
            fflush(stdout);
            kill(pid, SIGTERM);
            return;
        }
        nanosleep(&pause, NULL);
    }
}

/* Moves the launcher into each --contain-cgroup cgroup, once, before any start. */
static void join_cgroups(void) {
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    for (int k = 0; k < n_cgroups; k++) {
        int fd = open(cgroup_procs[k], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, (size_t)n) != n) {
            fprintf(stderr, "slimlab-launch: cannot join the cgroup of %s: %s\n", cgroup_procs[k],
                    strerror(errno));
            exit(2);
        }
        close(fd);
    }
}

struct proc_entry {
    pid_t pid, ppid, pgrp, sid;
    char state;
    int mark;
    char comm[32];
};

/* /proc/PID/stat's pid, (comm), state, ppid, pgrp and session; 0 when it is gone. */
static int read_stat(pid_t pid, struct proc_entry *e) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    char *open_paren = strchr(text, '('), *close_paren = strrchr(text, ')'); /* a comm may hold ")" */
    if (!open_paren || !close_paren || close_paren < open_paren) return 0;
    size_t len = (size_t)(close_paren - open_paren - 1);
    if (len >= sizeof e->comm) len = sizeof e->comm - 1;
    memcpy(e->comm, open_paren + 1, len);
    e->comm[len] = '\0';
    for (size_t k = 0; k < len; k++) { /* one token in the report line */
        char c = e->comm[k];
        int letter = (c | 32) >= 'a' && (c | 32) <= 'z', digit = c >= '0' && c <= '9';
        if (!(letter || digit || c == '.' || c == '-' || c == '_'))
            e->comm[k] = '_';
    }
    int ppid, pgrp, sid;
    if (sscanf(close_paren + 1, " %c %d %d %d", &e->state, &ppid, &pgrp, &sid) != 4) return 0;
    e->pid = pid, e->ppid = ppid, e->pgrp = pgrp, e->sid = sid, e->mark = 0;
    return 1;
}

/* A list that grows as needed: a busy host may run any number of processes, and the ones
 * a capped scan of /proc would miss are the newest, the run's own (the highest pids). */
struct proc_list {
    struct proc_entry *items;
    int n, cap;
};

/* The next free slot of `list` (grown when full), or NULL when memory ran out. */
static struct proc_entry *next_slot(struct proc_list *list) {
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 1024;
        struct proc_entry *grown = realloc(list->items, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        list->items = grown, list->cap = cap;
    }
    return &list->items[list->n];
}

static int by_pid(const void *a, const void *b) {
    pid_t x = ((const struct proc_entry *)a)->pid, y = ((const struct proc_entry *)b)->pid;
    return (x > y) - (x < y);
}

static struct proc_entry *entry_of(struct proc_list *all, pid_t pid) {
    struct proc_entry key = {.pid = pid};
    return pid > 0 ? bsearch(&key, all->items, (size_t)all->n, sizeof key, by_pid) : NULL;
}

/* Marks `e` 1 when it or an ancestor is marked 1 (the run's), else 2, following ppid links;
 * every entry on the way gets the same mark, so each link is followed once. */
static void mark_by_ancestry(struct proc_list *all, struct proc_entry *e) {
    int mark = 2;
    struct proc_entry *p = e;
    for (int steps = 0; p && steps <= all->n; steps++, p = entry_of(all, p->ppid))
        if (p->mark) {
            mark = p->mark;
            break;
        }
    for (p = e; p && !p->mark; p = entry_of(all, p->ppid)) p->mark = mark;
}

/* Processes still running that the run of `program` left: in our cgroup besides us, else our
 * descendants (orphans come to us, a subreaper) and anything in its process group or session,
 * with their descendants. Fills `out` (zombies left out: they have exited) and returns the count. */
static int leftovers(pid_t program, struct proc_list *out) {
    pid_t self = getpid();
    struct proc_entry *slot;
    out->n = 0;
    if (n_cgroups > 0) {
        FILE *procs = fopen(cgroup_procs[0], "re");
        if (!procs) return 0;
        int pid;
        while (fscanf(procs, "%d", &pid) == 1 && (slot = next_slot(out)) != NULL)
            if (pid != self && read_stat(pid, slot) && slot->state != 'Z' && slot->state != 'X') out->n++;
        fclose(procs);
        return out->n;
    }
    DIR *dir = opendir("/proc");
    if (!dir) return 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL && (slot = next_slot(out)) != NULL) {
        char *end;
        long pid = strtol(d->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self) continue;
        if (read_stat((pid_t)pid, slot)) out->n++;
    }
    closedir(dir);
    qsort(out->items, (size_t)out->n, sizeof *out->items, by_pid);
    for (int k = 0; k < out->n; k++) {
        struct proc_entry *e = &out->items[k];
        e->mark = e->ppid == self || e->pgrp == program || e->sid == program;
    }
    for (int k = 0; k < out->n; k++) mark_by_ancestry(out, &out->items[k]);
    int kept = 0;
    for (int k = 0; k < out->n; k++) {
        struct proc_entry *e = &out->items[k];
        if (e->mark == 1 && e->state != 'Z' && e->state != 'X') out->items[kept++] = *e;
    }
    return out->n = kept;
}

static struct proc_list found; /* reused by every run: it keeps the size it grew to */

/* Kills what the run left (after its timed interval), reaps what was re-parented to us, and
 * returns how many were running when it looked; `comm` gets the first one's name. */
static int kill_leftovers(pid_t program, char *comm, size_t comm_len) {
    snprintf(comm, comm_len, "-");
    int escaped = -1;
    long long deadline = now_ns() + 2000000000LL; /* a process in D state may take a moment to die */
    const struct timespec pause = {0, 1000000};
    for (;;) {
        int n = leftovers(program, &found);
        if (escaped < 0) {
            escaped = n;
            if (n > 0) snprintf(comm, comm_len, "%s", found.items[0].comm);
        }
        for (int k = 0; k < n; k++) kill(found.items[k].pid, SIGKILL);
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (n == 0 || now_ns() > deadline) break;
        nanosleep(&pause, NULL);
    }
    return escaped;
}

/* One start of argv[0]: vfork, exec, wait4, report. Returns 0 unless it timed out or was killed. */
static int run_once(char **argv, long timeout_ms, int out_fd, int err_fd, int in_fd) {
    long long start = now_ns();
    /* vfork, not fork: the parent sleeps until the child has exec'd, and no page tables
     * are copied nor copy-on-write faults taken afterwards. On this 2-core VM fork put
     * 5-8% (~0.1 ms) on a Go hello's start against hyperfine -N (posix_spawn, itself a
     * vfork), vfork -2 to -5%. The child therefore only makes system calls (no stdio, no
     * malloc) before exec or _exit; execvp searches PATH with stack buffers. */
    pid_t pid = vfork();
    if (pid < 0) {
        perror("slimlab-launch: vfork");
        exit(2);
    }
    if (pid == 0) {
        setpgid(0, 0); /* own process group, so a hang can be killed whole */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        dup2(in_fd, STDIN_FILENO);
        execvp(argv[0], argv);
        const char *why = strerror(errno);
        write(STDERR_FILENO, "slimlab-launch: exec ", 21);
        write(STDERR_FILENO, argv[0], strlen(argv[0]));
        write(STDERR_FILENO, ": ", 2);
        write(STDERR_FILENO, why, strlen(why));
        write(STDERR_FILENO, "\n", 1);
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent, so the group exists before any kill */
    child_group = pid;
    /* A reader that sleeps in wait() on us is not woken by this line (a pipe write wakes
     * only a blocked reader), so a CLI run costs its parent nothing while it runs. */
    printf("started pid=%d start_ns=%lld\n", (int)pid, start);
    fflush(stdout);
    if (timeout_ms > 0) set_timer(timeout_ms);
    if (health_port > 0) await_health(pid);

    int status = 0;
    struct rusage ru;
    int timed_out = 0;
    for (;;) {
        if (alarm_fired && !timed_out) { /* fired while polling, before wait4 could see it */
            timed_out = 1;
            kill(-pid, SIGKILL);
            alarm_fired = 0;
        }
        if (stop_signal) { /* arrived between runs, before the group existed */
            kill(-pid, stop_signal);
            stop_signal = 0;
        }
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
            exit(2);
        }
    }
    long long end = now_ns();
    child_group = 0; /* reaped: a later stop signal waits for the next run (stop_signal) */
    if (timeout_ms > 0) set_timer(0);
    alarm_fired = 0;
    /* Leave nothing behind: children the program started go too (counted first with --contain). */
    char comm[32];
    int escaped = contain ? kill_leftovers(pid, comm, sizeof comm) : -1;
    if (!contain) snprintf(comm, sizeof comm, "-");
    kill(-pid, SIGKILL);

    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    printf("exited end_ns=%lld status=%d exit=%d signal=%d maxrss_kib=%ld utime_us=%lld stime_us=%lld timed_out=%d"
           " nvcsw=%ld nivcsw=%ld minflt=%ld majflt=%ld cgroup_peak_bytes=%lld escaped=%d escaped_comm=%s\n",
           end, status, code, sig, ru.ru_maxrss,
           (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
           (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, timed_out,
           ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_minflt, ru.ru_majflt, want_cgroup ? cgroup_peak_bytes() : -1LL,
           escaped, comm);
    fflush(stdout);
    return timed_out || !WIFEXITED(status);
}

int main(int argc, char **argv) {
    long cpu = -1, runs = 1;
    int go = 0, i = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
        if (strcmp(argv[i], "--go") == 0) {
            go = 1;
            i += 1;
            continue;
        }
        if (strcmp(argv[i], "--cgroup-peak") == 0) {
            want_cgroup = 1;
            i += 1;
            continue;
        }
        if (strcmp(argv[i], "--contain") == 0) {
            contain = 1;
            i += 1;
            continue;
        }
        if (strcmp(argv[i], "--contain-cgroup") == 0) {
            if (i + 1 >= argc || n_cgroups == MAX_CGROUPS) {
                fprintf(stderr, "slimlab-launch: --contain-cgroup needs a cgroup.procs path (at most %d)\n",
                        MAX_CGROUPS);
                return 2;
            }
            cgroup_procs[n_cgroups++] = argv[i + 1];
            contain = 1;
            i += 2;
            continue;
        }
        if (strcmp(argv[i], "--health") == 0) {
            if (i + 2 >= argc) {
                fprintf(stderr, "slimlab-launch: --health needs a port and a path\n");
                return 2;
            }
            health_port = number(argv[i + 1], "--health PORT");
            health_path = argv[i + 2];
            i += 3;
            continue;
        }
        if (strcmp(argv[i], "--cpu") == 0 || strcmp(argv[i], "--runs") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "slimlab-launch: %s needs a number\n", argv[i]);
                return 2;
            }
            if (argv[i][2] == 'c') cpu = number(argv[i + 1], "--cpu");
            else runs = number(argv[i + 1], "--runs");
        } else {
            fprintf(stderr, "slimlab-launch: unknown option %s (valid: --cpu N, --runs N, --go,"
                            " --cgroup-peak, --health PORT PATH, --contain, --contain-cgroup PROCS)\n",
                    argv[i]);
            return 2;
        }
        i += 2;
    }
    if (argc - i < 5 || strcmp(argv[i + 3], "--") != 0 || runs < 1) {
        fprintf(stderr, "usage: %s [--cpu N] [--runs N>=1] [--go] [--cgroup-peak] [--health PORT PATH]"
                        " [--contain] [--contain-cgroup PROCS]...\n"
                        "       TIMEOUT_MS STDOUT STDERR -- PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    long timeout_ms = number(argv[i], "TIMEOUT_MS");
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (cpu >= CPU_SETSIZE) {
            fprintf(stderr, "slimlab-launch: --cpu %ld is out of range\n", cpu);
            return 2;
        }
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fprintf(stderr, "slimlab-launch: cannot pin to CPU %ld: %s\n", cpu, strerror(errno));
            return 2;
        }
    }
    int out_fd = open_sink(argv[i + 1]);
    int err_fd = open_sink(argv[i + 2]);
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out_fd < 0 || err_fd < 0 || in_fd < 0) {
        perror("slimlab-launch: open output");
        return 2;
    }
    /* If whoever started us dies (a killed sweep), take the measured program with us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 2;
    if (contain) {
        /* Orphans of the program come to us, not to init: found, killed and reaped after each run. */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        join_cgroups();
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 must return EINTR on expiry */
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (go) {
        char byte;
        while (read(STDIN_FILENO, &byte, 1) < 0 && errno == EINTR) {
        }
    }
    for (long run = 0; run < runs; run++)
        if (run_once(&argv[i + 4], timeout_ms, out_fd, err_fd, in_fd) != 0) break;
    return 0;
}
