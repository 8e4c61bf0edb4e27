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
#include <thread>

#include <nlohmann/json.hpp>

#include "mmkd/core/error.h"

namespace mmkd::study {

namespace fs = std::filesystem;

namespace {

std::string run_dir(const std::string& out_dir, const Job& job) {
  return out_dir + "/runs/" + job.run_name();
}

std::string log_path(const std::string& out_dir, const Job& job) {
  return out_dir + "/logs/" + job.run_name() + ".log";
}

int64_t threads_per_job(const RunnerOptions& options) {
  if (options.threads > 0) return options.threads;
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / options.jobs);
}

/// Starts `argv` with its output appended to `log` (or inherited); the child dies with us, so a
/// killed study leaves no orphan runs behind (their checkpoints make them resumable).
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, bool inherit) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  MMKD_CHECK(pid >= 0, "study: could not start ", argv[0], " (fork failed)");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the study died before prctl took effect
    if (!inherit) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0) _exit(126);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::string format_seconds(double seconds) {
  std::ostringstream out;
  const auto s = static_cast<int64_t>(seconds);
  if (s >= 60) out << s / 60 << "m";
  out << std::setw(s >= 60 ? 2 : 1) << std::setfill('0') << s % 60 << "s";
  return out.str();
}

std::string result_line(const std::string& dir) {
  std::ifstream in(dir + "/metrics.json");
  const nlohmann::json m = nlohmann::json::parse(in, nullptr, false);
  if (m.is_discarded()) return "";
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << "acc7 "
      << m.value("/test/classification/accuracy"_json_pointer, 0.0) << ", F1 "
      << m.value("/test/classification/f1_weighted"_json_pointer, 0.0);
  return out.str();
}

}  // namespace

JobState job_state(const std::string& out_dir, const Job& job) {
  const std::string dir = run_dir(out_dir, job);
  if (fs::exists(dir + "/metrics.json")) return JobState::kFinished;
  if (fs::exists(dir + "/last.pt")) return JobState::kResumable;
  return JobState::kFresh;
}

std::vector<std::string> job_command(const Job& job, const std::string& out_dir,
                                     const RunnerOptions& options) {
  const std::string dir = run_dir(out_dir, job);
  std::vector<std::string> argv = {options.executable, job.teacher.empty() ? "train" : "distill"};
  if (job_state(out_dir, job) == JobState::kResumable) {
    argv.insert(argv.end(), {"--resume", dir});
  } else {
    argv.insert(argv.end(), {"--config", job.config, "--run", dir});
    for (const auto& o : job.overrides) argv.insert(argv.end(), {"--set", o});
    if (!job.teacher.empty())
      argv.insert(argv.end(), {"--teacher", out_dir + "/runs/" + job.teacher_run_name()});
  }
  argv.insert(argv.end(), {"--threads", std::to_string(threads_per_job(options))});
  if (!options.device.empty()) argv.insert(argv.end(), {"--device", options.device});
  return argv;
}

std::vector<JobOutcome> run_jobs(const std::vector<Job>& jobs, const std::string& out_dir,
                                 const RunnerOptions& options) {
  MMKD_CHECK(options.jobs >= 1, "--jobs: expected at least 1, got ", options.jobs);
  MMKD_CHECK(!options.executable.empty() && fs::exists(options.executable),
             "study: the mmkd executable '", options.executable, "' does not exist");
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
    // A job may start when its teacher has finished; a failed teacher fails its students.
    for (size_t i = 0; i < jobs.size() && static_cast<int64_t>(running.size()) < options.jobs;
         ++i) {
      if (status[i] != Status::kWaiting) continue;
      if (!jobs[i].teacher.empty()) {
        const std::string teacher = jobs[i].teacher_run_name();
        Status teacher_status = Status::kOk;
        if (index.count(teacher)) {
          teacher_status = status[index[teacher]];
        } else if (!fs::exists(out_dir + "/runs/" + teacher + "/metrics.json")) {
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
      const auto argv = job_command(jobs[i], out_dir, options);
      {
        std::ofstream log(log_path(out_dir, jobs[i]), std::ios::app);
        log << "$";
        for (const auto& a : argv) log << " " << a;
        log << "\n";
      }
      const pid_t pid = spawn(argv, log_path(out_dir, jobs[i]), inherit);
      running[pid] = i;
      started[pid] = std::chrono::steady_clock::now();
      status[i] = Status::kRunning;
      std::cerr << prefix(i) << (resume ? "resumed" : "started")
                << (inherit ? "" : " (log: " + log_path(out_dir, jobs[i]) + ")") << "\n";
    }
    if (running.empty()) break;
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
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
