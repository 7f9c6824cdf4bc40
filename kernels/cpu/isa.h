// The x86 instruction-set levels the CPU kernels are written for, best last.
#ifndef G4_ISA_H
#define G4_ISA_H

// Instruction sets the kernels may use; g4_matmul_isa() (matmul_cpu.h) is the best one this CPU
// has. G4_ISA_AVX512VNNI adds VPDPBUSD/VPDPWSSD, used only by the quantized dot products
// (quant_dot.h); G4_ISA_AVX512BF16 adds VDPBF16PS (g4_matmul_cpu_bf16act) and implies VNNI (every
// CPU with AVX512_BF16 has it).
enum g4_isa {
    G4_ISA_PORTABLE = 0,
    G4_ISA_AVX2 = 1,
    G4_ISA_AVX512 = 2,
    G4_ISA_AVX512VNNI = 3,
    G4_ISA_AVX512BF16 = 4
};
const char *g4_isa_name(enum g4_isa isa);

#endif
