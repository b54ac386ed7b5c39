//! The library half of the plugin: reaching collectors (Kubernetes discovery and
//! port-forward, or direct endpoints) and pulling their segments into a bundle. The binary
//! (`main.rs`) holds the command line and rendering; this half is what its tests drive.

pub mod cluster;
pub mod live;
pub mod pull;
pub mod resource;
