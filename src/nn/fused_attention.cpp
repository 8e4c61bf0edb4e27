#include "mmkd/nn/fused_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "mmkd/core/cpu_features.h"
#include "mmkd/core/error.h"
#include "mmkd/nn/dropout_hash.h"

// at::parallel_for below is serial unless this file is compiled with OpenMP (see CMakeLists.txt).
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "LibTorch uses OpenMP: build mmkd with OpenMP or the fused attention runs on one thread"
#endif

// Comparisons may be if-converted (vectorised) only when they are not assumed to trap; this is
// clang's default and changes no result here. Applies to the functions defined below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

// Why a hand-written kernel: with d_k = 5..8 the batched matmuls QK^T and AV do 2*d_k flops per
// element of a [B,H,Tq,Tk] tensor they must write and read back (plus mask, softmax, dropout and
// their autograd copies): memory-bound, and at MOSEI lengths (500x500) the saved maps are what
// fills ~10 GiB. Here each (batch, head) keeps K and V (Tk x d_k, a few KiB) in cache and streams
// query rows through them; the backward pass recomputes the logits from Q, K and the saved
// log-sum-exp (as FlashAttention does) and regenerates the dropout mask from a counter-based
// hash, so nothing of size Tq x Tk outlives a row.
//
// Loops run over blocks of kLanes keys with fixed-size lane arrays so that GCC/Clang vectorise
// the reductions without -ffast-math (which would break the -inf mask handling).

namespace mmkd::nn {

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define MMKD_INLINE inline __attribute__((always_inline))
#else
#define MMKD_INLINE inline
#endif

constexpr int64_t kLanes = 16;
constexpr int64_t kMaxHeadDim = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::atomic<int> g_kernel{[] {
  const char* env = std::getenv("MMKD_ATTENTION");
  const std::string name = env == nullptr ? "" : env;
  return name == "reference" ? 1 : name == "sdpa" ? 2 : 0;
}()};

int64_t round_up(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

/// exp(x) to ~1 ulp (Cephes' polynomial on x - n ln2), 0 below -87 (so -inf gives exactly 0).
MMKD_INLINE float fast_exp(float x) {
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  int32_t ti;
  std::memcpy(&ti, &t, sizeof ti);
  const int32_t ni = ti - 0x4B400000;  // the integer n, read from t's mantissa
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.0f ? 0.0f : p * scale;
}

/// Dropout multipliers of one attention row (keep_scale or 0) for keys [0, n), hashed from
/// (seed, row, key) (dropout_hash.h), so forward, backward and attention_dropout_keep() agree.
MMKD_INLINE void dropout_row(uint64_t seed, uint64_t row, uint32_t threshold, float keep_scale,
                             int64_t n, float* z) {
  dropout_hash::fill_row(seed, row, threshold, keep_scale, n, z);
}

/// Element (b, t, c) of a [B,T,d] tensor with contiguous last dimension.
struct View {
  const float* data = nullptr;
  int64_t sb = 0, st = 0;
  const float* at(int64_t b, int64_t t) const { return data + b * sb + t * st; }
};

struct Args {
  View q, k, v;
  const float* mask = nullptr;       ///< [Tq,Tk] additive, or null
  const bool* pad = nullptr;         ///< [B,Tk], or null
  const int64_t* row_end = nullptr;  ///< [Tq]: keys at or after row_end[i] are masked (-inf)
  int64_t batch = 0, heads = 0, tq = 0, tk = 0, dk = 0, ld = 0;
  float scale = 1;
  bool dropout = false;
  uint32_t threshold = 0;
  float keep_scale = 1;
  uint64_t seed = 0;
  // forward
  float* out = nullptr;  ///< [B,Tq,d] contiguous
  float* lse = nullptr;  ///< [B,H,Tq] or null
  // backward
  const float* grad_out = nullptr;                                ///< [B,Tq,d] contiguous
  float *grad_q = nullptr, *grad_k = nullptr, *grad_v = nullptr;  ///< contiguous [B,T,d]
};

/// Per-thread buffers: K^T*scale and V^T as [dk][ld] (ld = Tk rounded up to kLanes, zero
/// padded), and rows of ld floats.
struct Scratch {
  explicit Scratch(const Args& a)
      : kt(a.dk * a.ld),
        vt(a.dk * a.ld),
        dkt(a.dk * a.ld),
        dvt(a.dk * a.ld),
        pad_bias(a.ld),
        s(a.ld),
        w(a.ld),
        z(a.ld),
        dp(a.ld) {}
  std::vector<float> kt, vt, dkt, dvt, pad_bias, s, w, z, dp;
};

template <int DK>
MMKD_INLINE void load_head(const Args& a, int64_t b, int64_t h, Scratch& sc) {
  const int64_t dk = DK > 0 ? DK : a.dk;
  std::fill(sc.kt.begin(), sc.kt.end(), 0.0f);
  std::fill(sc.vt.begin(), sc.vt.end(), 0.0f);
  for (int64_t j = 0; j < a.tk; ++j) {
    const float* kr = a.k.at(b, j) + h * dk;
    const float* vr = a.v.at(b, j) + h * dk;
    for (int64_t c = 0; c < dk; ++c) {
      sc.kt[c * a.ld + j] = kr[c] * a.scale;
      sc.vt[c * a.ld + j] = vr[c];
    }
  }
  if (a.pad != nullptr) {
    const bool* pr = a.pad + b * a.tk;
    for (int64_t j = 0; j < a.tk; ++j) sc.pad_bias[j] = pr[j] ? kNegInf : 0.0f;
  }
}

/// s[0, np) = mask + padding + q . k_j * scale, -inf from n on.
template <int DK>
MMKD_INLINE void logits_row(const Args& a, const float* qrow, int64_t i, int64_t n, int64_t np,
                            Scratch& sc) {
  const int64_t dk = DK > 0 ? DK : a.dk;
  float* s = sc.s.data();
  const float* mrow = a.mask != nullptr ? a.mask + i * a.tk : nullptr;
  const float* pb = sc.pad_bias.data();
  if (mrow != nullptr && a.pad != nullptr) {
    for (int64_t j = 0; j < n; ++j) s[j] = mrow[j] + pb[j];
  } else if (mrow != nullptr) {
    for (int64_t j = 0; j < n; ++j) s[j] = mrow[j];
  } else if (a.pad != nullptr) {
    for (int64_t j = 0; j < n; ++j) s[j] = pb[j];
  } else {
    for (int64_t j = 0; j < n; ++j) s[j] = 0.0f;
  }
  float qv[DK > 0 ? DK : kMaxHeadDim];
  for (int64_t c = 0; c < dk; ++c) qv[c] = qrow[c];
  const float* kt = sc.kt.data();
  const int64_t ld = a.ld;
  for (int64_t j = 0; j < n; ++j) {
    float acc = s[j];
    for (int64_t c = 0; c < dk; ++c) acc += qv[c] * kt[c * ld + j];
    s[j] = acc;
  }
  for (int64_t j = n; j < np; ++j) s[j] = kNegInf;
}

#if defined(__GNUC__) || defined(__clang__)
// A generic 8-float vector (GCC/Clang extension): the select below is one vmaxps-like blend per
// 8 keys, which neither compiler derives from the scalar form without -ffast-math.
typedef float Float8 __attribute__((vector_size(32)));

MMKD_INLINE float block_max(const float* s, int64_t np) {
  Float8 m0, m1;
  for (int u = 0; u < 8; ++u) m0[u] = kNegInf, m1[u] = kNegInf;
  for (int64_t j = 0; j < np; j += kLanes) {
    Float8 x0, x1;
    std::memcpy(&x0, s + j, sizeof x0);
    std::memcpy(&x1, s + j + 8, sizeof x1);
    m0 = x0 > m0 ? x0 : m0;
    m1 = x1 > m1 ? x1 : m1;
  }
  m0 = m1 > m0 ? m1 : m0;
  float r = m0[0];
  for (int u = 1; u < 8; ++u) r = m0[u] > r ? m0[u] : r;
  return r;
}
#else
MMKD_INLINE float block_max(const float* s, int64_t np) {
  float r = kNegInf;
  for (int64_t j = 0; j < np; ++j) r = s[j] > r ? s[j] : r;
  return r;
}
#endif

/// s[j] = exp(s[j] - shift); returns the sum.
MMKD_INLINE float block_exp(float* s, int64_t np, float shift) {
  float acc[kLanes] = {};
  for (int64_t j = 0; j < np; j += kLanes)
    for (int64_t u = 0; u < kLanes; ++u) {
      const float e = fast_exp(s[j + u] - shift);
      s[j + u] = e;
      acc[u] += e;
    }
  float r = 0;
  for (int64_t u = 0; u < kLanes; ++u) r += acc[u];
  return r;
}

MMKD_INLINE float block_dot(const float* x, const float* y, int64_t np) {
  float acc[kLanes] = {};
  for (int64_t j = 0; j < np; j += kLanes)
    for (int64_t u = 0; u < kLanes; ++u) acc[u] += x[j + u] * y[j + u];
  float r = 0;
  for (int64_t u = 0; u < kLanes; ++u) r += acc[u];
  return r;
}

template <int DK>
MMKD_INLINE void forward_head(const Args& a, int64_t bh, Scratch& sc) {
  const int64_t dk = DK > 0 ? DK : a.dk;
  const int64_t b = bh / a.heads, h = bh % a.heads;
  const int64_t d = a.heads * dk;
  load_head<DK>(a, b, h, sc);
  for (int64_t i = 0; i < a.tq; ++i) {
    float* orow = a.out + (b * a.tq + i) * d + h * dk;
    float* lse = a.lse != nullptr ? a.lse + bh * a.tq + i : nullptr;
    const int64_t n = a.row_end[i];
    const int64_t np = round_up(n);
    float m = kNegInf;
    if (n > 0) {
      logits_row<DK>(a, a.q.at(b, i) + h * dk, i, n, np, sc);
      m = block_max(sc.s.data(), np);
    }
    if (m == kNegInf) {  // no visible key: a zero row, as masked_softmax
      for (int64_t c = 0; c < dk; ++c) orow[c] = 0.0f;
      if (lse != nullptr) *lse = kNegInf;
      continue;
    }
    float* p = sc.s.data();
    const float l = block_exp(p, np, m);
    if (a.dropout) {
      dropout_row(a.seed, static_cast<uint64_t>(bh * a.tq + i), a.threshold, a.keep_scale, np,
                  sc.z.data());
      for (int64_t j = 0; j < np; ++j) p[j] *= sc.z[j];
    }
    const float inv = 1.0f / l;
    for (int64_t c = 0; c < dk; ++c) orow[c] = block_dot(p, sc.vt.data() + c * a.ld, np) * inv;
    if (lse != nullptr) *lse = m + std::log(l);
  }
}

template <int DK>
MMKD_INLINE void backward_head(const Args& a, int64_t bh, Scratch& sc) {
  const int64_t dk = DK > 0 ? DK : a.dk;
  const int64_t b = bh / a.heads, h = bh % a.heads;
  const int64_t d = a.heads * dk;
  const int64_t ld = a.ld;
  load_head<DK>(a, b, h, sc);
  std::fill(sc.dkt.begin(), sc.dkt.end(), 0.0f);
  std::fill(sc.dvt.begin(), sc.dvt.end(), 0.0f);
  float* s = sc.s.data();
  float* dp = sc.dp.data();
  float* w = sc.w.data();
  for (int64_t i = 0; i < a.tq; ++i) {
    float* dq = a.grad_q + (b * a.tq + i) * d + h * dk;
    const float lse = a.lse[bh * a.tq + i];
    const int64_t n = a.row_end[i];
    const int64_t np = round_up(n);
    if (n == 0 || lse == kNegInf) {
      for (int64_t c = 0; c < dk; ++c) dq[c] = 0.0f;
      continue;
    }
    const float* qrow = a.q.at(b, i) + h * dk;
    logits_row<DK>(a, qrow, i, n, np, sc);
    for (int64_t j = 0; j < np; ++j) s[j] = fast_exp(s[j] - lse);  // softmax p
    const float* gorow = a.grad_out + (b * a.tq + i) * d + h * dk;
    float go[DK > 0 ? DK : kMaxHeadDim], qv[DK > 0 ? DK : kMaxHeadDim];
    for (int64_t c = 0; c < dk; ++c) go[c] = gorow[c], qv[c] = qrow[c] * a.scale;
    const float* vt = sc.vt.data();
    for (int64_t j = 0; j < np; ++j) {
      float acc = 0;
      for (int64_t c = 0; c < dk; ++c) acc += go[c] * vt[c * ld + j];
      dp[j] = acc;  // dL/d(dropped weight)
    }
    const float* weight = s;
    if (a.dropout) {
      float* z = sc.z.data();
      dropout_row(a.seed, static_cast<uint64_t>(bh * a.tq + i), a.threshold, a.keep_scale, np, z);
      for (int64_t j = 0; j < np; ++j) {
        dp[j] *= z[j];
        w[j] = s[j] * z[j];
      }
      weight = w;
    }
    const float dsum = block_dot(s, dp, np);
    for (int64_t j = 0; j < np; ++j) dp[j] = s[j] * (dp[j] - dsum);  // dL/dlogit
    float* dvt = sc.dvt.data();
    float* dkt = sc.dkt.data();
    for (int64_t c = 0; c < dk; ++c) {
      const float g = go[c], qc = qv[c];
      float* dvr = dvt + c * ld;
      float* dkr = dkt + c * ld;
      for (int64_t j = 0; j < np; ++j) {
        dvr[j] += weight[j] * g;
        dkr[j] += dp[j] * qc;
      }
    }
    for (int64_t c = 0; c < dk; ++c) dq[c] = block_dot(dp, sc.kt.data() + c * ld, np);
  }
  for (int64_t j = 0; j < a.tk; ++j) {
    float* gk = a.grad_k + (b * a.tk + j) * d + h * dk;
    float* gv = a.grad_v + (b * a.tk + j) * d + h * dk;
    for (int64_t c = 0; c < dk; ++c) {
      gk[c] = sc.dkt[c * ld + j];
      gv[c] = sc.dvt[c * ld + j];
    }
  }
}

template <int DK>
void forward_range(const Args& a, int64_t begin, int64_t end) {
  Scratch sc(a);
  for (int64_t bh = begin; bh < end; ++bh) forward_head<DK>(a, bh, sc);
}
template <int DK>
void backward_range(const Args& a, int64_t begin, int64_t end) {
  Scratch sc(a);
  for (int64_t bh = begin; bh < end; ++bh) backward_head<DK>(a, bh, sc);
}

#ifdef MMKD_X86_CLONES
template <int DK>
__attribute__((target("avx2,fma"))) void forward_range_avx2(const Args& a, int64_t begin,
                                                            int64_t end) {
  Scratch sc(a);
  for (int64_t bh = begin; bh < end; ++bh) forward_head<DK>(a, bh, sc);
}
template <int DK>
__attribute__((target("avx2,fma"))) void backward_range_avx2(const Args& a, int64_t begin,
                                                             int64_t end) {
  Scratch sc(a);
  for (int64_t bh = begin; bh < end; ++bh) backward_head<DK>(a, bh, sc);
}
#endif

using RangeFn = void (*)(const Args&, int64_t, int64_t);

template <int DK>
RangeFn pick(bool backward) {
#ifdef MMKD_X86_CLONES
  if (cpu_has_avx2_fma()) return backward ? &backward_range_avx2<DK> : &forward_range_avx2<DK>;
#endif
  return backward ? &backward_range<DK> : &forward_range<DK>;
}

RangeFn select_kernel(int64_t dk, bool backward) {
  switch (dk) {
    case 4:
      return pick<4>(backward);
    case 5:
      return pick<5>(backward);
    case 6:
      return pick<6>(backward);
    case 8:
      return pick<8>(backward);
    case 10:
      return pick<10>(backward);
    case 16:
      return pick<16>(backward);
    default:
      return pick<0>(backward);
  }
}

void run_parallel(const Args& a, bool backward) {
  const RangeFn fn = select_kernel(a.dk, backward);
  // One (batch, head) is Tq x Tk cells; below ~64k cells per task a thread hand-off costs
  // more than it saves (and on a loaded machine a parallel region waits for a descheduled
  // thread), so small problems run on the calling thread.
  const int64_t cells = std::max<int64_t>(1, a.tq * a.tk);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / cells);
  at::parallel_for(0, a.batch * a.heads, grain,
                   [&](int64_t begin, int64_t end) { fn(a, begin, end); });
}

View view_of(const torch::Tensor& t) { return {t.data_ptr<float>(), t.stride(0), t.stride(1)}; }

/// Geometry, masks and dropout shared by forward and backward; `row_end` keeps its storage.
Args make_args(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
               int64_t heads, const torch::Tensor& mask, const torch::Tensor& pad, double dropout_p,
               uint64_t seed, std::vector<int64_t>& row_end) {
  Args a;
  a.batch = q.size(0);
  a.tq = q.size(1);
  a.tk = k.size(1);
  a.heads = heads;
  a.dk = q.size(2) / heads;
  a.ld = round_up(std::max<int64_t>(a.tk, 1));
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.dk)));
  a.q = view_of(q);
  a.k = view_of(k);
  a.v = view_of(v);
  a.mask = mask.defined() ? mask.data_ptr<float>() : nullptr;
  a.pad = pad.defined() ? pad.data_ptr<bool>() : nullptr;
  // Keys after the last finite mask entry of a row never contribute: MulT's future mask hides
  // the upper triangle, so the kernel skips it (half the work of every square attention).
  row_end.assign(static_cast<size_t>(a.tq), a.tk);
  if (a.mask != nullptr) {
    for (int64_t i = 0; i < a.tq; ++i) {
      int64_t n = a.tk;
      while (n > 0 && a.mask[i * a.tk + n - 1] == kNegInf) --n;
      row_end[static_cast<size_t>(i)] = n;
    }
  }
  a.row_end = row_end.data();
  a.dropout = dropout_p > 0;
  if (a.dropout) {
    a.threshold = dropout_hash::drop_threshold(dropout_p);
    a.keep_scale = static_cast<float>(1.0 / (1.0 - dropout_p));
    a.seed = seed;
  }
  return a;
}

/// Masks travel to the autograd function outside its tensor arguments: Function::apply checks
/// the device of every tensor argument, and either mask may be undefined.
struct Masks {
  torch::Tensor mask, pad;
};

class FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v, const Masks& masks,
                               int64_t heads, double dropout_p, int64_t seed) {
    std::vector<int64_t> row_end;
    Args a = make_args(q, k, v, heads, masks.mask, masks.pad, dropout_p,
                       static_cast<uint64_t>(seed), row_end);
    auto out = torch::empty({a.batch, a.tq, a.heads * a.dk}, q.options());
    auto lse = torch::empty({a.batch, a.heads, a.tq}, q.options());
    a.out = out.data_ptr<float>();
    a.lse = lse.data_ptr<float>();
    run_parallel(a, /*backward=*/false);
    ctx->save_for_backward({q, k, v, lse});
    if (masks.mask.defined()) ctx->saved_data["mask"] = masks.mask;
    if (masks.pad.defined()) ctx->saved_data["pad"] = masks.pad;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["seed"] = seed;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& q = saved[0];
    const auto& k = saved[1];
    const auto& v = saved[2];
    const auto& lse = saved[3];
    const auto& data = ctx->saved_data;
    const auto mask = data.count("mask") ? data.at("mask").toTensor() : torch::Tensor();
    const auto pad = data.count("pad") ? data.at("pad").toTensor() : torch::Tensor();
    std::vector<int64_t> row_end;
    Args a = make_args(q, k, v, ctx->saved_data["heads"].toInt(), mask, pad,
                       ctx->saved_data["dropout_p"].toDouble(),
                       static_cast<uint64_t>(ctx->saved_data["seed"].toInt()), row_end);
    const auto grad_out = grads[0].contiguous();
    auto grad_q = torch::empty({a.batch, a.tq, a.heads * a.dk}, q.options());
    auto grad_k = torch::empty({a.batch, a.tk, a.heads * a.dk}, k.options());
    auto grad_v = torch::empty({a.batch, a.tk, a.heads * a.dk}, v.options());
    a.lse = const_cast<float*>(lse.data_ptr<float>());
    a.grad_out = grad_out.data_ptr<float>();
    a.grad_q = grad_q.data_ptr<float>();
    a.grad_k = grad_k.data_ptr<float>();
    a.grad_v = grad_v.data_ptr<float>();
    run_parallel(a, /*backward=*/true);
    return {grad_q, grad_k, grad_v, {}, {}, {}, {}};
  }
};

torch::Tensor last_dim_contiguous(const torch::Tensor& t) {
  return t.stride(2) == 1 ? t : t.contiguous();
}

}  // namespace

void set_attention_kernel(AttentionKernel kernel) { g_kernel = static_cast<int>(kernel); }

AttentionKernel attention_kernel() { return static_cast<AttentionKernel>(g_kernel.load()); }

const char* attention_kernel_name(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::kReference:
      return "reference";
    case AttentionKernel::kSdpa:
      return "sdpa";
    case AttentionKernel::kFused:
      break;
  }
  return "fused";
}

bool fused_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& attn_mask) {
  const auto ok = [](const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 &&
           t.dim() == 3 && !t.is_sparse();
  };
  return ok(q) && ok(k) && ok(v) && (!attn_mask.defined() || !attn_mask.requires_grad());
}

torch::Tensor fused_attention(const torch::Tensor& q_in, const torch::Tensor& k_in,
                              const torch::Tensor& v_in, int64_t heads,
                              const torch::Tensor& attn_mask, const torch::Tensor& key_padding_mask,
                              double dropout_p, uint64_t seed) {
  MMKD_CHECK(fused_attention_supported(q_in, k_in, v_in, attn_mask),
             "fused_attention: expects CPU float32 [B,T,d] query/key/value and a mask that needs "
             "no gradient");
  MMKD_CHECK(heads > 0 && q_in.size(2) % heads == 0 && q_in.size(2) / heads <= kMaxHeadDim,
             "fused_attention: width ", q_in.size(2), " with ", heads, " heads (head dim at most ",
             kMaxHeadDim, ")");
  MMKD_CHECK(
      k_in.sizes() == v_in.sizes() && k_in.size(0) == q_in.size(0) && k_in.size(2) == q_in.size(2),
      "fused_attention: query ", q_in.sizes(), ", key ", k_in.sizes(), ", value ", v_in.sizes(),
      " do not match");
  MMKD_CHECK(dropout_p >= 0 && dropout_p < 1, "fused_attention: dropout must be in [0,1), got ",
             dropout_p);
  const int64_t batch = q_in.size(0), tq = q_in.size(1), tk = k_in.size(1);
  torch::Tensor mask, pad;
  if (attn_mask.defined()) {
    MMKD_CHECK(attn_mask.dim() == 2 && attn_mask.size(0) == tq && attn_mask.size(1) == tk,
               "fused_attention: attn_mask must be [", tq, ",", tk, "], got ", attn_mask.sizes());
    mask = attn_mask.detach().to(torch::kFloat32).contiguous();
  }
  if (key_padding_mask.defined()) {
    MMKD_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == batch &&
                   key_padding_mask.size(1) == tk,
               "fused_attention: key_padding_mask must be [", batch, ",", tk, "], got ",
               key_padding_mask.sizes());
    pad = key_padding_mask.detach().to(torch::kBool).contiguous();
  }
  const auto q = last_dim_contiguous(q_in);
  const auto k = last_dim_contiguous(k_in);
  const auto v = last_dim_contiguous(v_in);
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (needs_grad) {
    return FusedAttentionFunction::apply(q, k, v, Masks{mask, pad}, heads, dropout_p,
                                         static_cast<int64_t>(seed));
  }
  std::vector<int64_t> row_end;
  Args a = make_args(q, k, v, heads, mask, pad, dropout_p, seed, row_end);
  auto out = torch::empty({batch, tq, q.size(2)}, q.options());
  a.out = out.data_ptr<float>();
  run_parallel(a, /*backward=*/false);
  return out;
}

torch::Tensor attention_dropout_keep(uint64_t seed, int64_t batch, int64_t heads, int64_t tq,
                                     int64_t tk, double dropout_p) {
  MMKD_CHECK(dropout_p >= 0 && dropout_p < 1, "attention_dropout_keep: dropout must be in [0,1)");
  auto keep = torch::empty({batch, heads, tq, tk}, torch::kBool);
  bool* out = keep.data_ptr<bool>();
  const uint32_t threshold = dropout_hash::drop_threshold(dropout_p);
  std::vector<float> z(static_cast<size_t>(tk));
  for (int64_t row = 0; row < batch * heads * tq; ++row) {
    dropout_row(seed, static_cast<uint64_t>(row), threshold, 1.0f, tk, z.data());
    for (int64_t j = 0; j < tk; ++j) out[row * tk + j] = z[static_cast<size_t>(j)] != 0.0f;
  }
  return keep;
}

}  // namespace mmkd::nn
