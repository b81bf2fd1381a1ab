// FileInput: reads a plain or gzip-compressed file in blocks, and fingerprints the bytes
// it hands out (after decompression), so that identical content is recognised however
// it was compressed.
#pragma once

#include <xxhash.h>
#include <zlib.h>

#include <cstdint>
#include <string>

#include "core/result.h"

namespace aifinops::ingest {

/// One open input file. Not copyable; not thread-safe.
class FileInput {
 public:
  static Result<FileInput*> open(const std::string& path);  // caller owns (unique_ptr)
  ~FileInput();
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;

  /// Reads up to `capacity` bytes; 0 at end of file.
  Result<size_t> read(char* buffer, size_t capacity);

  bool compressed() const { return gz_ != nullptr; }
  /// Size on disk (compressed size for .gz): for progress.
  int64_t file_size() const { return file_size_; }
  /// Compressed bytes consumed so far (for progress on .gz); plain: bytes read.
  int64_t position() const;
  /// XXH3-128 of every byte returned so far; complete after read() returned 0.
  void fingerprint(uint64_t& high, uint64_t& low) const;

 private:
  FileInput() = default;
  std::string path_;
  int fd_ = -1;
  gzFile gz_ = nullptr;
  int64_t file_size_ = 0;
  int64_t bytes_read_ = 0;
  XXH3_state_t* hash_ = nullptr;
};

}  // namespace aifinops::ingest
