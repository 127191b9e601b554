// SPDX-License-Identifier: Apache-2.0
// protect() and rebuild(): what each node records, how the job decides what can be rebuilt, and
// the order of writes that keeps partial redundancy from ever looking valid (data files first,
// each through a temporary file; the metadata file, which makes them count, last).
#include "storage/redundancy.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "comm/wire.hpp"
#include "core/trace.hpp"
#include "storage/checksum.hpp"
#include "storage/durable_file.hpp"
#include "storage/redundancy_internal.hpp"

namespace cairn::detail {

using namespace redundancy;
using nlohmann::json;

namespace redundancy {

std::string join_nodes(const std::vector<int>& nodes) {
  std::string text;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    text += (i == 0 ? "" : i + 1 == nodes.size() ? " and " : ", ") + std::to_string(nodes[i]);
  return text;
}

// The name becomes part of file names in red_dir, and every rank must run the same scheme.
void check_arguments(const Steps& steps, const RedundancySpec& spec, const std::string& name) {
  const Comm& job = steps.job();
  const auto scheme = static_cast<int64_t>(spec.scheme);
  const int64_t group = spec.scheme == Redundancy::kXor ? spec.xor_group_size : 0;
  const bool same = job.allreduce_min(scheme) == job.allreduce_max(scheme) &&
                    job.allreduce_min(group) == job.allreduce_max(group);
  steps.run([&] {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw Error(
          ErrorCode::kInvalidArgument,
          "a checkpoint name for redundancy files must be a plain file name, not '" + name + "'");
    if (!same)
      throw Error(ErrorCode::kInvalidArgument,
                  "the ranks passed different redundancy schemes or XOR group sizes");
    if (spec.scheme == Redundancy::kXor && spec.xor_group_size < 2)
      throw Error(ErrorCode::kInvalidArgument, "an XOR group needs at least 2 nodes, not " +
                                                   std::to_string(spec.xor_group_size));
  });
}

bool protects(const NodeLayout& layout, const RedundancySpec& spec) {
  return spec.scheme != Redundancy::kNone && layout.nodes >= 2;
}

// Per node (leaders' values; null or empty for nodes that sent nothing), on every rank.
std::vector<wire::Message> per_node(const Comm& job, const NodeLayout& layout,
                                    const wire::Message& mine) {
  const std::vector<wire::Message> all =
      wire::allgather(job, layout.is_leader ? mine : wire::Message());
  std::vector<wire::Message> nodes;
  for (const auto& ranks : layout.node_ranks)
    nodes.push_back(all[static_cast<std::size_t>(ranks[0])]);
  return nodes;
}

Groups xor_plan(const NodeLayout& layout, int group_size,
                const std::vector<int64_t>& stream_bytes) {
  Groups plan;
  for (const std::vector<int>& members : layout.xor_groups(group_size)) {
    XorGroup g{.members = members, .stream_bytes = {}, .chunk = 0};
    for (int m : members) {
      g.stream_bytes.push_back(stream_bytes[static_cast<std::size_t>(m)]);
      if (m == layout.node_index) plan.mine = static_cast<int>(plan.groups.size());
    }
    g.chunk = xor_chunk_bytes(g.stream_bytes);
    plan.groups.push_back(std::move(g));
  }
  return plan;
}

std::optional<Comm> group_comm(const NodeLayout& layout, int my_group) {
  if (!layout.is_leader) return std::nullopt;
  MPI_Comm split = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(layout.leaders->get(), my_group, layout.node_index, &split),
            "MPI_Comm_split(xor group)");
  try {
    Comm comm(split);
    MPI_Comm_free(&split);
    return comm;
  } catch (...) {
    MPI_Comm_free(&split);
    throw;
  }
}

}  // namespace redundancy

namespace {

std::string new_protect_id(const Comm& job) {
  std::string id;
  if (job.rank() == 0) {
    std::random_device random;
    const uint64_t value = (uint64_t{random()} << 32) ^ random();
    id = checksum_to_hex(value);
  }
  job.broadcast(id, 0);
  return id;
}

void remove_quietly(const std::string& name, const std::string& red_dir) noexcept {
  try {
    remove_redundancy(name, red_dir);
  } catch (...) {
    // Best effort after a failure that is already being reported.
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether `file` (a name in red_dir) is one of the redundancy files of `name`, or a temporary one.
bool is_redundancy_file(std::string_view file, const std::string& name) {
  if (file.size() <= name.size() + 1 || file.substr(0, name.size()) != name ||
      file[name.size()] != '.')
    return false;
  std::string_view rest = file.substr(name.size() + 1);
  if (rest.starts_with("redundancy.json")) {
    rest.remove_prefix(std::string_view("redundancy.json").size());
    return rest.empty() || rest.starts_with(".tmp-");
  }
  if (rest.size() > 4 && rest.substr(rest.size() - 4) == ".tmp") rest.remove_suffix(4);
  if (rest.starts_with("partner-of-node"))
    return all_digits(rest.substr(std::string_view("partner-of-node").size()));
  if (rest.starts_with("xor-g")) {
    rest.remove_prefix(5);
    const std::size_t n = rest.find("-n");
    return n != std::string_view::npos && all_digits(rest.substr(0, n)) &&
           all_digits(rest.substr(n + 2));
  }
  return false;
}

// The checkpoint whose redundancy file `file` is, if it is one: the name before the last of the
// suffixes above that leaves a name is_redundancy_file() accepts.
std::optional<std::string> checkpoint_of(std::string_view file) {
  for (const std::string_view suffix : {".redundancy.json", ".partner-of-node", ".xor-g"}) {
    const std::size_t at = file.rfind(suffix);
    if (at == std::string_view::npos || at == 0) continue;
    std::string name(file.substr(0, at));
    if (is_redundancy_file(file, name)) return name;
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> redundancy_checkpoints(const std::string& red_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(red_dir, ec))
    if (std::optional<std::string> name = checkpoint_of(entry.path().filename().string()))
      if (std::find(names.begin(), names.end(), *name) == names.end())
        names.push_back(std::move(*name));
  return names;
}

void remove_redundancy(const std::string& name, const std::string& red_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(red_dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return;
    throw Error(ErrorCode::kIo, "list '" + red_dir + "': " + ec.message(),
                {.checkpoint = name, .operation = "remove redundancy"});
  }
  bool removed = false;
  for (const auto& entry : it) {
    if (!is_redundancy_file(entry.path().filename().string(), name)) continue;
    if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
      throw Error(ErrorCode::kIo, "remove '" + entry.path().string() + "': " + std::strerror(errno),
                  {.checkpoint = name, .operation = "remove redundancy"});
    removed = true;
  }
  if (removed) fsync_path(red_dir);
}

void protect(const Comm& job, const NodeLayout& layout, const RedundancySpec& spec,
             const std::string& name, const std::string& own_file, const std::string& red_dir) {
  const Steps steps(job, layout, name, "protect");
  check_arguments(steps, spec, name);
  const int64_t block = block_size(spec);
  const bool leader = layout.is_leader;
  const int me = layout.node_index;
  PhaseTrace trace("redundancy protect", job.rank(), name);
  try {
    FileRecord mine;
    std::optional<InputFile> own;
    // A partner copy sends the whole stream in order: its checksum is taken from the bytes sent,
    // saving a pass over the file (a second read of every byte).
    const bool partner = spec.scheme == Redundancy::kPartner && protects(layout, spec);
    steps.run([&] {
      if (!leader) return;
      std::filesystem::create_directories(red_dir);
      remove_redundancy(name, red_dir);
      own.emplace(own_file);
      mine.map = own->map();
      if (!partner) mine.checksum = own->stream_checksum(mine.map, block);
    });
    trace.mark(partner ? "map the file" : "map and checksum the file", mine.map.stream_bytes());
    std::vector<FileRecord> records;
    const auto exchange_records = [&] {
      records.clear();
      for (const wire::Message& m : per_node(job, layout, leader ? record_to_json(mine) : json()))
        records.push_back(record_from_json(m));
    };
    exchange_records();
    json meta = meta_base(layout, spec, name, new_protect_id(job));
    json files = json::array();
    const auto add_file = [&](int node) {
      files.push_back(file_entry(node, records[static_cast<std::size_t>(node)]));
    };
    if (!partner) add_file(me);

    if (partner) {
      std::vector<PairPlan> pairs;
      for (int k = 0; k < layout.nodes; ++k)
        pairs.push_back(
            {k, layout.partner_of(k), records[static_cast<std::size_t>(k)].map.stream_bytes()});
      const int kept = layout.partner_kept_by(me);
      const FileMap their_map = records[static_cast<std::size_t>(kept)].map;
      std::optional<StreamWriter> sink;
      steps.run([&] {
        if (leader) sink.emplace(partner_path(red_dir, name, kept), their_map);
      });
      std::optional<ChecksumStream> sent;
      steps.run([&] {  // a failed allocation on one leader is the same error everywhere
        if (leader) sent.emplace();
      });
      transfer_pairs(steps, pairs, block, leader ? &*own : nullptr, &mine.map,
                     sink ? &*sink : nullptr, sent ? &*sent : nullptr);
      trace.mark("send the file (and checksum it), write the partner's copy",
                 their_map.stream_bytes());
      if (sent) mine.checksum = sent->digest();
      exchange_records();  // now with every sender's checksum
      add_file(me);
      const FileRecord& theirs = records[static_cast<std::size_t>(kept)];
      steps.run([&] {
        if (!leader) return;
        commit_copy(*sink, kept, theirs.checksum);
      });
      trace.mark("fsync and rename the copy");
      add_file(kept);
      meta["partner"] = partner_entry(name, kept, theirs.checksum);
    } else if (spec.scheme == Redundancy::kXor && protects(layout, spec)) {
      meta["xor_group_size"] = spec.xor_group_size;
      std::vector<int64_t> streams;
      for (const FileRecord& r : records) streams.push_back(r.map.stream_bytes());
      const Groups plan = xor_plan(layout, spec.xor_group_size, streams);
      const XorGroup& group = plan.groups[static_cast<std::size_t>(plan.mine)];
      const std::optional<Comm> comm = group_comm(layout, plan.mine);
      const std::string parity_file = parity_path(red_dir, name, plan.mine, me);
      std::optional<DenseWriter> parity;
      steps.run([&] {
        if (leader) parity.emplace(parity_file);
      });
      xor_encode(steps, plan.groups, block, comm ? &*comm : nullptr, plan.mine,
                 leader ? &*own : nullptr, &mine.map, parity ? &*parity : nullptr);
      trace.mark("xor parity", group.chunk);
      uint64_t parity_checksum = 0;
      steps.run([&] {
        if (!leader) return;
        parity_checksum = parity->checksum();
        parity->commit();
      });
      trace.mark("fsync and rename the parity");
      for (int m : group.members)
        if (m != me) add_file(m);
      meta["xor"] = {{"group", plan.mine},
                     {"members", group.members},
                     {"chunk_bytes", group.chunk},
                     {"file", std::filesystem::path(parity_file).filename().string()},
                     {"checksum", checksum_to_hex(parity_checksum)}};
    }
    meta["files"] = std::move(files);
    steps.run([&] {
      if (leader) write_file_atomically(meta_path(red_dir, name), meta.dump(1));
    });
    trace.mark("write the metadata");
  } catch (...) {
    if (leader) remove_quietly(name, red_dir);
    throw;
  }
}

}  // namespace cairn::detail
