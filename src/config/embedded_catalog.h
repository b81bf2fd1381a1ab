// The catalog YAML files compiled into the binary. The definition is generated at build
// time by embed_catalog.cmake from config/prices.yaml and config/gpu_instances.yaml.
#pragma once

#include <cstddef>

namespace aifinops::config {

/// One embedded file: its name (for error messages) and its text in pieces, ending with
/// nullptr. Pieces, because compilers cap the length of a single string literal.
struct EmbeddedFile {
  const char* name;
  const char* const* pieces;
};

extern const EmbeddedFile kEmbeddedCatalogFiles[];
extern const size_t kEmbeddedCatalogFileCount;

}  // namespace aifinops::config
