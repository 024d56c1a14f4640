//! `GET /stats`: the published figures. `figures.rs` is the data,
//! `page.rs` (with `chart.rs`) the HTML page drawn from it.

pub mod chart;
pub mod figures;
#[cfg(test)]
pub mod fleet;
pub mod page;
