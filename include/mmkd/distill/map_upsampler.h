// EDAM-T↑: learned linear layers that bring a teacher attention map to the student's map shape.
#pragma once

#include <torch/torch.h>

namespace mmkd::distill {

/// The [out, in] matrix that resizes a length-`in` axis to length `out` (y = M x): the identity
/// when out == in; linear interpolation at half-pixel centres, clamped at the ends, when
/// out > in (PyTorch's interpolate(linear, align_corners=false)); area averaging (each output
/// cell the mean of the input cells it overlaps, like adaptive average pooling) when out < in.
/// Every row is a convex combination (non-negative, sums to 1). float32 on the CPU.
torch::Tensor interpolation_matrix(int64_t in, int64_t out);

/// Upsamples (or resizes) a teacher map [B, Tq_T, Tk_T] to the student's [B, Tq_S, Tk_S] with
/// `key` = Linear(Tk_T→Tk_S) on the key axis, then `query` = Linear(Tq_T→Tq_S) on the query
/// axis, then re-normalises every row into a distribution:
///   Y = W_q (P W_k^T + b_k) + b_q,  Z = max(Y, 0),  row = Z / sum(Z)
/// (a row whose positive part sums to < 1e-6 is blended toward uniform so that no row is ever
/// zero or divides by ~0; exact when the sum is >= 1e-6). Weights start at interpolation_matrix()
/// and biases at 0, so an untrained upsampler is a plain resize of the distribution (exactly
/// the identity when the shapes agree). Clamp-and-renormalise rather than a softmax: a softmax
/// of probabilities (values ~1/Tk) would flatten every row to near-uniform at initialisation.
/// Rows of the output are zero where every teacher row the fixed query interpolation mixes in
/// is a zero row (a query that saw no key: padding, causal mask), so EDAM excludes them.
///
/// The input is detached inside forward(): gradients reach only the upsampler's weights, never
/// the teacher. One upsampler per distilled layer (the caller creates them and gives their
/// parameters to the student's optimiser; they are not part of the deployed student).
///
/// Degenerate solution: trained by the EDAM loss alone the upsampler can minimise it without
/// the teacher (with -Σ u log s, u collapses onto the student's argmax; with -Σ s log u, u
/// copies the student), and the student and the upsampler then agree on any shared peaked map.
/// drift_penalty() (an L2 anchor to the interpolation initialisation) and set_trainable(false)
/// (a fixed resize) are the two guards; see docs/edam.md.
class MapUpsamplerImpl : public torch::nn::Module {
 public:
  MapUpsamplerImpl(int64_t tq_teacher, int64_t tk_teacher, int64_t tq_student, int64_t tk_student);

  /// teacher_map [B, tq_teacher, tk_teacher] → [B, tq_student, tk_student], rows sum to 1 or 0.
  torch::Tensor forward(const torch::Tensor& teacher_map);

  /// Weights back to the interpolation matrices, biases to zero.
  void reset_parameters();

  /// Sum of squared distances of the weights from their interpolation initialisation plus the
  /// squared biases (L2-SP). Add `lambda * drift_penalty()` to the loss to keep the upsampler a
  /// resize of the teacher map rather than a free map; zero at initialisation.
  torch::Tensor drift_penalty() const;

  /// Freezes (false) or unfreezes (true) the weights; frozen, the upsampler is a fixed resize.
  void set_trainable(bool trainable);

  int64_t tq_teacher, tk_teacher, tq_student, tk_student;
  torch::nn::Linear key{nullptr};    ///< Linear(tk_teacher → tk_student), the key axis
  torch::nn::Linear query{nullptr};  ///< Linear(tq_teacher → tq_student), the query axis
  torch::Tensor key_init;            ///< buffer: interpolation_matrix(tk_teacher, tk_student)
  torch::Tensor query_init;          ///< buffer: interpolation_matrix(tq_teacher, tq_student)
};
TORCH_MODULE(MapUpsampler);

}  // namespace mmkd::distill
