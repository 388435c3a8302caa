// blas_info.h: which BLAS this process really calls. Debian's libtorch and our kernels call
// whatever libblas.so.3 resolves to; the reference BLAS is ~16x slower than OpenBLAS, so the
// CLI checks at start-up and says so loudly if sgemm_ does not come from OpenBLAS.
#pragma once

#include <string>

namespace chronos {

struct BlasInfo {
    bool is_openblas = false;
    std::string sgemm_library;   // shared object that provides the sgemm_ symbol
    std::string openblas_config; // openblas_get_config(), empty if not OpenBLAS
    int threads = 0;             // openblas_get_num_threads(), 0 if unknown
    std::string libblas_so3;     // what libblas.so.3 resolves to, if loaded (libtorch's BLAS)
};

BlasInfo blas_probe();

// Sets the OpenBLAS thread count (no-op for other BLAS).
void blas_set_threads(int threads);

}  // namespace chronos
