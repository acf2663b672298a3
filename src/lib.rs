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
mod vmath;

/// The generation of this build's numbers. Builds of one generation give
/// the same bytes for the same scenario and seed; a change that moves any
/// output of a fixed scenario and seed (a new sampler, a kernel rounding
/// differently) raises it. Run and sweep manifests record it (key
/// `results_generation`; manifests without it are generation 1), and a
/// sweep refuses to resume or merge folders of another generation, whose
/// replications drew different numbers. Generation 2: the portable
/// samplers and elementary functions of 6d74df9 (e1498e1 then gave beta
/// draws at subnormal shapes, which had been NaN and refused, a value).
/// Generation 3 (cea24b3): the policy variant thins on dense networks
/// (its adoptions drawn with the same distribution from other draws; see
/// `Simulation::run_ahead`), each candidate against a uniform of its
/// row's own stream. Generation 4: against its own threshold instead.
/// The `libm` crate is pinned (Cargo.toml) for the same reason.
pub const RESULTS_GENERATION: u64 = 4;

pub use error::{Error, InputError};
pub use model::Scenario;
