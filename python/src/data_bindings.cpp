// mmkd.data: MulT/MMSA pickles through the safe reader, the synthetic presets, the label rule.
#include "bindings.h"
#include "mmkd/core/error.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/data/synthetic.h"
#include "mmkd/train/labels.h"

namespace mmkd::python {

namespace {

py::dict split_to_python(const data::Split& split) {
  py::dict out;
  for (data::Modality m : data::kModalities) out[py::str(data::modality_key(m))] = split.feature(m);
  out["labels"] = split.labels;
  if (split.has_events()) {
    py::dict events;
    for (data::Modality m : data::kModalities)
      events[py::str(data::modality_key(m))] = split.event(m);
    out["events"] = events;
  } else {
    out["events"] = py::none();
  }
  py::list ids;
  for (const auto& id : split.ids) ids.append(py::str(id));
  out["id"] = ids;
  return out;
}

py::dict data_to_python(const data::MoseiData& data) {
  py::dict out;
  for (const auto& [name, split] : data.splits) out[py::str(name)] = split_to_python(split);
  return out;
}

/// `value` as a tensor of rank `rank`, or an error naming `where` and what it holds.
torch::Tensor tensor_at(const py::handle& value, const std::string& where, int64_t rank) {
  MMKD_CHECK(THPVariable_Check(value.ptr()), where, ": expected a torch.Tensor, got ",
             py::str(py::type::of(value).attr("__name__")).cast<std::string>());
  torch::Tensor t = value.cast<torch::Tensor>();
  MMKD_CHECK(t.dim() == rank, where, ": expected a tensor of rank ", rank, ", got shape ",
             t.sizes());
  MMKD_CHECK(t.device().is_cpu(), where, ": expected a CPU tensor, got one on ", t.device());
  return t;
}

data::Split split_from_python(const py::handle& value, const std::string& name) {
  MMKD_CHECK(py::isinstance<py::dict>(value), "data['", name, "']: expected a dict of tensors");
  const py::dict dict = py::reinterpret_borrow<py::dict>(value);
  const auto where = [&](const std::string& key) { return "data['" + name + "']['" + key + "']"; };
  const auto need = [&](const std::string& key) {
    MMKD_CHECK(dict.contains(key), where(key), " is missing (a split holds vision, audio, text, ",
               "labels, and optionally events and id)");
    return dict[py::str(key)];
  };
  data::Split split;
  torch::Tensor labels = tensor_at(need("labels"), where("labels"), 1);
  split.labels = labels.to(torch::kFloat).contiguous();
  const int64_t n = split.labels.size(0);
  for (data::Modality m : data::kModalities) {
    const std::string key = data::modality_key(m);
    torch::Tensor x = tensor_at(need(key), where(key), 3);
    MMKD_CHECK(x.is_floating_point(), where(key), ": expected floating-point features, got ",
               x.scalar_type());
    MMKD_CHECK(x.size(0) == n, where(key), " has ", x.size(0), " samples but labels has ", n);
    split.features[data::modality_index(m)] = x.to(torch::kFloat).contiguous();
  }
  if (dict.contains("events") && !dict["events"].is_none()) {
    MMKD_CHECK(py::isinstance<py::dict>(dict["events"]), where("events"),
               ": expected a dict of bool tensors per modality, or None");
    const py::dict events = dict["events"];
    for (data::Modality m : data::kModalities) {
      const std::string key = data::modality_key(m);
      const std::string at = where("events") + "['" + key + "']";
      MMKD_CHECK(events.contains(key), at, " is missing");
      torch::Tensor e = tensor_at(events[py::str(key)], at, 2);
      const auto& x = split.feature(m);
      MMKD_CHECK(e.size(0) == n && e.size(1) == x.size(1), at, " has shape ", e.sizes(),
                 "; expected [", n, ",", x.size(1), "] like its features");
      split.events[data::modality_index(m)] = e.ne(0).contiguous();
    }
  }
  if (dict.contains("id") && !dict["id"].is_none()) {
    for (const auto& id : dict["id"]) split.ids.push_back(py::str(id).cast<std::string>());
    MMKD_CHECK(split.ids.empty() || static_cast<int64_t>(split.ids.size()) == n, where("id"),
               " has ", split.ids.size(), " entries for ", n, " samples");
  }
  return split;
}

data::MoseiData data_from_python(const py::dict& dict) {
  data::MoseiData data;
  for (const char* name : data::kSplitNames) {
    MMKD_CHECK(dict.contains(name), "data: expected the splits train, valid and test; '", name,
               "' is missing");
    data.splits[name] = split_from_python(dict[py::str(name)], name);
  }
  data.source = "python";
  data.layout = "mult";
  return data;
}

data::MoseiData synthesize(const std::string& preset, uint64_t seed, const py::dict& overrides) {
  data::SynthOptions options = data::synth_preset(preset);
  options.seed = seed;
  for (const auto& [key, value] : overrides) {
    // "0.5", "[0.1, ...]" and "true" as the YAML reader of `--set` would take them.
    const py::object text = py::isinstance<py::str>(value)
                                ? py::reinterpret_borrow<py::object>(value)
                                : py::module_::import("json").attr("dumps")(value);
    data::apply_synth_override(options, py::str(key).cast<std::string>(), text.cast<std::string>());
  }
  data::validate_synth_options(options);
  return data::generate_synthetic(options);
}

}  // namespace

void bind_data(py::module_& m) {
  m.def(
      "load_data",
      [](const std::string& path) {
        data::MoseiData data;
        {
          py::gil_scoped_release released;
          data = data::load_mosei(path);
        }
        return data_to_python(data);
      },
      py::arg("path"));
  m.def(
      "save_data",
      [](const py::dict& dict, const std::string& path) {
        const data::MoseiData data = data_from_python(dict);
        py::gil_scoped_release released;
        data::save_mosei(data, path);
      },
      py::arg("data"), py::arg("path"));
  m.def(
      "synthesize",
      [](const std::string& preset, uint64_t seed, const py::dict& overrides) {
        return data_to_python(synthesize(preset, seed, overrides));
      },
      py::arg("preset"), py::arg("seed"), py::arg("overrides"));
  m.def("synth_presets", &data::synth_preset_names);
  m.def(
      "synth_options",
      [](const std::string& preset) {
        py::dict out;
        for (const auto& [key, value] : data::describe_synth_options(data::synth_preset(preset)))
          out[py::str(key)] = value;
        return out;
      },
      py::arg("preset"));
  m.def(
      "sentiment_class",
      [](const torch::Tensor& scores) { return train::sentiment_to_class(scores) - 3; },
      py::arg("scores"));
  // The address C++ sees, for the tests that show a tensor crosses without a copy.
  m.def("data_ptr",
        [](const torch::Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.data_ptr()); });
}

}  // namespace mmkd::python
