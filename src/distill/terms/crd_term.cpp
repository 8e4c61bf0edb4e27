// CRD (Tian et al. 2020) at the paper's four levels: on the logits or the penultimate vector
// (one memory bank), or per row of every layer on post-attention outputs or attention maps.
#include "mmkd/distill/crd.h"
#include "mmkd/distill/event_geometry.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

enum class Level { kFinal, kPenultimate, kPostAttention, kAttentionMap };

Level parse_level(const TermSpec& spec) {
  const std::string level = terms::option<std::string>(spec, "level", "penultimate");
  if (level == "final") return Level::kFinal;
  if (level == "penultimate") return Level::kPenultimate;
  if (level == "post_attention") return Level::kPostAttention;
  MMKD_CHECK(level == "attention_map", "config key '", join_key(spec.path, "level"),
             "': expected final, penultimate, post_attention or attention_map, got '", level, "'");
  return Level::kAttentionMap;
}

std::string level_name(Level level) {
  switch (level) {
    case Level::kFinal:
      return "final";
    case Level::kPenultimate:
      return "penultimate";
    case Level::kPostAttention:
      return "post_attention";
    case Level::kAttentionMap:
      break;
  }
  return "attention_map";
}

/// Rows that carry attention in both maps (fully masked rows are zero rows).
torch::Tensor live_rows(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sum(-1).gt(0) & b.sum(-1).gt(0);
}

class CrdTerm : public KdTerm {
 public:
  CrdTerm(const TermSpec& spec, KdTermContext& context)
      : level_(parse_level(spec)), pairs_(context.pairs) {
    CrdOptions options;  // its defaults are the vector levels' (RepDistiller's)
    options.embed_dim = terms::option(spec, "embed_dim", options.embed_dim);
    options.num_negatives = terms::option(spec, "num_negatives", options.num_negatives);
    options.temperature = terms::option(spec, "temperature", options.temperature);
    options.momentum = terms::option(spec, "momentum", options.momentum);
    options.fused_scores = terms::option(spec, "fused_scores", options.fused_scores);
    const int64_t row_embed = terms::option<int64_t>(spec, "row_embed_dim", 32);
    const int64_t row_negatives = terms::option<int64_t>(spec, "row_negatives", 256);
    const double budget_gib = terms::option<double>(spec, "memory_budget_gib", 4.0);
    const auto key = [&](const char* name) { return join_key(spec.path, name); };
    MMKD_CHECK(options.embed_dim > 0, "config key '", key("embed_dim"), "': must be > 0");
    MMKD_CHECK(options.num_negatives > 0, "config key '", key("num_negatives"), "': must be > 0");
    MMKD_CHECK(row_embed > 0, "config key '", key("row_embed_dim"), "': must be > 0");
    MMKD_CHECK(row_negatives > 0, "config key '", key("row_negatives"), "': must be > 0");
    MMKD_CHECK(options.temperature > 0, "config key '", key("temperature"), "': must be > 0");
    MMKD_CHECK(options.momentum >= 0 && options.momentum <= 1, "config key '", key("momentum"),
               "': must be in [0,1], got ", options.momentum);
    MMKD_CHECK(budget_gib > 0, "config key '", key("memory_budget_gib"), "': must be > 0");
    const std::string method = name();
    if (level_ == Level::kFinal || level_ == Level::kPenultimate) {
      const bool final = level_ == Level::kFinal;
      const auto width = [&](const models::MultimodalNet& net) {
        return final ? net->geometry().output_dim : net->geometry().penultimate_dim();
      };
      vector_ = context.heads->register_module(
          context.head_prefix + "crd",
          CrdLoss(width(context.student), width(context.teacher), context.sample_classes, options));
      return;
    }
    terms::check_same_layers(context, method);
    terms::check_same_map_shapes(context, method);
    const bool maps = level_ == Level::kAttentionMap;
    CrdRowOptions row_options;
    row_options.crd = options;
    row_options.crd.embed_dim = row_embed;
    row_options.crd.num_negatives = row_negatives;
    row_options.memory_budget_bytes = static_cast<int64_t>(budget_gib * (1LL << 30));
    for (size_t p = 0; p < pairs_.size(); ++p) {
      const auto& s = context.student->geometry().transformer(pairs_[p].student);
      const auto& t = context.teacher->geometry().transformer(pairs_[p].teacher);
      // A row is a query step's map row (Tk wide) or its post-attention output (width wide).
      const int64_t s_dim = maps ? s.key_length : s.width;
      const int64_t t_dim = maps ? t.key_length : t.width;
      rows_.emplace_back();
      for (int64_t l = 0; l < context.student->config().layers; ++l) {
        rows_.back().push_back(context.heads->register_module(
            context.head_prefix + "crd_pair" + std::to_string(p) + "_layer" + std::to_string(l),
            CrdRowLoss(s_dim, t_dim, s.query_length, context.sample_classes, row_options)));
      }
    }
  }

  nn::TapRequest taps() const override {
    nn::TapRequest what;
    if (level_ == Level::kPostAttention) {
      what.post_attention = true;
      what.map = true;  // to know which rows are real
    }
    if (level_ == Level::kAttentionMap) what.map = true;
    return what;
  }

  torch::Tensor loss(const KdTermInputs& in) override {
    if (level_ == Level::kFinal)
      return vector_->forward(in.student.logits, in.teacher.logits.detach(), in.batch.index,
                              in.generator);
    if (level_ == Level::kPenultimate)
      return vector_->forward(in.student.penultimate, in.teacher.penultimate.detach(),
                              in.batch.index, in.generator);
    const bool maps = level_ == Level::kAttentionMap;
    return terms::pair_layer_mean(
        in, pairs_, [&](size_t p, size_t l, const nn::LayerTaps& s, const nn::LayerTaps* t) {
          const torch::Tensor& student = maps ? s.map : s.post_attention;
          const torch::Tensor& teacher = maps ? t->map : t->post_attention;
          return rows_[p][l]->forward(student, teacher.detach(), in.batch.index,
                                      live_rows(s.map, t->map), in.generator);
        });
  }

  std::string name() const override { return "crd_" + level_name(level_); }

 private:
  Level level_;
  std::vector<models::DistillPair> pairs_;
  CrdLoss vector_{nullptr};
  std::vector<std::vector<CrdRowLoss>> rows_;  // [pair][layer]
};

}  // namespace

MMKD_KD_TERM(crd_term) {
  registry.add({"crd",
                "Contrastive Representation Distillation (memory banks, NCE) at level final, "
                "penultimate, post_attention or attention_map (paper §4.3)",
                {"level", "embed_dim", "num_negatives", "row_embed_dim", "row_negatives",
                 "temperature", "momentum", "memory_budget_gib", "fused_scores"},
                "crd",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<CrdTerm>(spec, context);
                },
                {{"crd_final", {"distill.method=crd_final"}},
                 {"crd_penultimate", {"distill.method=crd_penultimate"}},
                 {"crd_post_attention", {"distill.method=crd_post_attention"}},
                 {"crd_attention_map", {"distill.method=crd_attention_map"}}}});
  for (const char* level : {"final", "penultimate", "post_attention", "attention_map"})
    registry.add_alias(std::string("crd_") + level, "crd", {{"level", level}});
}

}  // namespace mmkd::distill
