// Waste (R20) in FOCUS records: cross-region data transfer charges, storage in hot tiers
// without access, and model endpoints or deployments that cost money but served no traffic.
#pragma once

#include "optimize/recommend.h"

namespace aifinops::optimize {

/// The `waste` recommendation kind.
Result<std::vector<Recommendation>> recommend_waste(const RecommendContext& context);

/// Classifiers over FOCUS text (SkuMeter, ChargeDescription, ServiceName), case-insensitive.
bool is_cross_region_transfer(std::string_view meter, std::string_view description);
/// The hot-tier family of a storage meter ("s3-standard", "azure-hot", "gcs-standard"), or
/// empty when it is not hot object storage. The provider decides the family: S3's and Cloud
/// Storage's meters are both "Standard storage".
std::string hot_storage_tier(std::string_view provider, std::string_view service,
                             std::string_view meter, std::string_view description);
bool is_storage_access_charge(std::string_view meter, std::string_view description);

}  // namespace aifinops::optimize
