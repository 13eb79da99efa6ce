//! tensorlake-local: placeholder until the server lands.
fn main() {}
