// Attention-distribution transfer as MiniLM (Wang et al. 2020) does it: per head, the KL
// divergence from the teacher's attention distribution to the student's, on the last layer (or
// every layer). EDAM instead compares head-averaged maps by cross-entropy (docs/distillation.md).
#include "mmkd/dist/batch_share.h"
#include "mmkd/nn/multihead_attention.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

/// Mean over valid (sample, head, query) rows of KL(t || s) for per-head maps [B,H,Tq,Tk]. A row
/// is valid when both maps' rows carry attention; eps keeps log s finite where only the teacher
/// attends. With no valid row: 0, still connected to the student.
torch::Tensor headwise_kl(const torch::Tensor& s, const torch::Tensor& t, double eps = 1e-8) {
  const auto valid = s.sum(-1).gt(0) & t.sum(-1).gt(0);
  const auto t_log_t = torch::where(t > 0, t * torch::log(t.clamp_min(eps)), torch::zeros_like(t));
  const auto rows = (t_log_t - t * torch::log(s + eps)).sum(-1);
  return dist::batch_mean((rows * valid.to(rows.dtype())).sum(), valid.sum());
}

class MinilmTerm : public KdTerm {
 public:
  MinilmTerm(const TermSpec& spec, KdTermContext& context)
      : pairs_(context.pairs), last_only_(terms::last_layer_only(spec, "last")) {
    terms::check_headwise(context, "minilm");
  }

  nn::TapRequest taps() const override { return terms::logit_taps(); }

  torch::Tensor loss(const KdTermInputs& in) override {
    return terms::headwise_layer_mean(
        in, pairs_, last_only_, [](const torch::Tensor& s, const torch::Tensor& t) {
          return headwise_kl(nn::masked_softmax(s), nn::masked_softmax(t));
        });
  }

  std::string name() const override { return last_only_ ? "minilm" : "minilm-all"; }

 private:
  std::vector<models::DistillPair> pairs_;
  bool last_only_;
};

}  // namespace

MMKD_KD_TERM(minilm_term) {
  registry.add({"minilm",
                "MiniLM's attention transfer: per-head KL(teacher || student) of the attention "
                "distributions, last layer (layers: last) or every layer (layers: all)",
                {"layers"},
                "",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<MinilmTerm>(spec, context);
                }});
}

}  // namespace mmkd::distill
