// Thread-count default; see cpu.h.
#define _GNU_SOURCE
#include "cpu.h"

#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

int g4_cpu_default_threads(void) {
    cpu_set_t set;
    int n_cpus = 0, n_cores = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    enum { MAX_CORES = 256 };
    long seen[MAX_CORES];
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        n_cpus++;
        long core = -1, pkg = 0;
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &core) != 1) core = -1;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        if (core < 0) return n_cpus > 64 ? 64 : CPU_COUNT(&set); // no topology: count CPUs
        const long key = pkg * 1000000 + core;
        bool dup = false;
        for (int i = 0; i < n_cores && !dup; i++) dup = seen[i] == key;
        if (!dup && n_cores < MAX_CORES) seen[n_cores++] = key;
    }
    if (n_cores == 0) n_cores = n_cpus > 0 ? n_cpus : 1;
    return n_cores > 64 ? 64 : n_cores;
}
