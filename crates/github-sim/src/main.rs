//! Runs the simulator standalone with a seed scenario and prints its base URL.
fn main() {}
