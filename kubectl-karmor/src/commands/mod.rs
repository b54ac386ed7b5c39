//! One module per subcommand.

pub mod bundle;
pub mod import;
pub mod observe;
pub mod validate;
