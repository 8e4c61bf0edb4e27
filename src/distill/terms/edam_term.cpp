// EDAM (paper §4.3, eqs. 10-13): cross-entropy between temperature attention maps of each
// distilled pair, every layer. S↓ when the student's proxies take the teacher's lengths, T↑
// (learned upsamplers of the teacher's maps) when they keep the video length.
#include "mmkd/distill/edam.h"
#include "mmkd/distill/event_geometry.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

class EdamTerm : public KdTerm {
 public:
  EdamTerm(const TermSpec& spec, KdTermContext& context)
      : temperature_(terms::option<double>(spec, "temperature", 1.0)),
        direction_(terms::edam_direction(spec)),
        upsample_(context.student->config().proxy_mode == models::ProxyMode::kKeep),
        pairs_(context.pairs) {
    MMKD_CHECK(temperature_ > 0, "config key '", join_key(spec.path, "temperature"),
               "': must be > 0, got ", temperature_);
    terms::check_same_layers(context, "edam");
    if (!upsample_) {
      terms::check_same_map_shapes(context, "edam");
      return;
    }
    for (size_t p = 0; p < pairs_.size(); ++p) {
      const auto s = context.student->geometry().transformer(pairs_[p].student).map_shape();
      const auto t = context.teacher->geometry().transformer(pairs_[p].teacher).map_shape();
      upsamplers_.emplace_back();
      for (int64_t l = 0; l < context.student->config().layers; ++l) {
        upsamplers_.back().push_back(context.heads->register_module(
            context.head_prefix + "up_pair" + std::to_string(p) + "_layer" + std::to_string(l),
            MapUpsampler(t[0], t[1], s[0], s[1])));
      }
    }
  }

  nn::TapRequest taps() const override { return terms::logit_taps(); }

  torch::Tensor loss(const KdTermInputs& in) override {
    return terms::pair_layer_mean(
        in, pairs_, [&](size_t p, size_t l, const nn::LayerTaps& s, const nn::LayerTaps* t) {
          const torch::Tensor student_map = temperature_map(s.logits, temperature_);
          const torch::Tensor teacher_map = temperature_map(t->logits, temperature_).detach();
          if (!upsample_) return edam_loss(student_map, teacher_map, direction_);
          return edam_upsampled_loss(student_map, teacher_map, upsamplers_[p][l], direction_);
        });
  }

  std::string name() const override { return upsample_ ? "edam-up" : "edam-down"; }

 private:
  double temperature_;
  EdamDirection direction_;
  bool upsample_;
  std::vector<models::DistillPair> pairs_;
  std::vector<std::vector<MapUpsampler>> upsamplers_;  // [pair][layer], T↑ only
};

}  // namespace

MMKD_KD_TERM(edam_term) {
  registry.add(
      {"edam",
       "cross-entropy between temperature attention maps, every layer of each pair; "
       "S↓ or T↑ follows model.proxy_mode (paper eqs. 10-13)",
       {"temperature", "direction"},
       "",
       [](const TermSpec& spec, KdTermContext& context) {
         return std::make_unique<EdamTerm>(spec, context);
       },
       {{"edam_down", {"distill.method=edam"}},
        {"edam_down_s_log_t", {"distill.method=edam", "distill.direction=student_log_teacher"}},
        {"edam_up", {"distill.method=edam", "model.proxy_mode=keep"}},
        {"edam_up_s_log_t",
         {"distill.method=edam", "model.proxy_mode=keep",
          "distill.direction=student_log_teacher"}}}});
}

}  // namespace mmkd::distill
