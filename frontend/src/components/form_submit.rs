//! [`FormSubmit`]: a form's submit button, why it is disabled (when it is), and what is wrong
//! with what was typed (when something is).

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct FormSubmitProps {
    /// The button's `id`; the note on why it is disabled gets `{id}-blocked`.
    pub id: AttrValue,
    /// The button's text.
    pub label: AttrValue,
    /// Why nothing can be sent now (the agent is not connected …); `None` when it can.
    #[prop_or_default]
    pub blocked: Option<AttrValue>,
    /// What is wrong with the form, said as an alert, with the `id` its field points to.
    #[prop_or_default]
    pub problem: Option<(AttrValue, String)>,
}

/// The button (disabled, and described by the reason, while blocked), then the notes.
#[function_component(FormSubmit)]
pub fn form_submit(props: &FormSubmitProps) -> Html {
    let blocked_id = format!("{}-blocked", props.id);
    html! {
        <>
            <div class="field field--submit">
                <button
                    id={props.id.clone()}
                    type="submit"
                    disabled={props.blocked.is_some()}
                    aria-describedby={props.blocked.as_ref().map(|_| blocked_id.clone())}
                >
                    { &props.label }
                </button>
            </div>
            if let Some(reason) = &props.blocked {
                <p id={blocked_id} class="form-note">{ reason }</p>
            }
            if let Some((id, message)) = &props.problem {
                <p id={id.clone()} class="form-error" role="alert">{ message }</p>
            }
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn a_blocked_button_is_disabled_and_says_why() {
        let props = FormSubmitProps {
            id: "diagnose".into(),
            label: "Diagnose".into(),
            blocked: Some("Waiting for the agent".into()),
            problem: Some(("form-error".into(), "Enter a target first".into())),
        };
        let html = render::<FormSubmit>(props);
        assert!(
            html.contains("disabled") && html.contains(r#"aria-describedby="diagnose-blocked""#)
        );
        assert!(
            html.contains(r#"id="diagnose-blocked""#) && html.contains("Waiting for the agent")
        );
        assert!(html.contains(r#"id="form-error""#) && html.contains(r#"role="alert""#), "{html}");
    }
}
