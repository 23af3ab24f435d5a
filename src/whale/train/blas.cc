#include "whale/train/blas.h"

#include <dlfcn.h>

#include <cstdlib>

#include "whale/core/error.h"

namespace whale::train {
namespace {

// cblas.h's enum values (CBLAS_ORDER, CBLAS_TRANSPOSE).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using SetThreadsFn = void (*)(int);
using CoreNameFn = char* (*)();

struct OpenBlas {
  SgemmFn sgemm = nullptr;
  CoreNameFn core_name = nullptr;
};

// OpenBLAS's kernel family for this CPU's instruction sets; null leaves OpenBLAS's own detection.
const char* core_type_for_this_cpu() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

OpenBlas load() {
  if (!std::getenv("OPENBLAS_CORETYPE"))
    if (const char* core = core_type_for_this_cpu()) setenv("OPENBLAS_CORETYPE", core, 0);
  void* handle = nullptr;
  for (const char* name : {"libopenblas.so.0", "libopenblas.so"})
    if ((handle = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!handle) fail("cannot load OpenBLAS (libopenblas.so.0), which training needs: install libopenblas0 (scripts/setup.sh)");
  OpenBlas b;
  b.sgemm = reinterpret_cast<SgemmFn>(dlsym(handle, "cblas_sgemm"));
  b.core_name = reinterpret_cast<CoreNameFn>(dlsym(handle, "openblas_get_corename"));
  auto set_threads = reinterpret_cast<SetThreadsFn>(dlsym(handle, "openblas_set_num_threads"));
  if (!b.sgemm || !b.core_name || !set_threads) fail("the loaded libopenblas.so.0 lacks cblas_sgemm or openblas_* functions");
  set_threads(1);
  return b;
}

const OpenBlas& openblas() {
  static const OpenBlas b = load();  // initialised once, then read-only
  return b;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  openblas().sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, static_cast<int>(M),
                   static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb),
                   beta, C, static_cast<int>(ldc));
}

std::string blas_core_name() { return openblas().core_name(); }

}  // namespace whale::train
