//! [`CheckForm`]: the target, an optional timeout, optional retries with their delay, the HTTP
//! statuses that count as working, whether to send a large payload (the path-MTU test for
//! services that do not speak first), and the Diagnose button.

use web_sys::HtmlInputElement;
use whyrefused_shared::{CheckRequest, DEFAULT_RETRY_DELAY_MS, DEFAULT_TIMEOUT_MS, MAX_RETRIES};
use yew::prelude::*;

use crate::components::form_submit::FormSubmit;
use crate::components::number_field::NumberField;
use crate::form::{FormProblem, optional_number};
use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct CheckFormProps {
    /// Why no check can run now (the agent is not connected); `None` when one can.
    #[prop_or_default]
    pub blocked: Option<AttrValue>,
    /// The vantage points to run from (`from`); `None` for this agent alone.
    #[prop_or_default]
    pub from: Option<Vec<String>>,
    /// A target a `#/check?target=…` link gave: put in the field and focused, never run (a link
    /// must not make the agent connect; the person presses Enter).
    #[prop_or_default]
    pub prefill: Option<AttrValue>,
}

/// Submits on Enter or the button; keeps the text so a check can be edited and run again.
#[function_component(CheckForm)]
pub fn check_form(props: &CheckFormProps) -> Html {
    let link =
        use_context::<AgentLink>().expect("CheckForm is rendered inside the AgentLink provider");
    let target_ref = use_node_ref();
    let timeout_ref = use_node_ref();
    let retries_ref = use_node_ref();
    let delay_ref = use_node_ref();
    let expect_ref = use_node_ref();
    let large_ref = use_node_ref();
    let problem = use_state(|| None::<FormProblem<Field>>);

    {
        // `autofocus` only works on the first page load; the form is rendered later than that.
        // A link's target is filled in, and focused the same way.
        let target_ref = target_ref.clone();
        use_effect_with(props.prefill.clone(), move |prefill| {
            if let Some(input) = target_ref.cast::<HtmlInputElement>() {
                if let Some(target) = prefill {
                    input.set_value(target);
                }
                let _ = input.focus();
            }
        });
    }

    let onsubmit = {
        let inputs =
            [&target_ref, &timeout_ref, &retries_ref, &delay_ref, &expect_ref].map(NodeRef::clone);
        let large_ref = large_ref.clone();
        let problem = problem.clone();
        let blocked = props.blocked.is_some();
        let from = props.from.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if blocked {
                return;
            }
            let value = |node: &NodeRef| {
                node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
            };
            let [target, timeout, retries, delay, expect] = inputs.each_ref().map(value);
            let fields = FormFields {
                target: &target,
                timeout: &timeout,
                retries: &retries,
                retry_delay: &delay,
                expect_status: &expect,
                large: large_ref.cast::<HtmlInputElement>().is_some_and(|box_| box_.checked()),
            };
            match build_request(&fields) {
                Ok(request) => {
                    problem.set(None);
                    link.check(request, from.clone());
                }
                Err(found) => {
                    // Keyboard users land on the field to fix.
                    if let Some(input) = inputs[found.field as usize].cast::<HtmlInputElement>() {
                        let _ = input.focus();
                    }
                    problem.set(Some(found));
                }
            }
        })
    };

    let invalid = |field: Field| problem.as_ref().is_some_and(|p| p.field == field);
    let aria_invalid = |field: Field| invalid(field).then_some("true");
    let described_by = |help: &str, field: Field| {
        if invalid(field) { format!("{help} {FORM_ERROR_ID}") } else { help.to_owned() }
    };
    let problem_id = |field: Field| invalid(field).then_some(AttrValue::from(FORM_ERROR_ID));

    html! {
        <form id="check-form" class="check-form" {onsubmit} novalidate=true aria-label="Diagnose a connection">
            <div class="field field--target">
                <label for="target">{ "Target" }</label>
                <input
                    ref={target_ref}
                    id="target"
                    name="target"
                    type="text"
                    placeholder="db.internal:5432 or https://example.com"
                    autocomplete="off"
                    autocapitalize="off"
                    spellcheck="false"
                    autofocus=true
                    aria-describedby={described_by("target-help", Field::Target)}
                    aria-invalid={aria_invalid(Field::Target)}
                />
                <p id="target-help" class="help">
                    { "host:port, [IPv6]:port, or a URL (its scheme gives the port)" }
                </p>
            </div>
            <NumberField
                id="timeout"
                label="Timeout"
                unit="ms"
                placeholder={DEFAULT_TIMEOUT_MS.to_string()}
                help="per address, optional"
                class="field--timeout"
                node_ref={timeout_ref}
                problem_id={problem_id(Field::Timeout)}
            />
            <NumberField
                id="retries"
                label="Retries"
                placeholder="0"
                help={format!("extra rounds, up to {MAX_RETRIES}")}
                class="field--retries"
                node_ref={retries_ref}
                problem_id={problem_id(Field::Retries)}
            />
            <NumberField
                id="retry-delay"
                label="Delay"
                unit="ms"
                placeholder={DEFAULT_RETRY_DELAY_MS.to_string()}
                help="between rounds"
                class="field--delay"
                node_ref={delay_ref}
                problem_id={problem_id(Field::RetryDelay)}
            />
            <div class="field field--expect">
                <label for="expect-status">{ "Expect status" }</label>
                <input
                    ref={expect_ref}
                    id="expect-status"
                    name="expect-status"
                    type="text"
                    placeholder="any"
                    autocomplete="off"
                    aria-describedby={described_by("expect-status-help", Field::ExpectStatus)}
                    aria-invalid={aria_invalid(Field::ExpectStatus)}
                />
                <p id="expect-status-help" class="help">{ "HTTP codes, as 200,204" }</p>
            </div>
            <FormSubmit
                id="diagnose"
                label="Diagnose"
                blocked={props.blocked.clone()}
                problem={problem.as_ref().map(|p| (AttrValue::from(FORM_ERROR_ID), p.message.clone()))}
            />
            <div class="field field--large">
                <label class="check-option" for="large">
                    <input ref={large_ref} id="large" name="large" type="checkbox" aria-describedby="large-help" />
                    { "Large send" }
                </label>
                <span id="large-help" class="help">
                    { "send more than the MTU after the connect, to find a path-MTU black hole" }
                </span>
            </div>
        </form>
    }
}

/// The id of the message saying what is wrong, which the field at fault points to.
const FORM_ERROR_ID: &str = "form-error";

/// The form's fields, in the order of their inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Target,
    Timeout,
    Retries,
    RetryDelay,
    ExpectStatus,
}

/// What the form's fields hold, as typed.
struct FormFields<'a> {
    target: &'a str,
    timeout: &'a str,
    retries: &'a str,
    retry_delay: &'a str,
    expect_status: &'a str,
    /// Whether the large-send box is ticked.
    large: bool,
}

/// The request the form's fields ask for, or what is wrong with them. Ranges and the target's
/// syntax are the agent's to judge: its messages are the precise ones.
fn build_request(fields: &FormFields) -> Result<CheckRequest, FormProblem<Field>> {
    let target = fields.target.trim();
    if target.is_empty() {
        return Err(FormProblem::new(
            Field::Target,
            "Enter a target first, such as db.internal:5432 or https://example.com.",
        ));
    }
    let timeout_ms = optional_number(fields.timeout).map_err(|_| {
        FormProblem::new(
            Field::Timeout,
            format!("The timeout is a whole number of milliseconds, such as {DEFAULT_TIMEOUT_MS}."),
        )
    })?;
    let retries = optional_number(fields.retries).map_err(|_| {
        FormProblem::new(
            Field::Retries,
            format!(
                "Retries is a whole number of extra rounds, from 0 to {MAX_RETRIES}, such as 3."
            ),
        )
    })?;
    let retry_delay_ms = optional_number(fields.retry_delay).map_err(|_| {
        FormProblem::new(
            Field::RetryDelay,
            format!(
                "The delay is a whole number of milliseconds between retries, such as \
                 {DEFAULT_RETRY_DELAY_MS}."
            ),
        )
    })?;
    if retry_delay_ms.is_some() && retries.unwrap_or(0) == 0 {
        return Err(FormProblem::new(
            Field::RetryDelay,
            "The delay is the pause between retries: set Retries to 1 or more, or clear the delay.",
        ));
    }
    let expect_status = statuses(fields.expect_status).map_err(|_| {
        FormProblem::new(
            Field::ExpectStatus,
            "Expected statuses are HTTP codes from 100 to 599 separated by commas, such as \
             200,204.",
        )
    })?;
    Ok(CheckRequest {
        timeout_ms,
        retries,
        retry_delay_ms,
        expect_status,
        large: fields.large,
        ..CheckRequest::new(target)
    })
}

/// `200, 204` → `[200, 204]`; empty is none. Each must be an HTTP status (100 to 599).
fn statuses(text: &str) -> Result<Vec<u16>, ()> {
    let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
    items
        .map(|item| item.parse::<u16>().ok().filter(|code| (100..=599).contains(code)).ok_or(()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(target: &str, timeout: &str) -> Result<CheckRequest, String> {
        build_request(&FormFields {
            target,
            timeout,
            retries: "",
            retry_delay: "",
            expect_status: "",
            large: false,
        })
        .map_err(|problem| problem.message)
    }

    fn build_retried(retries: &str, retry_delay: &str) -> Result<CheckRequest, FormProblem<Field>> {
        let fields = FormFields {
            target: "db:5432",
            timeout: "",
            retries,
            retry_delay,
            expect_status: "",
            large: false,
        };
        build_request(&fields)
    }

    #[test]
    fn the_target_is_trimmed_and_an_empty_timeout_means_the_default() {
        let request = build("  db:5432 ", "").unwrap();
        assert_eq!(request, CheckRequest::new("db:5432"));
    }

    #[test]
    fn a_timeout_is_milliseconds() {
        let request = build("db:5432", " 250 ").unwrap();
        assert_eq!(request.timeout_ms, Some(250));
    }

    #[test]
    fn an_empty_target_or_a_non_numeric_timeout_is_refused_with_an_example() {
        assert!(build("   ", "").unwrap_err().contains("db.internal:5432"));
        assert!(build("db:5432", "3s").unwrap_err().contains("milliseconds"));
        assert!(build("db:5432", "-1").is_err());
    }

    #[test]
    fn retries_and_their_delay_are_sent_when_given() {
        let request = build_retried(" 2 ", "100").unwrap();
        assert_eq!((request.retries, request.retry_delay_ms), (Some(2), Some(100)));
        let request = build_retried("3", "").unwrap();
        assert_eq!((request.retries, request.retry_delay_ms), (Some(3), None));
        assert_eq!(build_retried("", "").unwrap(), CheckRequest::new("db:5432"));
    }

    #[test]
    fn non_numeric_retries_or_delay_are_refused_with_an_example() {
        let retries = build_retried("two", "").unwrap_err();
        assert_eq!(retries.field, Field::Retries);
        assert!(retries.message.contains("Retries is a whole number"));
        assert!(retries.message.contains("such as 3"));
        assert_eq!(build_retried("-1", "").unwrap_err().field, Field::Retries);
        let delay = build_retried("2", "0.5s").unwrap_err();
        assert_eq!(delay.field, Field::RetryDelay);
        assert!(delay.message.contains("milliseconds between retries"), "{delay:?}");
    }

    #[test]
    fn each_problem_names_the_field_to_fix() {
        let fields = |target, timeout| FormFields {
            target,
            timeout,
            retries: "",
            retry_delay: "",
            expect_status: "",
            large: false,
        };
        assert_eq!(build_request(&fields(" ", "")).unwrap_err().field, Field::Target);
        assert_eq!(build_request(&fields("db:1", "x")).unwrap_err().field, Field::Timeout);
    }

    #[test]
    fn a_delay_without_retries_says_what_it_needs() {
        for retries in ["", "0"] {
            let problem = build_retried(retries, "500").unwrap_err();
            assert_eq!(problem.field, Field::RetryDelay);
            assert!(problem.message.contains("set Retries to 1 or more"), "{problem:?}");
        }
    }

    #[test]
    fn expected_statuses_are_a_comma_list_of_http_codes() {
        let fields = |expect_status| FormFields {
            target: "http://db:8080/",
            timeout: "",
            retries: "",
            retry_delay: "",
            expect_status,
            large: false,
        };
        assert_eq!(build_request(&fields(" 200, 204 ")).unwrap().expect_status, [200, 204]);
        assert!(build_request(&fields("")).unwrap().expect_status.is_empty());
        for wrong in ["ok", "200;204", "700"] {
            let problem = build_request(&fields(wrong)).unwrap_err();
            assert_eq!(problem.field, Field::ExpectStatus, "{wrong}");
            assert!(problem.message.contains("such as 200,204"), "{problem:?}");
        }
    }

    #[test]
    fn the_large_send_box_asks_for_a_large_send() {
        let fields = FormFields {
            target: "db:7000",
            timeout: "",
            retries: "",
            retry_delay: "",
            expect_status: "",
            large: true,
        };
        assert!(build_request(&fields).unwrap().large);
    }
}
