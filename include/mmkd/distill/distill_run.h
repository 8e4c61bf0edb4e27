// `mmkd distill`: one student trained from a frozen teacher, end to end.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/run_config.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::distill {

/// The checkpoint a `distill.teacher` value names: a run directory (its best.pt) or a file.
std::string teacher_checkpoint(const std::string& run_or_checkpoint);

/// Trains the student of `config` with the `distill:` section's terms in `dir`; writes
/// metrics.json with the test metrics and the event mass of teacher and student maps.
train::RunMetrics run_distillation(const train::RunConfig& config, const train::RunDir& dir,
                                   bool resume);

}  // namespace mmkd::distill
