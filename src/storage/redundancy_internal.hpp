// SPDX-License-Identifier: Apache-2.0
#pragma once
// Pieces shared by protect() and rebuild(): the agreed step, the metadata file and the two
// transfer engines (pairs of nodes streaming a file; XOR reductions over a group).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/comm/comm.hpp"
#include "storage/node_layout.hpp"
#include "storage/redundancy.hpp"
#include "storage/sparse_file.hpp"

namespace cairn::detail::redundancy {

constexpr int kMetaVersion = 1;
constexpr const char* kMetaFormat = "cairn-redundancy";

/// What protect() recorded about one node's level-1 file.
struct FileRecord {
  FileMap map;
  uint64_t checksum = 0;  // XXH3-64 of its stream (the bytes of its extents in order)
};

/// "validate, agree, then act": runs a local step on this rank and agrees over the job, so that a
/// failure on one node is the same Error on every rank, naming the node.
class Steps {
 public:
  Steps(const Comm& job, const NodeLayout& layout, std::string name, std::string operation);
  /// Collective over the job.
  void run(const std::function<void()>& fn) const;
  /// Local. Runs `fn` unless `failure` holds an earlier failure of this rank, which it then
  /// records (naming the node): for loops whose every iteration must still take part in the same
  /// messages, with one settle() after them instead of an agreement per iteration.
  void attempt(const std::function<void()>& fn, std::optional<Error>& failure) const;
  /// Collective over the job. The agreement on what attempt() recorded.
  void settle(const std::optional<Error>& failure) const;
  const Comm& job() const noexcept { return job_; }
  const NodeLayout& layout() const noexcept { return layout_; }
  const std::string& name() const noexcept { return name_; }
  ErrorContext context() const;

 private:
  const Comm& job_;
  const NodeLayout& layout_;
  std::string name_, operation_;
};

// File names inside a redundancy directory.
std::string meta_path(const std::string& red_dir, const std::string& name);
std::string partner_path(const std::string& red_dir, const std::string& name, int kept_node);
std::string parity_path(const std::string& red_dir, const std::string& name, int group, int node);

nlohmann::json record_to_json(const FileRecord& record);
FileRecord record_from_json(const nlohmann::json& j);  // throws on a malformed record
const char* scheme_name(Redundancy scheme);

/// The fields every node's metadata file starts with (`protect_id`: the protect it belongs to).
nlohmann::json meta_base(const NodeLayout& layout, const RedundancySpec& spec,
                         const std::string& name, const std::string& protect_id);
/// An element of a metadata file's "files": node `node`'s file as recorded.
nlohmann::json file_entry(int node, const FileRecord& record);
/// A metadata file's "partner" entry: this node keeps a copy of node `kept`'s file.
nlohmann::json partner_entry(const std::string& name, int kept, uint64_t checksum);

/// Local. Commits the copy of node `kept`'s file received into `sink` if its checksum is the one
/// recorded for that file (by its sender); else kCorrupt naming the node and both checksums.
void commit_copy(StreamWriter& sink, int kept, uint64_t recorded);

/// Local (leaders). The block of `bytes` (<= 1 GiB) a node reads, sends or writes per round.
int64_t block_size(const RedundancySpec& spec);

/// A stream sent from one node to another: the sender reads it, the receiver writes it.
struct PairPlan {
  int from = 0, to = 0;
  int64_t bytes = 0;
};
/// Collective over the job. Streams every pair's bytes in rounds of `block` bytes. `source`
/// (with `source_map`) is set on the leader of a `from` node, `sink` on the leader of a `to`
/// node; a node is the sender of at most one pair and the receiver of at most one. With
/// `source_hash`, the sender's stream is also hashed into it as it is read.
void transfer_pairs(const Steps& steps, const std::vector<PairPlan>& pairs, int64_t block,
                    const InputFile* source, const FileMap* source_map, StreamWriter* sink,
                    ChecksumStream* source_hash = nullptr);

/// One XOR group as every rank sees it: the members (ascending node indexes), their streams'
/// lengths, and the parity chunk: ceil(longest stream / (members - 1)) bytes per member.
struct XorGroup {
  std::vector<int> members;
  std::vector<int64_t> stream_bytes;
  int64_t chunk = 0;
};
int64_t xor_chunk_bytes(const std::vector<int64_t>& stream_bytes);
/// Collective over the job. Computes every member's parity: member i keeps the XOR of slice
/// (i - m - 1) mod s of every other member m's stream (s members, streams padded with zeros to
/// (s - 1) chunks). On leaders: `group` is the caller's group communicator (ranks = positions),
/// `own`/`own_map` its file, `parity` its parity writer.
void xor_encode(const Steps& steps, const std::vector<XorGroup>& groups, int64_t block,
                const Comm* group, int my_group, const InputFile* own, const FileMap* own_map,
                DenseWriter* parity);
/// Collective over the job. `lost[g]`: the position of the lost member of group g, or -1. The
/// lost member's slice c is the XOR of the parity of member (lost + c + 1) mod s with the other
/// survivors' slices that went into it. On the lost leader `sink` receives the stream; on
/// survivors `own`/`own_map` is its file and `parity_file` its parity.
void xor_decode(const Steps& steps, const std::vector<XorGroup>& groups,
                const std::vector<int>& lost, int64_t block, const Comm* group, int my_group,
                const InputFile* own, const FileMap* own_map, const InputFile* parity_file,
                StreamWriter* sink);

/// "2, 3 and 5".
std::string join_nodes(const std::vector<int>& nodes);
/// Collective over the job. Agreed checks of the name and that every rank passed the same spec.
void check_arguments(const Steps& steps, const RedundancySpec& spec, const std::string& name);
/// Local. Whether the scheme keeps any redundancy data for this layout.
bool protects(const NodeLayout& layout, const RedundancySpec& spec);
/// Collective over the job. Each node leader's `mine`, per node, on every rank.
std::vector<nlohmann::json> per_node(const Comm& job, const NodeLayout& layout,
                                     const nlohmann::json& mine);
struct Groups {
  std::vector<XorGroup> groups;
  int mine = -1;  // the group of this node
};
/// Local. The XOR groups with their streams' lengths (per node).
Groups xor_plan(const NodeLayout& layout, int group_size, const std::vector<int64_t>& stream_bytes);
/// Collective over the node leaders: the leaders of each XOR group (ranks = positions).
std::optional<Comm> group_comm(const NodeLayout& layout, int my_group);

}  // namespace cairn::detail::redundancy
