//! [`RequestErrorNote`]: why the agent refused a check or a scan, on its card.

use yew::prelude::*;

use crate::format;
use crate::state::RequestError;

#[derive(Properties, PartialEq)]
pub struct RequestErrorNoteProps {
    /// The agent's refusal.
    pub error: RequestError,
}

/// The error's wire name (`invalid_ports`) and the agent's explanation, announced as an alert.
#[function_component(RequestErrorNote)]
pub fn request_error_note(props: &RequestErrorNoteProps) -> Html {
    html! {
        <p class="check-error" role="alert">
            <code class="error-code">{ format::error_code(props.error.code) }</code>
            { " " }
            { &props.error.message }
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;
    use whyrefused_shared::ErrorCode;

    #[test]
    fn the_code_and_the_agents_words_are_shown_as_an_alert() {
        let error = RequestError {
            code: ErrorCode::InvalidPorts,
            message: "port 0 is out of range".into(),
        };
        let html = render::<RequestErrorNote>(RequestErrorNoteProps { error });
        assert!(html.contains(r#"role="alert""#), "{html}");
        assert!(
            html.contains("invalid_ports") && html.contains("port 0 is out of range"),
            "{html}"
        );
    }
}
