// Contrastive Representation Distillation (Tian et al. 2020, RepDistiller's CRDLoss) on vectors
// and, per row, on sequences (post-attention outputs, attention maps): paper §4.3, eqs. 2-9.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::distill {

/// Options of CRD on vectors (final logits, penultimate vector). Defaults are RepDistiller's.
struct CrdOptions {
  int64_t embed_dim = 128;        ///< width of the embedding space (RepDistiller feat_dim)
  int64_t num_negatives = 16384;  ///< K (nce_k); capped by the smallest negative pool, see below
  double temperature = 0.07;      ///< T (nce_t): scores are exp(<v,w>/T)
  double momentum = 0.5;          ///< bank update row = m*row + (1-m)*embedding (nce_m)
  double eps = 1e-7;              ///< eps of ContrastLoss
  bool negatives_from_other_classes = true;  ///< negatives only from samples of other classes
  /// On the CPU, score the anchors straight from the banks (crd_row_scores.h) instead of
  /// gathering every anchor's K+1 entries and multiplying: the same values up to float rounding.
  /// Other devices always gather.
  bool fused_scores = true;
};

/// Options of CRD per row. Same meaning as CrdOptions plus the memory controls; the defaults
/// fit every level of every configuration at the `small` shapes (N=2000, T<=48) in 24 GiB; see
/// docs/crd-on-sequences.md for the cost at MOSEI shapes.
struct CrdRowOptions {
  CrdOptions crd{/*embed_dim=*/32, /*num_negatives=*/64};
  /// Rows scored per batch: 0 = every row; R > 0 = R row positions drawn uniformly without
  /// replacement per batch (an unbiased estimate of the mean over rows; only those rows' bank
  /// entries are updated). Cuts the per-step memory and time, not the banks.
  int64_t rows_per_batch = 0;
  /// Batch size assumed by estimate_bytes() for the per-step working set.
  int64_t batch_size = 64;
  /// Construction fails (mmkd::Error) when estimate_bytes() exceeds this. Default 4 GiB.
  int64_t memory_budget_bytes = int64_t{4} << 30;
};

/// CRD between a student and a (frozen) teacher vector, RepDistiller's CRDLoss + ContrastMemory:
///   v = normalize(embed_student(f_s)), w = normalize(embed_teacher(f_t))          [B, E]
///   student anchor: s_k = exp(<v_b, M_t[j_k]>/T), j_0 = index_b (positive), j_1..K negatives
///   teacher anchor: t_k = exp(<w_b, M_s[j_k]>/T)
///   P = s / Z_s (and t / Z_t), Z fixed at the first training batch as mean(scores) * N
///   loss = NCE(P_s) + NCE(P_t), NCE(P) = -(sum_b log(P_b0/(P_b0 + K/N + eps))
///                                          + sum_{b,k>0} log((K/N)/(P_bk + K/N + eps))) / B
/// then (training mode only) M_s[index_b] <- normalize(m*M_s[index_b] + (1-m)*v_b), and the
/// same for M_t with w. Banks, Z and the dataset classes are buffers: save/load resumes exactly.
/// Every tensor stays on the module's device; move the module with ->to(device).
class CrdLossImpl : public torch::nn::Module {
 public:
  /// sample_classes: int64 [N], the class (0..6) of every training sample; `index` in forward
  /// refers to rows of it. Banks are initialised uniform in +-1/sqrt(embed_dim/3) with torch's
  /// default generator (torch::manual_seed fixes them).
  CrdLossImpl(int64_t student_dim, int64_t teacher_dim, torch::Tensor sample_classes,
              CrdOptions options = {});

  /// student [B,Ds], teacher [B,Dt] (detached by the caller; the teacher head still trains),
  /// index int64 [B] (dataset rows, distinct). Negatives are drawn with `generator` (must live
  /// on the module's device) or, without one, the device's default generator. Returns a scalar.
  torch::Tensor forward(const torch::Tensor& student, const torch::Tensor& teacher,
                        const torch::Tensor& index,
                        c10::optional<at::Generator> generator = c10::nullopt);
  /// The same with fixed negatives int64 [B,K'] (any K' >= 1): for tests and replay.
  torch::Tensor forward(const torch::Tensor& student, const torch::Tensor& teacher,
                        const torch::Tensor& index, const torch::Tensor& negatives);

  /// K uniform draws without replacement (RepDistiller's replace=False) per anchor among the
  /// samples of other classes than index_b's (any sample other than index_b when its class has
  /// no other-class sample, or when negatives_from_other_classes is off). int64 [B,K].
  torch::Tensor sample_negatives(const torch::Tensor& index,
                                 c10::optional<at::Generator> generator = c10::nullopt) const;

  /// K actually used: min(num_negatives, smallest negative pool over the classes present).
  int64_t num_negatives() const { return num_negatives_; }
  int64_t num_samples() const { return sample_classes_.size(0); }

  /// Bytes of the banks plus the per-step working set (gathered bank rows for both directions,
  /// kept for backward, and the sampling keys) for a batch of `batch_size`.
  static int64_t estimate_bytes(int64_t num_samples, const CrdOptions& options,
                                int64_t batch_size = 64);

  CrdOptions options;
  torch::nn::Linear embed_student{nullptr};
  torch::nn::Linear embed_teacher{nullptr};
  /// RepDistiller memory_v1: student embeddings [N,E]; the teacher anchor is scored against it.
  torch::Tensor memory_student;
  /// RepDistiller memory_v2: teacher embeddings [N,E]; the student anchor is scored against it.
  torch::Tensor memory_teacher;
  /// [2] float: Z of the student-anchor scores, Z of the teacher-anchor scores; -1 = not set yet.
  torch::Tensor z;

 private:
  torch::Tensor sample_classes_;  // buffer "sample_classes", int64 [N]
  int64_t num_negatives_ = 0;
};
TORCH_MODULE(CrdLoss);

/// CRD per row of a sequence (paper eqs. 5-9): student [B,T,Ds], teacher [B,T,Dt]; every row
/// position t of sample b is an anchor whose positive is the other network's bank entry of the
/// same sample and row, and whose K negatives are the same row of other-class samples (one
/// negative sample set per anchor sample, shared by its rows). The embed heads are shared by the
/// rows of a layer; banks [N,T,E] and Z per row ([2,T]). The loss is the mean over valid
/// (sample,row) anchors of the per-anchor NCE terms of both directions; with every row valid it
/// equals the mean over rows of T independent vector CRDs that share the heads and negatives.
class CrdRowLossImpl : public torch::nn::Module {
 public:
  /// Throws mmkd::Error when estimate_bytes() exceeds options.memory_budget_bytes.
  CrdRowLossImpl(int64_t student_dim, int64_t teacher_dim, int64_t rows,
                 torch::Tensor sample_classes, CrdRowOptions options = {});

  /// row_mask: optional bool [B,T], true = row valid. Invalid rows (padding, fully masked
  /// attention rows) are left out of the loss, of Z and of the bank update.
  torch::Tensor forward(const torch::Tensor& student, const torch::Tensor& teacher,
                        const torch::Tensor& index, const torch::Tensor& row_mask = {},
                        c10::optional<at::Generator> generator = c10::nullopt);
  /// The same with fixed negatives int64 [B,K'] and, optionally, fixed scored rows int64 [R]
  /// (undefined = the options' choice): for tests and replay.
  torch::Tensor forward_with(const torch::Tensor& student, const torch::Tensor& teacher,
                             const torch::Tensor& index, const torch::Tensor& negatives,
                             const torch::Tensor& row_mask = {}, const torch::Tensor& rows = {});

  /// As CrdLossImpl::sample_negatives.
  torch::Tensor sample_negatives(const torch::Tensor& index,
                                 c10::optional<at::Generator> generator = c10::nullopt) const;

  int64_t num_negatives() const { return num_negatives_; }
  int64_t num_rows() const { return rows_; }

  /// Banks 2*N*rows*E*4 bytes plus the per-step working set: gathered bank rows
  /// 2*B*R*(K+1)*E*4 (kept for backward), scores, and the sampling keys B*N*4. The gathered rows
  /// are the gathered path's (other devices, fused_scores off); on the CPU this is an upper bound.
  static int64_t estimate_bytes(int64_t num_samples, int64_t rows, const CrdRowOptions& options);

  CrdRowOptions options;
  torch::nn::Linear embed_student{nullptr};
  torch::nn::Linear embed_teacher{nullptr};
  torch::Tensor memory_student;  ///< [N,T,E]
  torch::Tensor memory_teacher;  ///< [N,T,E]
  torch::Tensor z;               ///< [2,T]: per row, Z of student-anchor and teacher-anchor scores

 private:
  torch::Tensor sample_classes_;
  int64_t rows_ = 0;
  int64_t num_negatives_ = 0;
};
TORCH_MODULE(CrdRowLoss);

}  // namespace mmkd::distill
