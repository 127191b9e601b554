// SPDX-License-Identifier: Apache-2.0
// The packed region's writes end at multiples of the chunk size in the file, not of the region
// (checkpoint/packed_stream.hpp): each rank makes as many calls as calls_for() says, which
// collective mode relies on to pad, and the bytes land where the region says.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstddef>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "checkpoint/packed_stream.hpp"
#include "storage/container_writer.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/schema.hpp"
#include "support/test_support.hpp"

// Named, so that a unity build can put it next to other tests' anonymous namespaces.
namespace cairn::packed_stream {
namespace {

using detail::PackedStream;
using testing::fill;
using testing::global_mismatches;
using testing::scratch_dir;
using testing::session;

constexpr int64_t kChunk = PackedStream::kChunkBytes;

// The size of the file's packed dataset (storage/schema.hpp).
int64_t packed_dataset_bytes(const std::string& path) {
  const std::lock_guard<std::recursive_mutex> lock(detail::hdf5_mutex());
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(file, detail::schema::kPackedDataset, H5P_DEFAULT);
  const int64_t bytes = dataset >= 0 ? static_cast<int64_t>(H5Dget_storage_size(dataset)) : -1;
  if (dataset >= 0) H5Dclose(dataset);
  if (file >= 0) H5Fclose(file);
  return bytes;
}

char pattern(int64_t dataset_offset) {
  return static_cast<char>((dataset_offset * 131 + 7) % 251);
}

TEST(PackedStreamCalls, OnePerChunkSizedWindowOfTheFileTouched) {
  EXPECT_EQ(PackedStream::calls_for(0, 0), 0);
  EXPECT_EQ(PackedStream::calls_for(kChunk - 1, 0), 0);
  EXPECT_EQ(PackedStream::calls_for(0, kChunk), 1);
  EXPECT_EQ(PackedStream::calls_for(kChunk, kChunk), 1);
  EXPECT_EQ(PackedStream::calls_for(1, kChunk), 2);
  EXPECT_EQ(PackedStream::calls_for(kChunk - 1, 2), 2);
  EXPECT_EQ(PackedStream::calls_for(kChunk - 1, 1), 1);
  EXPECT_EQ(PackedStream::calls_for(3 * kChunk + 5, 2 * kChunk), 3);
}

// Every rank streams an uneven region (the last of 3 or more ranks none) through pieces of odd
// sizes; both write modes. Rank 0's region starts on a 16 MiB boundary of the file (not of the
// dataset, which starts elsewhere), rank 1's off any boundary.
TEST(PackedStreamWrites, EachRankMakesTheCallsOfItsWindowsAndItsBytesLandInItsRegion) {
  const Comm& comm = session().comm();
  const int ranks = comm.size(), me = comm.rank();
  std::vector<int64_t> sizes(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    sizes[r] = r <= 1                         ? kChunk
               : ranks >= 3 && r == ranks - 1 ? 0
                                              : kChunk + (r % 2 == 0 ? 3 : -2) * (kChunk / 7);
  // Room for rank 0's region to start anywhere in the first chunk, and a gap before each other.
  int64_t dataset_bytes = kChunk;
  for (int64_t size : sizes) dataset_bytes += size + 4097;
  for (const bool collective : {false, true}) {
    SCOPED_TRACE(collective ? "collective" : "independent");
    const std::string path = scratch_dir() + "/packed.h5";
    std::vector<int64_t> offsets(sizes.size());
    int64_t base = 0, calls = 0;
    {
      ContainerWriter writer(comm, path, {.collective = collective});
      const std::size_t ds = writer.create_byte_dataset("packed", dataset_bytes);
      writer.flush_metadata();
      base = writer.file_offset(ds);
      EXPECT_GT(base, 0);
      EXPECT_LT(base, kChunk);
      for (int r = 0; r < ranks; ++r)
        offsets[r] = r == 0 ? kChunk - base % kChunk : offsets[r - 1] + sizes[r - 1] + 4097;
      std::vector<std::byte> buffer;
      PackedStream stream(writer, ds, base, offsets[me], sizes[me], buffer);
      std::vector<char> piece;
      for (int64_t at = 0, n = 0; at < sizes[me]; at += n) {
        n = std::min<int64_t>(sizes[me] - at, 100003 + (at % 7) * 65537);
        piece.resize(static_cast<std::size_t>(n));
        for (int64_t i = 0; i < n; ++i) piece[i] = pattern(offsets[me] + at + i);
        stream.add_bytes(reinterpret_cast<const std::byte*>(piece.data()), n);
      }
      calls = stream.finish();
      if (collective) {
        int64_t most = 0;
        for (int r = 0; r < ranks; ++r)
          most = std::max(most, PackedStream::calls_for(base + offsets[r], sizes[r]));
        for (int64_t k = calls; k < most; ++k) writer.write_nothing(ds);
      }
      writer.close();
    }
    EXPECT_EQ(calls, PackedStream::calls_for(base + offsets[me], sizes[me]));
    if (me == 0) {
      EXPECT_EQ(calls, 1) << "a chunk-sized region on a boundary of the file takes one write";
    } else if (me == 1) {
      EXPECT_EQ(calls, 2) << "a chunk-sized region off a boundary takes two writes";
    }
    std::ifstream in(path, std::ios::binary);
    in.seekg(base + offsets[me]);
    std::vector<char> back(static_cast<std::size_t>(sizes[me]));
    in.read(back.data(), static_cast<std::streamsize>(back.size()));
    EXPECT_TRUE(in.good() || sizes[me] == 0);  // no ASSERT: the other ranks wait at the barrier
    int64_t wrong = 0;
    for (int64_t i = 0; i < sizes[me]; ++i) wrong += back[i] != pattern(offsets[me] + i);
    EXPECT_EQ(wrong, 0);
    comm.barrier();
  }
}

// End to end: over 20 MiB of packed tensors per rank (the threshold applies to a whole tensor,
// about `ranks` MiB here), saved in both write modes and restored on the same ranks; one tensor
// that ranks beyond the second own nothing of.
TEST(PackedStreamWrites, PackedRegionsOfSeveralChunksRestoreInBothWriteModes) {
  for (const IoMode mode : {IoMode::kIndependent, IoMode::kCollective}) {
    SCOPED_TRACE(mode == IoMode::kCollective ? "collective" : "independent");
    Session s(session().comm().get(),
              {.write_mode = mode, .pack_threshold_bytes = int64_t{8} << 20});
    const int ranks = s.size();
    auto module = std::make_shared<Module>();
    std::vector<std::shared_ptr<Variable>> vars;
    for (int i = 0; i < 24; ++i) {
      // About 1 MiB per rank each, uneven by a few rows.
      const int64_t rows = i == 0 ? 2 : int64_t{64} * ranks + i % 5;
      vars.push_back(Variable::create<float>(s, {rows, 4096}, Layout::block(0)));
      fill(*vars.back(), 100 + i);
      module->track("t" + std::to_string(i), vars.back());
    }
    const std::string path = scratch_dir() + "/packed-chunks.h5";
    Checkpoint(s, {{"m", module}}).write(path);
    EXPECT_GT(packed_dataset_bytes(path), ranks * (int64_t{20} << 20)) << "the tensors were packed";
    for (auto& v : vars) fill(*v, 999);
    Checkpoint(s, {{"m", module}}).read(path).assert_consumed();
    for (std::size_t i = 0; i < vars.size(); ++i)
      EXPECT_EQ(global_mismatches(*vars[i], 100 + static_cast<int64_t>(i)), 0) << "t" << i;
  }
}

}  // namespace
}  // namespace cairn::packed_stream
