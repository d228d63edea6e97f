//! Framework integrations, one module per feature. Each is a thin wrapper around
//! [`Gate`](crate::Gate); none of them leaks framework types into the core.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower")]
pub mod tower;
