#include "mmkd/distill/checkpoint_evaluation.h"

#include "mmkd/core/error.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run.h"
#include "mmkd/train/run_dir.h"
#include "mmkd/train/trainer.h"

namespace mmkd::distill {

namespace {

/// A network evaluated on sequences of other lengths than it was built for would still run
/// (attention takes any length) and report metrics of a different task: refuse, naming both.
void check_split_shape(const models::MultimodalNet& model, const data::Split& split,
                       const std::string& data_name, const std::string& split_name,
                       const std::string& checkpoint) {
  const models::InputShape& want = model->input_shape();
  const bool student = model->config().role == models::Role::kStudent;
  for (data::Modality m : data::kModalities) {
    if (student && m != data::Modality::kVideo) continue;  // students see video only
    const auto i = data::modality_index(m);
    const torch::Tensor& x = split.feature(m);
    MMKD_CHECK(x.size(1) == want.len[i] && x.size(2) == want.dim[i], data_name, ": '", split_name,
               "/", data::modality_key(m), "' has [", x.size(1), ",", x.size(2),
               "] (steps, features) per sample; ", checkpoint, " was built for [", want.len[i], ",",
               want.dim[i], "]");
  }
}

}  // namespace

nlohmann::json CheckpointEvaluation::to_json() const {
  nlohmann::json j = result.to_json();
  j["checkpoint"] = checkpoint;
  j["split"] = request.split;
  j["dropped"] = request.drop;
  if (!event_mass.empty()) j["event_mass"] = distill::to_json(event_mass);
  return j;
}

CheckpointEvaluation evaluate_checkpoint(const CheckpointEvalRequest& request) {
  CheckpointEvaluation out;
  out.request = request;
  out.checkpoint = train::checkpoint_of(request.checkpoint, request.checkpoint_key);
  const torch::Device device = train::parse_device(request.device);
  train::CheckpointInfo info;
  models::MultimodalNet model = train::load_model(out.checkpoint, device, &info);
  const data::MoseiData data =
      request.data.empty() ? train::load_checkpoint_data(info) : data::load_mosei(request.data);
  train::EvalOptions options;
  options.device = device;
  options.drop = data::parse_modality_list(request.drop, request.drop_key);
  options.context = out.checkpoint + " on the " + request.split + " split";
  const data::Split& split = data.split(request.split);
  check_split_shape(model, split, request.data.empty() ? data.source : request.data, request.split,
                    out.checkpoint);
  out.result = train::evaluate(model, split, options);
  if (split.has_events() && request.drop.empty())
    out.event_mass = split_event_mass(model, split, cross_modal_transformers(model), device);
  return out;
}

}  // namespace mmkd::distill
