#include "mmkd/dist/dist_env.h"

#include <cstdlib>
#include <optional>

#include "mmkd/core/error.h"

namespace mmkd::dist {

namespace {

std::optional<int64_t> read_int(const std::function<const char*(const char*)>& lookup,
                                const char* name, int64_t lowest) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  MMKD_CHECK(*end == '\0' && value >= lowest, "environment variable ", name, "='", text,
             "': expected an integer >= ", lowest);
  return value;
}

}  // namespace

std::string DistEnv::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (rendezvous " +
         master_addr + ":" + std::to_string(master_port) + ")";
}

DistEnv dist_env_from(const std::function<const char*(const char*)>& lookup_or_null) {
  const auto lookup = lookup_or_null ? lookup_or_null
                                     : std::function<const char*(const char*)>(
                                           [](const char* name) { return std::getenv(name); });
  DistEnv env;
  const auto rank = read_int(lookup, "RANK", 0);
  const auto world = read_int(lookup, "WORLD_SIZE", 1);
  if (!rank && !world) return env;
  MMKD_CHECK(rank && world, "environment: ", rank ? "RANK" : "WORLD_SIZE", " is set but ",
             rank ? "WORLD_SIZE" : "RANK",
             " is not; a distributed run needs both (torchrun sets them)");
  MMKD_CHECK(*rank < *world, "environment: RANK=", *rank, " but WORLD_SIZE=", *world,
             ": ranks are 0..WORLD_SIZE-1");
  env.rank = *rank;
  env.world_size = *world;
  env.local_rank = read_int(lookup, "LOCAL_RANK", 0).value_or(0);
  if (const char* addr = lookup("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  }
  env.master_port = read_int(lookup, "MASTER_PORT", 1).value_or(env.master_port);
  if (const char* agent = lookup("TORCHELASTIC_USE_AGENT_STORE")) {
    env.agent_store = std::string(agent) == "True" || std::string(agent) == "1";
  }
  MMKD_CHECK(env.master_port <= 65535, "environment variable MASTER_PORT=", env.master_port,
             ": expected a port 1..65535");
  return env;
}

}  // namespace mmkd::dist
