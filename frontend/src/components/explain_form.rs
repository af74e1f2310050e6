//! [`ExplainForm`]: the "Explain an error" box. Paste what the program said; the page
//! recognises every host, port and address it names (the same recogniser as `whyrefused
//! explain`, run here in the browser), lists them with who said them and what is missing, and
//! runs a check of each that names a target. Only the recognised words travel to the agent,
//! with each check; the pasted text never leaves the page and is never stored.

use web_sys::HtmlTextAreaElement;
use whyrefused_shared::CheckRequest;
use whyrefused_shared::explain::{self, Recognised, Recognition};
use yew::prelude::*;

use crate::components::form_submit::FormSubmit;
use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct ExplainFormProps {
    /// Why no check can run now (the agent is not connected); `None` when one can.
    #[prop_or_default]
    pub blocked: Option<AttrValue>,
    /// The vantage points to run from (`from`); `None` for this agent alone.
    #[prop_or_default]
    pub from: Option<Vec<String>>,
}

/// The id of the message saying the text names nothing to check.
const EXPLAIN_ERROR_ID: &str = "explain-error";

/// A textarea and the Explain button; the places found are listed under it.
#[function_component(ExplainForm)]
pub fn explain_form(props: &ExplainFormProps) -> Html {
    let link =
        use_context::<AgentLink>().expect("ExplainForm is rendered inside the AgentLink provider");
    let text_ref = use_node_ref();
    let found = use_state(|| None::<Recognition>);
    let problem = use_state(|| None::<String>);

    let onsubmit = {
        let text_ref = text_ref.clone();
        let (found, problem) = (found.clone(), problem.clone());
        let blocked = props.blocked.is_some();
        let from = props.from.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if blocked {
                return;
            }
            let text =
                text_ref.cast::<HtmlTextAreaElement>().map(|area| area.value()).unwrap_or_default();
            let recognition = explain::recognise(&text);
            drop(text);
            problem.set(nothing_to_check(&recognition));
            for request in requests(&recognition) {
                link.check(request, from.clone());
            }
            found.set(Some(recognition));
        })
    };

    html! {
        <form id="explain-form" class="check-form explain-form" {onsubmit} novalidate=true aria-label="Explain an error">
            <div class="field field--error-text">
                <label for="explain-text">{ "The error your program printed" }</label>
                <textarea
                    ref={text_ref}
                    id="explain-text"
                    name="explain-text"
                    rows="5"
                    placeholder="Error: connect ECONNREFUSED ::1:3000"
                    autocomplete="off"
                    autocapitalize="off"
                    spellcheck="false"
                    aria-describedby="explain-help"
                />
                <p id="explain-help" class="help">
                    { "Node, Python, libpq, MySQL, Redis, Java, Go, curl, Docker, gRPC, .NET and Rust \
                       errors, and connection strings. Read here in your browser: only the \
                       recognised words are sent, with each check, and nothing is stored." }
                </p>
            </div>
            <FormSubmit
                id="explain"
                label="Explain"
                blocked={props.blocked.clone()}
                problem={(*problem).clone().map(|message| (AttrValue::from(EXPLAIN_ERROR_ID), message))}
            />
            if let Some(recognition) = &*found {
                <Places recognition={recognition.clone()} />
            }
        </form>
    }
}

/// A check request for each recognised place that names a target, carrying its words.
fn requests(recognition: &Recognition) -> Vec<CheckRequest> {
    recognition
        .recognised
        .iter()
        .filter_map(|recognised| {
            let target = recognised.target()?;
            Some(CheckRequest { recognised: Some(recognised.clone()), ..CheckRequest::new(target) })
        })
        .collect()
}

/// What to say when the text names no complete target.
fn nothing_to_check(recognition: &Recognition) -> Option<String> {
    if recognition.has_target() {
        return None;
    }
    Some(match recognition.recognised.is_empty() {
        true => "The text names no host and port whyrefused recognises: diagnose the address \
                 the program connects to instead."
            .into(),
        false => "The text names no complete target (see what is missing below).".into(),
    })
}

#[derive(Properties, PartialEq)]
struct PlacesProps {
    recognition: Recognition,
}

/// The places the text names, one line each.
#[function_component(Places)]
fn places(props: &PlacesProps) -> Html {
    let count = props.recognition.recognised.len();
    html! {
        <div class="explain-places" aria-live="polite">
            <p class="explain-count">
                { format!("The text names {count} place{}:", if count == 1 { "" } else { "s" }) }
            </p>
            <ul>
                { for props.recognition.recognised.iter().map(|r| html! {
                    <li class="explain-place" data-kind={kind_name(r)}>{ place_line(r) }</li>
                }) }
            </ul>
            if props.recognition.left_out > 0 {
                <p class="help">{ format!(
                    "… and {} more, not checked (at most {} from one text).",
                    props.recognition.left_out, explain::MAX_TARGETS
                ) }</p>
            }
        </div>
    }
}

fn kind_name(recognised: &Recognised) -> String {
    serde_json::to_value(recognised.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `::1 port 3000 (IPv6): Node.js said "connect ECONNREFUSED ::1:3000"`, or what is missing.
fn place_line(recognised: &Recognised) -> String {
    let said = format!("{} said \"{}\"", recognised.kind.label(), recognised.text);
    if let Some(socket) = &recognised.socket {
        return format!("the Unix socket {socket} (not checked from the page): {said}");
    }
    let family = recognised.family().map_or(String::new(), |f| format!(" ({})", f.label()));
    match (&recognised.host, recognised.port, recognised.missing()) {
        (Some(host), Some(port), None) => format!("{host} port {port}{family}: {said}"),
        (_, _, Some(missing)) => format!("{said}: {missing} not named, nothing to check"),
        _ => said,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn each_place_with_a_target_becomes_a_check_carrying_only_its_words() {
        let text = "Error: connect ECONNREFUSED ::1:3000\nlookup db on 127.0.0.53:53: no such host";
        let recognition = explain::recognise(text);
        let sent = requests(&recognition);
        assert_eq!(sent.len(), 1, "{recognition:?}");
        assert_eq!(sent[0].target, "[::1]:3000");
        let json = serde_json::to_string(&sent[0]).unwrap();
        assert!(!json.contains("lookup db"), "only the recognised words travel: {json}");
        assert_eq!(nothing_to_check(&recognition), None);
    }

    #[test]
    fn the_places_say_who_said_what_and_what_is_missing() {
        let recognition =
            explain::recognise("connect ECONNREFUSED ::1:3000\ngetaddrinfo ENOTFOUND db");
        let html = render::<Places>(PlacesProps { recognition });
        assert!(html.contains("The text names 2 places:"), "{html}");
        assert!(html.contains("::1 port 3000 (IPv6): Node.js said"), "{html}");
        assert!(html.contains("the port not named, nothing to check"), "{html}");
        let nothing = explain::recognise("all is well");
        assert!(nothing_to_check(&nothing).unwrap().starts_with("The text names no host"));
    }
}
