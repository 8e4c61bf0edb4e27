#include "mmkd/onnx/onnx_graph.h"

#include <cstring>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/onnx/protobuf_writer.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ONNX raw_data is little-endian: this writer copies tensor bytes as they are");

namespace mmkd::onnx {

namespace {

// onnx.proto: TensorProto.DataType and AttributeProto.AttributeType values.
constexpr int64_t kFloat = 1, kInt64 = 7, kBool = 9;
constexpr int64_t kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrInts = 7;

int64_t data_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return kFloat;
    case torch::kInt64:
      return kInt64;
    case torch::kBool:
      return kBool;
    default:
      MMKD_FAIL("ONNX initializer: unsupported dtype ", t.scalar_type());
  }
}

ProtoWriter tensor_proto(const std::string& name, const torch::Tensor& value) {
  const auto t = value.detach().to(torch::kCPU).contiguous();
  ProtoWriter w;
  for (const auto d : t.sizes()) w.varint(1, d);  // dims
  w.varint(2, data_type(t));                      // data_type
  w.bytes(8, name);                               // name
  // raw_data is little-endian by the format's definition, as this machine (checked at build).
  w.bytes(9, std::string_view(static_cast<const char*>(t.data_ptr()), t.nbytes()));
  return w;
}

ProtoWriter attribute_proto(const Attribute& a) {
  ProtoWriter w;
  w.bytes(1, a.name);
  if (const auto* i = std::get_if<int64_t>(&a.value)) {
    w.varint(20, kAttrInt);
    w.varint(3, *i);
  } else if (const auto* f = std::get_if<float>(&a.value)) {
    w.varint(20, kAttrFloat);
    w.fixed32(2, *f);
  } else if (const auto* s = std::get_if<std::string>(&a.value)) {
    w.varint(20, kAttrString);
    w.bytes(4, *s);
  } else {
    w.varint(20, kAttrInts);
    for (const auto v : std::get<std::vector<int64_t>>(a.value)) w.varint(8, v);
  }
  return w;
}

ProtoWriter value_info(const std::string& name, const std::vector<Dim>& dims) {
  ProtoWriter shape;
  for (const auto& d : dims) {
    ProtoWriter dim;
    if (const auto* size = std::get_if<int64_t>(&d)) {
      dim.varint(1, *size);  // dim_value
    } else {
      dim.bytes(2, std::get<std::string>(d));  // dim_param
    }
    shape.message(1, dim);
  }
  ProtoWriter tensor_type;
  tensor_type.varint(1, kFloat);  // elem_type: every graph input and output is float32
  tensor_type.message(2, shape);
  ProtoWriter type;
  type.message(1, tensor_type);
  ProtoWriter w;
  w.bytes(1, name);
  w.message(2, type);
  return w;
}

}  // namespace

int64_t ir_version_for_opset(int64_t opset) {
  // ONNX's release table: opsets 17-18 came with IR 8, 19-20 with IR 9, 21 with IR 10.
  MMKD_CHECK(opset >= 17 && opset <= 21, "ONNX opset ", opset,
             " is not supported: expected 17..21 (LayerNormalization needs 17)");
  return opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

std::string OnnxGraph::unique(const std::string& hint) {
  const std::string base = hint.empty() ? "t" : hint;
  const int n = used_names_[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

std::string OnnxGraph::initializer(const std::string& name, const torch::Tensor& value) {
  auto unique_name = unique(name);
  initializers_.emplace_back(unique_name, value.detach().to(torch::kCPU).contiguous().clone());
  data_type(value);  // refuse an unsupported dtype here, where the caller is known
  return unique_name;
}

std::string OnnxGraph::scalar(float value) {
  std::ostringstream key;
  key.precision(9);
  key << "f:" << value;
  auto [it, inserted] = constants_.emplace(key.str(), "");
  if (inserted) it->second = initializer("const_f", torch::tensor(value, torch::kFloat32));
  return it->second;
}

std::string OnnxGraph::scalar_i64(int64_t value) {
  auto [it, inserted] = constants_.emplace("i:" + std::to_string(value), "");
  if (inserted) it->second = initializer("const_i", torch::tensor(value, torch::kInt64));
  return it->second;
}

std::string OnnxGraph::ints(const std::vector<int64_t>& values) {
  std::string key = "is:";
  for (const auto v : values) key += std::to_string(v) + ",";
  auto [it, inserted] = constants_.emplace(key, "");
  if (inserted) it->second = initializer("const_ints", torch::tensor(values, torch::kInt64));
  return it->second;
}

std::string OnnxGraph::node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<Attribute>& attributes, const std::string& hint) {
  auto output = unique(hint.empty() ? op : hint);
  nodes_.push_back({op, inputs, output, attributes});
  return output;
}

void OnnxGraph::input(const std::string& name, const std::vector<Dim>& dims) {
  MMKD_CHECK(used_names_[name]++ == 0, "ONNX graph: input name '", name, "' is taken");
  inputs_.push_back({name, dims});
}

void OnnxGraph::output(const std::string& value, const std::string& name,
                       const std::vector<Dim>& dims) {
  MMKD_CHECK(used_names_[name]++ == 0, "ONNX graph: output name '", name, "' is taken");
  nodes_.push_back({"Identity", {value}, name, {}});
  outputs_.push_back({name, dims});
}

std::string OnnxGraph::serialize(const ModelInfo& info) const {
  ProtoWriter graph;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& n = nodes_[i];
    ProtoWriter node;
    for (const auto& in : n.inputs) node.bytes(1, in);
    node.bytes(2, n.output);
    node.bytes(3, n.op + "_" + std::to_string(i));
    node.bytes(4, n.op);
    for (const auto& a : n.attributes) node.message(5, attribute_proto(a));
    graph.message(1, node);
  }
  graph.bytes(2, info.graph_name);
  for (const auto& [name, value] : initializers_) graph.message(5, tensor_proto(name, value));
  for (const auto& v : inputs_) graph.message(11, value_info(v.name, v.dims));
  for (const auto& v : outputs_) graph.message(12, value_info(v.name, v.dims));

  ProtoWriter model;
  model.varint(1, ir_version_for_opset(info.opset));
  model.bytes(2, "mmkd");
  model.bytes(3, info.producer_version);
  model.message(7, graph);
  ProtoWriter opset;
  opset.bytes(1, "");  // the default domain, ai.onnx
  opset.varint(2, info.opset);
  model.message(8, opset);
  for (const auto& [key, value] : info.metadata) {
    ProtoWriter entry;
    entry.bytes(1, key);
    entry.bytes(2, value);
    model.message(14, entry);
  }
  return model.data();
}

}  // namespace mmkd::onnx
