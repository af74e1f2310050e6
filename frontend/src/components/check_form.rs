//! [`CheckForm`]: the target, an optional timeout, and the Diagnose button.

use web_sys::HtmlInputElement;
use whyrefused_shared::{CheckRequest, DEFAULT_TIMEOUT_MS};
use yew::prelude::*;

use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct CheckFormProps {
    /// Why no check can run now (the agent is not connected); `None` when one can.
    #[prop_or_default]
    pub blocked: Option<AttrValue>,
}

/// Submits on Enter or the button; keeps the text so a check can be edited and run again.
#[function_component(CheckForm)]
pub fn check_form(props: &CheckFormProps) -> Html {
    let link =
        use_context::<AgentLink>().expect("CheckForm is rendered inside the AgentLink provider");
    let target_ref = use_node_ref();
    let timeout_ref = use_node_ref();
    let problem = use_state(|| None::<String>);

    {
        // `autofocus` only works on the first page load; the form is rendered later than that.
        let target_ref = target_ref.clone();
        use_effect_with((), move |_| {
            if let Some(input) = target_ref.cast::<HtmlInputElement>() {
                let _ = input.focus();
            }
        });
    }

    let onsubmit = {
        let (target_ref, timeout_ref, problem) =
            (target_ref.clone(), timeout_ref.clone(), problem.clone());
        let blocked = props.blocked.is_some();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if blocked {
                return;
            }
            let value = |node: &NodeRef| {
                node.cast::<HtmlInputElement>().map(|input| input.value()).unwrap_or_default()
            };
            match build_request(&value(&target_ref), &value(&timeout_ref)) {
                Ok(request) => {
                    problem.set(None);
                    link.check(request);
                }
                Err(message) => problem.set(Some(message)),
            }
        })
    };

    html! {
        <form class="check-form" {onsubmit} novalidate=true>
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
                    aria-describedby="target-help"
                    aria-invalid={problem.is_some().then_some("true")}
                />
                <p id="target-help" class="help">
                    { "host:port, [IPv6]:port, or a URL (its scheme gives the port)" }
                </p>
            </div>
            <div class="field field--timeout">
                <label for="timeout">{ "Timeout " }<span class="muted">{ "(ms)" }</span></label>
                <input
                    ref={timeout_ref}
                    id="timeout"
                    name="timeout"
                    type="text"
                    inputmode="numeric"
                    placeholder={DEFAULT_TIMEOUT_MS.to_string()}
                    autocomplete="off"
                    aria-describedby="timeout-help"
                />
                <p id="timeout-help" class="help">{ "per address, optional" }</p>
            </div>
            <div class="field field--submit">
                <button
                    id="diagnose"
                    type="submit"
                    disabled={props.blocked.is_some()}
                    aria-describedby={props.blocked.as_ref().map(|_| "diagnose-blocked")}
                >
                    { "Diagnose" }
                </button>
            </div>
            if let Some(reason) = &props.blocked {
                <p id="diagnose-blocked" class="form-note">{ reason }</p>
            }
            if let Some(message) = &*problem {
                <p class="form-error" role="alert">{ message }</p>
            }
        </form>
    }
}

/// The request the form's two fields ask for, or what is wrong with them. Ranges and the target's
/// syntax are the agent's to judge: its messages are the precise ones.
fn build_request(target: &str, timeout: &str) -> Result<CheckRequest, String> {
    let target = target.trim();
    if target.is_empty() {
        return Err("Enter a target first, such as db.internal:5432 or https://example.com.".into());
    }
    let timeout = timeout.trim();
    let timeout_ms = if timeout.is_empty() {
        None
    } else {
        let ms = timeout.parse::<u32>().map_err(|_| {
            format!("The timeout is a whole number of milliseconds, such as {DEFAULT_TIMEOUT_MS}.")
        })?;
        Some(ms)
    };
    Ok(CheckRequest { timeout_ms, ..CheckRequest::new(target) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_trimmed_and_an_empty_timeout_means_the_default() {
        let request = build_request("  db:5432 ", "").unwrap();
        assert_eq!(request, CheckRequest::new("db:5432"));
    }

    #[test]
    fn a_timeout_is_milliseconds() {
        let request = build_request("db:5432", " 250 ").unwrap();
        assert_eq!(request.timeout_ms, Some(250));
    }

    #[test]
    fn an_empty_target_or_a_non_numeric_timeout_is_refused_with_an_example() {
        assert!(build_request("   ", "").unwrap_err().contains("db.internal:5432"));
        assert!(build_request("db:5432", "3s").unwrap_err().contains("milliseconds"));
        assert!(build_request("db:5432", "-1").is_err());
    }
}
