#include "mmkd/distill/crd_row_scores.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "mmkd/core/cpu_features.h"
#include "mmkd/core/error.h"

namespace mmkd::distill {

namespace {

// One anchor sample's work: its K+1 candidates share the sample, so each candidate's T*E block
// of the bank is read once, contiguously, for all R rows (the gather read it row by row).
struct Layout {
  const float* bank = nullptr;
  int64_t rows_in_bank = 0;  // T
  int64_t embed = 0;         // E
  const int64_t* candidates = nullptr;
  int64_t num_candidates = 0;  // K+1
  const int64_t* rows = nullptr;
  int64_t num_rows = 0;  // R
};

inline float dot(const float* a, const float* b, int64_t n) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t e = 0; e < n; ++e) acc += a[e] * b[e];
  return acc;
}

inline void axpy(float c, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) y[e] += c * x[e];
}

// The candidates' blocks lie at random places in a bank far larger than the caches: asking
// for the next candidate's entries while this one's are scored hides some of the memory latency
// (perf samples in the scoring loop -19% at the medium shapes; none measured in backward's).
inline void prefetch_entries(const Layout& l, const float* block) {
  for (int64_t i = 0; i < l.num_rows; ++i) {
    const char* entry = reinterpret_cast<const char*>(block + l.rows[i] * l.embed);
    for (int64_t byte = 0; byte < l.embed * 4; byte += 64) __builtin_prefetch(entry + byte);
  }
}

inline const float* candidate_block(const Layout& l, int64_t b, int64_t k) {
  return l.bank + l.candidates[b * l.num_candidates + k] * l.rows_in_bank * l.embed;
}

// scores[b] [R,K+1] for samples begin..end.
inline void scores_range(const Layout& l, const float* v, float temperature, float* scores,
                         int64_t begin, int64_t end) {
  const int64_t e = l.embed;
  for (int64_t b = begin; b < end; ++b) {
    const float* vb = v + b * l.num_rows * e;
    float* sb = scores + b * l.num_rows * l.num_candidates;
    for (int64_t k = 0; k < l.num_candidates; ++k) {
      const float* block = candidate_block(l, b, k);
      if (k + 1 < l.num_candidates) prefetch_entries(l, candidate_block(l, b, k + 1));
      for (int64_t i = 0; i < l.num_rows; ++i)
        sb[i * l.num_candidates + k] =
            std::exp(dot(block + l.rows[i] * e, vb + i * e, e) / temperature);
    }
  }
}

// grad_v[b,i] = sum_k coeff[b,i,k] * entry(candidates[b,k], rows[i]), where an overwritten
// sample's entries come from `kept` (slot[sample] >= 0) and the others from the bank.
inline void grad_range(const Layout& l, const float* coeff, const std::vector<int64_t>& slot,
                       const float* kept, float* grad, int64_t begin, int64_t end) {
  const int64_t e = l.embed;
  for (int64_t b = begin; b < end; ++b) {
    const float* cb = coeff + b * l.num_rows * l.num_candidates;
    float* gb = grad + b * l.num_rows * e;
    for (int64_t k = 0; k < l.num_candidates; ++k) {
      const int64_t j = l.candidates[b * l.num_candidates + k];
      for (int64_t i = 0; i < l.num_rows; ++i) {
        const float* entry = slot[j] >= 0 ? kept + (slot[j] * l.num_rows + i) * e
                                          : l.bank + (j * l.rows_in_bank + l.rows[i]) * e;
        axpy(cb[i * l.num_candidates + k], entry, gb + i * e, e);
      }
    }
  }
}

void scores_generic(const Layout& l, const float* v, float t, float* s, int64_t b0, int64_t b1) {
  scores_range(l, v, t, s, b0, b1);
}
void grad_generic(const Layout& l, const float* c, const std::vector<int64_t>& slot,
                  const float* kept, float* g, int64_t b0, int64_t b1) {
  grad_range(l, c, slot, kept, g, b0, b1);
}

#ifdef MMKD_X86_CLONES
// E is small (32 by default): 8-wide FMA dot products instead of the baseline's 4-wide SSE.
__attribute__((target("avx2,fma"))) void scores_avx2(const Layout& l, const float* v, float t,
                                                     float* s, int64_t b0, int64_t b1) {
  scores_range(l, v, t, s, b0, b1);
}
__attribute__((target("avx2,fma"))) void grad_avx2(const Layout& l, const float* c,
                                                   const std::vector<int64_t>& slot,
                                                   const float* kept, float* g, int64_t b0,
                                                   int64_t b1) {
  grad_range(l, c, slot, kept, g, b0, b1);
}
#endif

Layout layout_of(const torch::Tensor& bank, const torch::Tensor& candidates,
                 const torch::Tensor& rows) {
  Layout l;
  l.bank = bank.data_ptr<float>();
  l.rows_in_bank = bank.size(1);
  l.embed = bank.size(2);
  l.candidates = candidates.data_ptr<int64_t>();
  l.num_candidates = candidates.size(1);
  l.rows = rows.data_ptr<int64_t>();
  l.num_rows = rows.size(0);
  return l;
}

torch::Tensor compute_scores(const torch::Tensor& bank, const torch::Tensor& candidates,
                             const torch::Tensor& rows, const torch::Tensor& v,
                             double temperature) {
  const auto l = layout_of(bank, candidates, rows);
  const auto vc = v.contiguous();
  auto scores = torch::empty({candidates.size(0), l.num_rows, l.num_candidates}, v.options());
  auto* kernel = &scores_generic;
#ifdef MMKD_X86_CLONES
  if (cpu_has_avx2_fma()) kernel = &scores_avx2;
#endif
  const float t = static_cast<float>(temperature);
  at::parallel_for(0, candidates.size(0), 1, [&](int64_t b0, int64_t b1) {
    kernel(l, vc.data_ptr<float>(), t, scores.data_ptr<float>(), b0, b1);
  });
  return scores;
}

class CrdRowScoresFunction : public torch::autograd::Function<CrdRowScoresFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& v,
                               const torch::Tensor& bank, const torch::Tensor& candidates,
                               const torch::Tensor& rows, double temperature,
                               const torch::Tensor& overwritten) {
    auto scores = compute_scores(bank, candidates, rows, v, temperature);
    ctx->saved_data["bank"] = bank;
    ctx->saved_data["bank_version"] = static_cast<int64_t>(bank._version());
    ctx->saved_data["candidates"] = candidates;
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["overwritten"] = overwritten;
    ctx->saved_data["kept"] = overwritten.numel() > 0
                                  ? bank.index_select(0, overwritten).index_select(1, rows)
                                  : torch::empty({0}, bank.options());
    ctx->save_for_backward({scores});
    return scores;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    if (!grads[0].defined()) return {{}, {}, {}, {}, {}, {}};
    const auto bank = ctx->saved_data["bank"].toTensor();
    const auto overwritten = ctx->saved_data["overwritten"].toTensor();
    const int64_t allowed = overwritten.numel() > 0 ? 1 : 0;
    MMKD_CHECK(bank._version() - ctx->saved_data["bank_version"].toInt() <= allowed,
               "CRD row scores: the memory bank changed between forward and backward beyond the "
               "momentum update of the batch's own entries; call backward before the next "
               "forward of the same CRD loss");
    const auto candidates = ctx->saved_data["candidates"].toTensor();
    const auto rows = ctx->saved_data["rows"].toTensor();
    const auto kept = ctx->saved_data["kept"].toTensor().contiguous();
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const auto scores = ctx->get_saved_variables()[0];
    // d exp(x/T)/dx = exp(x/T)/T
    const auto coeff = (grads[0] * scores / temperature).contiguous();

    const auto l = layout_of(bank, candidates, rows);
    std::vector<int64_t> slot(static_cast<size_t>(bank.size(0)), -1);
    const auto* ow = overwritten.data_ptr<int64_t>();
    for (int64_t u = 0; u < overwritten.numel(); ++u) slot[static_cast<size_t>(ow[u])] = u;
    auto grad = torch::zeros({candidates.size(0), l.num_rows, l.embed}, scores.options());
    auto* kernel = &grad_generic;
#ifdef MMKD_X86_CLONES
    if (cpu_has_avx2_fma()) kernel = &grad_avx2;
#endif
    const float* kept_ptr = kept.numel() > 0 ? kept.data_ptr<float>() : nullptr;
    at::parallel_for(0, candidates.size(0), 1, [&](int64_t b0, int64_t b1) {
      kernel(l, coeff.data_ptr<float>(), slot, kept_ptr, grad.data_ptr<float>(), b0, b1);
    });
    return {grad, {}, {}, {}, {}, {}};
  }
};

void check_inputs(const torch::Tensor& bank, const torch::Tensor& candidates,
                  const torch::Tensor& rows, const torch::Tensor& v,
                  const torch::Tensor& overwritten) {
  MMKD_CHECK(crd_row_scores_supported(bank, v) && bank.dim() == 3 && bank.is_contiguous(),
             "CRD row scores: bank must be a contiguous float32 CPU tensor [N,T,E] and v float32 "
             "on the CPU; got bank ",
             bank.sizes(), " ", bank.scalar_type(), " on ", bank.device(), ", v ", v.sizes(), " ",
             v.scalar_type(), " on ", v.device());
  const int64_t n = bank.size(0), t = bank.size(1), e = bank.size(2);
  MMKD_CHECK(candidates.dim() == 2 && candidates.scalar_type() == torch::kLong &&
                 candidates.is_contiguous() && rows.dim() == 1 &&
                 rows.scalar_type() == torch::kLong && rows.is_contiguous(),
             "CRD row scores: candidates must be contiguous int64 [B,K+1] and rows int64 [R], got ",
             candidates.sizes(), " and ", rows.sizes());
  MMKD_CHECK(v.dim() == 3 && v.size(0) == candidates.size(0) && v.size(1) == rows.size(0) &&
                 v.size(2) == e,
             "CRD row scores: v must be [B=", candidates.size(0), ",R=", rows.size(0), ",E=", e,
             "], got ", v.sizes());
  // Out-of-range indices would read outside the bank: checked, not trusted.
  MMKD_CHECK(candidates.numel() == 0 ||
                 (candidates.min().item<int64_t>() >= 0 && candidates.max().item<int64_t>() < n),
             "CRD row scores: candidate samples must be in 0..", n - 1);
  MMKD_CHECK(
      rows.numel() == 0 || (rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < t),
      "CRD row scores: rows must be in 0..", t - 1);
  MMKD_CHECK(overwritten.dim() == 1 && overwritten.scalar_type() == torch::kLong &&
                 (overwritten.numel() == 0 || (overwritten.min().item<int64_t>() >= 0 &&
                                               overwritten.max().item<int64_t>() < n)),
             "CRD row scores: overwritten must be int64 [U] with samples in 0..", n - 1);
}

}  // namespace

bool crd_row_scores_supported(const torch::Tensor& bank, const torch::Tensor& v) {
  return bank.device().is_cpu() && v.device().is_cpu() && bank.scalar_type() == torch::kFloat32 &&
         v.scalar_type() == torch::kFloat32;
}

torch::Tensor crd_row_scores(const torch::Tensor& bank, const torch::Tensor& candidates,
                             const torch::Tensor& rows, const torch::Tensor& v, double temperature,
                             const torch::Tensor& overwritten) {
  const auto ow = overwritten.defined()
                      ? overwritten.contiguous()
                      : torch::empty({0}, torch::TensorOptions().dtype(torch::kLong));
  const auto cand = candidates.contiguous();
  const auto r = rows.contiguous();
  check_inputs(bank, cand, r, v, ow);
  if (!(torch::GradMode::is_enabled() && v.requires_grad()))
    return compute_scores(bank, cand, r, v, temperature);
  return CrdRowScoresFunction::apply(v, bank, cand, r, temperature, ow);
}

}  // namespace mmkd::distill
