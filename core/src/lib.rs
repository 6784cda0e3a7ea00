//! conveyor-core: the `.conveyor.yml` language (model, compiler, validation, DAG,
//! references) and the types shared by orchestrator and runner. Pure: no I/O runtime here.

pub mod check;
pub mod compile;
pub mod dag;
pub mod diag;
pub mod driver;
pub mod duration;
pub mod expr;
pub mod model;
pub mod names;
pub mod protocol;
pub mod rules;
pub mod script;
pub mod yaml;
