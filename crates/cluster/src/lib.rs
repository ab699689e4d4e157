//! berth-cluster: hosts joined through etcd (issue 14).
//!
//! - `etcd`: a small etcd v3 client over etcd's JSON gRPC gateway (`/v3/kv/*`,
//!   `/v3/lease/*`, `/v3/watch`), on hyper's HTTP/1 client connection.
//! - `flannel`: flannel's key layout and JSON (network config, subnet leases) and the choice
//!   of a free subnet — pure logic, tested without root or etcd.

pub mod agent;
pub mod etcd;
pub mod flannel;
pub mod overlay;

/// Errors of the cluster layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// a bad `--cluster-store` / `--cluster-advertise` value or a bad stored document
    #[error("{0}")]
    InvalidParameter(String),
    /// no etcd endpoint answered in time
    #[error("cluster store unreachable: {0}")]
    Unavailable(String),
    /// etcd answered with an error
    #[error("cluster store: {0}")]
    Etcd(String),
    /// taken by another host (subnet, advertise address)
    #[error("{0}")]
    Conflict(String),
}
pub type Result<T> = std::result::Result<T, Error>;
