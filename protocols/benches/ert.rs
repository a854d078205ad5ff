// Placeholder until the ert benchmarks are written.
fn main() {}
