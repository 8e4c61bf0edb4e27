#include "mmkd/core/thread_budget.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Cores a cgroup v2 quota ("200000 100000" in cpu.max) allows, or 0 when unlimited.
int64_t cgroup_quota_cores() {
  std::istringstream in(read_text("/sys/fs/cgroup/cpu.max"));
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::stod(quota) / period)));
}

}  // namespace

CpuTimes parse_proc_stat(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string label;
  in >> label;
  MMKD_CHECK(label == "cpu", source, ": expected the aggregate 'cpu' line first, got '", label,
             "'");
  // user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
  double fields[8] = {};
  int read = 0;
  while (read < 8 && in >> fields[read]) ++read;
  MMKD_CHECK(read >= 4, source, ": the 'cpu' line has ", read,
             " counters, expected at least 4 (user nice system idle)");
  CpuTimes t;
  for (int i = 0; i < 8; ++i) t.machine_total += fields[i];
  t.machine_busy = t.machine_total - fields[3] - fields[4];
  return t;
}

double parse_self_stat(const std::string& text, const std::string& source) {
  // The command name (field 2) is parenthesised and may hold spaces: count from the last ')'.
  const auto close = text.rfind(')');
  MMKD_CHECK(close != std::string::npos, source, ": no ')' after the command name");
  std::istringstream in(text.substr(close + 1));
  std::string field;
  // Fields 3..13, then utime (14) and stime (15).
  for (int i = 3; i <= 13; ++i) in >> field;
  double utime = 0, stime = 0;
  MMKD_CHECK(static_cast<bool>(in >> utime >> stime), source, ": too few fields");
  return utime + stime;
}

CpuTimes read_cpu_times() {
  CpuTimes t;
  try {
    t = parse_proc_stat(read_text("/proc/stat"), "/proc/stat");
    t.self = parse_self_stat(read_text("/proc/self/stat"), "/proc/self/stat");
  } catch (const Error&) {
    return {};  // no /proc: the budget stays where it is
  }
  return t;
}

double free_cores(const CpuTimes& before, const CpuTimes& after, int64_t machine_cores) {
  const double total = after.machine_total - before.machine_total;
  if (total <= 0 || machine_cores <= 0) return static_cast<double>(machine_cores);
  const double per_core = total / static_cast<double>(machine_cores);  // elapsed ticks
  const double others =
      std::max(0.0, (after.machine_busy - before.machine_busy) - (after.self - before.self));
  return std::max(0.0, static_cast<double>(machine_cores) - others / per_core);
}

int64_t usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int64_t cores = sched_getaffinity(0, sizeof(set), &set) == 0
                      ? CPU_COUNT(&set)
                      : static_cast<int64_t>(std::thread::hardware_concurrency());
  if (const int64_t quota = cgroup_quota_cores(); quota > 0) cores = std::min(cores, quota);
  return std::max<int64_t>(1, cores);
}

ThreadBudget::ThreadBudget(int64_t requested, double interval_s)
    : requested_(requested),
      interval_s_(interval_s),
      machine_cores_(std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN))),
      usable_(usable_cores()),
      threads_(requested > 0 ? requested : usable_),
      last_(read_cpu_times()),
      last_time_s_(steady_seconds()) {
  MMKD_CHECK(requested >= 0, "threads: expected 0 (auto) or a positive count, got ", requested);
  if (!automatic()) return;
  // A first look before the run starts, so it does not begin with a thread per core beside a
  // busy co-runner.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  sample();
}

int64_t ThreadBudget::update() {
  if (!automatic() || steady_seconds() - last_time_s_ < interval_s_) return threads_;
  return sample();
}

int64_t ThreadBudget::sample() {
  const CpuTimes now = read_cpu_times();
  const double free = free_cores(last_, now, machine_cores_);
  last_ = now;
  last_time_s_ = steady_seconds();
  // A core counts as free when others left at least half of it.
  const auto whole = static_cast<int64_t>(std::floor(free + 0.5));
  threads_ = std::clamp<int64_t>(whole, 1, usable_);
  return threads_;
}

}  // namespace mmkd
