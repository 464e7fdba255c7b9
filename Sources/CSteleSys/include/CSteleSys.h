#ifndef CSTELESYS_H
#define CSTELESYS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// fallocate(2) with mode 0 (allocate and extend). Returns 0 or -1 with errno set.
int stele_fallocate(int fd, off_t offset, off_t length);

/// madvise(MADV_POPULATE_WRITE): prefaults writable pages without changing their contents.
/// Returns 0, or -1 with errno set (EINVAL on kernels older than 5.14).
int stele_populate_write(void *address, size_t length);

/// sync_file_range(SYNC_FILE_RANGE_WRITE) over `length` bytes from `offset` (0: to the end of the
/// file): starts writing the dirty pages there back without waiting for them. Not a durability
/// point (no metadata, no cache flush). Returns 0, or -1 with errno set.
int stele_start_writeback(int fd, off_t offset, off_t length);

/// syncfs(2): flushes every dirty page and inode of the file system holding `fd`.
int stele_syncfs(int fd);

/// Names the calling thread (at most 15 bytes shown; longer names are cut), for `top -H` and
/// `perf`. Best effort: returns pthread_setname_np's result.
int stele_name_this_thread(const char *name);

/// Asks the CPU to bring the cache line at `address` in for writing, without waiting for it:
/// lets a batch of hash-table inserts overlap their cache misses instead of taking them in turn.
static inline void stele_prefetch_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/// Sleeps while `*word` equals `expected` (a private futex wait): returns after a wake, a signal,
/// or at once if the word differs. Returns 0, or -1 with errno set (EAGAIN: it differed).
int stele_futex_wait(uint32_t *word, uint32_t expected);

/// Wakes every thread sleeping on `*word` (a private futex wake), in one system call. Returns
/// the number woken, or -1 with errno set.
int stele_futex_wake_all(uint32_t *word);

/// Adds 1 to `*word` with release ordering.
static inline void stele_advance_release(uint32_t *word) {
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
}

/// `*word`, read with acquire ordering.
static inline uint32_t stele_load_acquire(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

#endif
