#include "mmkd/distill/crd.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "mmkd/core/error.h"
#include "mmkd/dist/batch_share.h"
#include "mmkd/distill/crd_row_scores.h"

namespace mmkd::distill {
namespace {

namespace F = torch::nn::functional;

void check_options(const CrdOptions& o, const char* who) {
  MMKD_CHECK(o.embed_dim > 0, who, ": embed_dim must be > 0, got ", o.embed_dim);
  MMKD_CHECK(o.num_negatives > 0, who, ": num_negatives must be > 0, got ", o.num_negatives);
  MMKD_CHECK(o.temperature > 0, who, ": temperature must be > 0, got ", o.temperature);
  MMKD_CHECK(o.momentum >= 0 && o.momentum < 1, who, ": momentum must be in [0,1), got ",
             o.momentum);
  MMKD_CHECK(o.eps >= 0, who, ": eps must be >= 0, got ", o.eps);
}

void check_classes(const torch::Tensor& classes, const char* who) {
  MMKD_CHECK(classes.defined() && classes.dim() == 1 && classes.scalar_type() == torch::kLong, who,
             ": sample_classes must be an int64 tensor [N] (class of every training sample)");
  MMKD_CHECK(classes.size(0) >= 2, who, ": need at least 2 training samples, got ",
             classes.size(0));
  MMKD_CHECK(classes.min().item<int64_t>() >= 0, who, ": sample_classes must be >= 0");
}

// K actually used: the requested K capped by the smallest negative pool of any class present,
// so that every anchor can draw K distinct negatives (RepDistiller samples without replacement).
int64_t effective_negatives(const torch::Tensor& classes, const CrdOptions& o) {
  const int64_t n = classes.size(0);
  int64_t pool = n - 1;
  if (o.negatives_from_other_classes) {
    const auto counts = torch::bincount(classes.to(torch::kCPU));
    const auto* c = counts.data_ptr<int64_t>();
    for (int64_t k = 0; k < counts.size(0); ++k) {
      if (c[k] == 0) continue;
      const int64_t others = n - c[k];
      pool = std::min(pool, others > 0 ? others : n - 1);  // no other class: any other sample
    }
  }
  return std::min(o.num_negatives, pool);
}

// RepDistiller's ContrastMemory init: torch.rand(...).mul_(2*stdv).add_(-stdv).
torch::Tensor init_bank(torch::IntArrayRef shape, int64_t embed_dim) {
  const double stdv = 1.0 / std::sqrt(static_cast<double>(embed_dim) / 3.0);
  return torch::rand(shape).mul_(2 * stdv).add_(-stdv);
}

// RepDistiller's Embed: linear then L2 normalisation over the last axis (normalize's 1e-12 floor
// only differs from RepDistiller's x/||x|| when ||x|| < 1e-12, where theirs is NaN).
torch::Tensor embed(torch::nn::Linear& head, const torch::Tensor& x) {
  return F::normalize(head(x), F::NormalizeFuncOptions().p(2).dim(-1));
}

// Uniform draws without replacement: random keys, ineligible samples pushed to -1, top K.
torch::Tensor draw_negatives(const torch::Tensor& classes, const torch::Tensor& index, int64_t k,
                             bool other_classes, c10::optional<at::Generator> generator) {
  MMKD_CHECK(index.dim() == 1 && index.scalar_type() == torch::kLong,
             "CRD: index must be an int64 tensor [B], got ", index.sizes(), " ",
             index.scalar_type());
  const auto device = classes.device();
  const int64_t n = classes.size(0);
  const int64_t batch = index.size(0);
  const auto key_device = generator.has_value() ? generator->device() : device;
  auto keys =
      torch::rand({batch, n}, generator, torch::TensorOptions().device(key_device)).to(device);
  const auto ids = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto invalid = ids.unsqueeze(0) == index.unsqueeze(1);
  if (other_classes) {
    const auto same = classes.unsqueeze(0) == classes.index_select(0, index).unsqueeze(1);
    const auto lone_class = same.all(1, /*keepdim=*/true);  // no other-class sample exists
    invalid = torch::where(lone_class, invalid, same);
  }
  keys.masked_fill_(invalid, -1.0);
  return std::get<1>(keys.topk(k, /*dim=*/1));
}

// Per-anchor NCE terms of RepDistiller's ContrastLoss for normalised scores p [..., K+1]
// (column 0 = positive): -(log(p0/(p0+K/N+eps)) + sum_k log((K/N)/(pk+K/N+eps))).
torch::Tensor nce_per_anchor(const torch::Tensor& p, int64_t num_samples, double eps) {
  const int64_t k = p.size(-1) - 1;
  const double noise = static_cast<double>(k) / static_cast<double>(num_samples);
  const auto pos = p.select(-1, 0);
  const auto neg = p.narrow(-1, 1, k);
  const auto log_d1 = torch::log(pos / (pos + (noise + eps)));
  const auto log_d0 = torch::log(noise / (neg + (noise + eps)));
  return -(log_d1 + log_d0.sum(-1));
}

void check_negatives(const torch::Tensor& negatives, int64_t batch) {
  MMKD_CHECK(negatives.dim() == 2 && negatives.scalar_type() == torch::kLong &&
                 negatives.size(0) == batch && negatives.size(1) >= 1,
             "CRD: negatives must be an int64 tensor [B=", batch, ", K>=1], got ",
             negatives.sizes(), " ", negatives.scalar_type());
}

/// Negatives of the anchors in `index` (this rank's share of a batch split over ranks, or the
/// whole batch): drawn for the whole global batch from the stream every rank holds, so that
/// every rank consumes it alike and each anchor gets the negatives one process would draw.
template <typename Loss>
torch::Tensor share_negatives(const Loss& loss, const torch::Tensor& index,
                              c10::optional<at::Generator> generator) {
  const auto share = dist::split_share();
  if (!share) return loss.sample_negatives(index, generator);
  return loss.sample_negatives(dist::gather_rows(index), generator)
      .slice(0, share->begin, share->end);
}

double gib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(1 << 30); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// CRD on vectors

CrdLossImpl::CrdLossImpl(int64_t student_dim, int64_t teacher_dim, torch::Tensor sample_classes,
                         CrdOptions options_)
    : options(options_) {
  check_options(options, "CrdLoss");
  check_classes(sample_classes, "CrdLoss");
  MMKD_CHECK(student_dim > 0 && teacher_dim > 0, "CrdLoss: student_dim (", student_dim,
             ") and teacher_dim (", teacher_dim, ") must be positive");
  const int64_t n = sample_classes.size(0);
  const int64_t e = options.embed_dim;
  num_negatives_ = effective_negatives(sample_classes, options);
  embed_student = register_module("embed_student", torch::nn::Linear(student_dim, e));
  embed_teacher = register_module("embed_teacher", torch::nn::Linear(teacher_dim, e));
  memory_student = register_buffer("memory_student", init_bank({n, e}, e));
  memory_teacher = register_buffer("memory_teacher", init_bank({n, e}, e));
  z = register_buffer("z", torch::full({2}, -1.0));
  sample_classes_ = register_buffer("sample_classes", sample_classes.clone());
}

torch::Tensor CrdLossImpl::sample_negatives(const torch::Tensor& index,
                                            c10::optional<at::Generator> generator) const {
  return draw_negatives(sample_classes_, index, num_negatives_,
                        options.negatives_from_other_classes, generator);
}

torch::Tensor CrdLossImpl::forward(const torch::Tensor& student, const torch::Tensor& teacher,
                                   const torch::Tensor& index,
                                   c10::optional<at::Generator> generator) {
  return forward(student, teacher, index, share_negatives(*this, index, generator));
}

torch::Tensor CrdLossImpl::forward(const torch::Tensor& student, const torch::Tensor& teacher,
                                   const torch::Tensor& index, const torch::Tensor& negatives) {
  MMKD_CHECK(student.dim() == 2 && teacher.dim() == 2 &&
                 student.size(1) == embed_student->options.in_features() &&
                 teacher.size(1) == embed_teacher->options.in_features(),
             "CrdLoss: expected student [B,", embed_student->options.in_features(),
             "] and teacher [B,", embed_teacher->options.in_features(), "], got ", student.sizes(),
             " and ", teacher.sizes());
  const int64_t batch = student.size(0);
  MMKD_CHECK(teacher.size(0) == batch && index.dim() == 1 && index.size(0) == batch &&
                 index.scalar_type() == torch::kLong,
             "CrdLoss: batch sizes differ or index is not int64 [B]: student ", student.sizes(),
             ", teacher ", teacher.sizes(), ", index ", index.sizes());
  check_negatives(negatives, batch);
  const int64_t n = memory_student.size(0);
  const int64_t e = options.embed_dim;
  const int64_t k = negatives.size(1);

  const auto v = embed(embed_student, student);                            // [B,E]
  const auto w = embed(embed_teacher, teacher);                            // [B,E]
  const auto candidates = torch::cat({index.unsqueeze(1), negatives}, 1);  // [B,K+1]
  // The whole global batch's entries get the momentum update below (every rank applies it).
  const auto all_index = is_training() ? dist::gather_rows(index) : torch::Tensor();
  torch::Tensor scores_s, scores_t;  // [B,K+1]
  if (options.fused_scores && crd_row_scores_supported(memory_student, v)) {
    // A vector bank is a row bank with one row.
    const auto one_row = torch::zeros({1}, torch::kLong);
    const auto score = [&](const torch::Tensor& bank, const torch::Tensor& anchor) {
      return crd_row_scores(bank.view({n, 1, e}), candidates, one_row, anchor.unsqueeze(1),
                            options.temperature, all_index)
          .squeeze(1);
    };
    scores_s = score(memory_teacher, v);
    scores_t = score(memory_student, w);
  } else {
    // Gathered bank rows are new tensors: the in-place bank update below leaves them intact.
    const auto flat = candidates.reshape({-1});
    const auto bank_t = memory_teacher.index_select(0, flat).view({batch, k + 1, e});
    const auto bank_s = memory_student.index_select(0, flat).view({batch, k + 1, e});
    scores_s = torch::exp(torch::bmm(bank_t, v.unsqueeze(2)).squeeze(2) / options.temperature);
    scores_t = torch::exp(torch::bmm(bank_s, w.unsqueeze(2)).squeeze(2) / options.temperature);
  }

  torch::Tensor z_now;
  {
    // Z = mean(scores) * N at the first training batch, then fixed (no host sync needed; across
    // ranks, the mean of the global batch's scores, while any Z is unset).
    torch::NoGradGuard no_grad;
    torch::Tensor batch_z;
    if (dist::split_share() && is_training() && z.lt(0).any().item<bool>()) {
      const auto sums =
          dist::sum_over_shares(torch::stack({scores_s.sum(), scores_t.sum()}).to(torch::kFloat64));
      const double count = static_cast<double>(dist::split_share()->rows * (k + 1));
      batch_z = sums.mul(static_cast<double>(n) / count).to(z.dtype());
    } else {
      batch_z = torch::stack({scores_s.mean(), scores_t.mean()})
                    .mul(static_cast<double>(n))
                    .to(z.dtype());
    }
    z_now = torch::where(z < 0, batch_z, z);
    if (is_training()) z.copy_(z_now);
  }
  const auto loss = nce_per_anchor(scores_s / z_now[0], n, options.eps).sum() / batch +
                    nce_per_anchor(scores_t / z_now[1], n, options.eps).sum() / batch;

  if (is_training()) {
    // Every rank applies the whole global batch's update, so that the banks stay identical.
    torch::NoGradGuard no_grad;
    const double m = options.momentum;
    const auto& rows = all_index;
    auto update = [&](torch::Tensor& bank, const torch::Tensor& emb) {
      const auto all = dist::gather_rows(emb.detach());
      auto row = bank.index_select(0, rows).mul_(m).add_(all.to(bank.dtype()), 1 - m);
      row.div_(row.pow(2).sum(1, /*keepdim=*/true).pow(0.5));
      bank.index_copy_(0, rows, row);
    };
    update(memory_student, v);
    update(memory_teacher, w);
  }
  return loss;
}

int64_t CrdLossImpl::estimate_bytes(int64_t num_samples, const CrdOptions& options,
                                    int64_t batch_size) {
  const int64_t k = std::min(options.num_negatives, std::max<int64_t>(num_samples - 1, 1));
  const int64_t banks = 2 * num_samples * options.embed_dim * 4;
  const int64_t gathered = 2 * batch_size * (k + 1) * options.embed_dim * 4;
  const int64_t scores = 2 * batch_size * (k + 1) * 4 * 4;          // exp, /Z, NCE terms, grads
  const int64_t sampling = batch_size * num_samples * (4 + 8 + 2);  // keys, ids cmp, masks
  return banks + gathered + scores + sampling;
}

// ---------------------------------------------------------------------------------------------
// CRD per row

CrdRowLossImpl::CrdRowLossImpl(int64_t student_dim, int64_t teacher_dim, int64_t rows,
                               torch::Tensor sample_classes, CrdRowOptions options_)
    : options(options_), rows_(rows) {
  check_options(options.crd, "CrdRowLoss");
  check_classes(sample_classes, "CrdRowLoss");
  MMKD_CHECK(student_dim > 0 && teacher_dim > 0 && rows > 0, "CrdRowLoss: student_dim (",
             student_dim, "), teacher_dim (", teacher_dim, ") and rows (", rows,
             ") must be positive");
  MMKD_CHECK(options.rows_per_batch >= 0, "CrdRowLoss: rows_per_batch must be >= 0 (0 = all), got ",
             options.rows_per_batch);
  MMKD_CHECK(options.batch_size > 0, "CrdRowLoss: batch_size must be > 0, got ",
             options.batch_size);
  const int64_t n = sample_classes.size(0);
  const int64_t e = options.crd.embed_dim;
  const int64_t need = estimate_bytes(n, rows, options);
  const int64_t banks = 2 * n * rows * e * 4;
  MMKD_CHECK(need <= options.memory_budget_bytes, "CrdRowLoss: estimated memory ", gib(need),
             " GiB (banks 2*N*rows*embed_dim*4 = 2*", n, "*", rows, "*", e, "*4 = ", gib(banks),
             " GiB, plus the per-step working set at batch_size ", options.batch_size,
             " with num_negatives ", options.crd.num_negatives,
             ") exceeds memory_budget_bytes = ", gib(options.memory_budget_bytes),
             " GiB; lower embed_dim (banks) or num_negatives / set rows_per_batch (working set), "
             "or raise memory_budget_bytes");
  num_negatives_ = effective_negatives(sample_classes, options.crd);
  embed_student = register_module("embed_student", torch::nn::Linear(student_dim, e));
  embed_teacher = register_module("embed_teacher", torch::nn::Linear(teacher_dim, e));
  memory_student = register_buffer("memory_student", init_bank({n, rows, e}, e));
  memory_teacher = register_buffer("memory_teacher", init_bank({n, rows, e}, e));
  z = register_buffer("z", torch::full({2, rows}, -1.0));
  sample_classes_ = register_buffer("sample_classes", sample_classes.clone());
}

torch::Tensor CrdRowLossImpl::sample_negatives(const torch::Tensor& index,
                                               c10::optional<at::Generator> generator) const {
  return draw_negatives(sample_classes_, index, num_negatives_,
                        options.crd.negatives_from_other_classes, generator);
}

torch::Tensor CrdRowLossImpl::forward(const torch::Tensor& student, const torch::Tensor& teacher,
                                      const torch::Tensor& index, const torch::Tensor& row_mask,
                                      c10::optional<at::Generator> generator) {
  torch::Tensor rows;
  const int64_t r = options.rows_per_batch;
  if (r > 0 && r < rows_) {
    const auto device = generator.has_value() ? generator->device() : memory_student.device();
    rows = std::get<0>(
        torch::randperm(rows_, generator, torch::TensorOptions().dtype(torch::kLong).device(device))
            .slice(0, 0, r)
            .sort());
    rows = rows.to(memory_student.device());
  }
  const auto negatives = share_negatives(*this, index, generator);
  return forward_with(student, teacher, index, negatives, row_mask, rows);
}

torch::Tensor CrdRowLossImpl::forward_with(const torch::Tensor& student,
                                           const torch::Tensor& teacher, const torch::Tensor& index,
                                           const torch::Tensor& negatives,
                                           const torch::Tensor& row_mask,
                                           const torch::Tensor& rows) {
  const int64_t ds = embed_student->options.in_features();
  const int64_t dt = embed_teacher->options.in_features();
  MMKD_CHECK(student.dim() == 3 && teacher.dim() == 3 && student.size(1) == rows_ &&
                 teacher.size(1) == rows_ && student.size(2) == ds && teacher.size(2) == dt &&
                 student.size(0) == teacher.size(0),
             "CrdRowLoss: expected student [B,", rows_, ",", ds, "] and teacher [B,", rows_, ",",
             dt, "], got ", student.sizes(), " and ", teacher.sizes());
  const int64_t batch = student.size(0);
  MMKD_CHECK(index.dim() == 1 && index.size(0) == batch && index.scalar_type() == torch::kLong,
             "CrdRowLoss: index must be int64 [B=", batch, "], got ", index.sizes());
  check_negatives(negatives, batch);
  const auto device = memory_student.device();
  torch::Tensor mask =
      row_mask.defined()
          ? row_mask
          : torch::ones({batch, rows_}, torch::TensorOptions().dtype(torch::kBool).device(device));
  MMKD_CHECK(mask.scalar_type() == torch::kBool && mask.dim() == 2 && mask.size(0) == batch &&
                 mask.size(1) == rows_,
             "CrdRowLoss: row_mask must be bool [B=", batch, ",T=", rows_, "], got ", mask.sizes(),
             " ", mask.scalar_type());
  torch::Tensor xs = student, xt = teacher, r = rows;
  if (r.defined()) {
    MMKD_CHECK(r.dim() == 1 && r.scalar_type() == torch::kLong && r.size(0) >= 1,
               "CrdRowLoss: rows must be int64 [R>=1], got ", r.sizes());
    xs = student.index_select(1, r);
    xt = teacher.index_select(1, r);
    mask = mask.index_select(1, r);
  } else {
    r = torch::arange(rows_, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
  const int64_t nr = r.size(0);
  const int64_t n = memory_student.size(0);
  const int64_t e = options.crd.embed_dim;
  const int64_t k = negatives.size(1);
  const double temperature = options.crd.temperature;

  const auto v = embed(embed_student, xs);  // [B,R,E]
  const auto w = embed(embed_teacher, xt);  // [B,R,E]
  // Entry (sample j, row t) of a bank [N,T,E] is row j*T + t of its [N*T,E] view.
  const auto candidates = torch::cat({index.unsqueeze(1), negatives}, 1);  // [B,K+1]
  const auto bank_s_flat = memory_student.view({n * rows_, e});
  const auto bank_t_flat = memory_teacher.view({n * rows_, e});
  // The whole global batch's entries get the momentum update below (every rank applies it).
  const auto all_index = is_training() ? dist::gather_rows(index) : torch::Tensor();
  torch::Tensor scores_s, scores_t;  // [B,R,K+1]
  if (options.crd.fused_scores && crd_row_scores_supported(memory_student, v)) {
    scores_s = crd_row_scores(memory_teacher, candidates, r, v, temperature, all_index);
    scores_t = crd_row_scores(memory_student, candidates, r, w, temperature, all_index);
  } else {
    // Gathered bank rows are new tensors: the in-place bank update below leaves them intact.
    const auto flat = (candidates.unsqueeze(1) * rows_ + r.view({1, nr, 1})).reshape({-1});
    const auto bank_t = bank_t_flat.index_select(0, flat).view({batch, nr, k + 1, e});
    const auto bank_s = bank_s_flat.index_select(0, flat).view({batch, nr, k + 1, e});
    scores_s = torch::exp(torch::matmul(bank_t, v.unsqueeze(-1)).squeeze(-1) / temperature);
    scores_t = torch::exp(torch::matmul(bank_s, w.unsqueeze(-1)).squeeze(-1) / temperature);
  }

  const auto valid = mask.to(scores_s.dtype());  // [B,R]
  const auto count_per_row = valid.sum(0);       // [R]
  torch::Tensor z_use;
  {
    // Per row: Z = mean over its valid anchors and K+1 scores * N, fixed at its first batch.
    torch::NoGradGuard no_grad;
    // Across ranks: the global batch's sums and counts (every rank takes part while a Z is unset).
    const auto z_rows = z.index_select(1, r);  // [2,R]
    const bool across = dist::split_share() && is_training() && z_rows.lt(0).any().item<bool>();
    auto count = count_per_row;
    auto sum_s = (scores_s * valid.unsqueeze(-1)).sum(torch::IntArrayRef{0, 2});
    auto sum_t = (scores_t * valid.unsqueeze(-1)).sum(torch::IntArrayRef{0, 2});
    if (across) {
      const auto sums = dist::sum_over_shares(torch::stack({count, sum_s, sum_t}));
      count = sums[0];
      sum_s = sums[1];
      sum_t = sums[2];
    }
    const auto denom = (count * static_cast<double>(k + 1)).clamp_min(1.0);
    const auto batch_z =
        torch::stack({sum_s / denom, sum_t / denom}).mul(static_cast<double>(n)).to(z.dtype());
    const auto z_now =
        torch::where(z_rows.lt(0).logical_and(count.gt(0).unsqueeze(0)), batch_z, z_rows);
    if (is_training()) z.index_copy_(1, r, z_now);
    // Rows without a Z yet have no valid anchor here; 1 keeps their (discarded) terms finite.
    z_use = torch::where(z_now > 0, z_now, torch::ones_like(z_now));
  }
  const auto per_anchor =
      nce_per_anchor(scores_s / z_use[0].view({1, nr, 1}), n, options.crd.eps) +
      nce_per_anchor(scores_t / z_use[1].view({1, nr, 1}), n, options.crd.eps);  // [B,R]
  // The mean over the valid anchors of the whole global batch (across ranks too).
  const auto loss = dist::batch_mean(
      torch::where(mask, per_anchor, torch::zeros_like(per_anchor)).sum(), valid.sum());

  if (is_training()) {
    torch::NoGradGuard no_grad;
    const double m = options.crd.momentum;
    // Every rank applies the whole global batch's update, so that the banks stay identical.
    const auto own = (all_index.unsqueeze(1) * rows_ + r.unsqueeze(0)).reshape({-1});  // [B*R]
    const auto keep = dist::gather_rows(mask.to(torch::kFloat)).gt(0.5).reshape({-1, 1});
    auto update = [&](const torch::Tensor& bank_flat, const torch::Tensor& emb) {
      const auto old = bank_flat.index_select(0, own);
      const auto all = dist::gather_rows(emb.detach());
      auto row = old.mul(m).add_(all.reshape({-1, e}).to(old.dtype()), 1 - m);
      row.div_(row.pow(2).sum(1, /*keepdim=*/true).pow(0.5));
      bank_flat.index_copy_(0, own, torch::where(keep, row, old));
    };
    update(bank_s_flat, v);
    update(bank_t_flat, w);
  }
  return loss;
}

int64_t CrdRowLossImpl::estimate_bytes(int64_t num_samples, int64_t rows,
                                       const CrdRowOptions& options) {
  const auto& o = options.crd;
  const int64_t k = std::min(o.num_negatives, std::max<int64_t>(num_samples - 1, 1));
  const int64_t r = options.rows_per_batch > 0 ? std::min(options.rows_per_batch, rows) : rows;
  const int64_t b = options.batch_size;
  const int64_t banks = 2 * num_samples * rows * o.embed_dim * 4;
  const int64_t gathered = 2 * b * r * (k + 1) * o.embed_dim * 4;
  const int64_t scores = 2 * b * r * (k + 1) * 4 * 4;
  const int64_t sampling = b * num_samples * (4 + 8 + 2);
  return banks + gathered + scores + sampling;
}

}  // namespace mmkd::distill
