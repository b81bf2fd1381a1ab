// (being written)
namespace aifinops::allocate {}
