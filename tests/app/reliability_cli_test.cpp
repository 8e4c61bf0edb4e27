// The promises of docs/reliability.md through the mmkd CLI: a full disk mid-run, non-finite
// validation outputs and non-finite predictions each end the command with one clear error.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../support/cli.h"
#include "../support/full_disk.h"

namespace mmkd::testing {
namespace {

namespace fs = std::filesystem;

const char* kTiny =
    " --set data.preset=tiny --set model.d_model=8 --set model.layers=1 --set model.heads=2"
    " --set train.threads=1 --set train.progress=false";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Fills the file system of `dir` to the last `spare` bytes with one file, `dir`/filler.
void fill_disk(const std::string& dir, uintmax_t spare) {
  const std::string filler = dir + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string chunk(1 << 16, '\0');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  const uintmax_t size = fs::file_size(filler);
  fs::resize_file(filler, size > spare ? size - spare : 0);
}

std::vector<std::string> run_temp_files(const std::string& run) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().filename().string().find(".tmp") != std::string::npos)
      found.push_back(entry.path().filename().string());
  return found;
}

// The disk fills while a resumed run saves its next checkpoint: the command fails with one
// message (no abort), the previous checkpoint and results are byte-identical, nothing
// temporary is left, and once space is freed the same run resumes to the end.
TEST(ReliabilityCli, FullDiskDuringTrainingFailsCleanlyAndTheRunResumes) {
  const SmallTmpfs disk(8u << 20);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string run = disk / "run";
  const std::string config = repo_path("configs/student_5.yaml");
  auto first = run_cli("train --config " + config + kTiny + " --set train.epochs=1 --run " + run);
  ASSERT_EQ(first.status, 0) << first.output;
  const std::string last = read_bytes(run + "/last.pt");
  const std::string metrics = read_bytes(run + "/metrics.json");

  fill_disk(disk.str(), 8192);  // room for config.yaml, not for a checkpoint
  auto full = run_cli("train --resume " + run + " --set train.epochs=2");
  EXPECT_NE(full.status, 0) << full.output;
  EXPECT_NE(full.output.find("error: cannot write '" + run + "/"), std::string::npos)
      << full.output;
  EXPECT_NE(full.output.find(".pt': no space left on device"), std::string::npos) << full.output;
  EXPECT_EQ(full.output.find("terminate"), std::string::npos) << full.output;
  EXPECT_EQ(read_bytes(run + "/last.pt"), last);
  EXPECT_EQ(read_bytes(run + "/metrics.json"), metrics);
  EXPECT_TRUE(run_temp_files(run).empty());

  fs::remove(disk / "filler");
  auto resumed = run_cli("train --resume " + run + " --set train.epochs=2");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming " + run + " after epoch 1"), std::string::npos)
      << resumed.output;
  EXPECT_NE(read_bytes(run + "/metrics.json"), metrics);
}

/// Writes tiny synthetic data whose `split` video features overflow float arithmetic.
bool overflowing_data(const TempDir& dir, const std::string& split, const std::string& out) {
  if (run_command("/usr/bin/python3 -c 'import numpy'").status != 0) return false;
  const std::string plain = dir / "plain.pkl";
  if (run_cli("data synth --preset tiny --out " + plain).status != 0) return false;
  return run_command("/usr/bin/python3 -c \"import pickle,sys; d=pickle.load(open('" + plain +
                     "','rb')); d['" + split + "']['vision'][:]=3e38; pickle.dump(d,open('" + out +
                     "','wb'),protocol=4)\"")
             .status == 0;
}

TEST(ReliabilityCli, NanValidationStopsTheRunBeforeAnyResult) {
  TempDir dir("nan_cli");
  const std::string data = dir / "bad_valid.pkl";
  if (!overflowing_data(dir, "valid", data))
    GTEST_SKIP() << "needs Debian's python3-numpy to write the data";
  const std::string run = dir / "run";
  auto out = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTiny +
                     " --set train.epochs=2 --set data.path=" + data + " --run " + run);
  EXPECT_NE(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("error: epoch 1, validation, batch 1 of "), std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("no checkpoint had been written yet"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(run + "/metrics.json"));
  EXPECT_FALSE(fs::exists(run + "/best.pt"));
}

// Attention takes any sequence length, so this evaluated silently on a different task.
TEST(ReliabilityCli, EvalOnDataOfOtherLengthsIsRefusedNamingBoth) {
  TempDir dir("eval_lengths");
  if (run_command("/usr/bin/python3 -c 'import numpy'").status != 0)
    GTEST_SKIP() << "needs Debian's python3-numpy to write the data";
  const std::string plain = dir / "plain.pkl", shorter = dir / "short.pkl";
  ASSERT_EQ(run_cli("data synth --preset tiny --out " + plain).status, 0);
  ASSERT_EQ(run_command("/usr/bin/python3 -c \"import pickle; d=pickle.load(open('" + plain +
                        "','rb')); d={k: {kk: (vv[:, :10] if kk == 'vision' else vv) for kk, vv "
                        "in v.items() if kk != 'events'} for k, v in d.items()}; "
                        "pickle.dump(d, open('" +
                        shorter + "','wb'), protocol=4)\"")
                .status,
            0);
  auto trained = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTiny +
                         " --set train.epochs=1 --run " + (dir / "run"));
  ASSERT_EQ(trained.status, 0) << trained.output;
  auto out = run_cli("eval --checkpoint " + (dir / "run/best.pt") + " --data " + shorter);
  EXPECT_NE(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("error: " + shorter +
                            ": 'test/vision' has [10,35] (steps, features) "
                            "per sample; " +
                            (dir / "run/best.pt") + " was built for [16,35]"),
            std::string::npos)
      << out.output;
}

TEST(ReliabilityCli, PredictRefusesNonFiniteOutputsNamingTheInput) {
  TempDir dir("nan_predict");
  const std::string data = dir / "bad_test.pkl";
  if (!overflowing_data(dir, "test", data))
    GTEST_SKIP() << "needs Debian's python3-numpy to write the data";
  auto trained = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTiny +
                         " --set train.epochs=1 --run " + (dir / "run"));
  ASSERT_EQ(trained.status, 0) << trained.output;
  auto out = run_cli("predict --checkpoint " + (dir / "run/best.pt") + " --input " + data +
                     " --split test --limit 3");
  EXPECT_NE(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("error: " + data + ": sample 0 (and 2 more) gives non-finite outputs"),
            std::string::npos)
      << out.output;
  EXPECT_EQ(out.output.find("null"), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find("{\"index\""), std::string::npos) << out.output;
}

// CLI11 read "-1" into an unsigned seed as 2^64-1, and negative counts were silently ignored.
TEST(ReliabilityCli, NegativeOrZeroCountsAreRefusedByName) {
  TempDir dir("counts");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"data synth --preset tiny --seed -1 --out " + (dir / "x.pkl"), "--seed"},
      {"train --config " + repo_path("configs/student_5.yaml") + " --threads -2", "--threads"},
      {"study --config " + repo_path("configs/demo.yaml") + " --seeds 0 --dry-run --out " +
           (dir / "s"),
       "--seeds"},
      {"study --config " + repo_path("configs/demo.yaml") + " --jobs 0 --dry-run --out " +
           (dir / "s"),
       "--jobs"},
      {"bench --seed -1", "--seed"}};
  for (const auto& [arguments, option] : cases) {
    const auto out = run_cli(arguments);
    EXPECT_NE(out.status, 0) << arguments << "\n" << out.output;
    EXPECT_NE(out.output.find(option), std::string::npos) << arguments << "\n" << out.output;
  }
  EXPECT_FALSE(fs::exists(dir / "x.pkl"));
  const auto absurd = run_cli("study --config " + repo_path("configs/demo.yaml") +
                              " --seeds 1000000000 --dry-run --out " + (dir / "s"));
  EXPECT_NE(absurd.status, 0);
  EXPECT_NE(absurd.output.find("config key 'study.seeds': expected 1 to 1000"), std::string::npos)
      << absurd.output;
}

// Commands without a run config take --threads straight to LibTorch; 100000 threads on a few
// cores made OpenMP crawl for hours.
TEST(ReliabilityCli, ThreadsFarAboveTheCoresAreRefusedByEveryCommand) {
  for (const std::string command : {"eval --checkpoint none.pt", "latency none",
                                    "bench --no-train --no-inference --no-ceilings"}) {
    const auto out = run_command("timeout 60 " + std::string(MMKD_CLI_PATH) + " " + command +
                                 " --threads 100000");
    EXPECT_NE(out.status, 0) << command << "\n" << out.output;
    EXPECT_NE(out.output.find("error: --threads 100000: 100000 threads on a machine with "),
              std::string::npos)
        << command << "\n"
        << out.output;
  }
}

// Opening a FIFO for reading blocks until a writer comes; `timeout` turns a hang into a
// failure of this test instead of a stuck suite.
TEST(ReliabilityCli, FifoAsDataIsRefusedAtOnce) {
  TempDir dir("fifo");
  const std::string fifo = dir / "data.pkl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto out = run_command("timeout 60 " + std::string(MMKD_CLI_PATH) + " train --config " +
                               repo_path("configs/student_5.yaml") + kTiny +
                               " --set data.path=" + fifo + " --run " + (dir / "run"));
  EXPECT_NE(out.status, 124) << "mmkd blocked on the FIFO";
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.output.find(fifo + ": is a FIFO (named pipe), expected a pickle file"),
            std::string::npos)
      << out.output;
}

}  // namespace
}  // namespace mmkd::testing
