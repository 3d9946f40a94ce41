// Compiler intrinsics and system calls Swift has no spelling for. Header-only: static
// inline functions that the Swift compiler inlines into its callers like its own code.
#ifndef TM_INTRINSICS_H
#define TM_INTRINSICS_H

// A software prefetch of the cache line holding `p` (prefetcht0 on x86-64). Unlike a load
// whose value goes unused, it retires without waiting for the line, so a loop can start
// the memory fetches of later iterations while it computes the current one.
static inline void tm_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// Starts writeback of a file range without waiting: Linux's sync_file_range with
// SYNC_FILE_RANGE_WRITE (2). Swift's Glibc module does not export it (glibc declares it
// only under _GNU_SOURCE), so it is called through syscall(2). A hint: callers may ignore
// the result.
// glibc's malloc: keep freed memory instead of handing it back to the kernel at once.
// A build and an export allocate and free tens of MB per unit of work (pages, records,
// chunks); with the defaults, blocks over 128 KB are mapped and unmapped each time and
// the heap's top is trimmed, so every unit pays page faults and zero-filling for memory
// it just freed. Returns 0 where it cannot be done (another libc).
#if defined(__linux__)
#include <features.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
static inline int tm_keep_freed_memory(int mmapThreshold, int trimThreshold) {
    return mallopt(M_MMAP_THRESHOLD, mmapThreshold) && mallopt(M_TRIM_THRESHOLD, trimThreshold);
}
#else
static inline int tm_keep_freed_memory(int mmapThreshold, int trimThreshold) { return 0; }
#endif

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
static inline int tm_start_writeback(int fd, long long offset, long long count) {
    return (int)syscall(SYS_sync_file_range, fd, offset, count, 2u);
}
// Waits until a range is on disk (WAIT_BEFORE | WRITE | WAIT_AFTER = 7), then drops its
// pages from the page cache (POSIX_FADV_DONTNEED = 4): write-behind with drop-behind.
static inline int tm_drop_written(int fd, long long offset, long long count) {
    int r = (int)syscall(SYS_sync_file_range, fd, offset, count, 7u);
    if (r != 0) return r;
    return (int)syscall(SYS_fadvise64, fd, offset, count, 4);
}
#else
static inline int tm_start_writeback(int fd, long long offset, long long count) { return 0; }
static inline int tm_drop_written(int fd, long long offset, long long count) { return 0; }
#endif

#endif
