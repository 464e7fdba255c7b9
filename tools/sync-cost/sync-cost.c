// The cost of one durable sync on this disk, by mechanism: records written into a shared
// mapping and `msync(MS_SYNC)`, or written with `pwrite` and `fdatasync`; the file preallocated
// with `fallocate` (unwritten extents, as Stele makes segments) or zero-filled and synced first
// (no extent conversion left to journal). One sync after every `per` records of 160 bytes.
//
//   sync-cost MODE ZERO PER SYNCS DIR      MODE: mmap | fdatasync; ZERO: 0 | 1
// Prints syncs/s, the mean and the largest sync's time. Used for docs/durability.md ("Why msync").
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sync-cost mmap|fdatasync 0|1 PER SYNCS DIR\n");
        return 2;
    }
    const int mapped = strcmp(argv[1], "mmap") == 0, zero = atoi(argv[2]), per = atoi(argv[3]), syncs = atoi(argv[4]);
    const size_t capacity = 64 << 20;
    char path[4096];
    snprintf(path, sizeof path, "%s/sync-cost.dat", argv[5]);
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) { perror("open"); return 1; }
    if (zero) {
        char *zeros = calloc(1, 1 << 20);
        for (size_t offset = 0; offset < capacity; offset += 1 << 20)
            if (pwrite(fd, zeros, 1 << 20, offset) != 1 << 20) { perror("pwrite"); return 1; }
        free(zeros);
    } else if (fallocate(fd, 0, 0, capacity) != 0) { perror("fallocate"); return 1; }
    fsync(fd);
    char *map = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { perror("mmap"); return 1; }
    char record[160];
    memset(record, 7, sizeof record);
    size_t offset = 4096;
    double start = now(), longest = 0;
    for (int i = 0; i < syncs && offset + per * sizeof record < capacity; i++) {
        double began = now();
        for (int k = 0; k < per; k++, offset += sizeof record) {
            if (mapped) memcpy(map + offset, record, sizeof record);
            else if (pwrite(fd, record, sizeof record, offset) != sizeof record) { perror("pwrite"); return 1; }
        }
        if (mapped ? msync(map, (offset + 4095) & ~4095UL, MS_SYNC) : fdatasync(fd)) { perror("sync"); return 1; }
        double took = now() - began;
        if (took > longest) longest = took;
    }
    double total = now() - start;
    printf("%-9s %-12s %3d records/sync: %6.0f syncs/s, mean %.3f ms, longest %.2f ms\n", argv[1],
           zero ? "zero-filled" : "fallocated", per, syncs / total, total / syncs * 1e3, longest * 1e3);
    munmap(map, capacity);
    close(fd);
    unlink(path);
    return 0;
}
