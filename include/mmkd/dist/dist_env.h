// Where this process sits in a distributed run, read from the variables torchrun sets (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and `mmkd train --nproc` sets for its ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mmkd::dist {

struct DistEnv {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  /// torchrun's agent already hosts the TCPStore at MASTER_ADDR:MASTER_PORT
  /// (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client.
  bool agent_store = false;

  bool distributed() const { return world_size > 1; }
  /// "rank 1 of 2 (rendezvous 127.0.0.1:29500)".
  std::string describe() const;
};

/// Reads the variables through `lookup` (getenv by default). None set: one process. A partial
/// or inconsistent set (RANK without WORLD_SIZE, RANK >= WORLD_SIZE, a port that is no number)
/// is an mmkd::Error naming the variable.
DistEnv dist_env_from(const std::function<const char*(const char*)>& lookup = nullptr);

}  // namespace mmkd::dist
