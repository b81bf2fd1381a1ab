// Files of config/ compiled into the binary: the default price catalog (config/prices.yaml,
// config/gpu_instances.yaml) and the demo organisation's policy (config/policy.example.yaml).
// The definitions are generated at build time by embed_catalog.cmake.
#pragma once

#include <cstddef>
#include <string>

namespace aifinops::config {

/// One embedded file: its name (for error messages) and its text in pieces, ending with
/// nullptr. Pieces, because compilers cap the length of a single string literal.
struct EmbeddedFile {
  const char* name;
  const char* const* pieces;
};

extern const EmbeddedFile kEmbeddedCatalogFiles[];
extern const size_t kEmbeddedCatalogFileCount;

/// config/policy.example.yaml, which `aifinops demo` writes next to its ledger.
extern const EmbeddedFile kEmbeddedPolicyFiles[];
extern const size_t kEmbeddedPolicyFileCount;

/// config/focus-mappings/*.csv, the FOCUS mapping tables for native cloud exports; embedded
/// by src/ingest/CMakeLists.txt and read by ingest::FocusMappings::builtin().
extern const EmbeddedFile kEmbeddedFocusMappingFiles[];
extern const size_t kEmbeddedFocusMappingFileCount;

/// The whole text of an embedded file.
inline std::string embedded_text(const EmbeddedFile& file) {
  std::string text;
  for (const char* const* piece = file.pieces; *piece != nullptr; ++piece) text += *piece;
  return text;
}

}  // namespace aifinops::config
