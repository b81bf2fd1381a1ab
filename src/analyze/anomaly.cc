// (being written)
namespace aifinops::analyze {}
