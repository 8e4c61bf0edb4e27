// The thread budget: /proc parsing against hand-written counters, the free-core arithmetic, and
// one live measurement with a busy co-runner started by the test.
#include "mmkd/core/thread_budget.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "mmkd/core/error.h"

namespace mmkd {
namespace {

TEST(ThreadBudget, ParsesProcStatAndSelfStat) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const auto t = parse_proc_stat("cpu  100 5 50 800 10 1 2 3 7 0\ncpu0 1 2 3 4\n", "stat");
  EXPECT_DOUBLE_EQ(t.machine_total, 971);       // the first eight counters
  EXPECT_DOUBLE_EQ(t.machine_busy, 971 - 810);  // without idle and iowait
  // A command name with spaces and parentheses; utime 250 and stime 50 are fields 14 and 15.
  EXPECT_DOUBLE_EQ(
      parse_self_stat("42 (my (odd) cmd) S 1 1 1 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 3", "self"),
      300);
  try {
    parse_proc_stat("intr 1 2 3", "/proc/stat");
    FAIL() << "accepted a file without the cpu line";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/stat: expected the aggregate 'cpu' line"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_proc_stat("cpu 1 2", "stat"), Error);
  EXPECT_THROW(parse_self_stat("42 (cmd) S 1 2", "self"), Error);
}

TEST(ThreadBudget, FreeCoresSubtractOnlyOtherProcesses) {
  // Two cores, one second at 100 ticks per core: 200 ticks elapsed in all.
  const CpuTimes before{0, 0, 0};
  // Others kept one core busy (100 ticks), this process used 80: one core is left for us.
  EXPECT_DOUBLE_EQ(free_cores(before, CpuTimes{180, 200, 80}, 2), 1.0);
  // Only this process was busy: both cores are free, however much it used.
  EXPECT_DOUBLE_EQ(free_cores(before, CpuTimes{190, 200, 190}, 2), 2.0);
  // No time elapsed: nothing measured, every core counts as free.
  EXPECT_DOUBLE_EQ(free_cores(before, before, 2), 2.0);
}

TEST(ThreadBudget, FixedCountsStayAndBadCountsAreRefused) {
  ThreadBudget fixed(3);
  EXPECT_EQ(fixed.threads(), 3);
  EXPECT_EQ(fixed.update(), 3);
  EXPECT_FALSE(fixed.automatic());
  EXPECT_THROW(ThreadBudget(-1), Error);
  const ThreadBudget automatic(0);
  EXPECT_GE(automatic.threads(), 1);
  EXPECT_LE(automatic.threads(), usable_cores());
}

TEST(ThreadBudget, SeesABusyCoRunner) {
  const int64_t cores = sysconf(_SC_NPROCESSORS_ONLN);
  const CpuTimes before = read_cpu_times();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    volatile uint64_t spin = 0;
    while (std::chrono::steady_clock::now() < end) ++spin;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  const CpuTimes after = read_cpu_times();
  // The child kept one core busy for the whole interval (this process only waited).
  EXPECT_LT(free_cores(before, after, cores), static_cast<double>(cores) - 0.5);
}

}  // namespace
}  // namespace mmkd
