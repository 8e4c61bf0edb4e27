// `mmkd train`, `mmkd eval` and `mmkd predict`.
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "commands.h"
#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/data/npy.h"
#include "mmkd/dist/local_launcher.h"
#include "mmkd/dist/process_group.h"
#include "mmkd/distill/checkpoint_evaluation.h"
#include "mmkd/distill/kd_term.h"
#include "mmkd/distill/run_request.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/prediction.h"
#include "mmkd/train/run.h"

namespace mmkd::app {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  distill::RunRequest request;
  std::string resume;          ///< --resume RUN
  int64_t nproc = 1;           ///< --nproc: local ranks to start
  int64_t dist_timeout = 300;  ///< --dist-timeout seconds
};

/// The command line each rank of `--nproc` runs: this one without --nproc.
std::vector<std::string> rank_arguments(const TrainArgs& args, bool with_teacher) {
  std::vector<std::string> out{with_teacher ? "distill" : "train"};
  const auto add = [&](const char* flag, const std::string& value) {
    if (value.empty()) return;
    out.push_back(flag);
    out.push_back(value);
  };
  add("--config", args.request.config);
  for (const auto& o : args.request.overrides) add("--set", o);
  add("--run", args.request.run_dir);
  add("--resume", args.resume);
  add("--teacher", args.request.teacher);
  if (args.request.threads >= 0) add("--threads", std::to_string(args.request.threads));
  add("--device", args.request.device);
  add("--dist-timeout", std::to_string(args.dist_timeout));
  return out;
}

/// `mmkd train` and `mmkd distill`: the same run handling, a different objective.
void run_train(TrainArgs args, bool with_teacher) {
  if (args.nproc > 1) {
    MMKD_CHECK(!dist::dist_env_from().distributed(), "--nproc ", args.nproc,
               ": this process is already a rank of a distributed run (RANK/WORLD_SIZE are set)");
    const int status = dist::run_local_ranks(args.nproc, rank_arguments(args, with_teacher));
    if (status != 0) std::exit(status);  // the failing rank and its error are printed above
    return;
  }
  dist::init_world(dist::dist_env_from(), std::chrono::seconds(args.dist_timeout));
  args.request.distill = with_teacher;
  if (!args.resume.empty()) {
    MMKD_CHECK(args.request.run_dir.empty() || args.request.run_dir == args.resume,
               "use either --run DIR or --resume RUN, not both");
    args.request.resume = true;
    args.request.run_dir = args.resume;
  }
  const distill::RunOutcome run = distill::execute_run(args.request);
  if (!dist::is_lead()) return;
  std::cout << "run " << run.dir.path << ": test acc7 " << std::fixed << std::setprecision(4)
            << run.metrics.test_score("accuracy").value_or(0) << ", F1 "
            << run.metrics.test_score("f1_weighted").value_or(0) << " (metrics in "
            << run.dir.metrics() << ")\n";
}

struct EvalArgs {
  std::string run_dir, checkpoint;
  distill::CheckpointEvalRequest request;
  int threads = 0;
  bool json = false;
};

void run_eval(EvalArgs args) {
  MMKD_CHECK(args.run_dir.empty() != args.checkpoint.empty(),
             "mmkd eval: give exactly one of --run DIR or --checkpoint FILE");
  train::set_threads(args.threads);
  args.request.checkpoint = args.checkpoint.empty() ? args.run_dir : args.checkpoint;
  args.request.checkpoint_key = args.checkpoint.empty() ? "--run" : "--checkpoint";
  const distill::CheckpointEvaluation eval = distill::evaluate_checkpoint(args.request);
  if (args.json) {
    std::cout << eval.to_json().dump(2) << "\n";
    return;
  }
  const std::string& drop = args.request.drop;
  std::cout << eval.checkpoint << " on " << args.request.split
            << (drop.empty() ? "" : " without " + drop) << ":\n  " << eval.result.summary()
            << "\n  confusion (rows true -3..3, columns predicted):\n"
            << eval.result.classification.confusion << "\n";
  if (!eval.event_mass.empty())
    std::cout << "  event mass (first 512 samples): " << distill::describe(eval.event_mass) << "\n";
}

struct PredictArgs {
  std::string checkpoint, input, split = "test", device = "cpu";
  int64_t limit = -1;
};

/// Video features [N,T,F] from a pickle split or a .npy file ([T,F] or [N,T,F]).
torch::Tensor read_video(const PredictArgs& args) {
  if (fs::path(args.input).extension() == ".npy") {
    torch::Tensor x = data::read_npy(args.input).to(torch::kFloat);
    if (x.dim() == 2) x = x.unsqueeze(0);
    MMKD_CHECK(x.dim() == 3, args.input, ": expected video features [T,F] or [N,T,F], got rank ",
               x.dim());
    return torch::nan_to_num(x, 0.0, 0.0, 0.0);
  }
  return data::load_mosei(args.input).split(args.split).feature(data::Modality::kVideo);
}

void run_predict(const PredictArgs& args) {
  const torch::Device device = train::parse_device(args.device);
  models::MultimodalNet model = train::load_model(args.checkpoint, device);
  MMKD_CHECK(model->config().role == models::Role::kStudent, args.checkpoint,
             ": holds a teacher, which needs audio and text; predict serves video-only students");
  torch::Tensor video = read_video(args);
  if (args.limit >= 0) video = video.slice(0, 0, std::min(args.limit, video.size(0)));
  const train::VideoPredictions out = train::predict_video(model, video, device, args.input);
  for (int64_t i = 0; i < out.outputs.size(0); ++i) {
    nlohmann::json line;
    line["index"] = i;
    if (out.regression) {
      line["sentiment"] = out.outputs[i][0].item<double>();
    } else {
      const torch::Tensor p = out.probabilities[i].contiguous();
      line["probabilities"] =
          std::vector<double>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    }
    line["class"] = out.classes[i].item<int64_t>();
    std::cout << line.dump() << "\n";
  }
}

/// The options `train` and `distill` share: config, overrides, run directory, resume, hardware.
void add_run_options(CLI::App* command, TrainArgs& args) {
  command->add_option("--config", args.request.config, "run config (YAML)");
  command->add_option("--set", args.request.overrides, "override a config key, key.path=value");
  command->add_option("--run", args.request.run_dir,
                      "run directory (default runs/<config>-seed<seed>)");
  command->add_option("--resume", args.resume, "continue the run in this directory");
  command->add_option("--threads", args.request.threads,
                      "intra-op threads (0 = one per free core)")
      ->check(CLI::NonNegativeNumber);  // unchecked, a negative value was silently ignored
  command->add_option("--device", args.request.device, "cpu | cuda | cuda:N");
  command
      ->add_option("--nproc", args.nproc,
                   "data-parallel ranks to start on this machine (c10d/Gloo; see docs/scale.md)")
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--dist-timeout", args.dist_timeout,
                   "seconds a rank waits for the others (rendezvous, each all-reduce) before it "
                   "stops with an error")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

}  // namespace

void register_train_commands(CLI::App& app) {
  auto train_args = std::make_shared<TrainArgs>();
  auto* train = app.add_subcommand(
      "train",
      "Train a teacher or a student alone (cross-entropy, or L1 in regression mode).\n"
      "Examples:\n"
      "  mmkd train --config configs/teacher_complete.yaml --run runs/teacher\n"
      "  mmkd train --config configs/student_5.yaml --set train.epochs=5 --set data.preset=tiny\n"
      "  mmkd train --resume runs/teacher          # continue a killed run");
  add_run_options(train, *train_args);
  train->callback([train_args] { run_train(*train_args, false); });

  auto distill_args = std::make_shared<TrainArgs>();
  auto* distill = app.add_subcommand(
      "distill",
      "Train a video-only student from a frozen teacher: Loss = alpha*L_c + sum_i w_i*L_i over\n"
      "the KD terms of distill.terms (or the one of distill.method, weight distill.beta).\n"
      "Methods: " +
          distill::kd_term_list() +
          ".\nExamples:\n"
          "  mmkd distill --config configs/table1/c5_edam_down.yaml --teacher runs/teacher\n"
          "  mmkd distill --config configs/extended/c5_crd_penultimate_edam_down.yaml --teacher "
          "runs/teacher/best.pt\n"
          "  mmkd distill --resume runs/c5_edam_down-seed0");
  add_run_options(distill, *distill_args);
  distill->add_option("--teacher", distill_args->request.teacher,
                      "teacher run directory (its best.pt) or checkpoint");
  distill->callback([distill_args] { run_train(*distill_args, true); });

  auto eval_args = std::make_shared<EvalArgs>();
  auto* eval = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint: acc7, F1 (weighted, macro), per-class scores, confusion.\n"
      "Examples:\n"
      "  mmkd eval --run runs/teacher\n"
      "  mmkd eval --run runs/teacher --drop audio,text   # teacher with modalities missing\n"
      "  mmkd eval --checkpoint student.pt --data mosei_senti_data_noalign.pkl --split test");
  eval->add_option("--run", eval_args->run_dir, "run directory (evaluates its best.pt)");
  eval->add_option("--checkpoint", eval_args->checkpoint, "checkpoint file");
  eval->add_option("--data", eval_args->request.data, "data file (default: the run's own data)");
  eval->add_option("--split", eval_args->request.split, "train | valid | test")
      ->capture_default_str();
  eval->add_option("--drop", eval_args->request.drop, "modalities to zero, e.g. audio,text");
  eval->add_option("--device", eval_args->request.device, "cpu | cuda | cuda:N")
      ->capture_default_str();
  eval->add_option("--threads", eval_args->threads, "intra-op threads (0 = one per free core)")
      ->check(CLI::NonNegativeNumber);
  eval->add_flag("--json", eval_args->json, "print JSON");
  eval->callback([eval_args] { run_eval(*eval_args); });

  auto predict_args = std::make_shared<PredictArgs>();
  auto* predict = app.add_subcommand(
      "predict",
      "Predict sentiment from video features alone with a student checkpoint; one JSON line\n"
      "per sample with class probabilities and the predicted class (-3..3).\n"
      "Examples:\n"
      "  mmkd predict --checkpoint runs/student/best.pt --input clip.npy      # [T,35]\n"
      "  mmkd predict --checkpoint runs/student/best.pt --input data.pkl --split test --limit 5");
  predict->add_option("--checkpoint", predict_args->checkpoint, "student checkpoint")->required();
  predict->add_option("--input", predict_args->input, ".npy [T,F] / [N,T,F] or a MOSEI pickle")
      ->required();
  predict->add_option("--split", predict_args->split, "split of a pickle input")
      ->capture_default_str();
  predict->add_option("--limit", predict_args->limit, "first N samples only")
      ->check(CLI::NonNegativeNumber);
  predict->add_option("--device", predict_args->device, "cpu | cuda | cuda:N")
      ->capture_default_str();
  predict->callback([predict_args] { run_predict(*predict_args); });
}

}  // namespace mmkd::app
