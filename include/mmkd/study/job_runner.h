// Runs a study's jobs, several at a time, each through distill::execute_run in a child process of
// its own, and makes a study resumable: a finished run is skipped, a run with a checkpoint is
// continued, anything else starts afresh.
#pragma once

#include <string>
#include <vector>

#include "mmkd/distill/run_request.h"
#include "mmkd/study/study_plan.h"

namespace mmkd::study {

struct RunnerOptions {
  int64_t jobs = 1;         ///< runs at a time
  int64_t threads = 0;      ///< intra-op threads per run; 0 = free cores (jobs 1) or cores / jobs
  std::string device;       ///< passed as --device when set
  bool show_output = true;  ///< jobs == 1: runs print to this terminal; otherwise to logs/
  /// Threads of the host before any LibTorch work (the CLI: 1; a Python interpreter may have
  /// fork-safe ones of its own, such as numpy's BLAS server). More threads than these at a
  /// run's start mean LibTorch's OpenMP pool has started, and a forked run would deadlock.
  int64_t host_threads = 1;
};

/// Threads of this process now (a fork copies only the calling one).
int64_t process_threads();

enum class JobState { kFinished, kResumable, kFresh };

/// What `<out>/runs/<job>` holds now.
JobState job_state(const std::string& out_dir, const Job& job);

struct JobOutcome {
  std::string run;       ///< run name
  bool ok = false;       ///< finished (now or before)
  bool skipped = false;  ///< was already finished
  std::string message;   ///< failure reason, with the log to read
};

/// Runs `jobs` in `out_dir` (runs/ and logs/ below it), students after their teacher; a failed
/// teacher marks its students failed without running them. Prints one line per event.
std::vector<JobOutcome> run_jobs(const std::vector<Job>& jobs, const std::string& out_dir,
                                 const RunnerOptions& options);

/// What `job` asks of execute_run now: a new run in `<out>/runs/<job>`, or its continuation.
distill::RunRequest job_request(const Job& job, const std::string& out_dir,
                                const RunnerOptions& options);

}  // namespace mmkd::study
