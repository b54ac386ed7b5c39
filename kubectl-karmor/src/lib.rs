//! The library half of the plugin: reaching collectors (Kubernetes discovery and
//! port-forward, or direct endpoints), pulling their segments into a bundle and the store,
//! the local cache and its automatic pull, and the resource words the commands share. The
//! binary (`main.rs`) holds the command line, progress and rendering; this half is what its
//! tests drive.

pub mod cache;
pub mod cluster;
pub mod live;
pub mod pull;
pub mod resource;
