// `mmkd bench`: train-step and inference performance of a teacher or student, against the
// machine's measured limits (library: include/mmkd/train/bench.h; how to read: bench/README.md).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "mmkd/core/atomic_file.h"
#include "mmkd/core/config_file.h"
#include "mmkd/core/error.h"
#include "mmkd/data/synthetic.h"
#include "mmkd/distill/distill_objective.h"
#include "mmkd/models/architecture.h"
#include "mmkd/nn/dropout.h"
#include "mmkd/nn/fused_attention.h"
#include "mmkd/train/bench.h"
#include "mmkd/train/run.h"
#include "mmkd/train/trainer.h"

namespace mmkd::app {

namespace {

struct BenchArgs {
  std::string model = "student:5";
  std::string shape = "mosei";
  int64_t batch = 24;
  int threads = 2;
  std::string kd = "none";
  int64_t kd_samples = 0;  // 0: as many as the batch (at least 64)
  std::vector<std::string> kd_sets;
  std::string json;
  int64_t repeats = 5;
  int64_t warmup = 1;
  std::vector<std::string> sets;
  std::string attention = "auto";
  std::string dropout = "auto";
  std::string inference_batches = "1,64";
  bool no_train = false, no_inference = false, no_ceilings = false;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool cuda_graphs = false;
  std::string adam = "auto";
};

/// "teacher:complete", "student:5", or a YAML file with a model: section; then --set overrides.
models::ModelConfig model_config(const std::string& spec, const std::vector<std::string>& sets) {
  YAML::Node root;
  if (std::filesystem::exists(spec)) {
    root = load_config_file(spec);
  } else {
    const auto colon = spec.find(':');
    MMKD_CHECK(colon != std::string::npos, "--model '", spec,
               "': expected teacher:ARCH, student:ARCH or a YAML file "
               "(e.g. teacher:complete, teacher:video, student:5, student:language_audio)");
    const auto role = spec.substr(0, colon);
    MMKD_CHECK(role == "teacher" || role == "student", "--model '", spec,
               "': the role must be teacher or student");
    root["model"]["role"] = role;
    root["model"]["architecture"] = spec.substr(colon + 1);
  }
  for (const auto& s : sets) {
    MMKD_CHECK(s.rfind("model.", 0) == 0, "--set ", s, ": only model.KEY=VALUE is used by bench");
  }
  apply_overrides(root, sets);
  MMKD_CHECK(root["model"], "--model ", spec, ": no model: section");
  return models::parse_model_config(root["model"], "model");
}

models::InputShape input_shape(const std::string& text) {
  if (text == "small") {
    const auto o = data::synth_preset("small");
    models::InputShape shape = models::InputShape::mosei();
    shape.len = {o.len_video, o.len_audio, o.len_text};
    return shape;
  }
  return models::InputShape::parse(text);
}

std::vector<int64_t> parse_batches(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.empty()) continue;
    try {
      out.push_back(std::stoll(part));
    } catch (const std::exception&) {
      MMKD_FAIL("--inference-batches '", text, "': '", part, "' is not a number");
    }
    MMKD_CHECK(out.back() >= 1, "--inference-batches: batch sizes must be >= 1");
  }
  return out;
}

/// The task loss, or distillation from a randomly initialised teacher of the student's
/// configuration (the cost does not depend on what the teacher has learnt). CRD's class lists
/// come from a split of random labels (--kd-samples long, by default as long as the batch), so
/// negatives are drawn as in training and the memory banks are as large as a real training set's.
std::unique_ptr<train::Objective> make_objective(const BenchArgs& args,
                                                 const models::ModelConfig& config,
                                                 const models::MultimodalNet& student) {
  if (args.kd == "none") return std::make_unique<train::TaskObjective>(config);
  MMKD_CHECK(config.role == models::Role::kStudent, "--kd ", args.kd,
             ": distillation trains a student; use --model student:N");
  YAML::Node kd_yaml;
  kd_yaml["method"] = args.kd;
  for (const auto& set : args.kd_sets) {
    // Checked here too so that the message names this option, not --set.
    const auto eq = set.find('=');
    MMKD_CHECK(eq != std::string::npos && eq > 0, "--kd-set '", set,
               "': expected KEY=VALUE, a key of the distill: section (e.g. crd.row_negatives=64)");
    apply_override(kd_yaml, set);
  }
  distill::DistillConfig kd;
  try {
    kd = distill::parse_distill_config(kd_yaml, "distill");
  } catch (const Error& e) {
    MMKD_FAIL("--kd: ", e.what());
  }
  MMKD_CHECK(kd.terms.empty() || kd.terms.front().method != "ideal_map",
             "--kd ideal_map needs data with events; bench uses random inputs");
  const auto& pairing = distill::resolve_pairing(kd, config);
  YAML::Node teacher_yaml;
  teacher_yaml["role"] = "teacher";
  teacher_yaml["architecture"] = models::teacher_arch_name(pairing.teacher);
  auto teacher = models::build_model(models::parse_model_config(teacher_yaml, "teacher"),
                                     student->input_shape());
  data::Split labels;
  const int64_t samples = args.kd_samples > 0 ? args.kd_samples : std::max<int64_t>(args.batch, 64);
  MMKD_CHECK(samples >= args.batch, "--kd-samples ", samples, " must be at least the batch (",
             args.batch, "): a batch's samples are distinct training samples");
  labels.labels = torch::rand({samples}) * 6 - 3;
  return std::make_unique<distill::DistillObjective>(kd, student, teacher, labels, args.seed);
}

/// One kernel setting to bench. "both" for --attention or --dropout gives two, one after the
/// other in one process with the same weights, so a before/after ratio is measured under the
/// same load.
struct KernelVariant {
  nn::AttentionKernel attention;
  nn::DropoutKernel dropout;
};

std::vector<KernelVariant> kernel_variants(const BenchArgs& args) {
  MMKD_CHECK(args.attention == "auto" || args.attention == "fused" ||
                 args.attention == "reference" || args.attention == "sdpa" ||
                 args.attention == "both",
             "--attention '", args.attention, "': expected auto, fused, reference, sdpa or both");
  MMKD_CHECK(args.dropout == "auto" || args.dropout == "hashed" || args.dropout == "torch" ||
                 args.dropout == "both",
             "--dropout '", args.dropout, "': expected auto, hashed, torch or both");
  MMKD_CHECK(args.attention != "both" || args.dropout != "both",
             "--attention both and --dropout both: compare one kernel at a time");
  std::vector<nn::AttentionKernel> attention;
  if (args.attention == "auto") {
    attention.push_back(nn::attention_kernel());  // fused unless MMKD_ATTENTION=reference
  } else if (args.attention == "sdpa") {
    attention.push_back(nn::AttentionKernel::kSdpa);
  } else {
    if (args.attention != "fused") attention.push_back(nn::AttentionKernel::kReference);
    if (args.attention != "reference") attention.push_back(nn::AttentionKernel::kFused);
  }
  std::vector<nn::DropoutKernel> dropout;
  if (args.dropout == "auto") {
    dropout.push_back(nn::dropout_kernel());  // hashed unless MMKD_DROPOUT=torch
  } else {
    if (args.dropout != "hashed") dropout.push_back(nn::DropoutKernel::kTorch);
    if (args.dropout != "torch") dropout.push_back(nn::DropoutKernel::kHashed);
  }
  std::vector<KernelVariant> variants;
  for (const auto a : attention) {
    for (const auto d : dropout) variants.push_back({a, d});
  }
  return variants;
}

void run_bench_command(const BenchArgs& args) {
  const auto kernels = kernel_variants(args);
  train::set_threads(args.threads);
  const auto config = model_config(args.model, args.sets);
  const auto shape = input_shape(args.shape);

  train::BenchOptions options;
  options.batch = args.batch;
  options.repeats = args.repeats;
  options.warmup = args.warmup;
  options.train = !args.no_train;
  options.inference = !args.no_inference;
  options.ceilings = !args.no_ceilings;
  options.inference_batches = parse_batches(args.inference_batches);
  options.device = train::parse_device(args.device);
  options.cuda_graphs = args.cuda_graphs;
  options.adam = args.adam;
  options.seed = args.seed;

  nlohmann::json report = nlohmann::json::array();
  std::vector<train::BenchResult> results;
  for (size_t i = 0; i < kernels.size(); ++i) {
    nn::set_attention_kernel(kernels[i].attention);
    nn::set_dropout_kernel(kernels[i].dropout);
    torch::manual_seed(args.seed);
    auto model = models::build_model(config, shape);
    const auto objective = make_objective(args, config, model);
    auto opts = options;
    opts.ceilings = options.ceilings && i + 1 == kernels.size();
    results.push_back(train::run_bench(model, *objective, opts));
    if (opts.ceilings) {
      for (auto& r : results) {
        r.ceilings = results.back().ceilings;
        r.has_ceilings = true;
      }
    }
  }
  for (const auto& r : results) {
    std::cout << r.to_text() << "\n";
    report.push_back(r.to_json());
  }
  if (results.size() == 2) {
    const auto& before = results[0];
    const auto& after = results[1];
    const bool by_attention = before.attention_kernel != after.attention_kernel;
    std::cout << (by_attention ? after.attention_kernel : after.dropout_kernel) << " vs "
              << (by_attention ? before.attention_kernel : before.dropout_kernel) << ":";
    if (before.has_train) {
      std::cout << " train step x" << before.train.step.median_ms / after.train.step.median_ms;
    }
    for (size_t i = 0; i < before.inference.size(); ++i) {
      std::cout << ", inference b" << before.inference[i].batch << " x"
                << before.inference[i].latency.median_ms / after.inference[i].latency.median_ms;
    }
    std::cout << " (faster when > 1)\n";
  }
  if (!args.json.empty()) {
    const nlohmann::json out = results.size() == 1 ? report[0] : report;
    write_text_atomic(args.json, out.dump(2) + "\n");
  }
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Train-step and inference performance of a model against the machine's limits\n"
      "(see bench/README.md). Example:\n"
      "  mmkd bench --model teacher:complete --shape mosei --batch 24 --threads 2");
  cmd->add_option("--model", args->model,
                  "teacher:complete|video|audio|language, student:1..5 (or its name), or a "
                  "YAML file with a model: section")
      ->capture_default_str();
  cmd->add_option("--shape", args->shape,
                  "tiny (16,16,8), small (48,48,20), mosei (500,500,50) "
                  "or Tv,Ta,Tl")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Training batch")->capture_default_str();
  cmd->add_option("--threads", args->threads,
                  "LibTorch intra-op threads (0 = one per core other processes leave free)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option(
         "--kd", args->kd,
         "Objective: none (task loss) or a distillation method: " + distill::kd_term_list())
      ->capture_default_str();
  cmd->add_option("--kd-samples", args->kd_samples,
                  "Training samples the distillation terms are sized for (CRD's memory banks "
                  "and negative pools); 0 = the batch, at least 64. The medium preset has 8000")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kd-set", args->kd_sets,
                  "Distillation option KEY=VALUE of the distill: section (repeatable), e.g. "
                  "crd.fused_scores=false");
  cmd->add_option("--json", args->json, "Also write the results as JSON to this file");
  cmd->add_option("--repeats", args->repeats, "Timed train steps")->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed train steps first")->capture_default_str();
  cmd->add_option("--set", args->sets, "Model override model.KEY=VALUE (repeatable)");
  cmd->add_option(
         "--attention", args->attention,
         "Attention kernel: auto (fused unless MMKD_ATTENTION says reference or sdpa), fused, "
         "reference, sdpa (LibTorch 2.x) or both (fused and reference one after the other, same "
         "weights, with the ratio)")
      ->capture_default_str();
  cmd->add_option("--dropout", args->dropout,
                  "Dropout kernel: auto (hashed unless MMKD_DROPOUT=torch), hashed, torch or both "
                  "(torch and hashed one after the other, same weights, with the ratio)")
      ->capture_default_str();
  cmd->add_option("--inference-batches", args->inference_batches,
                  "Comma-separated inference batch sizes")
      ->capture_default_str();
  cmd->add_flag("--no-train", args->no_train, "Skip the train step");
  cmd->add_flag("--no-inference", args->no_inference, "Skip inference latency");
  cmd->add_flag("--no-ceilings", args->no_ceilings, "Skip the matmul/copy ceilings");
  cmd->add_option("--seed", args->seed, "Weights and inputs seed")
      ->check(CLI::NonNegativeNumber)  // an unsigned option would wrap -1 to 2^64-1
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--cuda-graphs", args->cuda_graphs,
                "Replay the train step and the inference forward from CUDA graphs (CUDA only)");
  cmd->add_option("--adam", args->adam, "Adam step: auto (fused on CUDA), loop or fused")
      ->capture_default_str();
  cmd->callback([args] { run_bench_command(*args); });
}

}  // namespace mmkd::app
