//! [`NumberField`]: an optional whole-number input (a timeout, retries, a delay) with its label
//! and help, marked invalid and pointing at the form's message when that field is at fault.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct NumberFieldProps {
    /// The input's `id` and `name`; the help text gets `{id}-help`.
    pub id: AttrValue,
    /// The label.
    pub label: AttrValue,
    /// The unit shown muted after the label, such as `ms`.
    #[prop_or_default]
    pub unit: Option<AttrValue>,
    /// The value used when the field is left empty, shown as the placeholder.
    pub placeholder: AttrValue,
    /// One line of help under the input.
    pub help: AttrValue,
    /// The `field--…` class that sizes it in the form's grid.
    pub class: AttrValue,
    /// The form's reference to the input, to read its value and focus it.
    pub node_ref: NodeRef,
    /// The `id` of the form's message, when this field is the one at fault.
    #[prop_or_default]
    pub problem_id: Option<AttrValue>,
}

/// A text input that takes digits (`inputmode="numeric"`), so a wrong value gets the form's
/// own clear message rather than the browser's.
#[function_component(NumberField)]
pub fn number_field(props: &NumberFieldProps) -> Html {
    let help_id = format!("{}-help", props.id);
    let described_by = match &props.problem_id {
        Some(problem) => format!("{help_id} {problem}"),
        None => help_id.clone(),
    };
    html! {
        <div class={classes!("field", props.class.to_string())}>
            <label for={props.id.clone()}>
                { &props.label }
                if let Some(unit) = &props.unit {
                    { " " }<span class="muted">{ format!("({unit})") }</span>
                }
            </label>
            <input
                ref={props.node_ref.clone()}
                id={props.id.clone()}
                name={props.id.clone()}
                type="text"
                inputmode="numeric"
                placeholder={props.placeholder.clone()}
                autocomplete="off"
                aria-describedby={described_by}
                aria-invalid={props.problem_id.is_some().then_some("true")}
            />
            <p id={help_id} class="help">{ &props.help }</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    fn props(problem_id: Option<&'static str>) -> NumberFieldProps {
        NumberFieldProps {
            id: "retries".into(),
            label: "Retries".into(),
            unit: None,
            placeholder: "0".into(),
            help: "extra rounds".into(),
            class: "field--retries".into(),
            node_ref: NodeRef::default(),
            problem_id: problem_id.map(AttrValue::from),
        }
    }

    #[test]
    fn a_field_at_fault_is_invalid_and_points_at_the_message() {
        let html = render::<NumberField>(props(Some("form-error")));
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains(r#"aria-describedby="retries-help form-error""#), "{html}");
        let fine = render::<NumberField>(props(None));
        assert!(!fine.contains("aria-invalid"), "{fine}");
        assert!(fine.contains(r#"aria-describedby="retries-help""#), "{fine}");
        assert!(fine.contains(r#"inputmode="numeric""#) && fine.contains(r#"id="retries""#));
    }
}
