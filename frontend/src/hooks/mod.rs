//! Custom hooks: [`use_agent_link`] owns the WebSocket to the agent.

mod use_agent_link;

pub use use_agent_link::{AgentLink, use_agent_link};
