// LongCall: the GIL released, std::cerr's lines to a Python callable, Ctrl-C between batches.
#include <pthread.h>

#include <iostream>
#include <optional>

#include "bindings.h"
#include "mmkd/core/interrupt.h"

namespace mmkd::python {

namespace {

/// A streambuf that hands each complete line to a Python callable. A carriage return discards
/// the line so far: it is how the progress bar redraws itself on a terminal.
class LineSink : public std::streambuf {
 public:
  explicit LineSink(py::object on_line) : on_line_(std::move(on_line)) {}
  void flush_rest() {
    if (!line_.empty()) emit();
  }

 protected:
  int_type overflow(int_type ch) override {
    if (ch == traits_type::eof()) return traits_type::not_eof(ch);
    if (ch == '\n') {
      emit();
    } else if (ch == '\r') {
      line_.clear();
    } else {
      line_.push_back(static_cast<char>(ch));
    }
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    for (std::streamsize i = 0; i < n; ++i) overflow(traits_type::to_int_type(s[i]));
    return n;
  }

 private:
  void emit() {
    py::gil_scoped_acquire gil;
    try {
      on_line_(line_);
    } catch (py::error_already_set& e) {
      // An exception of the callback must not escape into an ostream (it would set badbit and
      // silence every later line): Python reports it as unraisable, the run goes on.
      e.discard_as_unraisable(on_line_);
    }
    line_.clear();
  }

  py::object on_line_;
  std::string line_;
};

/// std::cerr's own buffer while a LineSink replaces it; a forked study run gets it back.
std::streambuf* g_cerr_buffer = nullptr;

void restore_cerr_in_child() {
  if (g_cerr_buffer != nullptr) std::cerr.rdbuf(g_cerr_buffer);
}

/// Python runs signal handlers only when asked: between batches, ask. Its SIGINT handler raises
/// KeyboardInterrupt, which becomes mmkd::Interrupted here and a KeyboardInterrupt again at the
/// binding's edge (module.cpp), after the C++ stack has unwound.
void check_python_signals() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    PyErr_Clear();
    throw Interrupted();
  }
}

}  // namespace

struct LongCall::Impl {
  std::optional<LineSink> sink;
  std::optional<py::gil_scoped_release> released;
};

LongCall::LongCall(py::object on_line) : impl_(std::make_unique<Impl>()) {
  static const bool registered = pthread_atfork(nullptr, nullptr, restore_cerr_in_child) == 0;
  (void)registered;
  if (!on_line.is_none()) {
    impl_->sink.emplace(std::move(on_line));
    std::cerr.flush();
    g_cerr_buffer = std::cerr.rdbuf(&*impl_->sink);
  }
  set_interrupt_check(check_python_signals);
  impl_->released.emplace();
}

LongCall::~LongCall() {
  impl_->released.reset();  // the GIL again, before any Python object is touched
  set_interrupt_check(nullptr);
  if (impl_->sink) {
    impl_->sink->flush_rest();
    std::cerr.rdbuf(g_cerr_buffer);
    g_cerr_buffer = nullptr;
  }
}

py::object to_python(const nlohmann::json& value) {
  return py::module_::import("json").attr("loads")(value.dump());
}

std::string to_json_text(const py::handle& value) {
  if (value.is_none()) return "{}";
  return py::module_::import("json").attr("dumps")(value).cast<std::string>();
}

}  // namespace mmkd::python
