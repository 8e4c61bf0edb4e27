// Cooperative interruption of long work (training, a study) by its host. The CLI needs none:
// SIGINT ends the process and atomic checkpoints keep the run resumable. A host that must
// survive the interruption (the Python module, where Ctrl-C is a KeyboardInterrupt) installs a
// check that the loops call between units of work.
#pragma once

#include <stdexcept>

namespace mmkd {

/// Thrown by an interrupt check. Not an mmkd::Error: nothing that handles bad input may swallow
/// it, and a study stops instead of going on with its next run.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

/// Called between batches and between a study's runs; throws Interrupted to stop them.
using InterruptCheck = void (*)();

/// Installs `check` for the whole process (nullptr removes it).
void set_interrupt_check(InterruptCheck check);

/// Runs the installed check, if any.
void check_interrupt();

}  // namespace mmkd
