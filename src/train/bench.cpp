#include "mmkd/train/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "mmkd/core/device_memory.h"
#include "mmkd/core/error.h"
#include "mmkd/core/parallelism.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/nn/dropout.h"
#include "mmkd/nn/fused_attention.h"
#include "mmkd/train/adam_step.h"
#include "mmkd/train/graphed_step.h"
#include "mmkd/train/latency.h"

namespace mmkd::train {

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double tv_seconds(const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6; }

/// Resets the kernel's peak-RSS mark to the current RSS (Linux >= 4.0), so ru_maxrss measures
/// the phase that follows. Returns false where not permitted.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::string mib(double bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(bytes >= 1024.0 * 1024 * 1024 ? 2 : 1);
  if (bytes >= 1024.0 * 1024 * 1024) {
    out << bytes / (1024.0 * 1024 * 1024) << " GiB";
  } else {
    out << bytes / (1024.0 * 1024) << " MiB";
  }
  return out.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string percent(double v) { return fixed(100.0 * v, 1) + "%"; }

// Flops of one MulT layer in which query_rows rows attend to tk keys and the K, V projections
// run over kv_rows rows (the source in cross form, the layer's input in self form).
double layer_flops(double query_rows, double kv_rows, double tk, double w) {
  return 2.0 * (query_rows * w * w           // Q projection
                + 2.0 * kv_rows * w * w      // K and V projections
                + query_rows * w * w         // out projection
                + 8.0 * query_rows * w * w)  // FFN d -> 4d -> d
         + 4.0 * query_rows * tk * w;        // QK^T and AV over all heads
}

}  // namespace

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

TimingStats TimingStats::of(std::vector<double> ms) {
  TimingStats s;
  s.repeats = static_cast<int64_t>(ms.size());
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1) + 0.5)];
  };
  s.median_ms =
      ms.size() % 2 == 1 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  s.p10_ms = at(0.1);
  s.p90_ms = at(0.9);
  s.min_ms = ms.front();
  s.max_ms = ms.back();
  return s;
}

nlohmann::json TimingStats::to_json() const {
  return {{"repeats", repeats}, {"median_ms", median_ms}, {"p10_ms", p10_ms},
          {"p90_ms", p90_ms},   {"min_ms", min_ms},       {"max_ms", max_ms}};
}

ResourceSample ResourceSample::now() {
  ResourceSample s;
  s.wall_s = now_s();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  s.user_s = tv_seconds(ru.ru_utime);
  s.sys_s = tv_seconds(ru.ru_stime);
  s.minor_faults = ru.ru_minflt;
  s.major_faults = ru.ru_majflt;
  s.max_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (statm >> size >> resident) s.current_rss_bytes = resident * sysconf(_SC_PAGESIZE);
  return s;
}

ResourceUse ResourceUse::between(const ResourceSample& a, const ResourceSample& b) {
  ResourceUse u;
  u.wall_s = b.wall_s - a.wall_s;
  u.user_s = b.user_s - a.user_s;
  u.sys_s = b.sys_s - a.sys_s;
  u.minor_faults = b.minor_faults - a.minor_faults;
  u.major_faults = b.major_faults - a.major_faults;
  return u;
}

double ResourceUse::system_share() const {
  const double total = user_s + sys_s;
  return total > 0 ? sys_s / total : 0.0;
}

nlohmann::json ResourceUse::to_json() const {
  return {{"wall_s", wall_s},
          {"user_s", user_s},
          {"sys_s", sys_s},
          {"system_share", system_share()},
          {"cpu_utilisation", wall_s > 0 ? (user_s + sys_s) / wall_s : 0.0},
          {"minor_faults", minor_faults},
          {"major_faults", major_faults}};
}

nlohmann::json Ceilings::to_json() const {
  return {{"threads", threads},
          {"matmul_n", matmul_n},
          {"matmul_gflops", matmul_gflops},
          {"copy_bytes", copy_bytes},
          {"copy_gbytes_s", copy_gbytes_s}};
}

Ceilings measure_ceilings(int64_t matmul_n, int64_t copy_mib, int64_t repeats) {
  Ceilings c;
  c.threads = torch::get_num_threads();
  c.matmul_n = matmul_n;
  c.copy_bytes = copy_mib * 1024 * 1024;
  c10::InferenceMode guard;
  {
    const auto a = torch::randn({matmul_n, matmul_n});
    const auto b = torch::randn({matmul_n, matmul_n});
    auto out = torch::empty({matmul_n, matmul_n});
    torch::mm_out(out, a, b);  // warm-up
    std::vector<double> ms;
    for (int64_t i = 0; i < repeats; ++i) {
      const auto start = Clock::now();
      torch::mm_out(out, a, b);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    const double median = TimingStats::of(ms).median_ms;
    c.matmul_gflops = 2.0 * std::pow(double(matmul_n), 3) / (median * 1e-3) / 1e9;
  }
  {
    const int64_t n = c.copy_bytes / 4;
    const auto src = torch::randn({n});
    auto dst = torch::empty({n});
    dst.copy_(src);  // warm-up (and first touch)
    std::vector<double> ms;
    for (int64_t i = 0; i < repeats; ++i) {
      const auto start = Clock::now();
      dst.copy_(src);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    const double median = TimingStats::of(ms).median_ms;
    c.copy_gbytes_s = 2.0 * double(c.copy_bytes) / (median * 1e-3) / 1e9;
  }
  return c;
}

nlohmann::json ModelCost::to_json() const {
  return {{"forward_flops_per_sample", forward_flops},
          {"inference_flops_per_sample", inference_flops},
          {"attention_flops_per_sample", attention_flops},
          {"train_flops_per_sample", train_flops},
          {"parameters", parameters},
          {"parameter_bytes", parameter_bytes},
          {"activation_bytes_per_sample", activation_bytes},
          {"attention_map_bytes_per_sample", map_bytes}};
}

ModelCost analytic_cost(const models::MultimodalNetImpl& net) {
  ModelCost cost;
  const auto& geometry = net.geometry();
  // Input projections: a Conv1D costs 2 * (weight elements) per output step.
  for (const auto& p : geometry.sequences) {
    const double weights = double(p.in_dim) * double(p.conv.kernel) * double(p.width);
    const double conv_flops = 2.0 * weights * double(p.length);
    cost.forward_flops += conv_flops;
    cost.inference_flops += conv_flops;
    cost.activation_bytes += 4.0 * double(p.length * p.width);
  }
  for (const auto& t : geometry.transformers) {
    const double tq = double(t.query_length), tk = double(t.key_length), h = double(t.heads);
    const double w = double(t.width), layers = double(t.layers);
    const bool cross = !t.self_attention();
    const double kv_tokens = cross ? tk : 0.0;  // self-attention projects Q,K,V from one input
    const double kv_rows = cross ? tk : tq;
    const double per_layer = layer_flops(tq, kv_rows, tk, w);
    cost.forward_flops += layers * per_layer;
    // Inference computes only the read-out row where TransformerEncoder::forward's
    // last_row_only allows it: every layer in cross form, the last layer in self form.
    const bool last_row = net.config().readout == models::Readout::kLast && t.read_out;
    const double row_layer = layer_flops(1.0, kv_rows, tk, w);
    cost.inference_flops += !last_row ? layers * per_layer
                            : cross   ? layers * row_layer
                                      : (layers - 1) * per_layer + row_layer;
    cost.attention_flops += layers * 4.0 * tq * tk * w;
    // Per layer, autograd keeps about 18 [Tq,w] tensors (LayerNorms, projections, residuals,
    // dropout masks, the 4w-wide FFN activations count 4 each) and 3 [Tk,w] for cross keys.
    cost.activation_bytes += layers * 4.0 * (18.0 * tq * w + 3.0 * kv_tokens * w);
    // Materialised attention: logits, softmax and dropped weights (float) + a bool mask.
    cost.map_bytes += layers * h * tq * tk * 13.0;
  }
  const double dim = double(geometry.readout_dim);
  const double head_flops = 2.0 * (2.0 * dim * dim + dim * double(geometry.output_dim));
  cost.forward_flops += head_flops;
  cost.inference_flops += head_flops;
  cost.train_flops = 3.0 * cost.forward_flops;
  cost.parameters = net.parameter_count();
  cost.parameter_bytes = 4.0 * double(cost.parameters);
  return cost;
}

nlohmann::json TrainStepResult::to_json() const {
  return {{"step", step.to_json()},
          {"samples_per_s", samples_per_s},
          {"cpu", cpu.to_json()},
          {"minor_faults_per_step", minor_faults_per_step},
          {"rss_before_bytes", rss_before_bytes},
          {"peak_rss_bytes", peak_rss_bytes},
          {"peak_delta_bytes", peak_delta_bytes},
          {"peak_device_bytes", peak_device_bytes},
          {"cuda_graph", cuda_graph}};
}

nlohmann::json InferenceResult::to_json() const {
  return {{"batch", batch}, {"latency", latency.to_json()}, {"cpu", cpu.to_json()}};
}

data::Batch random_batch(const models::InputShape& shape, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  data::Batch b;
  for (size_t m = 0; m < 3; ++m) {
    b.features[m] = torch::randn({batch, shape.len[m], shape.dim[m]});
    b.padding[m] = torch::zeros({batch, shape.len[m]}, torch::kBool);
  }
  b.classes = torch::randint(0, 7, {batch}, torch::kLong);
  b.targets = torch::rand({batch}) * 6 - 3;
  b.index = torch::arange(batch, torch::kLong);
  return b;
}

BenchResult run_bench(models::MultimodalNet& model, Objective& objective,
                      const BenchOptions& options) {
  MMKD_CHECK(options.batch >= 1 && options.repeats >= 1 && options.warmup >= 0,
             "bench: batch and repeats must be >= 1, warmup >= 0");
  BenchResult result;
  result.model = model->config().describe();
  result.shape = model->input_shape().describe();
  result.objective = objective.name();
  result.threads = torch::get_num_threads();
  result.attention_kernel = nn::attention_kernel_name(nn::attention_kernel());
  result.dropout_kernel = nn::dropout_kernel_name(nn::dropout_kernel());
  result.device = options.device.str();
  result.load_average = load_average();
  result.parallel_threads = parallel_for_threads();
  result.cost = analytic_cost(*model);

  model->to(options.device);
  objective.to(options.device);
  if (options.train) {
    model->train();
    objective.set_training(true);
    std::vector<torch::Tensor> params = model->parameters();
    for (auto& p : objective.parameters()) params.push_back(p);
    torch::optim::Adam optimizer(params, torch::optim::AdamOptions(options.lr));
    const AdamKernel adam = resolve_adam_kernel(options.adam, options.device, "--adam");
    const data::Batch batch =
        random_batch(model->input_shape(), options.batch, options.seed).to(options.device);
    const models::TapRequest taps = objective.taps();
    const auto forward_backward = [&](const data::Batch& b) {
      const models::ModelInputs inputs{b.features, b.padding};
      const auto out = model->forward(inputs, taps);
      auto loss = objective.compute(b, out, /*training=*/true);
      loss.total.backward();
      return loss;
    };
    const std::unique_ptr<GraphedTrainStep> graphed =
        options.cuda_graphs ? make_graphed_train_step(forward_backward, params, options.device)
                            : nullptr;
    MMKD_CHECK(!options.cuda_graphs || graphed, "bench: CUDA graphs need a CUDA device and a ",
               "CUDA build of mmkd (device ", options.device.str(), ", LibTorch ",
               compat::torch_version(), ")");
    const auto step = [&] {
      const LossParts loss = run_train_step(graphed.get(), optimizer, forward_backward, batch);
      if (options.clip > 0) torch::nn::utils::clip_grad_norm_(params, options.clip);
      adam_step(optimizer, adam);
      return loss.total.item<double>();
    };
    reset_peak_device_memory(options.device);
    reset_peak_rss();
    const ResourceSample before = ResourceSample::now();
    for (int64_t i = 0; i < options.warmup; ++i) step();
    const ResourceSample start = ResourceSample::now();
    std::vector<double> ms;
    for (int64_t i = 0; i < options.repeats; ++i) {
      const auto t0 = Clock::now();
      const double loss = step();
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      MMKD_CHECK(std::isfinite(loss), "bench: the loss became ", loss);
    }
    const ResourceSample end = ResourceSample::now();
    auto& t = result.train;
    t.step = TimingStats::of(ms);
    t.samples_per_s = double(options.batch) / (t.step.median_ms * 1e-3);
    t.cpu = ResourceUse::between(start, end);
    t.minor_faults_per_step = double(t.cpu.minor_faults) / double(options.repeats);
    t.rss_before_bytes = before.current_rss_bytes;
    t.peak_rss_bytes = end.max_rss_bytes;
    t.peak_delta_bytes = end.max_rss_bytes - std::max(before.current_rss_bytes, int64_t(0));
    t.peak_device_bytes = peak_device_memory_bytes(options.device);
    t.cuda_graph = graphed && graphed->captured();
    result.has_train = true;
  }

  if (options.inference) {
    for (const int64_t b : options.inference_batches) {
      const int64_t repeats = b == 1 ? std::max<int64_t>(5, 4 * options.repeats)
                                     : std::max<int64_t>(3, options.repeats);
      InferenceResult r;
      r.batch = b;
      const ResourceSample start = ResourceSample::now();
      const LatencyStats stats =
          measure_latency(model, b, options.device, repeats, /*warmup=*/2, options.cuda_graphs);
      r.cpu = ResourceUse::between(start, ResourceSample::now());
      r.latency.repeats = stats.repeats;
      r.latency.median_ms = stats.median_ms;
      r.latency.p10_ms = stats.p10_ms;
      r.latency.p90_ms = stats.p90_ms;
      result.inference.push_back(r);
    }
  }

  if (options.ceilings) {
    result.ceilings = measure_ceilings();
    result.has_ceilings = true;
  }
  return result;
}

nlohmann::json BenchResult::to_json() const {
  nlohmann::json j = {{"model", model},
                      {"shape", shape},
                      {"objective", objective},
                      {"threads", threads},
                      {"parallel_for_threads", parallel_threads},
                      {"attention_kernel", attention_kernel},
                      {"dropout_kernel", dropout_kernel},
                      {"device", device},
                      {"load_average", load_average},
                      {"cost", cost.to_json()}};
  const double gflops = has_ceilings ? ceilings.matmul_gflops : 0.0;
  if (has_train) {
    auto t = train.to_json();
    const double achieved = cost.train_flops * train.samples_per_s / 1e9;
    t["achieved_gflops"] = achieved;
    if (gflops > 0) t["fraction_of_matmul_ceiling"] = achieved / gflops;
    j["train"] = t;
  }
  nlohmann::json inf = nlohmann::json::array();
  for (const auto& r : inference) {
    auto e = r.to_json();
    const double flops = cost.inference_flops * double(r.batch);
    e["achieved_gflops"] = flops / (r.latency.median_ms * 1e-3) / 1e9;
    if (gflops > 0 && ceilings.copy_gbytes_s > 0) {
      const double compute_ms = flops / (gflops * 1e9) * 1e3;
      const double bytes = cost.parameter_bytes + cost.activation_bytes / 3.0 * double(r.batch);
      const double memory_ms = bytes / (ceilings.copy_gbytes_s * 1e9) * 1e3;
      e["limit_ms"] = std::max(compute_ms, memory_ms);
      e["fraction_of_limit"] = std::max(compute_ms, memory_ms) / r.latency.median_ms;
    }
    inf.push_back(e);
  }
  j["inference"] = inf;
  if (has_ceilings) j["ceilings"] = ceilings.to_json();
  return j;
}

std::string BenchResult::to_text() const {
  const auto j = to_json();
  std::ostringstream out;
  out << "model      " << model << "\n";
  out << "inputs     " << shape << ", objective " << objective << ", threads " << threads << " ("
      << parallel_threads << " in mmkd's kernels), attention " << attention_kernel << ", dropout "
      << dropout_kernel << ", load " << load_average << "\n";
  out << "cost       forward " << fixed(cost.forward_flops / 1e6, 1) << " MFLOP/sample ("
      << percent(cost.attention_flops / std::max(cost.forward_flops, 1.0))
      << " in QK^T/AV), inference " << fixed(cost.inference_flops / 1e6, 1)
      << " MFLOP/sample, train ~3x = " << fixed(cost.train_flops / 1e6, 1) << " MFLOP/sample; "
      << cost.parameters << " parameters (" << mib(cost.parameter_bytes) << "), activations ~"
      << mib(cost.activation_bytes) << "/sample + materialised maps " << mib(cost.map_bytes)
      << "/sample\n";
  if (has_ceilings) {
    out << "ceilings   matmul " << ceilings.matmul_n << "^3: " << fixed(ceilings.matmul_gflops, 1)
        << " GFLOP/s; copy " << mib(double(ceilings.copy_bytes)) << ": "
        << fixed(ceilings.copy_gbytes_s, 1) << " GB/s (read+write), " << ceilings.threads
        << " threads\n";
  }
  if (has_train) {
    const auto& t = train;
    out << "train step median " << fixed(t.step.median_ms, 1) << " ms (p10 "
        << fixed(t.step.p10_ms, 1) << ", p90 " << fixed(t.step.p90_ms, 1) << ", n "
        << t.step.repeats << "), " << fixed(t.samples_per_s, 1) << " samples/s, "
        << fixed(j["train"]["achieved_gflops"].get<double>(), 2) << " GFLOP/s";
    if (j["train"].contains("fraction_of_matmul_ceiling")) {
      out << " = " << percent(j["train"]["fraction_of_matmul_ceiling"].get<double>())
          << " of the matmul ceiling";
    }
    out << "\n           cpu user " << fixed(t.cpu.user_s, 2) << " s, sys " << fixed(t.cpu.sys_s, 2)
        << " s (system share " << percent(t.cpu.system_share()) << "), utilisation "
        << fixed(t.cpu.wall_s > 0 ? (t.cpu.user_s + t.cpu.sys_s) / t.cpu.wall_s : 0.0, 2)
        << " cores; " << fixed(t.minor_faults_per_step, 0) << " minor faults/step, "
        << t.cpu.major_faults << " major\n";
    out << "           memory peak RSS " << mib(double(t.peak_rss_bytes)) << " (RSS before "
        << mib(double(t.rss_before_bytes)) << ", delta " << mib(double(t.peak_delta_bytes))
        << ")\n";
  }
  for (size_t i = 0; i < inference.size(); ++i) {
    const auto& r = inference[i];
    const auto& e = j["inference"][i];
    out << "inference  batch " << r.batch << ": median " << fixed(r.latency.median_ms, 2)
        << " ms (p10 " << fixed(r.latency.p10_ms, 2) << ", p90 " << fixed(r.latency.p90_ms, 2)
        << ", n " << r.latency.repeats << "), "
        << fixed(double(r.batch) / (r.latency.median_ms * 1e-3), 1) << " samples/s, "
        << fixed(e["achieved_gflops"].get<double>(), 2) << " GFLOP/s";
    if (e.contains("limit_ms")) {
      out << "; analytic limit " << fixed(e["limit_ms"].get<double>(), 3)
          << " ms = " << percent(e["fraction_of_limit"].get<double>()) << " of it";
    }
    out << "; sys share " << percent(r.cpu.system_share()) << "\n";
  }
  return out.str();
}

}  // namespace mmkd::train
