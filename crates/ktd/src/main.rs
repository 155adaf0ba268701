//! The `ktd` command line.

fn main() {}
