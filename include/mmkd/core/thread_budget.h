// How many intra-op threads a run should use on a machine it may share. With more threads than
// free cores, every parallel region's barrier waits for a thread the OS has descheduled, and an
// epoch runs tens of times slower; with one thread per free core it degrades in proportion.
#pragma once

#include <cstdint>
#include <string>

namespace mmkd {

/// CPU time counters, in clock ticks.
struct CpuTimes {
  double machine_busy = 0;   ///< all CPUs, every state but idle and iowait (/proc/stat)
  double machine_total = 0;  ///< all CPUs, every state
  double self = 0;           ///< this process, user + system, every thread (/proc/self/stat)
};

/// Parses /proc/stat's aggregate "cpu" line; throws mmkd::Error naming `source` otherwise.
CpuTimes parse_proc_stat(const std::string& text, const std::string& source);
/// This process's utime + stime from /proc/self/stat's text.
double parse_self_stat(const std::string& text, const std::string& source);
/// The counters now (zeros where /proc is not readable).
CpuTimes read_cpu_times();

/// Cores of a `machine_cores`-core machine left free by other processes between two samples:
/// machine_cores minus the cores' worth of time others were busy (never below 0).
double free_cores(const CpuTimes& before, const CpuTimes& after, int64_t machine_cores);

/// Cores this process may run on (affinity mask and cgroup quota).
int64_t usable_cores();

/// The intra-op thread count of a run. With `requested` > 0 it is fixed; with 0 (auto, the
/// default) it follows the cores other processes leave free, sampled every `interval_s`, between
/// 1 and usable_cores(). A change of thread count can change results in the last bits (the order
/// of parallel reductions), so bit-exact runs set a fixed count.
class ThreadBudget {
 public:
  explicit ThreadBudget(int64_t requested, double interval_s = 2.0);

  /// Threads to use now; call often (it samples at most every interval_s) and apply with
  /// torch::set_num_threads when it changes.
  int64_t update();
  int64_t threads() const { return threads_; }
  bool automatic() const { return requested_ == 0; }

 private:
  int64_t sample();

  int64_t requested_;
  double interval_s_;
  int64_t machine_cores_;
  int64_t usable_;
  int64_t threads_;
  CpuTimes last_;
  double last_time_s_;
};

}  // namespace mmkd
