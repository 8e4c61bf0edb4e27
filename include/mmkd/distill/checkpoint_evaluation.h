// Evaluating a saved network: `mmkd eval` and mmkd.evaluate() in Python. Metrics on a split,
// optionally with modalities zeroed, and where the data marks events, how much of each
// cross-modal map's attention falls on them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmkd/distill/diagnostics.h"
#include "mmkd/train/evaluate.h"

namespace mmkd::distill {

struct CheckpointEvalRequest {
  std::string checkpoint;                     ///< run directory (its best.pt) or checkpoint file
  std::string checkpoint_key = "checkpoint";  ///< how the caller names `checkpoint`, for errors
  std::string data;  ///< data file; empty = the data the checkpoint was trained on
  std::string split = "test";
  std::string drop;                 ///< modalities to zero, "audio,text"; empty = none
  std::string drop_key = "--drop";  ///< how the caller names `drop`, for its errors
  std::string device = "cpu";       ///< cpu | cuda | cuda:N
};

struct CheckpointEvaluation {
  std::string checkpoint;  ///< the file evaluated
  CheckpointEvalRequest request;
  train::EvalResult result;
  std::vector<TransformerEventMass> event_mass;  ///< empty without events or with drops

  /// As `mmkd eval --json` prints it.
  nlohmann::json to_json() const;
};

/// Loads the checkpoint and its data, refuses sequences of other shapes than the network was
/// built for (they would run and measure another task), and evaluates.
CheckpointEvaluation evaluate_checkpoint(const CheckpointEvalRequest& request);

}  // namespace mmkd::distill
