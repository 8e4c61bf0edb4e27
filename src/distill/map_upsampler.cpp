// EDAM-T↑ map upsampler: interpolation-initialised linear layers on the key and query axes.
#include "mmkd/distill/map_upsampler.h"

#include <algorithm>
#include <cmath>

#include "mmkd/core/error.h"

namespace mmkd::distill {

namespace {
// Below this positive row mass a row is blended toward uniform, so the renormalisation never
// divides by ~0 (its gradient stays below 1/kMinRowSum).
constexpr double kMinRowSum = 1e-6;
}  // namespace

torch::Tensor interpolation_matrix(int64_t in, int64_t out) {
  MMKD_CHECK(in > 0 && out > 0, "interpolation_matrix: lengths must be positive, got in=", in,
             " out=", out);
  auto m = torch::zeros({out, in}, torch::kFloat);
  auto a = m.accessor<float, 2>();
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  if (out == in) {
    for (int64_t i = 0; i < out; ++i) a[i][i] = 1.0f;
  } else if (out > in) {
    for (int64_t i = 0; i < out; ++i) {
      const double src = std::clamp((i + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
      const auto lo = static_cast<int64_t>(std::floor(src));
      const int64_t hi = std::min(lo + 1, in - 1);
      const double w = src - static_cast<double>(lo);
      a[i][lo] += static_cast<float>(1.0 - w);
      a[i][hi] += static_cast<float>(w);
    }
  } else {
    for (int64_t i = 0; i < out; ++i) {
      const double begin = i * scale, end = (i + 1) * scale;
      for (auto j = static_cast<int64_t>(std::floor(begin)); j < in && j < end; ++j) {
        const double overlap =
            std::min(end, static_cast<double>(j + 1)) - std::max(begin, static_cast<double>(j));
        if (overlap > 0) a[i][j] += static_cast<float>(overlap / scale);
      }
    }
  }
  return m;
}

MapUpsamplerImpl::MapUpsamplerImpl(int64_t tq_teacher_, int64_t tk_teacher_, int64_t tq_student_,
                                   int64_t tk_student_)
    : tq_teacher(tq_teacher_),
      tk_teacher(tk_teacher_),
      tq_student(tq_student_),
      tk_student(tk_student_) {
  MMKD_CHECK(tq_teacher > 0 && tk_teacher > 0 && tq_student > 0 && tk_student > 0,
             "map upsampler: lengths must be positive, got teacher ", tq_teacher, "x", tk_teacher,
             ", student ", tq_student, "x", tk_student);
  key = register_module("key", torch::nn::Linear(tk_teacher, tk_student));
  query = register_module("query", torch::nn::Linear(tq_teacher, tq_student));
  key_init = register_buffer("key_init", interpolation_matrix(tk_teacher, tk_student));
  query_init = register_buffer("query_init", interpolation_matrix(tq_teacher, tq_student));
  reset_parameters();
}

void MapUpsamplerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  key->weight.copy_(key_init);
  key->bias.zero_();
  query->weight.copy_(query_init);
  query->bias.zero_();
}

torch::Tensor MapUpsamplerImpl::forward(const torch::Tensor& teacher_map) {
  MMKD_CHECK(teacher_map.defined() && teacher_map.dim() == 3 && teacher_map.size(1) == tq_teacher &&
                 teacher_map.size(2) == tk_teacher,
             "map upsampler: expected a teacher map [B,", tq_teacher, ",", tk_teacher, "], got ",
             teacher_map.defined() ? teacher_map.sizes() : torch::IntArrayRef{});
  const auto p = teacher_map.detach().to(key->weight.dtype());
  const auto keyed = key->forward(p);                                    // [B,TqT,TkS]
  const auto y = query->forward(keyed.transpose(1, 2)).transpose(1, 2);  // [B,TqS,TkS]
  const auto z = y.clamp_min(0.0);
  const auto sum = z.sum(-1, /*keepdim=*/true);
  const auto safe = sum.clamp_min(kMinRowSum);
  // Exactly z / sum when sum >= kMinRowSum; otherwise the missing mass is spread uniformly.
  const auto rows = z / safe + (1.0 - sum / safe) / static_cast<double>(tk_student);
  // A student row is zero when every teacher row the fixed query interpolation mixes in is.
  const auto teacher_valid = (p.sum(-1) > 0).to(p.dtype());             // [B,TqT]
  const auto valid = torch::matmul(teacher_valid, query_init.t()) > 0;  // [B,TqS]
  return rows * valid.unsqueeze(-1).to(rows.dtype());
}

torch::Tensor MapUpsamplerImpl::drift_penalty() const {
  return (key->weight - key_init).pow(2).sum() + (query->weight - query_init).pow(2).sum() +
         key->bias.pow(2).sum() + query->bias.pow(2).sum();
}

void MapUpsamplerImpl::set_trainable(bool trainable) {
  for (auto& parameter : parameters()) parameter.set_requires_grad(trainable);
}

}  // namespace mmkd::distill
