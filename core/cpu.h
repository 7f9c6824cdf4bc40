// What the machine offers the CPU engine: the default thread count.
#ifndef G4_CPU_H
#define G4_CPU_H

// Default thread count: physical cores available to this process (SMT siblings counted once;
// all allowed CPUs when the topology is unknown), at most 64.
int g4_cpu_default_threads(void);

#endif
