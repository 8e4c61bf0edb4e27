// The ranks of one distributed run, over PyTorch's own engine: c10d's TCPStore for the
// rendezvous and ProcessGroupGloo for the collectives (docs/scale.md). c10d's types stay in the
// .cpp, so a build without Gloo's headers still compiles and refuses distributed runs by name.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "mmkd/dist/dist_env.h"

namespace mmkd::dist {

class ProcessGroup {
 public:
  /// Joins the rendezvous at env.master_addr:master_port (rank 0 hosts it) and connects every
  /// rank; each wait, and each later collective, gives up after `timeout` with an error.
  ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }

  /// Sums each CPU tensor over the ranks, in place. `what` names the operation in errors.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  /// Copies root's tensors to every rank, in place.
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root, const std::string& what);
  /// Every rank publishes `value`; when any differs from rank 0's, every rank throws an
  /// mmkd::Error naming `what`, the ranks that differ and their first differing line; `cause`
  /// says how they came to differ and `remedy` what to do.
  void check_same(
      const std::string& what, const std::string& value,
      const std::string& cause = "the ranks were started with different",
      const std::string& remedy = "every rank must run the same command on the same data");

 private:
  struct Impl;
  DistEnv env_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
};

/// Whether this build can run distributed (LibTorch's c10d with Gloo's headers at build time).
bool gloo_available();

/// The process group of this process, or nullptr in a single-process run.
ProcessGroup* world();
/// Joins the run `env` describes as the process's world (nothing when it is one process).
void init_world(const DistEnv& env, std::chrono::milliseconds timeout);
/// Rank 0, or a single-process run: the process that writes files and prints results.
bool is_lead();
/// std::cerr on the lead process; a stream that drops its output on the other ranks, so that
/// progress is printed once (errors are printed by every rank).
std::ostream& lead_log();

/// Sums the gradients of `parameters` over the ranks with one all-reduce (an undefined gradient
/// counts as zeros and is defined afterwards), together with the float64 `stats` vector, whose
/// sum it returns.
torch::Tensor sum_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                            const torch::Tensor& stats);

}  // namespace mmkd::dist
