#include "mmkd/dist/dist_env.h"

#include "mmkd/core/environment.h"
#include "mmkd/core/error.h"

namespace mmkd::dist {

std::string DistEnv::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (rendezvous " +
         master_addr + ":" + std::to_string(master_port) + ")";
}

DistEnv dist_env_from(const std::function<const char*(const char*)>& lookup_or_null) {
  const auto lookup = env_or_process(lookup_or_null);
  DistEnv env;
  const auto rank = env_int(lookup, "RANK", 0);
  const auto world = env_int(lookup, "WORLD_SIZE", 1);
  if (!rank && !world) return env;
  MMKD_CHECK(rank && world, "environment: ", rank ? "RANK" : "WORLD_SIZE", " is set but ",
             rank ? "WORLD_SIZE" : "RANK",
             " is not; a distributed run needs both (torchrun sets them)");
  MMKD_CHECK(*rank < *world, "environment: RANK=", *rank, " but WORLD_SIZE=", *world,
             ": ranks are 0..WORLD_SIZE-1");
  env.rank = *rank;
  env.world_size = *world;
  env.local_rank = env_int(lookup, "LOCAL_RANK", 0).value_or(0);
  if (const char* addr = lookup("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  }
  env.master_port = env_int(lookup, "MASTER_PORT", 1).value_or(env.master_port);
  if (const char* agent = lookup("TORCHELASTIC_USE_AGENT_STORE")) {
    env.agent_store = std::string(agent) == "True" || std::string(agent) == "1";
  }
  MMKD_CHECK(env.master_port <= 65535, "environment variable MASTER_PORT=", env.master_port,
             ": expected a port 1..65535");
  return env;
}

}  // namespace mmkd::dist
