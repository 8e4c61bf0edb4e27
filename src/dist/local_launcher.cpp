#include "mmkd/dist/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "mmkd/core/environment.h"
#include "mmkd/core/error.h"

namespace mmkd::dist {

namespace {

volatile sig_atomic_t g_forward_signal = 0;

void remember_signal(int signal) { g_forward_signal = signal; }

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

[[noreturn]] void exec_rank(int64_t rank, int64_t nproc, int64_t port,
                            const std::vector<std::string>& arguments) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<std::string> args = {"mmkd"};
  args.insert(args.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  std::cerr << "rank " << rank << ": cannot start /proc/self/exe: " << std::strerror(errno) << "\n";
  _exit(127);
}

/// SIGTERM to every rank still running, SIGKILL to those left after `grace_seconds`.
void stop_all(std::map<pid_t, int64_t>& running, int grace_seconds) {
  for (const auto& [pid, rank] : running) kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
  while (!running.empty() && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      running.erase(pid);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  for (const auto& [pid, rank] : running) kill(pid, SIGKILL);
  for (const auto& [pid, rank] : running) waitpid(pid, nullptr, 0);
  running.clear();
}

}  // namespace

int64_t free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  MMKD_CHECK(fd >= 0, "--nproc: cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  close(fd);
  MMKD_CHECK(ok, "--nproc: cannot find a free port on 127.0.0.1: ", std::strerror(errno));
  return ntohs(address.sin_port);
}

int run_local_ranks(int64_t nproc, const std::vector<std::string>& arguments, int grace_seconds) {
  MMKD_CHECK(nproc >= 1, "--nproc ", nproc, ": expected at least 1 rank");
  const auto inherited = env_int(env_or_process({}), "MASTER_PORT", 1);
  const int64_t port = inherited ? *inherited : free_local_port();
  struct sigaction forward {};
  forward.sa_handler = remember_signal;
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGTERM, &forward, nullptr);

  std::map<pid_t, int64_t> running;
  for (int64_t rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    MMKD_CHECK(pid >= 0, "--nproc: cannot start rank ", rank, ": ", std::strerror(errno));
    if (pid == 0) exec_rank(rank, nproc, port, arguments);
    running.emplace(pid, rank);
    std::cerr << "rank " << rank << ": pid " << pid << "\n";
  }
  while (!running.empty()) {
    if (g_forward_signal != 0) {
      for (const auto& [pid, rank] : running) kill(pid, g_forward_signal);
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const int64_t rank = it->second;
    running.erase(it);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    std::cerr << "error: rank " << rank << " (pid " << pid << ") " << how_it_ended(status)
              << (running.empty() ? "" : "; stopping the other ranks") << "\n";
    stop_all(running, grace_seconds);
    return 1;
  }
  return 0;
}

}  // namespace mmkd::dist
