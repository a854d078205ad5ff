// Placeholder until the mbus benchmarks are written.
fn main() {}
