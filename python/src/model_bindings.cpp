// mmkd.Model: a teacher or student built from a config or loaded from a checkpoint; forward on
// tensors with attention maps tapped by transformer name, predictions, weights as a dict.
#include <yaml-cpp/yaml.h>

#include "bindings.h"
#include "mmkd/core/error.h"
#include "mmkd/data/modality.h"
#include "mmkd/models/model_config_yaml.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/prediction.h"
#include "mmkd/train/run_dir.h"

namespace mmkd::python {

namespace {

/// A network and the configuration it carries into a checkpoint.
struct Model {
  models::MultimodalNet net{nullptr};
  train::CheckpointInfo info;  ///< config_yaml holds at least `model:`; shape the input shape
};

/// YAML as JSON: "true"/"false" and numbers become those, every other scalar a string ("on"
/// stays "on": the configs' values round-trip through json.dumps).
nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& item : node) out[item.first.as<std::string>()] = yaml_to_json(item.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (text == "true" || text == "false") return text == "true";
      char* end = nullptr;
      const long long i = std::strtoll(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0') return static_cast<int64_t>(i);
      const double d = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0') return d;
      return text;
    }
    default:
      return nullptr;
  }
}

/// "tiny", "mosei", "Tv,Ta,Tl", or {"vision": [T, F], "audio": [T, F], "text": [T, F]}.
models::InputShape shape_from_python(const py::handle& value) {
  if (py::isinstance<py::str>(value)) return models::InputShape::parse(value.cast<std::string>());
  MMKD_CHECK(py::isinstance<py::dict>(value),
             "input_shape: expected 'tiny', 'mosei', 'Tv,Ta,Tl' or a dict {modality: [steps, "
             "features]}");
  const py::dict dict = py::reinterpret_borrow<py::dict>(value);
  models::InputShape shape;
  for (data::Modality m : data::kModalities) {
    const std::string key = data::modality_key(m);
    MMKD_CHECK(dict.contains(key), "input_shape: '", key,
               "' is missing (expected vision, audio, "
               "text, each [steps, features])");
    const auto pair = dict[py::str(key)].cast<std::vector<int64_t>>();
    MMKD_CHECK(pair.size() == 2 && pair[0] > 0 && pair[1] > 0, "input_shape['", key,
               "']: expected [steps, features], both positive");
    shape.len[data::modality_index(m)] = pair[0];
    shape.dim[data::modality_index(m)] = pair[1];
  }
  return shape;
}

py::dict shape_to_python(const models::InputShape& shape) {
  py::dict out;
  for (data::Modality m : data::kModalities) {
    const auto i = data::modality_index(m);
    out[py::str(data::modality_key(m))] = py::make_tuple(shape.len[i], shape.dim[i]);
  }
  return out;
}

Model build(const std::string& model_json, const py::handle& input_shape, int64_t seed) {
  Model model;
  const YAML::Node node = YAML::Load(model_json);
  const models::ModelConfig config = models::parse_model_config(node, "model");
  model.info.shape = shape_from_python(input_shape);
  torch::manual_seed(static_cast<uint64_t>(seed));
  model.net = models::build_model(config, model.info.shape);
  YAML::Node root;
  root["model"] = models::to_yaml(config);
  model.info.config_yaml = YAML::Dump(root);
  return model;
}

Model load(const std::string& path) {
  Model model;
  model.net = train::load_model(train::checkpoint_of(path, "checkpoint"), torch::kCPU, &model.info);
  return model;
}

/// A feature tensor from Python, checked against the network's input for `m`.
torch::Tensor checked_input(const Model& model, const py::handle& value, data::Modality m,
                            int64_t batch) {
  const std::string key = data::modality_key(m);
  MMKD_CHECK(THPVariable_Check(value.ptr()), key, ": expected a torch.Tensor [batch, steps, ",
             "features], got ", py::str(py::type::of(value).attr("__name__")).cast<std::string>());
  torch::Tensor x = value.cast<torch::Tensor>();
  const auto i = data::modality_index(m);
  const auto& shape = model.net->input_shape();
  MMKD_CHECK(x.dim() == 3 && x.size(1) == shape.len[i] && x.size(2) == shape.dim[i], key,
             ": expected shape [batch, ", shape.len[i], ", ", shape.dim[i], "] (the network's ",
             key, " input), got ", x.sizes());
  MMKD_CHECK(x.scalar_type() == torch::kFloat, key, ": expected float32, got ", x.scalar_type());
  MMKD_CHECK(x.device() == model.net->parameters().front().device(), key, ": expected a tensor on ",
             model.net->parameters().front().device(), ", got one on ", x.device());
  MMKD_CHECK(batch < 0 || x.size(0) == batch, key, ": batch of ", x.size(0),
             " samples, but vision has ", batch);
  return x;
}

nn::TapRequest tap_kinds(const std::vector<std::string>& what) {
  nn::TapRequest request;
  for (const auto& kind : what) {
    if (kind == "map")
      request.map = true;
    else if (kind == "post_attention")
      request.post_attention = true;
    else if (kind == "logits")
      request.logits = true;
    else if (kind == "output")
      request.layer_output = true;
    else
      MMKD_FAIL("what: '", kind, "' is not a tap; expected map, post_attention, logits, output");
  }
  return request;
}

py::dict forward(Model& model, const py::handle& vision, const py::handle& audio,
                 const py::handle& text, const py::handle& taps,
                 const std::vector<std::string>& what) {
  const bool student = model.net->config().role == models::Role::kStudent;
  models::ModelInputs inputs;
  const int64_t v = data::modality_index(data::Modality::kVideo);
  inputs.features[v] = checked_input(model, vision, data::Modality::kVideo, -1);
  const int64_t batch = inputs.features[v].size(0);
  for (data::Modality m : {data::Modality::kAudio, data::Modality::kText}) {
    const py::handle& value = m == data::Modality::kAudio ? audio : text;
    if (value.is_none()) {
      MMKD_CHECK(student, data::modality_key(m), ": a teacher needs every modality (zeros stand ",
                 "for a missing one)");
      continue;
    }
    if (!student) inputs.features[data::modality_index(m)] = checked_input(model, value, m, batch);
  }
  models::TapRequest request;
  if (!taps.is_none()) {
    request.what = tap_kinds(what);
    const auto names = py::isinstance<py::str>(taps)
                           ? std::vector<std::string>{taps.cast<std::string>()}
                           : taps.cast<std::vector<std::string>>();
    for (const auto& name : names) {
      if (name == "all") continue;
      model.net->transformer(name);  // an error naming the valid ones
      request.transformers.push_back(name);
    }
  }
  models::ModelOutput out;
  {
    py::gil_scoped_release released;
    out = model.net->forward(inputs, request);
  }
  py::dict result;
  result["logits"] = out.logits;
  result["penultimate"] = out.penultimate;
  py::dict tapped;
  for (const auto& [name, layers] : out.taps) {
    py::list per_layer;
    for (const auto& layer : layers) {
      py::dict entry;
      if (request.what.map) entry["map"] = layer.map;
      if (request.what.post_attention) entry["post_attention"] = layer.post_attention;
      if (request.what.logits) entry["logits"] = layer.logits;
      if (request.what.layer_output) entry["output"] = layer.output;
      per_layer.append(entry);
    }
    tapped[py::str(name)] = per_layer;
  }
  result["taps"] = tapped;
  return result;
}

py::dict predict(Model& model, const py::handle& vision) {
  const torch::Tensor x = checked_input(model, vision, data::Modality::kVideo, -1);
  train::VideoPredictions out;
  {
    py::gil_scoped_release released;
    out = train::predict_video(model.net, x, x.device(), "vision");
  }
  py::dict result;
  result["outputs"] = out.outputs;
  result["probabilities"] = out.regression ? py::object(py::none()) : py::cast(out.probabilities);
  result["classes"] = out.classes;
  return result;
}

/// Every parameter and buffer under the module's own names (those of its checkpoints): the
/// tensors themselves, so that an in-place change from Python changes the network.
py::dict state_dict(const Model& model) {
  py::dict out;
  for (const auto& item : model.net->named_parameters()) out[py::str(item.key())] = item.value();
  for (const auto& item : model.net->named_buffers()) out[py::str(item.key())] = item.value();
  return out;
}

void load_state_dict(Model& model, const py::dict& values) {
  std::map<std::string, torch::Tensor> own;
  for (const auto& item : model.net->named_parameters()) own[item.key()] = item.value();
  for (const auto& item : model.net->named_buffers()) own[item.key()] = item.value();
  for (const auto& [key, value] : values) {
    const std::string name = py::str(key).cast<std::string>();
    MMKD_CHECK(own.count(name), "load_state_dict: '", name, "' is not a parameter or buffer of ",
               model.net->config().describe());
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : own) {
    MMKD_CHECK(values.contains(name), "load_state_dict: '", name, "' is missing (",
               model.net->config().describe(), " has ", own.size(), " tensors)");
    const py::handle value = values[py::str(name)];
    MMKD_CHECK(THPVariable_Check(value.ptr()), "load_state_dict: '", name,
               "': expected a torch.Tensor");
    const torch::Tensor source = value.cast<torch::Tensor>();
    MMKD_CHECK(source.sizes() == target.sizes(), "load_state_dict: '", name, "' has shape ",
               source.sizes(), "; the network's is ", target.sizes());
    MMKD_CHECK(source.is_floating_point() == target.is_floating_point(), "load_state_dict: '", name,
               "' is ", source.scalar_type(), "; the network's is ", target.scalar_type());
    target.copy_(source);
  }
}

py::list parameter_table(const Model& model) {
  py::list out;
  for (const auto& row : model.net->parameter_table())
    out.append(py::make_tuple(row.module, row.parameters));
  return out;
}

}  // namespace

void bind_models(py::module_& m) {
  m.def(
      "model_config_of_file",
      [](const std::string& path) {
        return yaml_to_json(models::to_yaml(models::load_model_config(path))).dump();
      },
      py::arg("path"));
  py::class_<Model>(m, "Model")
      .def_static("build", &build, py::arg("model_json"), py::arg("input_shape"), py::arg("seed"))
      .def_static("load", &load, py::arg("path"))
      .def(
          "save",
          [](Model& model, const std::string& path) {
            py::gil_scoped_release released;
            train::save_checkpoint(path, model.net, model.info, {nullptr, nullptr, false});
          },
          py::arg("path"))
      .def("forward", &forward, py::arg("vision"), py::arg("audio"), py::arg("text"),
           py::arg("taps"), py::arg("what"))
      .def("predict", &predict, py::arg("vision"))
      .def("state_dict", &state_dict)
      .def("load_state_dict", &load_state_dict, py::arg("values"))
      .def(
          "set_training", [](Model& model, bool on) { model.net->train(on); }, py::arg("on"))
      .def_property_readonly("training",
                             [](const Model& model) { return model.net->is_training(); })
      .def_property_readonly(
          "role",
          [](const Model& model) {
            return model.net->config().role == models::Role::kStudent ? "student" : "teacher";
          })
      .def_property_readonly("description",
                             [](const Model& model) { return model.net->config().describe(); })
      .def_property_readonly("config",
                             [](const Model& model) {
                               return to_python(yaml_to_json(YAML::Load(model.info.config_yaml)));
                             })
      .def_property_readonly(
          "input_shape",
          [](const Model& model) { return shape_to_python(model.net->input_shape()); })
      .def_property_readonly("transformer_names",
                             [](const Model& model) { return model.net->transformer_names(); })
      .def_property_readonly("parameter_count",
                             [](const Model& model) { return model.net->parameter_count(); })
      .def_property_readonly("parameter_table", &parameter_table);
}

}  // namespace mmkd::python
