//! [`TokenForm`]: asks for the agent's token when the agent requires one.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::AgentLink;

#[derive(Properties, PartialEq)]
pub struct TokenFormProps {
    /// Why the last token did not work, when one was tried.
    #[prop_or_default]
    pub problem: Option<String>,
}

/// A password field and a Connect button; the token goes to the agent in the link's hello and is
/// kept only in this page's memory. (`#token=…` in the page's address gives it without typing.)
#[function_component(TokenForm)]
pub fn token_form(props: &TokenFormProps) -> Html {
    let link =
        use_context::<AgentLink>().expect("TokenForm is rendered inside the AgentLink provider");
    let input = use_node_ref();
    {
        let input = input.clone();
        use_effect_with((), move |_| {
            if let Some(field) = input.cast::<HtmlInputElement>() {
                let _ = field.focus();
            }
        });
    }
    let onsubmit = {
        let input = input.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let token = input.cast::<HtmlInputElement>().map(|i| i.value()).unwrap_or_default();
            if !token.trim().is_empty() {
                link.authenticate(token.trim().to_string());
            }
        })
    };
    html! {
        <form id="token-form" class="token-form" {onsubmit} aria-labelledby="token-title">
            <p id="token-title" class="token-title">
                <strong>{ "This agent needs a token." }</strong>
                { " Ask whoever runs it for one of its tokens (its --token-file)." }
            </p>
            <div class="field">
                <label for="token">{ "Token" }</label>
                <input
                    ref={input}
                    id="token"
                    name="token"
                    type="password"
                    autocomplete="off"
                    spellcheck="false"
                    aria-invalid={props.problem.is_some().then_some("true")}
                    aria-describedby={props.problem.as_ref().map(|_| "token-problem")}
                />
            </div>
            <button id="connect" type="submit">{ "Connect" }</button>
            if let Some(problem) = &props.problem {
                <p id="token-problem" class="form-error" role="alert">{ problem }</p>
            }
        </form>
    }
}
