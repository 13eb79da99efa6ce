//! tensorlake-snapshots: placeholder until the client lands.
