// default_catalog(): the price catalog built into the binary, so that a fresh ledger can
// price records without any set-up.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/catalog_yaml.h"
#include "config/embedded_catalog.h"

namespace aifinops::config {

const pricing::Catalog& default_catalog() {
  static const pricing::Catalog catalog = [] {
    pricing::Catalog merged;
    for (size_t i = 0; i < kEmbeddedCatalogFileCount; ++i) {
      const EmbeddedFile& file = kEmbeddedCatalogFiles[i];
      auto parsed = parse_catalog_yaml(embedded_text(file), file.name);
      if (!parsed) {
        // The same files are parsed by config_test, so this is a broken build, not bad input.
        std::fprintf(stderr, "aifinops: the built-in price catalog does not parse: %s\n",
                     parsed.error().message.c_str());
        std::abort();
      }
      for (const pricing::ModelPrice* p : parsed->model_prices()) merged.add(*p);
      for (const pricing::GpuInstancePrice* p : parsed->gpu_instance_prices()) merged.add(*p);
    }
    return merged;
  }();
  return catalog;
}

}  // namespace aifinops::config
