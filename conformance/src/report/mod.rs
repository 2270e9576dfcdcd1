//! Renderings of a [`RunReport`](crate::runner::RunReport).
