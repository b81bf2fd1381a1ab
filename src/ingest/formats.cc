// The format table and ingest_file's dispatch; whole-input reading for JSON readers.
#include "ingest/formats.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "ingest/file_input.h"
#include "ingest/dcgm.h"
#include "ingest/anthropic_usage.h"
#include "ingest/focus_ingest.h"
#include "ingest/openai_usage.h"
#include "ingest/otlp.h"
#include "ingest/native_export.h"
#include "ingest/nvidia_smi.h"

namespace aifinops::ingest {
namespace {

namespace fs = std::filesystem;

bool detect_focus(std::string_view head, const std::string&) { return looks_like_focus(head); }
bool detect_openai_usage(std::string_view head, const std::string&) { return looks_like_openai_usage(head); }
bool detect_openai_costs(std::string_view head, const std::string&) { return looks_like_openai_costs(head); }
bool detect_anthropic_usage(std::string_view head, const std::string&) { return looks_like_anthropic_usage(head); }
bool detect_anthropic_costs(std::string_view head, const std::string&) { return looks_like_anthropic_costs(head); }
bool detect_otlp(std::string_view head, const std::string&) { return looks_like_otlp_traces(head); }
bool detect_dcgm(std::string_view head, const std::string&) { return looks_like_dcgm(head); }
bool detect_nvidia_smi(std::string_view head, const std::string&) { return looks_like_nvidia_smi(head); }

// One row per format. A new reader adds its row here (and its header above); nothing
// registers itself elsewhere.
const Format kFormats[] = {
    {"focus", "FOCUS 1.0-1.3 cost and usage CSV (plain or .gz)", detect_focus, ingest_focus},
    {"openai-usage", "OpenAI organisation Usage API pages (JSON file or directory of pages)",
     detect_openai_usage, ingest_openai_usage},
    {"openai-costs", "OpenAI organisation Costs API pages (JSON file or directory of pages)",
     detect_openai_costs, ingest_openai_costs},
    {"anthropic-usage", "Anthropic usage report pages (Admin API; JSON file or directory of pages)",
     detect_anthropic_usage, ingest_anthropic_usage},
    {"anthropic-costs", "Anthropic cost report pages (Admin API; JSON file or directory of pages)",
     detect_anthropic_costs, ingest_anthropic_costs},
    {"otlp", "OTLP/HTTP JSON trace exports with OpenTelemetry GenAI spans (file, JSON lines, or directory)",
     detect_otlp, ingest_otlp},
    {"aws-cur", "AWS Cost and Usage Report, legacy or CUR 2.0 columns (CSV, plain or .gz)",
     looks_like_aws_cur, ingest_aws_cur},
    {"azure-cost", "Azure cost details export, EA or MCA, actual or amortized (CSV)",
     looks_like_azure_cost, ingest_azure_cost},
    {"gcp-billing", "Google Cloud billing export from BigQuery (CSV or JSON lines)",
     looks_like_gcp_billing, ingest_gcp_billing},
    {"oci-cost", "OCI cost report (CSV, plain or .gz)", looks_like_oci_cost, ingest_oci_cost},
    {"dcgm", "DCGM exporter Prometheus text: GPU utilisation, memory, power (docs/gpu.md)", detect_dcgm,
     ingest_dcgm},
    {"nvidia-smi", "nvidia-smi --query-gpu CSV log (docs/gpu.md)", detect_nvidia_smi, ingest_nvidia_smi},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::span<const Format> formats() { return kFormats; }

const Format* find_format(std::string_view name) {
  for (const Format& f : kFormats)
    if (f.name == name) return &f;
  return nullptr;
}

std::string format_names() {
  std::string out = "auto";
  for (const Format& f : kFormats) out += ", " + std::string(f.name);
  return out;
}

Result<std::string> read_head(const std::string& path, size_t max_bytes) {
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec))
      if (entry.is_regular_file(ec)) names.push_back(entry.path().string());
    if (ec) return make_error(ErrorCode::kIo, path + ": cannot list the directory: " + ec.message());
    if (names.empty()) return std::string();
    file = *std::min_element(names.begin(), names.end());
  }
  auto opened = FileInput::open(file);
  if (!opened) return Unexpected{opened.error()};
  std::unique_ptr<FileInput> input(*opened);
  std::string head(max_bytes, '\0');
  size_t filled = 0;
  while (filled < max_bytes) {
    auto got = input->read(head.data() + filled, max_bytes - filled);
    if (!got) return Unexpected{got.error()};
    if (*got == 0) break;
    filled += *got;
  }
  head.resize(filled);
  return head;
}

Result<std::vector<std::string>> input_files(const std::string& path,
                                             std::span<const std::string_view> extensions) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return std::vector<std::string>{path};
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    std::string name = entry.path().filename().string();
    for (std::string_view ext : extensions)
      if (ends_with(name, ext)) {
        files.push_back(entry.path().string());
        break;
      }
  }
  if (ec) return make_error(ErrorCode::kIo, path + ": cannot list the directory: " + ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::string list;
    for (std::string_view ext : extensions) list += (list.empty() ? "" : ", ") + std::string(ext);
    return make_error(ErrorCode::kInvalidArgument,
                      path + ": the directory holds no page files (" + list + "); nothing was ingested");
  }
  return files;
}

Result<WholeInput> read_whole_input(const std::string& path,
                                    std::span<const std::string_view> extensions,
                                    int64_t max_page_bytes) {
  auto files = input_files(path, extensions);
  if (!files) return Unexpected{files.error()};
  WholeInput whole;
  XXH3_state_t* combined = XXH3_createState();
  XXH3_128bits_reset(combined);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> guard(combined, XXH3_freeState);
  for (const std::string& file : *files) {
    auto opened = FileInput::open(file);
    if (!opened) return Unexpected{opened.error()};
    std::unique_ptr<FileInput> input(*opened);
    WholeInput::Page page;
    page.path = file;
    size_t reserve = input->compressed() ? (size_t)input->file_size() * 4 : (size_t)input->file_size();
    page.content.reserve(std::min<size_t>(reserve + 1, (size_t)max_page_bytes + 1));
    constexpr size_t kBlock = 1 << 20;
    for (;;) {
      size_t at = page.content.size();
      page.content.resize(at + kBlock);
      auto got = input->read(page.content.data() + at, kBlock);
      if (!got) return Unexpected{got.error()};
      page.content.resize(at + *got);
      if (*got == 0) break;
      if ((int64_t)page.content.size() > max_page_bytes)
        return make_error(ErrorCode::kInvalidArgument,
                          file + ": larger than " + std::to_string(max_page_bytes >> 20) +
                              " MiB; split the export into smaller files (nothing was ingested)");
    }
    ledger::Fingerprint fp;
    input->fingerprint(fp.high, fp.low);
    XXH3_128bits_update(combined, &fp.high, sizeof fp.high);
    XXH3_128bits_update(combined, &fp.low, sizeof fp.low);
    if (files->size() == 1) whole.content = fp;  // a lone file: the same as its own bytes
    whole.bytes += input->file_size();
    whole.pages.push_back(std::move(page));
  }
  if (whole.pages.size() > 1 || path != whole.pages.front().path) {
    XXH128_hash_t h = XXH3_128bits_digest(combined);
    whole.content = {h.high64, h.low64};
  }
  return whole;
}

int64_t LineCounter::line_at(size_t offset) {
  offset = std::min(offset, text_.size());
  if (offset < position_) {  // backwards: count again from the start
    position_ = 0;
    line_ = 1;
  }
  const char* p = text_.data() + position_;
  const char* end = text_.data() + offset;
  while (p < end) {
    const void* nl = std::memchr(p, '\n', (size_t)(end - p));
    if (nl == nullptr) break;
    ++line_;
    p = static_cast<const char*>(nl) + 1;
  }
  position_ = offset;
  return line_;
}

Result<IngestSummary> ingest_file(const IngestContext& context, const std::string& path,
                                  const IngestOptions& options) {
  const Format* format = nullptr;
  if (options.format != "auto") {
    format = find_format(options.format);
    if (format == nullptr)
      return make_error(ErrorCode::kInvalidArgument,
                        "--format " + options.format + ": allowed values are " + format_names());
  } else {
    auto head = read_head(path);
    if (!head) return Unexpected{head.error()};
    std::vector<const Format*> takers;
    for (const Format& f : kFormats)
      if (f.detect(*head, path)) takers.push_back(&f);
    // A CSV that no format takes is most likely a FOCUS export with a column missing: the
    // FOCUS reader's error names the missing columns, which helps more than "unknown".
    std::string_view first_line = std::string_view(*head).substr(0, head->find('\n'));
    if (takers.empty() && first_line.find(',') != std::string_view::npos &&
        first_line.find_first_of("{[") == std::string_view::npos)
      return ingest_focus(context, path, options);
    if (takers.size() != 1) {
      std::string names;
      for (const Format* f : takers) names += (names.empty() ? "" : ", ") + std::string(f->name);
      return make_error(
          ErrorCode::kInvalidArgument,
          path + (takers.empty() ? ": the format is not recognised"
                                 : ": the format is ambiguous (it could be " + names + ")") +
              "; name it with --format (allowed values: " + format_names() + "); nothing was ingested");
    }
    format = takers.front();
  }
  return format->run(context, path, options);
}

}  // namespace aifinops::ingest
