/* Facts about a process from /proc: status, threads, pagemap. */
#ifndef HS_PROC_H
#define HS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_proc_status {
	char name[64];
	char state;          /* 'R', 'S', 'D', 'T', 't', 'Z', 'X', 'I' */
	pid_t tgid;
	pid_t tracer;        /* TracerPid */
	uid_t uid;
	int threads;
	bool kernel_thread;  /* PF_KTHREAD: no mm */
	uint64_t sig_blk, sig_ign, sig_cgt;  /* bit n-1 for signal n */
	int seccomp;         /* Seccomp: 0 none (or a kernel without it), 1 strict, 2 filters */
};

/* Read a whole (proc) file into a NUL-terminated malloc'd buffer. */
int hs_proc_slurp(const char *path, char **text, size_t *len);

/* Does /proc/PID exist (the process, or its zombie)? */
bool hs_proc_alive(pid_t pid);
/* The name (comm) of thread tid of pid (tid == pid: the process's), or
 * "" when it cannot be read. */
void hs_proc_comm(pid_t pid, pid_t tid, char *buf, size_t n);

int hs_proc_status_read(pid_t pid, struct hs_proc_status *st, struct hs_err *err);

/* Check that pid names a process heapscope can inspect: exists, is a
 * thread group leader, is not a kernel thread or a zombie, is x86_64, and
 * (when want_ptrace) is not traced by someone else.  Fills err with the
 * reason (and a hint) otherwise. */
int hs_proc_check(pid_t pid, bool want_ptrace, struct hs_proc_status *st, struct hs_err *err);

/* Why ptrace access to pid was refused (EPERM), as a hint that fits the
 * situation: another uid or gid, a target that is not dumpable, Yama's
 * kernel.yama.ptrace_scope, or (heapscope holding CAP_SYS_PTRACE, as root
 * does) a security module, seccomp or a user namespace.  No final period. */
void hs_proc_perm_hint(pid_t pid, char *buf, size_t len);
/* tid is traced by another heapscope (its tracer's name), whose hold lasts
 * milliseconds: wait for it to let go, up to ms.  true when nobody else
 * traces tid (at once if nobody did); false when the tracer is something
 * else (a debugger: no wait) or still there. */
bool hs_proc_wait_untraced(pid_t tid, int ms);

/* The first open file of pid, by fd number, that is a regular file whose
 * content starts with prefix: its path as pid sees it (in its mount
 * namespace).  0, or -ENOENT when none, -errno when pid's fds cannot be
 * listed. */
int hs_proc_open_file_with(pid_t pid, const char *prefix, char *path, size_t len);
/* Has pid a file open by this path (as pid sees it)?  0 yes, -ENOENT no. */
int hs_proc_has_open(pid_t pid, const char *path);

/* Open, read-only, a file of pid's by the path pid sees (absolute, as in
 * its maps): resolved inside pid's root (/proc/PID/root) with openat2's
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so a container's absolute
 * symlinks stay in the container and never reach the host's files.  The
 * path is resolved with O_PATH, which opens nothing, and only a regular
 * file is then opened (O_NONBLOCK | O_NOCTTY): a FIFO or a device there is
 * never opened (-EINVAL).  Without openat2 (-ENOSYS before Linux 5.6) only
 * when pid's root is ours, where a plain open resolves as pid would; else
 * -ENOSYS.  Returns the fd or -errno. */
int hs_proc_open_in_root(pid_t pid, const char *path);

/* Open, read-only, a file heapscope reads (an ELF object, debug info, a
 * file the target holds open): "/proc/PID/root/REST" through
 * hs_proc_open_in_root, any other path (map_files and fd magic links
 * included) as is; either way only a regular file, as above.  Returns the
 * fd or -errno. */
int hs_proc_open_file(const char *path);

/* The state letter of thread tid of pid (/proc/PID/task/TID/stat), 0 when
 * it cannot be read. */
char hs_proc_task_state(pid_t pid, pid_t tid);
/* The id whose /proc directory shows pid's memory: pid itself, or, when
 * pid's main thread is a zombie (it called pthread_exit while other threads
 * run: its maps, smaps, mem, pagemap, exe and map_files are empty or
 * gone), a live thread of pid (/proc/TID shows the same memory).  pid when
 * there is none.  Also the id process_vm_readv needs in that case. */
pid_t hs_proc_mm_pid(pid_t pid);

/* What tells one program image of a process from the next after an
 * execve: the addresses /proc/PID/stat shows of its memory (code, stack,
 * data, brk, arguments, environment), which a new image lays out anew
 * (with address randomisation, nearly always at new addresses). */
struct hs_proc_image {
	uint64_t v[10];
};
/* 0, or -errno: -ESRCH pid is gone or exiting (no thread of it has
 * memory left), -EAGAIN it is inside execve (its new image not laid out
 * yet). */
int hs_proc_image_read(pid_t pid, struct hs_proc_image *img);
/* Has pid exited (gone, or a zombie with no live thread)? */
bool hs_proc_gone(pid_t pid);
/* The same, once an execve that may be taking the pid over (a zombie
 * leader, another thread inside execve) has had 200 ms to finish. */
bool hs_proc_gone_settled(pid_t pid);
/* Gone, or going: no thread of pid has memory left (it is exiting, not
 * yet a zombie: its maps read empty, its memory fails to read). */
bool hs_proc_exiting(pid_t pid);
bool hs_proc_image_same(const struct hs_proc_image *a, const struct hs_proc_image *b);
/* An fd bound to pid's memory as it is now (/proc/PID/mem keeps the
 * memory it was opened on, not the process's later one), or -1. */
int hs_proc_mem_bind(pid_t pid);
/* Has the memory fd was bound to no user left (every thread that used it
 * exited, or an execve replaced it)?  addr: an address it had mapped. */
bool hs_proc_mem_released(int fd, uint64_t addr);

/* The thread ids of pid, from /proc/PID/task. *tids is malloc'd. */
int hs_proc_threads(pid_t pid, pid_t **tids, size_t *n, struct hs_err *err);

/* The stack pointer of a thread that is blocked in a system call, from
 * /proc/PID/task/TID/syscall; -ENOENT if it is running. */
int hs_proc_thread_sp(pid_t pid, pid_t tid, uint64_t *sp);

/* Count the resident (present) pages in [start, end) from /proc/PID/pagemap.
 * pagemap_fd is an open fd of that file (or -1 to open one per call). */
int hs_proc_resident(int pagemap_fd, uint64_t start, uint64_t end, uint64_t *bytes);
int hs_proc_pagemap_open(pid_t pid, struct hs_err *err);

/* Test hooks: when the environment variable var names FILE, create
 * FILE.suffix and wait (at most 30 s) for FILE to appear, so that a test
 * can act at that point of a run. */
void hs_test_wait(const char *var, const char *suffix);

#endif
