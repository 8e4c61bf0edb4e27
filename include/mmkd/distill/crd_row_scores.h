// CRD-per-row scores read straight from the memory banks. Gathering the K+1 bank entries of
// every anchor into a [B,R,K+1,E] copy (written, read by a batched mat-vec, kept for backward)
// was most of a CRD-on-maps train step at the medium preset (bench/NOTES.md section 15).
#pragma once

#include <torch/torch.h>

namespace mmkd::distill {

/// scores[b,i,k] = exp(<bank[candidates[b,k], rows[i]], v[b,i]> / temperature): [B,R,K+1],
/// differentiable in v (the bank is a buffer and gets no gradient).
///   bank        float [N,T,E], contiguous, CPU
///   candidates  int64 [B,K+1], sample indices (column 0 is the positive)
///   rows        int64 [R], row positions in 0..T-1
///   v           float [B,R,E]
///   overwritten int64 [U], distinct samples whose bank entries at `rows` the caller overwrites
///               in place after this call and before backward (CRD's momentum update); their
///               current values are kept for backward. Empty when nothing is overwritten.
/// Backward reads the rest of the bank again rather than keeping a copy, so the bank may change
/// between forward and backward only by that one update; another in-place change is detected
/// (version counter) and is an error, not a silently wrong gradient.
torch::Tensor crd_row_scores(const torch::Tensor& bank, const torch::Tensor& candidates,
                             const torch::Tensor& rows, const torch::Tensor& v, double temperature,
                             const torch::Tensor& overwritten);

/// Whether crd_row_scores takes these tensors (float32 CPU bank and embeddings); other devices
/// and types gather and mat-vec as before.
bool crd_row_scores_supported(const torch::Tensor& bank, const torch::Tensor& v);

}  // namespace mmkd::distill
