//! One module per subcommand.

pub mod archive;
pub mod bundle;
pub mod complete;
pub mod coverage;
pub mod diff;
pub mod import;
pub mod live;
pub mod observe;
pub mod pull;
pub mod recommend;
pub mod recommend_network;
pub mod recommend_seccomp;
pub mod simulate;
pub mod simulate_network;
pub mod validate;
