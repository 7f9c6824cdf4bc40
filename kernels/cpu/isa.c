// Names of the instruction-set levels; see isa.h.
#include "isa.h"

const char *g4_isa_name(enum g4_isa isa) {
    switch (isa) {
    case G4_ISA_AVX512BF16: return "avx512bf16";
    case G4_ISA_AVX512VNNI: return "avx512vnni";
    case G4_ISA_AVX512: return "avx512";
    case G4_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}
