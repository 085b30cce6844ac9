mod deps;
mod kernel;
fn main() {}
