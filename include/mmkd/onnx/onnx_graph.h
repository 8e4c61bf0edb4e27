// An ONNX graph under construction: named initializers, nodes in topological order, typed inputs
// and outputs with fixed or symbolic dimensions; serialised as a ModelProto (field numbers of
// onnx.proto, ONNX 1.12+).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace mmkd::onnx {

/// One node attribute: an int, a float, a string or a list of ints.
struct Attribute {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>> value;
};

/// A dimension of a graph input or output: a size, or a name that ONNX Runtime binds per call.
using Dim = std::variant<int64_t, std::string>;

/// What the ModelProto records besides the graph.
struct ModelInfo {
  int64_t opset = 17;
  std::string producer_version;
  std::string graph_name = "mmkd";
  std::map<std::string, std::string> metadata;  ///< metadata_props, key -> value
};

/// The lowest ONNX IR version that carries opset `opset` of the default domain (17..21).
int64_t ir_version_for_opset(int64_t opset);

class OnnxGraph {
 public:
  /// A float32, int64 or bool tensor stored in the file; returns its name (made unique).
  std::string initializer(const std::string& name, const torch::Tensor& value);
  /// Scalar and 1-D constants (stored as initializers, shared by value).
  std::string scalar(float value);
  std::string scalar_i64(int64_t value);
  std::string ints(const std::vector<int64_t>& values);

  /// Appends a node with one output and returns that output's name (`hint` made unique).
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<Attribute>& attributes = {}, const std::string& hint = "");

  /// Declares a graph input or output of element type float32 or int64/bool (ONNX data type).
  void input(const std::string& name, const std::vector<Dim>& dims);
  /// Renames `value` to the graph output `name` (an Identity node) and declares it.
  void output(const std::string& value, const std::string& name, const std::vector<Dim>& dims);

  size_t node_count() const { return nodes_.size(); }
  /// The serialised ModelProto.
  std::string serialize(const ModelInfo& info) const;

 private:
  struct Node {
    std::string op;
    std::vector<std::string> inputs;
    std::string output;
    std::vector<Attribute> attributes;
  };
  struct Value {
    std::string name;
    std::vector<Dim> dims;
  };
  std::string unique(const std::string& hint);

  std::vector<Node> nodes_;
  std::vector<std::pair<std::string, torch::Tensor>> initializers_;
  std::map<std::string, std::string> constants_;  ///< constant key -> initializer name
  std::map<std::string, int> used_names_;
  std::vector<Value> inputs_, outputs_;
};

}  // namespace mmkd::onnx
