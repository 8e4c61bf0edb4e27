#include "mmkd/study/job_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

#include "mmkd/core/error.h"
#include "mmkd/core/interrupt.h"
#include "mmkd/core/thread_budget.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::study {

namespace fs = std::filesystem;

namespace {

train::RunDir run_dir(const std::string& out_dir, const Job& job) {
  return train::study_run_dir(out_dir, job.run_name());
}

std::string log_path(const std::string& out_dir, const Job& job) {
  return out_dir + "/logs/" + job.run_name() + ".log";
}

/// One run at a time follows the free cores (0); several share the cores evenly.
int64_t threads_per_job(const RunnerOptions& options) {
  if (options.threads > 0 || options.jobs == 1) return options.threads;
  return std::max<int64_t>(1, usable_cores() / options.jobs);
}

/// Runs `request` in a child process, its output appended to `log` (or inherited). The child dies
/// with us, so a killed study leaves no orphan runs behind (their checkpoints make them
/// resumable); its own process keeps runs apart (threads, allocator, a crash).
pid_t start_run(const distill::RunRequest& request, const std::string& log, bool inherit,
                int64_t host_threads) {
  // A forked child has only the forking thread: an OpenMP pool the parent had started would
  // deadlock the child's first parallel region, so the study must not have one yet.
  const int64_t threads = process_threads();
  MMKD_CHECK(threads <= host_threads, "study: runs are started by fork() and need a parent ",
             "without LibTorch's thread pool, but this process has ", threads, " threads (",
             host_threads,
             " before any LibTorch work; the OpenMP pool, once used, stays); start "
             "the study before other LibTorch work in this process, or run it with `mmkd study`");
  std::cout.flush();
  std::cerr.flush();
  const pid_t parent = getpid();
  const pid_t pid = fork();
  MMKD_CHECK(pid >= 0, "study: could not start run ", request.run_dir, " (fork failed)");
  if (pid != 0) return pid;
  // The run is a plain C++ process: a host's interrupt check (Python's) and signal handlers
  // would leave it deaf to SIGINT and SIGTERM.
  set_interrupt_check(nullptr);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);  // the study died before prctl took effect
  if (!inherit) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) _exit(126);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  int status = 0;
  try {
    distill::execute_run(request);
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    status = 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    status = 1;
  }
  std::cout.flush();
  std::cerr.flush();
  _exit(status);  // not exit(): the parent's atexit handlers and static objects are not ours
}

/// When the host interrupts the study, its runs end too (SIGTERM: each keeps its last
/// checkpoint) before Interrupted propagates; the study resumes them when started again.
void stop_if_interrupted(const std::map<pid_t, size_t>& running) {
  try {
    check_interrupt();
  } catch (const Interrupted&) {
    for (const auto& [pid, job] : running) kill(pid, SIGTERM);
    for (const auto& [pid, job] : running) waitpid(pid, nullptr, 0);
    throw;
  }
}

std::string format_seconds(double seconds) {
  std::ostringstream out;
  const auto s = static_cast<int64_t>(seconds);
  if (s >= 60) out << s / 60 << "m";
  out << std::setw(s >= 60 ? 2 : 1) << std::setfill('0') << s % 60 << "s";
  return out.str();
}

std::string result_line(const train::RunDir& dir) {
  const auto metrics = train::RunMetrics::read(dir);
  if (!metrics) return "";
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << "acc7 "
      << metrics->test_score("accuracy").value_or(0.0) << ", F1 "
      << metrics->test_score("f1_weighted").value_or(0.0);
  return out.str();
}

}  // namespace

int64_t process_threads() {
  int64_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++count;
  return count;
}

JobState job_state(const std::string& out_dir, const Job& job) {
  const train::RunDir dir = run_dir(out_dir, job);
  if (dir.finished()) return JobState::kFinished;
  if (dir.resumable()) return JobState::kResumable;
  return JobState::kFresh;
}

distill::RunRequest job_request(const Job& job, const std::string& out_dir,
                                const RunnerOptions& options) {
  distill::RunRequest request;
  request.distill = !job.teacher.empty();
  request.run_dir = run_dir(out_dir, job).path;
  request.resume = job_state(out_dir, job) == JobState::kResumable;
  if (!request.resume) {
    request.config = job.config;
    request.overrides = job.overrides;
    if (request.distill)
      request.teacher = train::study_run_dir(out_dir, job.teacher_run_name()).path;
  }
  request.threads = threads_per_job(options);
  request.device = options.device;
  return request;
}

std::vector<JobOutcome> run_jobs(const std::vector<Job>& jobs, const std::string& out_dir,
                                 const RunnerOptions& options) {
  MMKD_CHECK(options.jobs >= 1, "--jobs: expected at least 1, got ", options.jobs);
  fs::create_directories(out_dir + "/runs");
  fs::create_directories(out_dir + "/logs");
  const bool inherit = options.show_output && options.jobs == 1;
  std::vector<JobOutcome> outcomes(jobs.size());
  std::map<std::string, size_t> index;  // run name -> job
  for (size_t i = 0; i < jobs.size(); ++i) index[jobs[i].run_name()] = i;

  enum class Status { kWaiting, kRunning, kOk, kFailed };
  std::vector<Status> status(jobs.size(), Status::kWaiting);
  const size_t total = jobs.size();
  const auto prefix = [&](size_t i) {
    size_t ended = 0;
    for (const auto s : status) ended += s == Status::kOk || s == Status::kFailed;
    std::ostringstream out;
    out << "study [" << ended << "/" << total << " ended] " << jobs[i].run_name() << ": ";
    return out.str();
  };
  for (size_t i = 0; i < jobs.size(); ++i) {
    outcomes[i].run = jobs[i].run_name();
    if (job_state(out_dir, jobs[i]) == JobState::kFinished) {
      status[i] = Status::kOk;
      outcomes[i].ok = outcomes[i].skipped = true;
      std::cerr << prefix(i) << "finished before, skipped ("
                << result_line(run_dir(out_dir, jobs[i])) << ")\n";
    }
  }

  std::map<pid_t, size_t> running;
  std::map<pid_t, std::chrono::steady_clock::time_point> started;
  while (true) {
    stop_if_interrupted(running);
    // A job may start when its teacher has finished; a failed teacher fails its students.
    for (size_t i = 0; i < jobs.size() && static_cast<int64_t>(running.size()) < options.jobs;
         ++i) {
      if (status[i] != Status::kWaiting) continue;
      if (!jobs[i].teacher.empty()) {
        const std::string teacher = jobs[i].teacher_run_name();
        Status teacher_status = Status::kOk;
        if (index.count(teacher)) {
          teacher_status = status[index[teacher]];
        } else if (!train::study_run_dir(out_dir, teacher).finished()) {
          teacher_status = Status::kFailed;
        }
        if (teacher_status == Status::kFailed) {
          status[i] = Status::kFailed;
          outcomes[i].message = "its teacher " + teacher + " did not finish";
          std::cerr << prefix(i) << "not run: " << outcomes[i].message << "\n";
          continue;
        }
        if (teacher_status != Status::kOk) continue;
      }
      const bool resume = job_state(out_dir, jobs[i]) == JobState::kResumable;
      const distill::RunRequest request = job_request(jobs[i], out_dir, options);
      std::ofstream(log_path(out_dir, jobs[i]), std::ios::app)
          << "$ " << distill::command_line(request) << "\n";
      // Said before the run starts and in one write: a run that shares our stderr (one job at a
      // time) would otherwise print its first lines into the middle of this one.
      std::cerr << prefix(i) + (resume ? "resumed" : "started") +
                       (inherit ? "" : " (log: " + log_path(out_dir, jobs[i]) + ")") + "\n";
      const pid_t pid =
          start_run(request, log_path(out_dir, jobs[i]), inherit, options.host_threads);
      running[pid] = i;
      started[pid] = std::chrono::steady_clock::now();
      status[i] = Status::kRunning;
    }
    if (running.empty()) break;
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        stop_if_interrupted(running);
        continue;
      }
      MMKD_FAIL("study: waiting for runs failed");
    }
    if (!running.count(pid)) continue;
    const size_t i = running[pid];
    running.erase(pid);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started[pid]).count();
    const bool ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
                    job_state(out_dir, jobs[i]) == JobState::kFinished;
    status[i] = ok ? Status::kOk : Status::kFailed;
    outcomes[i].ok = ok;
    if (ok) {
      std::cerr << prefix(i) << "done in " << format_seconds(seconds) << " ("
                << result_line(run_dir(out_dir, jobs[i])) << ")\n";
    } else {
      outcomes[i].message =
          "failed (exit " +
          std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus)) +
          "); see " + (inherit ? std::string("its output above") : log_path(out_dir, jobs[i]));
      std::cerr << prefix(i) << outcomes[i].message << "\n";
    }
  }
  return outcomes;
}

}  // namespace mmkd::study
