#include "mmkd/dist/process_group.h"

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"

// c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev), which neither LibTorch
// stack ships; without them this file builds a process group that refuses to start.
#if __has_include(<gloo/algorithm.h>)
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#define MMKD_HAS_GLOO 1
#else
#define MMKD_HAS_GLOO 0
#endif

namespace mmkd::dist {

namespace {

std::unique_ptr<ProcessGroup> g_world;

/// The first line where two texts differ, for a refusal that says what differs.
std::string first_difference(const std::string& a, const std::string& b, int64_t rank) {
  std::istringstream left(a), right(b);
  std::string l, r;
  for (int line = 1;; ++line) {
    const bool more_left = static_cast<bool>(std::getline(left, l));
    const bool more_right = static_cast<bool>(std::getline(right, r));
    if (!more_left && !more_right) return "";
    if (!more_left || !more_right || l != r) {
      return "line " + std::to_string(line) + ": rank 0 has '" + (more_left ? l : "") + "', rank " +
             std::to_string(rank) + " '" + (more_right ? r : "") + "'";
    }
  }
}

/// Ends the process when a blocking step outlives its limit. c10d's own timeouts come first and
/// say more; this catches what they miss, such as a TCPStore of another PyTorch version that
/// never answers (torchrun's agent from 2.x with a rank built on 1.13).
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds limit, std::string message)
      : thread_([this, limit, message = std::move(message)] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_signal_.wait_for(lock, limit, [this] { return done_; })) {
            std::cerr << "error: " << message << std::endl;
            std::_Exit(1);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_signal_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_signal_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

bool gloo_available() { return MMKD_HAS_GLOO != 0; }

#if MMKD_HAS_GLOO

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

ProcessGroup::ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout)
    : env_(env), timeout_(timeout), impl_(std::make_unique<Impl>()) {
  const std::string where = "rank " + std::to_string(env.rank) + " of " +
                            std::to_string(env.world_size) + ": rendezvous at " + env.master_addr +
                            ":" + std::to_string(env.master_port);
  const Watchdog watchdog(
      timeout + std::chrono::seconds(30),
      where + " did not complete within " + std::to_string(timeout.count() / 1000 + 30) +
          " s; every rank must start, and under torchrun its PyTorch must be the version of "
          "mmkd's LibTorch (" +
          compat::torch_version() + ")");
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0 && !env.agent_store;
    options.numWorkers = static_cast<std::size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    // All ranks on this machine (MASTER_ADDR is loopback): talk over loopback. Otherwise each
    // rank uses the interface its host name resolves to, as torch.distributed does.
    const bool local = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
    gloo_options->devices.push_back(
        local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
              : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank,
                                                              env.world_size, gloo_options);
  } catch (const c10::Error& e) {
    MMKD_FAIL(where, " failed within ", timeout.count() / 1000, " s: ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    MMKD_FAIL(where, " failed within ", timeout.count() / 1000, " s: ", e.what());
  }
}

namespace {

template <typename Work>
void wait_for(const Work& work, const DistEnv& env, std::chrono::milliseconds timeout,
              const std::string& what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    MMKD_FAIL("rank ", env.rank, ": ", what, " across ", env.world_size,
              " ranks failed (another rank stopped, or did not answer within ",
              timeout.count() / 1000,
              " s): ", c10_error ? c10_error->what_without_backtrace() : e.what());
  }
}

/// c10d takes one tensor per device: any number of tensors travel as one flat buffer.
std::vector<torch::Tensor> flat_buffer(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> pieces;
  for (const auto& t : tensors) pieces.push_back(t.reshape(-1));
  return {torch::cat(pieces)};
}

void unflatten(const torch::Tensor& buffer, std::vector<torch::Tensor>& tensors) {
  int64_t offset = 0;
  for (auto& t : tensors) {
    t.copy_(buffer.narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
}

}  // namespace

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (tensors.empty()) return;
  auto buffer = flat_buffer(tensors);
  wait_for(impl_->gloo->allreduce(buffer), env_, timeout_, what);
  unflatten(buffer[0], tensors);
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int64_t root,
                             const std::string& what) {
  if (tensors.empty()) return;
  c10d::BroadcastOptions options;
  options.rootRank = root;
  auto buffer = flat_buffer(tensors);
  wait_for(impl_->gloo->broadcast(buffer, options), env_, timeout_, what);
  unflatten(buffer[0], tensors);
}

void ProcessGroup::check_same(const std::string& what, const std::string& value,
                              const std::string& cause, const std::string& remedy) {
  const auto key = [&](int64_t rank) { return "mmkd/" + what + "/" + std::to_string(rank); };
  std::string differing;
  const Watchdog watchdog(timeout_ + std::chrono::seconds(30),
                          "rank " + std::to_string(env_.rank) + ": comparing the " + what +
                              " of the ranks did not complete");
  try {
    impl_->store->set(key(env_.rank), std::vector<uint8_t>(value.begin(), value.end()));
    const auto lead = impl_->store->get(key(0));
    const std::string reference(lead.begin(), lead.end());
    for (int64_t r = 1; r < env_.world_size; ++r) {
      const auto other = impl_->store->get(key(r));
      const std::string text(other.begin(), other.end());
      if (text != reference) {
        differing += (differing.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) +
                     " (" + first_difference(reference, text, r) + ")";
      }
    }
  } catch (const c10::Error& e) {
    MMKD_FAIL("rank ", env_.rank, ": comparing the ", what,
              " of the ranks failed: ", e.what_without_backtrace());
  }
  MMKD_CHECK(differing.empty(), "rank ", env_.rank, ": ", cause, " ", what, ": ", differing, "; ",
             remedy);
}

#else

struct ProcessGroup::Impl {};

ProcessGroup::ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout)
    : env_(env), timeout_(timeout) {
  MMKD_FAIL(env.describe(), ": this mmkd was built without Gloo's headers, so it cannot run ",
            "distributed; install libgloo-dev and rebuild (bash scripts/setup)");
}

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>&, const std::string&) {}
void ProcessGroup::broadcast(std::vector<torch::Tensor>&, int64_t, const std::string&) {}
void ProcessGroup::check_same(const std::string&, const std::string&, const std::string&,
                              const std::string&) {}

#endif

ProcessGroup::~ProcessGroup() = default;

ProcessGroup* world() { return g_world.get(); }

void init_world(const DistEnv& env, std::chrono::milliseconds timeout) {
  if (!env.distributed()) return;
  g_world = std::make_unique<ProcessGroup>(env, timeout);
}

bool is_lead() { return g_world == nullptr || g_world->rank() == 0; }

std::ostream& lead_log() {
  static std::ostream dropped(nullptr);  // no buffer: every write is discarded
  return is_lead() ? std::cerr : dropped;
}

torch::Tensor sum_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                            const torch::Tensor& stats) {
  std::vector<torch::Tensor> tensors;
  for (const auto& p : parameters) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    tensors.push_back(p.mutable_grad());
  }
  // One collective: the statistics ride along in float32 beside the gradients.
  auto sums = stats.to(torch::kFloat32);
  tensors.push_back(sums);
  group.all_reduce_sum(tensors, "the gradient all-reduce");
  return sums.to(torch::kFloat64);
}

}  // namespace mmkd::dist
