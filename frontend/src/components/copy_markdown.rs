//! [`CopyMarkdown`]: a button that copies the check as Markdown, or shows the Markdown for copying
//! by hand when the browser will not let the page write to the clipboard.

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use web_sys::HtmlTextAreaElement;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::clipboard::{self, CopyError};

/// How long "Copied" stays on the button.
const COPIED_FOR_MS: u32 = 4_000;

#[derive(Properties, PartialEq)]
pub struct CopyMarkdownProps {
    /// The Markdown to copy.
    pub markdown: AttrValue,
}

/// What the last press led to.
#[derive(Debug, Clone, PartialEq)]
enum CopyState {
    /// Nothing pressed yet, or the feedback has faded.
    Idle,
    /// The browser is writing to the clipboard.
    Copying,
    /// The Markdown is on the clipboard.
    Copied,
    /// The clipboard could not be written: the Markdown is shown instead, with the reason.
    ShownForCopying(String),
}

/// The button carries `data-copied="true"` while "Copied" shows; the fallback is a read-only
/// `textarea.markdown-text`, selected at once so Ctrl+C copies it.
#[function_component(CopyMarkdown)]
pub fn copy_markdown(props: &CopyMarkdownProps) -> Html {
    let state = use_state(|| CopyState::Idle);
    // Each press gets a number, so an old press's fading timer leaves a newer press's feedback.
    let presses = use_mut_ref(|| 0_u32);
    let text_ref = use_node_ref();

    {
        let text_ref = text_ref.clone();
        let showing = matches!(*state, CopyState::ShownForCopying(_));
        use_effect_with(showing, move |showing| {
            if let Some(text) = text_ref.cast::<HtmlTextAreaElement>().filter(|_| *showing) {
                let _ = text.focus();
                text.select();
            }
        });
    }

    let onclick = {
        let (state, markdown) = (state.clone(), props.markdown.clone());
        Callback::from(move |_: MouseEvent| {
            let press = {
                let mut presses = presses.borrow_mut();
                *presses += 1;
                *presses
            };
            state.set(CopyState::Copying);
            spawn_local(copy(markdown.clone(), state.clone(), Rc::clone(&presses), press));
        })
    };

    let copied = *state == CopyState::Copied;
    let label = match *state {
        CopyState::Copying => "Copying…",
        CopyState::Copied => "Copied",
        CopyState::Idle | CopyState::ShownForCopying(_) => "Copy as Markdown",
    };
    html! {
        <div class="copy">
            <button
                type="button"
                class={classes!("copy-markdown", copied.then_some("copy-markdown--copied"))}
                data-copied={copied.then_some("true")}
                {onclick}
            >
                { label }
            </button>
            <span class="visually-hidden" role="status">
                { if copied { "Copied the check as Markdown" } else { "" } }
            </span>
            if let CopyState::ShownForCopying(reason) = &*state {
                <label class="markdown-fallback">
                    <span class="markdown-fallback-note">
                        { format!("Could not copy ({reason}). Select the text and copy it yourself:") }
                    </span>
                    <textarea
                        ref={text_ref}
                        class="markdown-text mono"
                        readonly=true
                        rows={rows(&props.markdown)}
                        value={props.markdown.clone()}
                    />
                </label>
            }
        </div>
    }
}

async fn copy(
    markdown: AttrValue,
    state: UseStateHandle<CopyState>,
    presses: Rc<std::cell::RefCell<u32>>,
    press: u32,
) {
    match clipboard::copy_text(&markdown).await {
        Ok(()) => {
            state.set(CopyState::Copied);
            TimeoutFuture::new(COPIED_FOR_MS).await;
            if *presses.borrow() == press {
                state.set(CopyState::Idle);
            }
        }
        Err(error) => state.set(CopyState::ShownForCopying(reason(&error))),
    }
}

fn reason(error: &CopyError) -> String {
    match error {
        CopyError::Unavailable => "this browser gives the page no clipboard here".to_owned(),
        CopyError::Refused(message) => format!("the browser said: {message}"),
    }
}

/// Enough rows to show most checks whole, without taking over the page.
fn rows(markdown: &str) -> String {
    markdown.lines().count().clamp(4, 16).to_string()
}
