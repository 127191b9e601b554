// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/save_plan.hpp"

#include <cstring>

#include "cairn/state/state.hpp"
#include "cairn/tensor/variable.hpp"
#include "cairn/version.hpp"
#include "checkpoint/saved_scope.hpp"
#include "storage/checksum.hpp"
#include "storage/schema.hpp"

namespace cairn::detail {
namespace {

// A replicated tensor is cut into pieces that ranks take in turn, starting at a rank that rotates
// with the tensor, so that both one large and many small replicated tensors spread over the job.
int replicated_writer(std::size_t piece, std::size_t tensor, int nranks) {
  return static_cast<int>((piece + tensor) % static_cast<std::size_t>(nranks));
}

std::vector<Box> replicated_pieces(const TensorRecord& t, const SessionOptions& options) {
  const Box whole = Box::whole(t.shape);
  if (whole.empty()) return {};
  if (t.packed) return {whole};
  return split_box(whole, static_cast<int64_t>(dtype_size(t.dtype)), options.piece_bytes);
}

void plan_tensor(SavePlan& plan, std::size_t index, const Variable& v, const Session& session) {
  const TensorRecord& t = plan.tensors[index];
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  const int me = session.rank();
  const int n = session.size();
  const SessionOptions& options = session.options();
  int64_t max_writes = 0;
  if (v.layout().kind() == Layout::Kind::kReplicated) {
    const std::vector<Box> pieces = replicated_pieces(t, options);
    const WriterGroup& group = plan.group;
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      if (replicated_writer(p, index, group.size) != group.rank) continue;
      plan.writes.push_back({index, v.box_bytes(0).data(), Box::whole(t.shape),
                             WrittenBox{me, pieces[p], {PieceRecord{pieces[p], 0, -1}}}});
    }
    const auto g = static_cast<std::size_t>(group.size);
    max_writes = static_cast<int64_t>((pieces.size() + g - 1) / g);
  } else {
    for (std::size_t b = 0; b < v.local_boxes().size(); ++b) {
      const Box& box = v.local_boxes()[b];
      if (box.empty()) continue;
      WrittenBox written{me, box, {}};
      for (const Box& piece :
           t.packed ? std::vector<Box>{box} : split_box(box, esize, options.piece_bytes))
        written.pieces.push_back({piece, 0, -1});
      plan.writes.push_back({index, v.box_bytes(b).data(), box, std::move(written)});
    }
    if (v.layout().kind() == Layout::Kind::kExplicit) {
      for (int r = 0; r < n; ++r) {
        int64_t count = 0;
        for (const Box& box : v.layout().boxes_for(r, n, t.shape)) count += box.empty() ? 0 : 1;
        max_writes = std::max(max_writes, count);
      }
    } else {
      // Block and grid: at most one box per rank, and rank 0's is not empty unless the tensor is.
      max_writes = shape_volume(t.shape) > 0 ? 1 : 0;
    }
  }
  if (!t.packed) plan.max_writes.push_back(max_writes);
}

}  // namespace

void compute_checksums(SavePlan& plan, ChecksumPieces which) {
  struct Job {
    PieceRecord* piece;
    const std::byte* buffer;
    const Box* buffer_box;
    int64_t esize;
  };
  std::vector<Job> jobs;
  int64_t bytes = 0;
  for (LocalWrite& w : plan.writes) {
    if (which == ChecksumPieces::kDatasetsOnly && plan.tensors[w.tensor].packed) continue;
    for (PieceRecord& p : w.written.pieces) {
      const auto esize = static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
      jobs.push_back({&p, w.buffer, &w.buffer_box, esize});
      bytes += p.box.volume() * esize;
    }
  }
  const auto n = static_cast<int64_t>(jobs.size());
#pragma omp parallel for schedule(dynamic) if (bytes >= kParallelChecksumBytes)
  for (int64_t i = 0; i < n; ++i) {
    const Job& j = jobs[static_cast<std::size_t>(i)];
    j.piece->checksum = checksum_region(j.buffer, *j.buffer_box, j.piece->box, j.esize);
  }
}

namespace {

// Packed offsets only: the bytes stay where they are (live variables, or the staging memory of
// an asynchronous save) until write time streams them through a small buffer, so that a save
// needs no second copy of the rank's small tensors.
void assign_packed_offsets(SavePlan& plan) {
  int64_t total = 0;
  for (LocalWrite& w : plan.writes) {
    const TensorRecord& t = plan.tensors[w.tensor];
    if (!t.packed) continue;
    const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
    for (PieceRecord& p : w.written.pieces) {
      p.packed_offset = total;
      total += p.box.volume() * esize;
    }
  }
  plan.packed_bytes = total;
}

// Rank 0 stores an explicit layout's boxes in the table as its own Layout has them, and every rank
// writes its boxes as its own has them: ranks whose explicit boxes differ would commit a file whose
// records contradict its table. The boxes' checksum joins the signature the ranks compare.
std::string explicit_boxes_signature(const Layout& layout, const Shape& shape, int nranks) {
  if (layout.kind() != Layout::Kind::kExplicit) return {};
  std::string boxes;
  for (int r = 0; r < nranks; ++r)
    for (const Box& box : layout.boxes_for(r, nranks, shape)) boxes += box.to_string() + ';';
  return ' ' + checksum_to_hex(checksum_bytes(boxes.data(), boxes.size()));
}

}  // namespace

WriterGroup WriterGroup::whole_job(const Session& session) {
  WriterGroup group{session.rank(), session.size(), {}};
  group.job_ranks.resize(static_cast<std::size_t>(session.size()));
  for (int r = 0; r < session.size(); ++r) group.job_ranks[static_cast<std::size_t>(r)] = r;
  return group;
}

SavePlan make_save_plan(const LiveGraph& graph, const Session& session, const WriterGroup* group) {
  SavePlan plan;
  plan.group = group ? *group : WriterGroup::whole_job(session);
  const SessionOptions& options = session.options();
  plan.piece_bytes = options.piece_bytes;
  // Ranks with different options would create different datasets: a hang, or a bad file. So would
  // ranks of different library versions: each encodes the file's header (save.cpp) to size it.
  plan.signature = std::string("library ") + version() + "\noptions " +
                   std::to_string(options.pack_threshold_bytes) + " " +
                   std::to_string(options.piece_bytes) + " " +
                   std::to_string(static_cast<int>(options.write_mode)) + "\n";
  std::vector<const Variable*> variables;
  std::vector<const StateObject*> states;
  for (const LiveNode& node : graph.nodes) {
    plan.signature += node.record.kind + ' ' + node.record.path + '\n';
    if (const auto* v = dynamic_cast<const Variable*>(node.object.get())) {
      const std::string& key = node.record.value_key;
      if (v->nranks() != session.size() || v->rank() != session.rank())
        throw Error(ErrorCode::kShardMismatch,
                    "variable was created for rank " + std::to_string(v->rank()) + " of " +
                        std::to_string(v->nranks()) + ", but the session is rank " +
                        std::to_string(session.rank()) + " of " + std::to_string(session.size()),
                    {.rank = session.rank(), .key = key, .operation = "save"});
      v->layout().validate(v->shape(), session.size(), key);
      TensorRecord t;
      t.key = key;
      t.dtype = v->dtype();
      t.shape = v->shape();
      t.layout = v->layout().describe();
      const int64_t bytes = shape_volume(t.shape) * static_cast<int64_t>(dtype_size(t.dtype));
      t.packed = bytes <= options.pack_threshold_bytes;
      if (!t.packed) t.dataset = schema::tensor_dataset(key);
      plan.signature += std::string(dtype_name(t.dtype)) + ' ' + shape_to_string(t.shape) + ' ' +
                        t.layout + explicit_boxes_signature(v->layout(), t.shape, session.size()) +
                        '\n';
      plan.tensors.push_back(std::move(t));
      plan.layouts.push_back(v->layout());
      variables.push_back(v);
    } else if (const auto* s = dynamic_cast<const StateObject*>(node.object.get())) {
      plan.states.push_back({node.record.value_key, saved_scope(s->scope()), {}});
      plan.signature += s->scope() == StateScope::kPerRank ? "per_rank\n" : "global\n";
      states.push_back(s);
    }
  }
  for (std::size_t i = 0; i < plan.tensors.size(); ++i)
    plan_tensor(plan, i, *variables[i], session);
  assign_packed_offsets(plan);
  plan.tensor_packed_bytes = plan.packed_bytes;
  serialize_states(plan, states, session);
  return plan;
}

void serialize_states(SavePlan& plan, const std::vector<const StateObject*>& states,
                      const Session& session) {
  plan.blobs.clear();
  plan.packed_bytes = plan.tensor_packed_bytes;
  for (std::size_t i = 0; i < states.size(); ++i) {
    const bool mine =
        states[i]->scope() == StateScope::kPerRank ||
        static_cast<int>(i % static_cast<std::size_t>(plan.group.size)) == plan.group.rank;
    if (!mine) continue;
    std::string bytes;
    try {
      bytes = states[i]->save_bytes();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kSerialization, std::string("cannot serialize state: ") + e.what(),
                  {.rank = session.rank(), .key = plan.states[i].key, .operation = "save"});
    }
    LocalBlob blob{i,
                   {session.rank(), plan.packed_bytes, static_cast<int64_t>(bytes.size()),
                    checksum_bytes(bytes.data(), bytes.size())},
                   std::move(bytes)};
    plan.packed_bytes += blob.blob.bytes;
    plan.blobs.push_back(std::move(blob));
  }
}

int64_t dataset_write_bytes(const SavePlan& plan) {
  int64_t bytes = 0;
  for (const LocalWrite& w : plan.writes)
    if (!plan.tensors[w.tensor].packed)
      bytes +=
          w.written.box.volume() * static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
  return bytes;
}

int64_t staging_bytes_needed(const SavePlan& plan) {
  int64_t bytes = 0;
  for (const LocalWrite& w : plan.writes)
    bytes +=
        w.written.box.volume() * static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
  return bytes;
}

void stage_plan(SavePlan& plan, std::byte* staging) {
  struct Copy {
    LocalWrite* write;
    std::byte* to;
  };
  std::vector<Copy> copies;
  int64_t offset = 0;
  for (LocalWrite& w : plan.writes) {
    copies.push_back({&w, staging + offset});
    offset +=
        w.written.box.volume() * static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
  }
  // copy_region itself runs its large copies with OpenMP; the many small ones go in parallel here.
  const auto n = static_cast<int64_t>(copies.size());
#pragma omp parallel for schedule(dynamic, 64) if (n > 1024)
  for (int64_t i = 0; i < n; ++i) {
    const Copy& c = copies[static_cast<std::size_t>(i)];
    LocalWrite& w = *c.write;
    const auto esize = static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype));
    // Most writes are a whole local box (block layouts, small replicated tensors): one memcpy,
    // without copy_region's per-call bookkeeping, which shows with 20,000 small tensors.
    if (w.buffer_box == w.written.box)
      std::memcpy(c.to, w.buffer, static_cast<std::size_t>(w.written.box.volume() * esize));
    else
      copy_region(w.buffer, w.buffer_box, c.to, w.written.box, w.written.box, esize);
    w.buffer = c.to;
    w.buffer_box = w.written.box;
  }
}

}  // namespace cairn::detail
