// tests/emu: CUDA C++ for the host compiler. The runtime API (cuda_runtime_api.h) and, in C++,
// the device side (g4emu_device.h): __global__ / __device__, thread indices, barriers, warp
// shuffles, atomics, vector types, device math, and the G4_LAUNCH emulated kernel launch.
#ifndef G4EMU_CUDA_RUNTIME_H
#define G4EMU_CUDA_RUNTIME_H

#include "cuda_runtime_api.h"
#ifdef __cplusplus
#include "g4emu_device.h"
#endif

#endif
