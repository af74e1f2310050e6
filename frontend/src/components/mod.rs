//! The page's components, one per file.

pub mod attempt_table;
pub mod check_card;
pub mod check_form;
pub mod connection_status;
pub mod copy_markdown;
pub mod evidence_list;
pub mod resolution_summary;
pub mod target_summary;
pub mod verdict_panel;
