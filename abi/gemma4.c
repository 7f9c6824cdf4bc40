// Public ABI implementation (filled in by the ABI work); placeholder so the build has its unit.
#include "status.h"
