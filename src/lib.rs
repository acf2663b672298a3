//! techdiff: a parallel agent-based simulator of international technology
//! diffusion under export controls, trust and retaliation.
//!
//! Countries invent, co-invent with foreign partners and adopt each other's
//! innovations over a contact network; export-control regimes gate the flow,
//! chill legal trade and erode trust; a cooperation framework (positive list,
//! limited prohibited zone, transparency) softens them. Every replication is
//! paired with a counterfactual without securitization, so the cost of
//! securitization is measured with common random numbers.
//!
//! Layers: [`scenario`] turns TOML into a validated [`model::Scenario`];
//! [`sim`] steps one replication (no I/O); [`run`] runs replications in
//! parallel; [`output`] turns results into files.

pub mod alloc;
mod cpu;
pub mod dist;
pub mod error;
pub mod model;
pub mod network;
pub mod output;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod sweep;

pub use error::{Error, InputError};
pub use model::Scenario;
