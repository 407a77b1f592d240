//! One thin module per command: parse flags, call a library, print or write.
pub mod ablate;
pub mod common;
pub mod correlate;
pub mod dataset;
pub mod figures;
pub mod generate;
pub mod inspect;
pub mod lens;
pub mod patch;
pub mod report;
pub mod run;
pub mod sweep;
pub mod trace;
