#include "mmkd/train/plateau_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "mmkd/core/error.h"

namespace mmkd::train {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// LibTorch 1.13's OptimizerOptions has no usable lr accessor in the base class for every
// optimiser, so each known options type is matched explicitly.
template <typename Options, typename Base, typename Fn>
bool with_options(Base& options, Fn&& fn) {
  using Target = std::conditional_t<std::is_const_v<Base>, const Options, Options>;
  if (auto* typed = dynamic_cast<Target*>(&options)) {
    fn(*typed);
    return true;
  }
  return false;
}

template <typename Base, typename Fn>
void visit_lr_options(Base& options, Fn&& fn) {
  using namespace torch::optim;
  if (with_options<AdamOptions>(options, fn) || with_options<AdamWOptions>(options, fn) ||
      with_options<SGDOptions>(options, fn) || with_options<RMSpropOptions>(options, fn) ||
      with_options<AdagradOptions>(options, fn)) {
    return;
  }
  MMKD_FAIL("PlateauScheduler: unsupported optimiser options type '", typeid(options).name(),
            "'; expected Adam, AdamW, SGD, RMSprop or Adagrad");
}

nlohmann::json number_or_infinity(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

}  // namespace

double get_group_lr(const torch::optim::OptimizerOptions& options) {
  double lr = 0.0;
  visit_lr_options(options, [&](const auto& typed) { lr = typed.lr(); });
  return lr;
}

void set_group_lr(torch::optim::OptimizerOptions& options, double lr) {
  visit_lr_options(options, [&](auto& typed) { typed.lr(lr); });
}

nlohmann::json PlateauSchedulerState::to_json() const {
  return {{"best", number_or_infinity(best)},
          {"num_bad_epochs", num_bad_epochs},
          {"cooldown_counter", cooldown_counter},
          {"last_epoch", last_epoch}};
}

PlateauSchedulerState PlateauSchedulerState::from_json(const nlohmann::json& j) {
  MMKD_CHECK(j.is_object(), "PlateauScheduler state: expected a JSON object, got ", j.type_name());
  auto require = [&](const char* key) -> const nlohmann::json& {
    MMKD_CHECK(j.contains(key), "PlateauScheduler state: missing key '", key, "'");
    return j.at(key);
  };
  auto integer = [&](const char* key) {
    const auto& v = require(key);
    MMKD_CHECK(v.is_number_integer(), "PlateauScheduler state: '", key,
               "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  };
  PlateauSchedulerState s;
  const auto& best = require("best");
  if (best.is_number()) {
    s.best = best.get<double>();
  } else if (best == "inf") {
    s.best = kInf;
  } else if (best == "-inf") {
    s.best = -kInf;
  } else {
    MMKD_FAIL("PlateauScheduler state: 'best' must be a number, \"inf\" or \"-inf\", got ",
              best.dump());
  }
  s.num_bad_epochs = integer("num_bad_epochs");
  s.cooldown_counter = integer("cooldown_counter");
  s.last_epoch = integer("last_epoch");
  return s;
}

PlateauScheduler::PlateauScheduler(torch::optim::Optimizer& optimizer,
                                   PlateauSchedulerOptions options)
    : optimizer_(optimizer), options_(options) {
  MMKD_CHECK(options_.factor < 1.0, "PlateauScheduler: factor should be < 1.0, got ",
             options_.factor);
  MMKD_CHECK(options_.factor >= 0.0, "PlateauScheduler: factor must be >= 0, got ",
             options_.factor);
  MMKD_CHECK(options_.patience >= 0, "PlateauScheduler: patience must be >= 0, got ",
             options_.patience);
  MMKD_CHECK(options_.cooldown >= 0, "PlateauScheduler: cooldown must be >= 0, got ",
             options_.cooldown);
  MMKD_CHECK(options_.min_lr >= 0.0, "PlateauScheduler: min_lr must be >= 0, got ",
             options_.min_lr);
  MMKD_CHECK(!optimizer_.param_groups().empty(), "PlateauScheduler: optimiser has no param groups");
  for (auto& group : optimizer_.param_groups()) get_group_lr(group.options());  // type check
  // PyTorch's _reset(): best = mode_worse.
  state_.best = options_.mode == PlateauSchedulerOptions::Mode::kMin ? kInf : -kInf;
}

bool PlateauScheduler::is_better(double a, double best) const {
  using Mode = PlateauSchedulerOptions::Mode;
  using ThresholdMode = PlateauSchedulerOptions::ThresholdMode;
  const bool rel = options_.threshold_mode == ThresholdMode::kRel;
  if (options_.mode == Mode::kMin) {
    return rel ? a < best * (1.0 - options_.threshold) : a < best - options_.threshold;
  }
  return rel ? a > best * (options_.threshold + 1.0) : a > best + options_.threshold;
}

bool PlateauScheduler::step(double metric) {
  ++state_.last_epoch;
  if (is_better(metric, state_.best)) {
    state_.best = metric;
    state_.num_bad_epochs = 0;
  } else {
    ++state_.num_bad_epochs;
  }
  if (in_cooldown()) {
    --state_.cooldown_counter;
    state_.num_bad_epochs = 0;  // bad epochs during cooldown are ignored
  }
  if (state_.num_bad_epochs <= options_.patience) return false;

  bool reduced = false;
  for (auto& group : optimizer_.param_groups()) {
    const double old_lr = get_group_lr(group.options());
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    if (old_lr - new_lr > options_.eps) {
      set_group_lr(group.options(), new_lr);
      reduced = true;
    }
  }
  state_.cooldown_counter = options_.cooldown;
  state_.num_bad_epochs = 0;
  return reduced;
}

std::vector<double> PlateauScheduler::learning_rates() const {
  std::vector<double> lrs;
  for (const auto& group : optimizer_.param_groups()) lrs.push_back(get_group_lr(group.options()));
  return lrs;
}

}  // namespace mmkd::train
