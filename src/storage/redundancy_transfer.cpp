// SPDX-License-Identifier: Apache-2.0
// The rounds of the redundancy engine, and the metadata fields protect() and rebuild() share.
// Every rank of the job runs the same number of rounds (computed from what every rank knows: the
// records of all nodes). XOR rounds agree on the local reads before any message and on the writes
// after; a partner stream agrees once, after its last round (a failing leader keeps taking part in
// the messages until then), so a failing node never leaves another waiting for a message that will
// not come.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "storage/checksum.hpp"
#include "storage/redundancy_internal.hpp"

namespace cairn::detail::redundancy {

using nlohmann::json;

namespace {

constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;  // MPI counts are int
constexpr int kTag = 0x4c32;                          // "L2"

int64_t rounds_for(int64_t bytes, int64_t block) {
  return (bytes + block - 1) / block;
}

std::unique_ptr<std::byte[]> buffer_of(int64_t bytes) {
  return std::make_unique_for_overwrite<std::byte[]>(
      static_cast<std::size_t>(std::max<int64_t>(bytes, 1)));
}

}  // namespace

Steps::Steps(const Comm& job, const NodeLayout& layout, std::string name, std::string operation)
    : job_(job), layout_(layout), name_(std::move(name)), operation_(std::move(operation)) {}

ErrorContext Steps::context() const {
  return ErrorContext{.rank = job_.rank(), .checkpoint = name_, .operation = operation_};
}

void Steps::run(const std::function<void()>& fn) const {
  std::optional<Error> failure;
  attempt(fn, failure);
  settle(failure);
}

void Steps::settle(const std::optional<Error>& failure) const {
  job_.agree(failure ? &*failure : nullptr);
}

void Steps::attempt(const std::function<void()>& fn, std::optional<Error>& failure) const {
  if (failure) return;
  try {
    fn();
  } catch (...) {
    const Error e = current_exception_as_error(context());
    const auto node = static_cast<std::size_t>(layout_.node_index);
    failure.emplace(e.code(),
                    "node " + std::to_string(layout_.node_index) + " (host '" +
                        layout_.hosts.at(node) + "', job rank " + std::to_string(job_.rank()) +
                        "): " + e.message(),
                    context());
  }
}

std::string meta_path(const std::string& red_dir, const std::string& name) {
  return red_dir + "/" + name + ".redundancy.json";
}

std::string partner_path(const std::string& red_dir, const std::string& name, int kept_node) {
  return red_dir + "/" + name + ".partner-of-node" + std::to_string(kept_node);
}

std::string parity_path(const std::string& red_dir, const std::string& name, int group, int node) {
  return red_dir + "/" + name + ".xor-g" + std::to_string(group) + "-n" + std::to_string(node);
}

json record_to_json(const FileRecord& record) {
  json extents = json::array();
  for (const Extent& e : record.map.extents) extents.push_back({e.offset, e.length});
  return {{"size", record.map.size},
          {"extents", std::move(extents)},
          {"checksum", checksum_to_hex(record.checksum)}};
}

FileRecord record_from_json(const json& j) {
  FileRecord record;
  record.map.size = j.at("size").get<int64_t>();
  int64_t end = 0;
  for (const auto& e : j.at("extents")) {
    const Extent extent{e.at(0).get<int64_t>(), e.at(1).get<int64_t>()};
    if (extent.offset < end || extent.length <= 0 ||
        extent.offset + extent.length > record.map.size)
      throw std::runtime_error("extents out of order or outside the file");
    end = extent.offset + extent.length;
    record.map.extents.push_back(extent);
  }
  if (!checksum_from_hex(j.at("checksum").get<std::string>(), record.checksum))
    throw std::runtime_error("malformed checksum");
  return record;
}

json meta_base(const NodeLayout& layout, const RedundancySpec& spec, const std::string& name,
               const std::string& protect_id) {
  const int me = layout.node_index;
  return {{"format", kMetaFormat},
          {"version", kMetaVersion},
          {"checkpoint", name},
          {"protect_id", protect_id},
          {"scheme", scheme_name(spec.scheme)},
          {"nodes", layout.nodes},
          {"node", me},
          {"host", layout.hosts.at(static_cast<std::size_t>(me))}};
}

json file_entry(int node, const FileRecord& record) {
  json f = record_to_json(record);
  f["node"] = node;
  return f;
}

json partner_entry(const std::string& name, int kept, uint64_t checksum) {
  return {{"keeps_node", kept},
          {"file", std::filesystem::path(partner_path(".", name, kept)).filename().string()},
          {"checksum", checksum_to_hex(checksum)}};
}

void commit_copy(StreamWriter& sink, int kept, uint64_t recorded) {
  if (sink.checksum() != recorded)
    throw Error(ErrorCode::kCorrupt, "the copy of node " + std::to_string(kept) +
                                         "'s file received here has checksum " +
                                         checksum_to_hex(sink.checksum()) +
                                         ", the sender recorded " + checksum_to_hex(recorded));
  sink.commit();
}

const char* scheme_name(Redundancy scheme) {
  switch (scheme) {
    case Redundancy::kNone:
      return "none";
    case Redundancy::kPartner:
      return "partner";
    case Redundancy::kXor:
      return "xor";
  }
  return "unknown";
}

int64_t block_size(const RedundancySpec& spec) {
  return std::clamp<int64_t>(spec.block_bytes, 1, kMaxBlockBytes);
}

void transfer_pairs(const Steps& steps, const std::vector<PairPlan>& pairs, int64_t block,
                    const InputFile* source, const FileMap* source_map, StreamWriter* sink,
                    ChecksumStream* source_hash) {
  const NodeLayout& layout = steps.layout();
  const int me = layout.node_index;
  const PairPlan* sending = nullptr;
  const PairPlan* receiving = nullptr;
  int64_t rounds = 0;
  for (const PairPlan& p : pairs) {
    rounds = std::max(rounds, rounds_for(p.bytes, block));
    if (!layout.is_leader) continue;
    if (p.from == me) sending = &p;
    if (p.to == me) receiving = &p;
  }
  // Two buffers each way, so that the rounds overlap: a sender reads block r+1 while block r is
  // on its way, and a receiver has block r+1 coming in while it writes block r (one round at a
  // time kept each side idle while the other read or wrote).
  const int64_t out_len = sending ? std::min(block, sending->bytes) : 0;
  const int64_t in_len = receiving ? std::min(block, receiving->bytes) : 0;
  const std::unique_ptr<std::byte[]> out[2] = {buffer_of(out_len), buffer_of(out_len)};
  const std::unique_ptr<std::byte[]> in[2] = {buffer_of(in_len), buffer_of(in_len)};
  // Declared after the buffers, so destroyed before them: if an MPI call throws (errors are
  // returned, then thrown) with requests open, they are completed before their buffers go.
  struct OpenRequests {
    MPI_Request sends[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    MPI_Request receives[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    ~OpenRequests() {
      for (MPI_Request& r : receives)
        if (r != MPI_REQUEST_NULL) MPI_Cancel(&r);
      MPI_Waitall(2, receives, MPI_STATUSES_IGNORE);
      MPI_Waitall(2, sends, MPI_STATUSES_IGNORE);
    }
  } open;
  MPI_Request* const sends = open.sends;
  MPI_Request* const receives = open.receives;
  const MPI_Comm leaders = layout.is_leader ? layout.leaders->get() : MPI_COMM_NULL;
  const auto length = [&](const PairPlan* p, int64_t round) {
    return p ? std::clamp<int64_t>(p->bytes - round * block, 0, block) : 0;
  };
  // Messages of one pair are matched in the order they were posted (same source, tag and
  // communicator), so round r's receive always gets round r's block.
  const auto post_receive = [&](int64_t round) {
    const int64_t len = length(receiving, round);
    if (len <= 0) return;
    check_mpi(MPI_Irecv(in[round % 2].get(), static_cast<int>(len), MPI_BYTE, receiving->from, kTag,
                        leaders, &receives[round % 2]),
              "MPI_Irecv(redundancy stream)");
  };
  // One agreement after the last round, not two per round: with more processes than cores
  // (and on a busy node) each agreement waits for every rank to be scheduled, which cost more than
  // the bytes. A rank whose read or write fails keeps taking part in the messages (sending zeros)
  // until the agreement, so no peer is left waiting.
  std::optional<Error> failure;
  post_receive(0);
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t send_len = length(sending, round), recv_len = length(receiving, round);
    std::byte* const outgoing = out[round % 2].get();
    if (send_len > 0) {
      // The send of round - 2 used this buffer.
      check_mpi(MPI_Wait(&sends[round % 2], MPI_STATUS_IGNORE), "MPI_Wait(redundancy stream)");
      steps.attempt(
          [&] {
            source->read_stream(*source_map, round * block, outgoing, send_len);
            if (source_hash) source_hash->update(outgoing, static_cast<std::size_t>(send_len));
          },
          failure);
      if (failure) std::memset(outgoing, 0, static_cast<std::size_t>(send_len));
      check_mpi(MPI_Isend(outgoing, static_cast<int>(send_len), MPI_BYTE, sending->to, kTag,
                          leaders, &sends[round % 2]),
                "MPI_Isend(redundancy stream)");
    }
    if (recv_len > 0) {
      post_receive(round + 1);
      check_mpi(MPI_Wait(&receives[round % 2], MPI_STATUS_IGNORE), "MPI_Wait(redundancy stream)");
      steps.attempt([&] { sink->write(in[round % 2].get(), recv_len); }, failure);
    }
  }
  check_mpi(MPI_Waitall(2, sends, MPI_STATUSES_IGNORE), "MPI_Waitall(redundancy stream)");
  steps.settle(failure);
}

int64_t xor_chunk_bytes(const std::vector<int64_t>& stream_bytes) {
  const auto slices = static_cast<int64_t>(stream_bytes.size()) - 1;
  if (slices < 1) return 0;
  const int64_t longest = *std::max_element(stream_bytes.begin(), stream_bytes.end());
  return (longest + slices - 1) / slices;
}

namespace {

// One XOR reduction to `root` over the group: `buffer` holds this member's contribution (the
// root's is zero) and receives the result on the root.
void xor_reduce(const Comm& group, std::byte* buffer, int64_t len, int root) {
  // Whole 64-bit words where the length allows (fewer elements for MPI's XOR loop).
  const bool words = len % 8 == 0;
  const int count = static_cast<int>(words ? len / 8 : len);
  const MPI_Datatype type = words ? MPI_UINT64_T : MPI_BYTE;
  if (group.rank() == root) {
    std::memset(buffer, 0, static_cast<std::size_t>(len));
    check_mpi(MPI_Reduce(MPI_IN_PLACE, buffer, count, type, MPI_BXOR, root, group.get()),
              "MPI_Reduce(xor parity)");
  } else {
    check_mpi(MPI_Reduce(buffer, nullptr, count, type, MPI_BXOR, root, group.get()),
              "MPI_Reduce(xor parity)");
  }
}

int position_of(const XorGroup& g, int node) {
  return static_cast<int>(std::find(g.members.begin(), g.members.end(), node) - g.members.begin());
}

}  // namespace

void xor_encode(const Steps& steps, const std::vector<XorGroup>& groups, int64_t block,
                const Comm* group, int my_group, const InputFile* own, const FileMap* own_map,
                DenseWriter* parity) {
  // Each round builds the next piece of every member's parity at once (s reductions of block / s
  // bytes), so that all members read, and all write, in the same rounds.
  const NodeLayout& layout = steps.layout();
  const auto piece_of = [block](const XorGroup& g) {
    return std::max<int64_t>(block / static_cast<int64_t>(g.members.size()), 1);
  };
  int64_t rounds = 0;
  for (const XorGroup& g : groups)
    if (g.members.size() >= 2) rounds = std::max(rounds, rounds_for(g.chunk, piece_of(g)));
  const XorGroup* mine =
      layout.is_leader && my_group >= 0 ? &groups[static_cast<std::size_t>(my_group)] : nullptr;
  if (mine && mine->members.size() < 2) mine = nullptr;
  const int s = mine ? static_cast<int>(mine->members.size()) : 0;
  const int pos = mine ? position_of(*mine, layout.node_index) : 0;
  const int64_t piece = mine ? piece_of(*mine) : 0;
  const int64_t per_target = mine ? rounds_for(mine->chunk, piece) : 0;
  const int64_t capacity = mine ? std::min(piece, mine->chunk) : 0;
  const auto buffers = buffer_of(capacity * s);
  const auto at = [&](int target) { return buffers.get() + capacity * target; };
  for (int64_t round = 0; round < rounds; ++round) {
    const bool active = mine && round < per_target;
    const int64_t len = active ? std::min(piece, mine->chunk - round * piece) : 0;
    steps.run([&] {
      if (!active) return;
      for (int target = 0; target < s; ++target) {
        if (target == pos) continue;
        const int64_t slice = (target - pos - 1 + s) % s;
        own->read_stream(*own_map, slice * mine->chunk + round * piece, at(target), len);
      }
    });
    if (active)
      for (int target = 0; target < s; ++target) xor_reduce(*group, at(target), len, target);
    steps.run([&] {
      if (active) parity->write(at(pos), len);
    });
  }
}

void xor_decode(const Steps& steps, const std::vector<XorGroup>& groups,
                const std::vector<int>& lost, int64_t block, const Comm* group, int my_group,
                const InputFile* own, const FileMap* own_map, const InputFile* parity_file,
                StreamWriter* sink) {
  const NodeLayout& layout = steps.layout();
  int64_t rounds = 0;
  for (std::size_t g = 0; g < groups.size(); ++g)
    if (lost[g] >= 0)
      rounds = std::max(rounds, static_cast<int64_t>(groups[g].members.size() - 1) *
                                    rounds_for(groups[g].chunk, block));
  const XorGroup* mine =
      layout.is_leader && my_group >= 0 && lost[static_cast<std::size_t>(my_group)] >= 0
          ? &groups[static_cast<std::size_t>(my_group)]
          : nullptr;
  const int s = mine ? static_cast<int>(mine->members.size()) : 0;
  const int pos = mine ? position_of(*mine, layout.node_index) : 0;
  const int gone = mine ? lost[static_cast<std::size_t>(my_group)] : 0;
  const int64_t per_slice = mine ? rounds_for(mine->chunk, block) : 0;
  const auto buffer = buffer_of(mine ? std::min(block, mine->chunk) : 0);
  for (int64_t round = 0; round < rounds; ++round) {
    const bool active = mine && round < (s - 1) * per_slice;
    const int64_t slice = active ? round / per_slice : 0;
    const int64_t b = active ? round % per_slice : 0;
    const int holder = active ? static_cast<int>((gone + slice + 1) % s) : 0;
    const int64_t len = active ? std::min(block, mine->chunk - b * block) : 0;
    steps.run([&] {
      if (!active || pos == gone) return;
      if (pos == holder) {
        parity_file->read_at(b * block, buffer.get(), len);
      } else {
        const int64_t theirs = (holder - pos - 1 + s) % s;
        own->read_stream(*own_map, theirs * mine->chunk + b * block, buffer.get(), len);
      }
    });
    if (active) xor_reduce(*group, buffer.get(), len, gone);
    steps.run([&] {
      if (active && pos == gone) sink->write(buffer.get(), len);
    });
  }
}

}  // namespace cairn::detail::redundancy
