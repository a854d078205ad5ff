// Placeholder until the text benchmarks are written.
fn main() {}
