// `mmkd train --nproc N`: the ranks of a one-machine distributed run started by mmkd itself,
// with the variables torchrun would set, and stopped together when one of them fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmkd::dist {

/// A free TCP port on the loopback interface (for MASTER_PORT).
int64_t free_local_port();

/// Runs this executable with `arguments` (argv[1..], without --nproc) as ranks 0..nproc-1 on this
/// machine (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT free or inherited)
/// and waits for them. When a rank exits non-zero or is killed, says which and how, stops the
/// others (SIGTERM, then SIGKILL after `grace_seconds`) and returns 1; 0 when all succeed.
/// SIGINT and SIGTERM received meanwhile are passed on to every rank.
int run_local_ranks(int64_t nproc, const std::vector<std::string>& arguments,
                    int grace_seconds = 10);

}  // namespace mmkd::dist
