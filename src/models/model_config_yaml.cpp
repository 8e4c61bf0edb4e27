#include "mmkd/models/model_config_yaml.h"

namespace mmkd::models {

YAML::Node to_yaml(const ModelConfig& config) {
  YAML::Node node;
  const bool teacher = config.role == Role::kTeacher;
  node["role"] = teacher ? "teacher" : "student";
  node["architecture"] = config.architecture_name();
  node["d_model"] = config.d_model;
  node["layers"] = config.layers;
  node["heads"] = config.heads;
  node["conv_kernel"] = config.conv_kernel;
  node["readout"] = config.readout == Readout::kLast ? "last" : "mean";
  node["output"] = config.output == OutputMode::kRegression ? "regression" : "classification";
  node["num_classes"] = config.num_classes;
  node["attn_dropout"] = config.attn_dropout;
  node["relu_dropout"] = config.relu_dropout;
  node["res_dropout"] = config.res_dropout;
  node["embed_dropout"] = config.embed_dropout;
  node["out_dropout"] = config.out_dropout;
  if (config.attn_dropout_audio) node["attn_dropout_audio"] = *config.attn_dropout_audio;
  if (config.attn_dropout_video) node["attn_dropout_video"] = *config.attn_dropout_video;
  node["future_mask"] = config.future_mask;
  node["mask_padding"] = config.mask_padding;
  // Written only when set, so the resolved configs of existing runs keep comparing equal.
  if (config.mult_compat()) node["compat"] = "mult";
  if (!teacher) {
    node["proxy_mode"] = config.proxy_mode == ProxyMode::kDownsample ? "downsample" : "keep";
    if (!config.target_lengths.empty()) node["target_lengths"] = config.target_lengths;
    if (!config.proxy_kernels.empty()) node["proxy_kernels"] = config.proxy_kernels;
  }
  return node;
}

}  // namespace mmkd::models
