//! [`PageFooter`]: which whyrefused answers, at the foot of the page: the agent's version and
//! build (commit and target, from its hello) once connected, else the page's own version.

use whyrefused_shared::AgentInfo;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct PageFooterProps {
    /// The agent that answered, while connected.
    pub agent: Option<AgentInfo>,
}

/// `#page-footer`: `whyrefused 0.1.0 (commit 1a2b3c4d5e6f, x86_64-unknown-linux-musl) on HOST`.
#[function_component(PageFooter)]
pub fn page_footer(props: &PageFooterProps) -> Html {
    html! {
        <footer id="page-footer" class="page-footer muted">{ text(props.agent.as_ref()) }</footer>
    }
}

fn text(agent: Option<&AgentInfo>) -> String {
    match agent {
        Some(AgentInfo { version, hostname, build: Some(build) }) => {
            format!("whyrefused {version} ({build}) on {hostname}")
        }
        Some(AgentInfo { version, hostname, build: None }) => {
            format!("whyrefused {version} on {hostname}")
        }
        None => format!("whyrefused {} (this page)", env!("CARGO_PKG_VERSION")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn the_footer_names_the_agents_version_and_build_else_the_pages() {
        let build = Some("commit 1a2b3c4d5e6f, aarch64-unknown-linux-musl".to_string());
        let agent = AgentInfo { version: "0.2.0".into(), hostname: "edge1".into(), build };
        let html = render::<PageFooter>(PageFooterProps { agent: Some(agent) });
        assert!(html.contains(r#"id="page-footer""#), "{html}");
        assert!(
            html.contains(
                "whyrefused 0.2.0 (commit 1a2b3c4d5e6f, aarch64-unknown-linux-musl) on edge1"
            ),
            "{html}"
        );
        let older = AgentInfo { version: "0.1.0".into(), hostname: "old".into(), build: None };
        let html = render::<PageFooter>(PageFooterProps { agent: Some(older) });
        assert!(html.contains("whyrefused 0.1.0 on old<"), "{html}");
        let html = render::<PageFooter>(PageFooterProps { agent: None });
        assert!(html.contains(&format!("whyrefused {} (this page)", env!("CARGO_PKG_VERSION"))));
    }
}
