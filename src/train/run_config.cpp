#include "mmkd/train/run_config.h"

#include <algorithm>
#include <initializer_list>
#include <thread>

#include "mmkd/core/config_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/models/model_config_yaml.h"

namespace mmkd::train {

namespace {
constexpr int64_t kMaxThreadsPerCore = 4;
}  // namespace

int64_t max_threads() {
  return kMaxThreadsPerCore * std::max<int64_t>(1, std::thread::hardware_concurrency());
}

void TrainConfig::validate(const std::string& path) const {
  const auto key = [&](const char* name) { return join_key(path, name); };
  MMKD_CHECK(epochs >= 1, "config key '", key("epochs"), "': must be >= 1, got ", epochs);
  MMKD_CHECK(batch_size >= 1, "config key '", key("batch_size"), "': must be >= 1, got ",
             batch_size);
  MMKD_CHECK(eval_batch_size >= 1, "config key '", key("eval_batch_size"), "': must be >= 1, got ",
             eval_batch_size);
  MMKD_CHECK(lr > 0, "config key '", key("lr"), "': the learning rate must be > 0, got ", lr);
  MMKD_CHECK(weight_decay >= 0, "config key '", key("weight_decay"), "': must be >= 0, got ",
             weight_decay);
  MMKD_CHECK(clip >= 0, "config key '", key("clip"), "': must be >= 0 (0 disables), got ", clip);
  MMKD_CHECK(patience >= 0, "config key '", key("patience"), "': must be >= 0, got ", patience);
  MMKD_CHECK(early_stop >= 0, "config key '", key("early_stop"),
             "': must be >= 0 (epochs without a better validation loss; 0 = off), got ",
             early_stop);
  MMKD_CHECK(factor > 0 && factor < 1, "config key '", key("factor"), "': must be in (0,1), got ",
             factor);
  MMKD_CHECK(seed >= 0, "config key '", key("seed"), "': must be >= 0, got ", seed);
  MMKD_CHECK(threads >= 0, "config key '", key("threads"),
             "': must be >= 0 (0 = one per free core), got ", threads);
  MMKD_CHECK(threads <= max_threads(), "config key '", key("threads"), "': ", threads,
             " threads on a machine with ", std::max(1u, std::thread::hardware_concurrency()),
             " cores; use at most ", max_threads(), " (0 = one per free core)");
  MMKD_CHECK(device == "cpu" || device.rfind("cuda", 0) == 0, "config key '", key("device"),
             "': expected cpu, cuda or cuda:N, got '", device, "'");
  const auto one_of = [&](const char* name, const std::string& value,
                          std::initializer_list<const char*> allowed, const char* expected) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || value == a;
    MMKD_CHECK(ok, "config key '", key(name), "': expected ", expected, ", got '", value, "'");
  };
  one_of("adam", adam, {"auto", "loop", "fused"}, "auto, loop or fused");
  one_of("cuda_graphs", cuda_graphs, {"auto", "on", "off"}, "auto, on or off");
  one_of("autocast", autocast, {"off", "bf16"}, "off or bf16");
  MMKD_CHECK(cuda_graphs != "on" || device.rfind("cuda", 0) == 0, "config key '",
             key("cuda_graphs"), "': on needs a CUDA device, but ", key("device"), " is '", device,
             "' (use auto or off)");
}

TrainConfig parse_train_config(const YAML::Node& node, const std::string& path) {
  TrainConfig config;
  if (!node || node.IsNull()) return config;
  check_known_keys(node,
                   {"epochs", "batch_size", "eval_batch_size", "lr", "weight_decay", "clip",
                    "patience", "factor", "early_stop", "seed", "threads", "device", "progress",
                    "adam", "cuda_graphs", "autocast"},
                   path);
  read_optional(node, "epochs", path, config.epochs);
  read_optional(node, "batch_size", path, config.batch_size);
  read_optional(node, "eval_batch_size", path, config.eval_batch_size);
  read_optional(node, "lr", path, config.lr);
  read_optional(node, "weight_decay", path, config.weight_decay);
  read_optional(node, "clip", path, config.clip);
  read_optional(node, "patience", path, config.patience);
  read_optional(node, "factor", path, config.factor);
  read_optional(node, "early_stop", path, config.early_stop);
  read_optional(node, "seed", path, config.seed);
  read_optional(node, "threads", path, config.threads);
  read_optional(node, "device", path, config.device);
  read_optional(node, "progress", path, config.progress);
  read_optional(node, "adam", path, config.adam);
  read_optional(node, "cuda_graphs", path, config.cuda_graphs);
  read_optional(node, "autocast", path, config.autocast);
  config.validate(path);
  return config;
}

YAML::Node to_yaml(const TrainConfig& config) {
  YAML::Node node;
  node["epochs"] = config.epochs;
  node["batch_size"] = config.batch_size;
  node["eval_batch_size"] = config.eval_batch_size;
  node["lr"] = config.lr;
  node["weight_decay"] = config.weight_decay;
  node["clip"] = config.clip;
  node["patience"] = config.patience;
  node["factor"] = config.factor;
  node["early_stop"] = config.early_stop;
  node["seed"] = config.seed;
  node["threads"] = config.threads;
  node["device"] = config.device;
  node["progress"] = config.progress;
  node["adam"] = config.adam;
  node["cuda_graphs"] = config.cuda_graphs;
  node["autocast"] = config.autocast;
  return node;
}

YAML::Node RunConfig::resolved() const {
  YAML::Node node;
  node["data"] = data::to_yaml(data);
  node["model"] = models::to_yaml(model);
  node["train"] = to_yaml(train);
  if (distill && !distill.IsNull()) node["distill"] = YAML::Clone(distill);
  return node;
}

RunConfig parse_run_config(const YAML::Node& root, const std::string& source) {
  MMKD_CHECK(root && root.IsMap(), source, ": expected a mapping with data/model/train sections");
  try {
    check_known_keys(root, {"data", "model", "train", "distill"}, "");
  } catch (const Error& e) {
    MMKD_FAIL(source, ": ", e.what());
  }
  MMKD_CHECK(root["model"], source, ": missing section 'model' (which network to build)");
  RunConfig config;
  config.source = source;
  try {
    config.data = data::parse_data_config(root["data"], "data");
    config.model = models::parse_model_config(root["model"], "model");
    config.train = parse_train_config(root["train"], "train");
  } catch (const Error& e) {
    MMKD_FAIL(source, ": ", e.what());
  }
  if (root["distill"]) config.distill = YAML::Clone(root["distill"]);
  return config;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = load_config_file(path);
  apply_overrides(root, overrides);
  return parse_run_config(root, path);
}

}  // namespace mmkd::train
