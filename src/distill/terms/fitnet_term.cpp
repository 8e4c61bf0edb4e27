// FitNets (Romero et al. 2015) on the penultimate vector: a learned linear regressor maps the
// student's h' to the teacher's width, and the squared error to the teacher's h' is the loss.
#include "mmkd/distill/event_geometry.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

class FitnetTerm : public KdTerm {
 public:
  FitnetTerm(const TermSpec& /*spec*/, KdTermContext& context) {
    regressor_ = context.heads->register_module(
        context.head_prefix + "fitnet_regressor",
        torch::nn::Linear(context.student->geometry().penultimate_dim(),
                          context.teacher->geometry().penultimate_dim()));
  }

  torch::Tensor loss(const KdTermInputs& in) override {
    // Mean over samples and features of the squared error (FitNets' L2 hint loss, per element).
    return (regressor_(in.student.penultimate) - in.teacher.penultimate.detach()).pow(2).mean();
  }

  std::string name() const override { return "fitnet"; }

 private:
  torch::nn::Linear regressor_{nullptr};
};

}  // namespace

MMKD_KD_TERM(fitnet_term) {
  registry.add({"fitnet",
                "FitNets: squared error between a learned linear map of the student's "
                "penultimate vector and the teacher's",
                {},
                "",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<FitnetTerm>(spec, context);
                }});
}

}  // namespace mmkd::distill
