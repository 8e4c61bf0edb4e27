// mmkd._core: the extension module the Python package `mmkd` wraps (python/mmkd/).
#include "bindings.h"
#include "mmkd/core/error.h"
#include "mmkd/core/interrupt.h"
#include "mmkd/core/version.h"
#include "mmkd/study/job_runner.h"

namespace mmkd::python {

namespace {
int64_t g_host_threads = 1;
}  // namespace

int64_t host_threads_at_import() { return g_host_threads; }

namespace {

void register_errors(py::module_& m) {
  // mmkd.Error is a ValueError: the library raises it for bad input (a file, key, option or
  // tensor), with the message the CLI would print.
  py::register_exception<Error>(m, "Error", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Interrupted&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (const c10::Error& e) {
      // LibTorch's own failures, without the C++ backtrace it appends for developers.
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
}

}  // namespace
}  // namespace mmkd::python

PYBIND11_MODULE(_core, m) {
  using namespace mmkd::python;
  g_host_threads = mmkd::study::process_threads();
  m.doc() = "mmkd's C++ library; use it through the package `mmkd`";
  m.attr("__version__") = mmkd::kVersion;
  m.attr("source_config_dir") = MMKD_CONFIG_DIR;
  register_errors(m);
  bind_data(m);
  bind_models(m);
  bind_runs(m);
}
