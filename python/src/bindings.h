// Shared pieces of the Python bindings (mmkd._core): what every long call does around the C++
// work, and conversions the binding files have in common.
#pragma once

#include <pybind11/pybind11.h>
#include <torch/python.h>

#include <nlohmann/json.hpp>
#include <string>

namespace mmkd::python {

namespace py = pybind11;

void bind_data(py::module_& m);
void bind_models(py::module_& m);
void bind_runs(py::module_& m);

/// Around a call into the library that may take long: the GIL released, lines written to
/// std::cerr (progress, per-epoch results) passed to `on_line` (a Python callable, or None to let
/// them through to stderr), and Ctrl-C turned into mmkd::Interrupted between batches.
class LongCall {
 public:
  explicit LongCall(py::object on_line);
  ~LongCall();
  LongCall(const LongCall&) = delete;
  LongCall& operator=(const LongCall&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Threads of the interpreter when mmkd._core was imported (after torch): a study's runs are
/// forked, which is safe while no more have been started (study::RunnerOptions::host_threads).
int64_t host_threads_at_import();

/// A JSON value as the Python objects json.loads would give.
py::object to_python(const nlohmann::json& value);

/// A Python config (dict, or None) as the JSON text the YAML reader takes (JSON is YAML).
std::string to_json_text(const py::handle& value);

}  // namespace mmkd::python
