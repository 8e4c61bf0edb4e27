// Attention transfer as TinyBERT (Jiao et al. 2020) does it: the mean squared error between the
// student's and the teacher's scaled attention logits, per head, every layer, entries masked in
// either network excluded. EDAM compares softmax maps instead (docs/distillation.md).

#include "mmkd/dist/batch_share.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

/// Mean over entries finite in both [B,H,Tq,Tk] logits of (s - t)²; 0 when none is.
torch::Tensor masked_logit_mse(const torch::Tensor& s, const torch::Tensor& t) {
  const auto valid = torch::isfinite(s) & torch::isfinite(t);
  const auto diff = torch::where(valid, s - t, torch::zeros_like(s));
  return dist::batch_mean(diff.pow(2).sum(), valid.sum());
}

class TinybertTerm : public KdTerm {
 public:
  TinybertTerm(const TermSpec& spec, KdTermContext& context)
      : pairs_(context.pairs), last_only_(terms::last_layer_only(spec, "all")) {
    terms::check_headwise(context, "tinybert");
  }

  nn::TapRequest taps() const override { return terms::logit_taps(); }

  torch::Tensor loss(const KdTermInputs& in) override {
    return terms::headwise_layer_mean(
        in, pairs_, last_only_,
        [](const torch::Tensor& s, const torch::Tensor& t) { return masked_logit_mse(s, t); });
  }

  std::string name() const override { return last_only_ ? "tinybert-last" : "tinybert"; }

 private:
  std::vector<models::DistillPair> pairs_;
  bool last_only_;
};

}  // namespace

MMKD_KD_TERM(tinybert_term) {
  registry.add({"tinybert",
                "TinyBERT's attention transfer: MSE between scaled attention logits per head, "
                "masked entries excluded, every layer (layers: all) or the last",
                {"layers"},
                "",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<TinybertTerm>(spec, context);
                }});
}

}  // namespace mmkd::distill
