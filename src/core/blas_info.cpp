// blas_info.cpp: probes the process's symbol table with dlsym/dladdr; no linking tricks, so the
// answer is what the dynamic linker actually bound.
#include "core/blas_info.h"

#include <cblas.h>
#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdlib>

namespace chronos {

BlasInfo blas_probe() {
    BlasInfo info;
    void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
    Dl_info dl{};
    if (sgemm != nullptr && dladdr(sgemm, &dl) != 0 && dl.dli_fname != nullptr) {
        info.sgemm_library = dl.dli_fname;
    }
    using config_fn = char* (*)();
    using threads_fn = int (*)();
    auto get_config = reinterpret_cast<config_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    auto get_threads = reinterpret_cast<threads_fn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    // OpenBLAS must both be loaded and be the library that provides sgemm_.
    bool sgemm_from_openblas = info.sgemm_library.find("openblas") != std::string::npos;
    // libtorch calls the BLAS behind libblas.so.3 (Debian's alternatives): if that is loaded
    // and resolves to another implementation, part of the process runs on it.
    if (void* h = dlopen("libblas.so.3", RTLD_NOW | RTLD_NOLOAD)) {
        link_map* map = nullptr;
        if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr) {
            char resolved[PATH_MAX];
            info.libblas_so3 = realpath(map->l_name, resolved) ? resolved : map->l_name;
            if (info.libblas_so3.find("openblas") == std::string::npos) sgemm_from_openblas = false;
        }
        dlclose(h);
    }
    if (get_config != nullptr && sgemm_from_openblas) {
        info.is_openblas = true;
        info.openblas_config = get_config();
        if (get_threads != nullptr) info.threads = get_threads();
    }
    return info;
}

void blas_set_threads(int threads) {
    // Linked directly (not looked up), which also keeps OpenBLAS a hard dependency of every
    // Chronos binary.
    if (threads > 0) openblas_set_num_threads(threads);
}

}  // namespace chronos
