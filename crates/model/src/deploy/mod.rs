//! What a deploy needs to decide before touching a host: each node's file layout from the
//! directory template, the server's settings sized from its host, and the configuration
//! file rendered from a template the user can override.
//!
//! All pure: the deploy job (nines-ops) gathers host facts, calls these, then acts.

pub mod config;
pub mod layout;
pub mod sizing;

pub use config::{ConfigError, ConfigInput, DEFAULT_TEMPLATE, render_config};
pub use layout::{DEFAULT_DATADIR_TEMPLATE, LayoutError, NodeLayout};
pub use sizing::{HostShare, Sizing, size_for};
