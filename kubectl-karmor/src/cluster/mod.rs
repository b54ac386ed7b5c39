//! Reaching the collectors of a cluster through the Kubernetes API: a client configured as
//! kubectl configures it ([`kubeconfig`]), the collector pods ([`discover`]), and a tonic
//! channel to each over a port-forward ([`portforward`]).

pub mod discover;
pub mod kubeconfig;
pub mod portforward;
