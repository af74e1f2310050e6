//! [`ScanForm`]: the host, the ports to scan, an optional timeout and retries, and the Scan
//! button.

use web_sys::HtmlInputElement;
use whyrefused_shared::{
    DEFAULT_PORT_SPEC, DEFAULT_SCAN_RETRIES, DEFAULT_SCAN_TIMEOUT_MS, MAX_SCAN_RETRIES, ScanRequest,
};
use yew::prelude::*;

use crate::components::form_submit::FormSubmit;
use crate::components::number_field::NumberField;
use crate::form::{FormProblem, optional_number};
use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct ScanFormProps {
    /// Why no scan can run now (the agent is not connected); `None` when one can.
    #[prop_or_default]
    pub blocked: Option<AttrValue>,
    /// The vantage points to run from (`from`); `None` for this agent alone.
    #[prop_or_default]
    pub from: Option<Vec<String>>,
}

/// Submits on Enter or the button; keeps the text so a scan can be edited and run again. The
/// host and the port spec are the agent's to judge (its messages are the precise ones, shown on
/// the scan's card); the form only checks that a host is given and that numbers are numbers.
#[function_component(ScanForm)]
pub fn scan_form(props: &ScanFormProps) -> Html {
    let link =
        use_context::<AgentLink>().expect("ScanForm is rendered inside the AgentLink provider");
    let host_ref = use_node_ref();
    let ports_ref = use_node_ref();
    let timeout_ref = use_node_ref();
    let retries_ref = use_node_ref();
    let problem = use_state(|| None::<FormProblem<Field>>);

    let onsubmit = {
        let inputs = [&host_ref, &ports_ref, &timeout_ref, &retries_ref].map(NodeRef::clone);
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
            let [host, ports, timeout, retries] = inputs.each_ref().map(value);
            let fields =
                FormFields { host: &host, ports: &ports, timeout: &timeout, retries: &retries };
            match build_request(&fields) {
                Ok(request) => {
                    problem.set(None);
                    link.scan(request, from.clone());
                }
                Err(found) => {
                    if let Some(input) = inputs[found.field.input()].cast::<HtmlInputElement>() {
                        let _ = input.focus();
                    }
                    problem.set(Some(found));
                }
            }
        })
    };

    let invalid = |field: Field| problem.as_ref().is_some_and(|p| p.field == field);
    let aria_invalid = |field: Field| invalid(field).then_some("true");
    let problem_id = |field: Field| invalid(field).then_some(AttrValue::from(FORM_ERROR_ID));
    let described_by = |help: &str, field: Field| {
        if invalid(field) { format!("{help} {FORM_ERROR_ID}") } else { help.to_owned() }
    };

    html! {
        <form id="scan-form" class="check-form scan-form" {onsubmit} novalidate=true aria-label="Scan ports">
            <div class="field field--target">
                <label for="scan-target">{ "Host" }</label>
                <input
                    ref={host_ref}
                    id="scan-target"
                    name="scan-target"
                    type="text"
                    placeholder="db.internal, 192.0.2.7 or ::1"
                    autocomplete="off"
                    autocapitalize="off"
                    spellcheck="false"
                    aria-describedby={described_by("scan-target-help", Field::Host)}
                    aria-invalid={aria_invalid(Field::Host)}
                />
                <p id="scan-target-help" class="help">{ "a name or an address, no port" }</p>
            </div>
            <div class="field field--ports">
                <label for="ports">{ "Ports" }</label>
                <input
                    ref={ports_ref}
                    id="ports"
                    name="ports"
                    type="text"
                    placeholder={DEFAULT_PORT_SPEC}
                    autocomplete="off"
                    autocapitalize="off"
                    spellcheck="false"
                    aria-describedby="ports-help"
                />
                <p id="ports-help" class="help">{ "22,80,8000-8100 · 1-65535 or all · top100" }</p>
            </div>
            <NumberField
                id="scan-timeout"
                label="Timeout"
                unit="ms"
                placeholder={DEFAULT_SCAN_TIMEOUT_MS.to_string()}
                help="per port"
                class="field--timeout"
                node_ref={timeout_ref}
                problem_id={problem_id(Field::Timeout)}
            />
            <NumberField
                id="scan-retries"
                label="Retries"
                placeholder={DEFAULT_SCAN_RETRIES.to_string()}
                help={format!("for silent ports, up to {MAX_SCAN_RETRIES}")}
                class="field--retries"
                node_ref={retries_ref}
                problem_id={problem_id(Field::Retries)}
            />
            <FormSubmit
                id="scan-start"
                label="Scan ports"
                blocked={props.blocked.clone()}
                problem={problem.as_ref().map(|p| (AttrValue::from(FORM_ERROR_ID), p.message.clone()))}
            />
        </form>
    }
}

/// The id of the message saying what is wrong, which the field at fault points to.
const FORM_ERROR_ID: &str = "scan-form-error";

/// The fields the form itself can find fault with (the spec is the agent's to judge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Host,
    Timeout,
    Retries,
}

impl Field {
    /// The field's place among the form's inputs (host, ports, timeout, retries).
    fn input(self) -> usize {
        match self {
            Field::Host => 0,
            Field::Timeout => 2,
            Field::Retries => 3,
        }
    }
}

/// What the form's fields hold, as typed.
struct FormFields<'a> {
    host: &'a str,
    ports: &'a str,
    timeout: &'a str,
    retries: &'a str,
}

/// The scan the fields ask for, or what is wrong with them. An empty spec means the agent's
/// default (`top1000`).
fn build_request(fields: &FormFields) -> Result<ScanRequest, FormProblem<Field>> {
    let problem = |field, message: String| FormProblem::new(field, message);
    let host = fields.host.trim();
    if host.is_empty() {
        return Err(problem(
            Field::Host,
            "Enter a host to scan first, such as db.internal or 192.0.2.7.".to_owned(),
        ));
    }
    let timeout_ms = optional_number(fields.timeout).map_err(|_| {
        problem(
            Field::Timeout,
            format!(
                "The timeout is a whole number of milliseconds per port, such as \
                 {DEFAULT_SCAN_TIMEOUT_MS}."
            ),
        )
    })?;
    let retries = optional_number(fields.retries).map_err(|_| {
        problem(
            Field::Retries,
            format!("Retries is a whole number from 0 to {MAX_SCAN_RETRIES}, such as 1."),
        )
    })?;
    let ports = fields.ports.trim();
    Ok(ScanRequest {
        ports: (!ports.is_empty()).then(|| ports.to_owned()),
        timeout_ms,
        retries,
        ..ScanRequest::new(host, "")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(
        host: &str,
        ports: &str,
        timeout: &str,
        retries: &str,
    ) -> Result<ScanRequest, FormProblem<Field>> {
        build_request(&FormFields { host, ports, timeout, retries })
    }

    #[test]
    fn empty_options_mean_the_agents_defaults() {
        let request = build(" 127.0.0.1 ", "  ", "", "").unwrap();
        assert_eq!(request, ScanRequest { ports: None, ..ScanRequest::new("127.0.0.1", "") });
    }

    #[test]
    fn the_spec_goes_to_the_agent_as_typed_and_numbers_as_numbers() {
        let request = build("::1", " 22,80,8000-8100 ", "250", "2").unwrap();
        assert_eq!(request.ports.as_deref(), Some("22,80,8000-8100"));
        assert_eq!((request.timeout_ms, request.retries), (Some(250), Some(2)));
        // Even a spec the agent will refuse: its message is the precise one.
        assert_eq!(build("::1", "0-10", "", "").unwrap().ports.as_deref(), Some("0-10"));
    }

    #[test]
    fn each_problem_names_the_field_to_fix() {
        assert_eq!(build(" ", "", "", "").unwrap_err().field, Field::Host);
        let timeout = build("h", "", "1s", "").unwrap_err();
        assert_eq!(timeout.field, Field::Timeout);
        assert!(timeout.message.contains("milliseconds per port"), "{timeout:?}");
        assert_eq!(build("h", "", "", "-1").unwrap_err().field, Field::Retries);
    }
}
