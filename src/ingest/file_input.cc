#include "ingest/file_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aifinops::ingest {

Result<FileInput*> FileInput::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(ErrorCode::kIo, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kIo, path + ": not a regular file");
  }
  auto* in = new FileInput();
  in->path_ = path;
  in->file_size_ = st.st_size;
  unsigned char magic[2] = {0, 0};
  ssize_t got = ::pread(fd, magic, 2, 0);
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    in->gz_ = gzdopen(fd, "rb");
    if (in->gz_ == nullptr) {
      ::close(fd);
      delete in;
      return make_error(ErrorCode::kIo, path + ": cannot open as gzip");
    }
    gzbuffer(in->gz_, 1 << 20);
  } else {
    in->fd_ = fd;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  in->hash_ = XXH3_createState();
  XXH3_128bits_reset(in->hash_);
  return in;
}

FileInput::~FileInput() {
  if (gz_ != nullptr) gzclose(gz_);
  if (fd_ >= 0) ::close(fd_);
  if (hash_ != nullptr) XXH3_freeState(hash_);
}

Result<size_t> FileInput::read(char* buffer, size_t capacity) {
  size_t n = 0;
  if (gz_ != nullptr) {
    int got = gzread(gz_, buffer, (unsigned)capacity);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(gz_, &err);
      return make_error(ErrorCode::kIo, path_ + ": gzip data is corrupt: " + msg);
    }
    n = (size_t)got;
    if (n == 0 && !gzeof(gz_))
      return make_error(ErrorCode::kIo, path_ + ": gzip stream ended early");
  } else {
    for (;;) {
      ssize_t got = ::read(fd_, buffer, capacity);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return make_error(ErrorCode::kIo, path_ + ": read failed: " + std::strerror(errno));
      n = (size_t)got;
      break;
    }
  }
  bytes_read_ += (int64_t)n;
  XXH3_128bits_update(hash_, buffer, n);
  return n;
}

int64_t FileInput::position() const {
  if (gz_ != nullptr) return gzoffset(gz_);
  return bytes_read_;
}

void FileInput::fingerprint(uint64_t& high, uint64_t& low) const {
  XXH128_hash_t h = XXH3_128bits_digest(hash_);
  high = h.high64;
  low = h.low64;
}

}  // namespace aifinops::ingest
