// Hinton et al. (2015): KL divergence between temperature-softened class distributions of teacher
// and student, scaled by T² so that its gradients keep their size as T changes.
#include "term_util.h"

namespace mmkd::distill {

namespace {

class LogitKdTerm : public KdTerm {
 public:
  LogitKdTerm(const TermSpec& spec, KdTermContext& context)
      : temperature_(terms::option<double>(spec, "temperature", 4.0)) {
    MMKD_CHECK(temperature_ > 0, "config key '", join_key(spec.path, "temperature"),
               "': must be > 0, got ", temperature_);
    MMKD_CHECK(context.student->config().output == models::OutputMode::kClassification &&
                   context.teacher->config().output == models::OutputMode::kClassification,
               "method logit_kd softens class distributions: student and teacher need "
               "model.output: classification");
  }

  torch::Tensor loss(const KdTermInputs& in) override {
    const double t = temperature_;
    const auto log_student = torch::log_softmax(in.student.logits / t, -1);
    const auto log_teacher = torch::log_softmax(in.teacher.logits.detach() / t, -1);
    // KL(teacher || student), summed over classes, mean over the batch.
    const auto kl = (log_teacher.exp() * (log_teacher - log_student)).sum(-1).mean();
    return kl * (t * t);
  }

  std::string name() const override { return "logit_kd"; }

 private:
  double temperature_;
};

}  // namespace

MMKD_KD_TERM(logit_kd_term) {
  registry.add({"logit_kd",
                "Hinton et al.'s KD: T² · KL(teacher || student) of the temperature-softened "
                "class distributions",
                {"temperature"},
                "",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<LogitKdTerm>(spec, context);
                }});
}

}  // namespace mmkd::distill
