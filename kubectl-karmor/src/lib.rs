//! The library half of the plugin: reaching collectors (Kubernetes discovery and
//! port-forward, or direct endpoints), pulling their segments into a bundle and the store,
//! the local cache and its automatic pull, the resource words the commands share, the
//! renderers of `--output`, and the terminal UI of `observe --tui`. The binary (`main.rs`)
//! holds the command line and progress; this half is what its tests and benches drive.

pub mod cache;
pub mod cluster;
pub mod live;
pub mod pull;
pub mod render;
pub mod resource;
pub mod summary_csv;
pub mod tui;
