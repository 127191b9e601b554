// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/save_plan.hpp"

#include <cstring>

#include "cairn/state/state.hpp"
#include "cairn/tensor/variable.hpp"
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
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      if (replicated_writer(p, index, n) != me) continue;
      plan.writes.push_back({index, v.box_bytes(0).data(), Box::whole(t.shape),
                             WrittenBox{me, pieces[p], {PieceRecord{pieces[p], 0, -1}}}});
    }
    max_writes = static_cast<int64_t>((pieces.size() + static_cast<std::size_t>(n) - 1) /
                                      static_cast<std::size_t>(n));
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
    for (int r = 0; r < n; ++r) {
      int64_t count = 0;
      for (const Box& box : v.layout().boxes_for(r, n, t.shape)) count += box.empty() ? 0 : 1;
      max_writes = std::max(max_writes, count);
    }
  }
  if (!t.packed) plan.max_writes.push_back(max_writes);
}

}  // namespace

void compute_checksums(SavePlan& plan) {
  struct Job {
    PieceRecord* piece;
    const std::byte* buffer;
    const Box* buffer_box;
    int64_t esize;
  };
  std::vector<Job> jobs;
  for (LocalWrite& w : plan.writes)
    for (PieceRecord& p : w.written.pieces)
      jobs.push_back({&p, w.buffer, &w.buffer_box,
                      static_cast<int64_t>(dtype_size(plan.tensors[w.tensor].dtype))});
  const auto n = static_cast<int64_t>(jobs.size());
#pragma omp parallel for schedule(dynamic)
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

}  // namespace

SavePlan make_save_plan(const LiveGraph& graph, const Session& session) {
  SavePlan plan;
  const SessionOptions& options = session.options();
  // Ranks with different options would create different datasets: a hang, or a bad file.
  plan.signature = "options " + std::to_string(options.pack_threshold_bytes) + " " +
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
      plan.signature +=
          std::string(dtype_name(t.dtype)) + ' ' + shape_to_string(t.shape) + ' ' + t.layout + '\n';
      plan.tensors.push_back(std::move(t));
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
        static_cast<int>(i % static_cast<std::size_t>(session.size())) == session.rank();
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

// The local tables travel only between the ranks of one job (same binary, same byte order), so
// they are a flat run of native 64-bit integers: encoding and merging 20,000 tensors' tables this
// way takes milliseconds where MessagePack documents took a tenth of a second.
namespace {

class TableWriter {
 public:
  void put(int64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void put_shape(const Shape& s) {
    put(static_cast<int64_t>(s.size()));
    for (int64_t v : s) put(v);
  }
  std::string out;
};

class TableReader {
 public:
  explicit TableReader(const std::string& in) : in_(in) {}
  int64_t get() {
    if (pos_ + sizeof(int64_t) > in_.size()) bad();
    int64_t v;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::size_t count(std::size_t limit) {
    const int64_t n = get();
    if (n < 0 || static_cast<uint64_t>(n) > limit) bad();
    return static_cast<std::size_t>(n);
  }
  Shape shape() {
    Shape s(count(64));
    for (int64_t& v : s) v = get();
    return s;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  [[noreturn]] static void bad() {
    throw Error(ErrorCode::kCorrupt, "a rank's save table is truncated or malformed",
                {.operation = "merge save tables"});
  }
  const std::string& in_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string encode_local_table(const SavePlan& plan) {
  TableWriter w;
  w.put(static_cast<int64_t>(plan.writes.size()));
  for (const LocalWrite& lw : plan.writes) {
    w.put(static_cast<int64_t>(lw.tensor));
    w.put(lw.written.rank);
    w.put_shape(lw.written.box.offset);
    w.put_shape(lw.written.box.count);
    w.put(static_cast<int64_t>(lw.written.pieces.size()));
    for (const PieceRecord& p : lw.written.pieces) {
      w.put_shape(p.box.offset);
      w.put_shape(p.box.count);
      w.put(static_cast<int64_t>(p.checksum));
      w.put(p.packed_offset);
    }
  }
  w.put(static_cast<int64_t>(plan.blobs.size()));
  for (const LocalBlob& b : plan.blobs) {
    w.put(static_cast<int64_t>(b.state));
    w.put(b.blob.rank);
    w.put(b.blob.packed_offset);
    w.put(b.blob.bytes);
    w.put(static_cast<int64_t>(b.blob.checksum));
  }
  return std::move(w.out);
}

void merge_local_tables(Manifest& manifest, const std::vector<std::string>& tables,
                        const std::vector<int64_t>& region_offsets) {
  for (std::size_t r = 0; r < tables.size(); ++r) {
    TableReader in(tables[r]);
    const int64_t base = region_offsets[r];
    const std::size_t writes = in.count(tables[r].size());
    for (std::size_t i = 0; i < writes; ++i) {
      TensorRecord& t = manifest.tensors.at(in.count(manifest.tensors.size()));
      WrittenBox wb;
      wb.rank = static_cast<int>(in.get());
      wb.box.offset = in.shape();
      wb.box.count = in.shape();
      wb.pieces.resize(in.count(tables[r].size()));
      for (PieceRecord& p : wb.pieces) {
        p.box.offset = in.shape();
        p.box.count = in.shape();
        p.checksum = static_cast<uint64_t>(in.get());
        const int64_t packed = in.get();
        p.packed_offset = t.packed ? base + packed : -1;
      }
      t.boxes.push_back(std::move(wb));
    }
    const std::size_t blobs = in.count(tables[r].size());
    for (std::size_t i = 0; i < blobs; ++i) {
      StateRecord& s = manifest.states.at(in.count(manifest.states.size()));
      StateBlob b;
      b.rank = static_cast<int>(in.get());
      b.packed_offset = base + in.get();
      b.bytes = in.get();
      b.checksum = static_cast<uint64_t>(in.get());
      s.blobs.push_back(b);
    }
    if (!in.done())
      throw Error(ErrorCode::kCorrupt, "a rank's save table has trailing bytes",
                  {.operation = "merge save tables"});
  }
}

}  // namespace cairn::detail
