#include "mmkd/nn/dropout.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "mmkd/core/cpu_features.h"
#include "mmkd/core/error.h"
#include "mmkd/nn/dropout_hash.h"

namespace mmkd::nn {

namespace {

// Elements per hashed row: element i's mask is column i % 1024 of row i / 1024, whatever the
// threads, and one row of multipliers fits in L1.
constexpr int64_t kHashRowLength = 1024;

std::atomic<int> g_dropout_kernel{[] {
  const char* env = std::getenv("MMKD_DROPOUT");
  return env != nullptr && std::string(env) == "torch" ? 1 : 0;
}()};

struct Scaling {
  const float* in = nullptr;
  float* out = nullptr;
  int64_t n = 0;
  uint64_t seed = 0;
  uint32_t threshold = 0;
  float keep_scale = 1;
};

MMKD_HASH_INLINE void scale_chunks(const Scaling& s, int64_t begin, int64_t end) {
  alignas(32) float z[kHashRowLength];
  for (int64_t c = begin; c < end; ++c) {
    const int64_t start = c * kHashRowLength;
    const int64_t len = std::min(kHashRowLength, s.n - start);
    dropout_hash::fill_row(s.seed, static_cast<uint64_t>(c), s.threshold, s.keep_scale, len, z);
    const float* in = s.in + start;
    float* out = s.out + start;
    for (int64_t j = 0; j < len; ++j) out[j] = in[j] * z[j];
  }
}

void scale_chunks_generic(const Scaling& s, int64_t begin, int64_t end) {
  scale_chunks(s, begin, end);
}

#ifdef MMKD_X86_CLONES
// The hash's 32-bit multiplies vectorise 8 wide with AVX2 (the baseline x86-64 has no pmulld).
__attribute__((target("avx2"))) void scale_chunks_avx2(const Scaling& s, int64_t begin,
                                                       int64_t end) {
  scale_chunks(s, begin, end);
}
#endif

void scale(const Scaling& s) {
  auto* kernel = &scale_chunks_generic;
#ifdef MMKD_X86_CLONES
  if (cpu_has_avx2()) kernel = &scale_chunks_avx2;
#endif
  const int64_t chunks = (s.n + kHashRowLength - 1) / kHashRowLength;
  at::parallel_for(0, chunks, 16, [&](int64_t begin, int64_t end) { kernel(s, begin, end); });
}

torch::Tensor scaled_copy(const torch::Tensor& x, double p, uint64_t seed) {
  const auto in = x.contiguous();
  auto out = torch::empty_like(in, torch::MemoryFormat::Contiguous);
  Scaling s;
  s.in = in.data_ptr<float>();
  s.out = out.data_ptr<float>();
  s.n = in.numel();
  s.seed = seed;
  s.threshold = dropout_hash::drop_threshold(p);
  s.keep_scale = static_cast<float>(1.0 / (1.0 - p));
  scale(s);
  return out;
}

class HashedDropoutFunction : public torch::autograd::Function<HashedDropoutFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return scaled_copy(x, p, static_cast<uint64_t>(seed));
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined()) return {{}, {}, {}};  // the output took no part in the loss
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    return {scaled_copy(grads[0], p, seed), {}, {}};
  }
};

bool hashed_dropout_supported(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32;
}

}  // namespace

void set_dropout_kernel(DropoutKernel kernel) { g_dropout_kernel = static_cast<int>(kernel); }

DropoutKernel dropout_kernel() { return static_cast<DropoutKernel>(g_dropout_kernel.load()); }

const char* dropout_kernel_name(DropoutKernel kernel) {
  return kernel == DropoutKernel::kTorch ? "torch" : "hashed";
}

torch::Tensor hashed_dropout(const torch::Tensor& x, double p, uint64_t seed) {
  MMKD_CHECK(p >= 0 && p < 1, "hashed_dropout: p must be in [0,1), got ", p);
  MMKD_CHECK(hashed_dropout_supported(x), "hashed_dropout: expected a CPU float32 tensor, got ",
             x.scalar_type(), " on ", x.device());
  // The autograd context stores the seed as a signed 64-bit integer: same bits either way.
  return HashedDropoutFunction::apply(x, p, static_cast<int64_t>(seed));
}

torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training) {
  if (p == 0 || !training) return x;
  if (dropout_kernel() == DropoutKernel::kTorch || !hashed_dropout_supported(x)) {
    return torch::dropout(x, p, /*train=*/true);
  }
  return hashed_dropout(x, p, draw_dropout_seed());
}

uint64_t draw_dropout_seed() {
  return static_cast<uint64_t>(torch::randint(int64_t(1) << 62, {1}, torch::kLong).item<int64_t>());
}

torch::Tensor hashed_dropout_keep(uint64_t seed, int64_t numel, double p) {
  MMKD_CHECK(p >= 0 && p < 1, "hashed_dropout_keep: p must be in [0,1), got ", p);
  const auto ones = torch::ones({numel}, torch::kFloat32);
  return scaled_copy(ones, p, seed) != 0;
}

}  // namespace mmkd::nn
