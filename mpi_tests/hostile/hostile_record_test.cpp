// SPDX-License-Identifier: Apache-2.0
// Hostile format 2.0 records (docs/format.md, "/cairn/records and /cairn/record_offsets"), written
// into a real container and restored through Checkpoint::read on every rank count of the test. The
// damaged record is the last rank's, so that on more than one rank the rank that reads it is not
// rank 0 and the verdict must reach the others. Records are re-encoded with encode_record, so the
// body checksum matches and the damage reaches the decoder: a record whose rank lies, truncated
// records, offsets outside the records or decreasing, extra and missing pieces and blobs, a
// replicated tensor's piece, packed ranges past the packed data. Each must be a clear cairn::Error
// naming the checkpoint and the rank, the same on every rank, in bounded time, with the live
// objects untouched.
#include <gtest/gtest.h>

#include <filesystem>

#include "damage.hpp"
#include "hostile_support.hpp"
#include "storage/checksum.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::hostile::record_cases {
namespace {

constexpr int64_t kE18 = 1000000000000000000;

struct Case {
  std::string name;
  std::function<void(const std::string&)> damage;  // of the copy, on rank 0
  std::vector<std::string> needles;
};

int last_rank() {
  return session().size() - 1;
}

std::string of_last() {
  return "record of rank " + std::to_string(last_rank());
}

// Rewrites the last rank's record with `change` applied (re-encoded: its checksum matches).
std::function<void(const std::string&)> change_record(std::function<void(RankRecord&)> change) {
  return [change](const std::string& p) {
    Metadata m = read_metadata(p);
    change(m.records.back());
    write_metadata(p, m);
  };
}

// Rewrites the encoded records with `change` applied to the bytes of the last rank's.
std::function<void(const std::string&)> change_bytes(std::function<void(std::string&)> change) {
  return [change](const std::string& p) {
    Metadata m = read_metadata(p);
    std::vector<std::string> records;
    for (const RankRecord& r : m.records) records.push_back(encode_record(r));
    change(records.back());
    write_records(p, records);
  };
}

std::function<void(const std::string&)> change_offsets(
    std::function<void(std::vector<int64_t>&)> change) {
  return [change](const std::string& p) {
    std::vector<int64_t> offsets = testing::read_record_offsets(p);
    change(offsets);
    testing::write_record_offsets(p, offsets);
  };
}

uint32_t index_of(const std::string& path, const std::string& key) {
  const Metadata m = read_metadata(path);
  const Manifest manifest = manifest_from_table(m.header, m.table);
  for (std::size_t i = 0; i < manifest.tensors.size(); ++i)
    if (manifest.tensors[i].key == key) return static_cast<uint32_t>(i);
  throw std::runtime_error("no tensor " + key);
}

// Makes the replicated packed tensor b a block(0) tensor: its pieces leave the table's replicated
// section for the writers' records, each pointing at its rows of the bytes already in the packed
// data, with their checksums. A sound file: packed pieces of a block tensor live in records.
void make_b_a_packed_block_tensor(const std::string& path) {
  Metadata m = read_metadata(path);
  const uint32_t b = index_of(path, "model/b/.ATTRIBUTES/VARIABLE_VALUE");
  TablePiece whole{};
  for (auto it = m.table.replicated.begin(); it != m.table.replicated.end();)
    if (it->tensor == b) {
      whole = *it;
      it = m.table.replicated.erase(it);
    } else {
      ++it;
    }
  TableTensor& t = m.table.tensors[b];
  t.layout = LayoutRule::kBlock;
  t.params = {0};
  const int n = m.header.world_size;
  const int64_t packed =
      testing::tensor_element_offset(path, "model/b/.ATTRIBUTES/VARIABLE_VALUE", 0);
  for (int r = 0; r < n; ++r) {
    std::vector<RecordPiece> pieces;
    for (const Box& box : writer_boxes(t, r, n)) {
      const int64_t offset = whole.packed_offset + box.offset[0] * 4;
      const std::string bytes = read_file_bytes(path, packed + box.offset[0] * 4, box.count[0] * 4);
      pieces.push_back({b, static_cast<uint32_t>(pieces.size()),
                        checksum_bytes(bytes.data(), bytes.size()), offset});
    }
    // In tensor order: b's pieces go where b is among the tensors.
    auto& all = m.records[static_cast<std::size_t>(r)].pieces;
    auto at = all.begin();
    while (at != all.end() && at->tensor < b) ++at;
    all.insert(at, pieces.begin(), pieces.end());
  }
  write_metadata(path, m);
}

class HostileRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::scratch_dir();
    reference_ = case_path(dir_, "reference");
    save_reference(reference_);
  }
  void run(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
      const std::string path = case_path(dir_, "record-" + std::to_string(next_++));
      if (session().rank() == 0) {
        std::filesystem::copy_file(reference_, path,
                                   std::filesystem::copy_options::overwrite_existing);
        c.damage(path);
      }
      session().comm().barrier();
      Model model = blank_model();
      Checkpoint ckpt = model.checkpoint();
      std::vector<std::string> needles = c.needles;
      needles.push_back(path);
      const Outcome out = expect_clear_error(
          c.name, [&] { ckpt.read(path); }, {ErrorCode::kCorrupt}, needles, &model);
      EXPECT_EQ(out.changed, 0) << c.name << ": a failed restore changed live values";
    }
  }
  std::string dir_, reference_;
  int next_ = 0;
};

TEST_F(HostileRecord, RecordsThatLieAboutTheirWriterOrSizeAreCorrupt) {
  const int other = session().size() == 1 ? 5 : 0;
  run({
      {"record whose rank field lies",
       change_record([other](RankRecord& r) { r.rank = other; }),
       {of_last(), "the record says it is rank " + std::to_string(other) + "'s"}},
      {"record cut short by 8 bytes",
       change_bytes([](std::string& r) { r.resize(r.size() - 8); }),
       {of_last(), "but its header describes"}},
      {"record cut inside its header",
       change_bytes([](std::string& r) { r.resize(20); }),
       {of_last(), "fewer than its 40-byte header"}},
      {"record with a bad magic",
       change_bytes([](std::string& r) { r[0] = 'X'; }),
       {of_last(), "bad magic (not CAIRNREC)"}},
      {"record body flipped (checksum)",
       change_bytes([](std::string& r) { r[r.size() - 1] = static_cast<char>(r.back() ^ 0x5a); }),
       {of_last(), "the body's checksum is"}},
      {"record claiming 2^60 pieces",
       change_bytes([](std::string& r) {
         for (int i = 0; i < 8; ++i) r[16 + static_cast<std::size_t>(i)] = i == 7 ? '\x10' : '\0';
       }),
       {of_last(), "but its header describes"}},
  });
}

TEST_F(HostileRecord, OffsetsOutsideTheRecordsOrDecreasingAreCorrupt) {
  const int last = last_rank();
  run({
      {"record offsets past the records",
       change_offsets([](std::vector<int64_t>& o) { o.back() += 100; }),
       {"record of rank " + std::to_string(last) + " lies outside the records"}},
      {"record offsets decreasing",
       change_offsets([last](std::vector<int64_t>& o) {
         o[static_cast<std::size_t>(last) + 1] = o[static_cast<std::size_t>(last)] - 8;
       }),
       {"record of rank " + std::to_string(last) + " lies outside the records"}},
      {"negative record offset",
       change_offsets([](std::vector<int64_t>& o) { o[0] = -kE18; }),
       {"record of rank 0 lies outside the records"}},
      {"record offsets of the wrong length",
       change_offsets([](std::vector<int64_t>& o) { o.push_back(o.back()); }),
       {"record offsets do not have world_size + 1"}},
      {"records dataset declares 16 GiB and stores nothing",
       [](const std::string& p) {
         replace_with_unwritten_dataset(p, "/cairn/records", int64_t{1} << 34);
       },
       {"dataset stores 0 of the 17179869184 bytes", "/cairn/records"}},
  });
}

TEST_F(HostileRecord, PiecesAndBlobsThatDoNotMatchTheTableAreCorrupt) {
  run({
      {"record with an extra piece",
       change_record([](RankRecord& r) {
         RecordPiece extra = r.pieces.back();
         ++extra.piece;
         r.pieces.push_back(extra);
       }),
       {of_last(), "not a piece this rank wrote, or one too many"}},
      {"record with a piece missing",
       change_record([](RankRecord& r) { r.pieces.pop_back(); }),
       {of_last(), kWKey}},
      {"record with pieces out of order",
       change_record([](RankRecord& r) { std::swap(r.pieces.front(), r.pieces.back()); }),
       {of_last(), kWKey}},
      {"record with a piece of the replicated tensor",
       [](const std::string& p) {
         const uint32_t b = index_of(p, "model/b/.ATTRIBUTES/VARIABLE_VALUE");
         change_record([b](RankRecord& r) { r.pieces.push_back({b, 0, 0, 0}); })(p);
       },
       {of_last(), "of a replicated tensor, whose pieces are in the table"}},
      {"dataset piece with a packed offset",
       change_record([](RankRecord& r) { r.pieces.front().packed_offset = 0; }),
       {of_last(), kWKey, "has packed offset 0, expected -1"}},
      {"per-rank blob past packed_bytes",
       change_record([](RankRecord& r) { r.blobs.front().packed_offset = kE18; }),
       {of_last(), kLoaderKey}},
      {"per-rank blob of 2^62 bytes",
       change_record([](RankRecord& r) { r.blobs.front().bytes = int64_t{1} << 62; }),
       {of_last(), kLoaderKey}},
      {"per-rank blob missing",
       change_record([](RankRecord& r) { r.blobs.clear(); }),
       {of_last(), kLoaderKey, "no blob for per-rank state"}},
      {"per-rank blob repeated",
       change_record([](RankRecord& r) { r.blobs.push_back(r.blobs.front()); }),
       {of_last(), "blobs for 1 per-rank states"}},
  });
}

TEST_F(HostileRecord, APackedPieceOfABlockTensorPastThePackedDataIsCorrupt) {
  // The control: the rewritten file restores.
  const std::string sound = case_path(dir_, "packed-block");
  if (session().rank() == 0) {
    std::filesystem::copy_file(reference_, sound);
    make_b_a_packed_block_tensor(sound);
  }
  session().comm().barrier();
  {
    Model model = blank_model();
    EXPECT_NO_THROW(model.checkpoint().read(sound).assert_consumed());
    EXPECT_EQ(testing::global_mismatches(*model.b, 2), 0);
  }
  // The last rank's piece of b starts 4 bytes before the end of the packed data.
  run({{"packed piece of a block tensor past packed_bytes",
        [](const std::string& p) {
          make_b_a_packed_block_tensor(p);
          Metadata m = read_metadata(p);
          const uint32_t b = index_of(p, "model/b/.ATTRIBUTES/VARIABLE_VALUE");
          for (RecordPiece& piece : m.records.back().pieces)
            if (piece.tensor == b) piece.packed_offset = m.header.packed_bytes - 4;
          write_metadata(p, m);
        },
        {of_last(), "model/b/.ATTRIBUTES/VARIABLE_VALUE"}}});
}

}  // namespace
}  // namespace cairn::hostile::record_cases
