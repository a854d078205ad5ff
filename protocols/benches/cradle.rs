// Placeholder until the cradle benchmarks are written.
fn main() {}
