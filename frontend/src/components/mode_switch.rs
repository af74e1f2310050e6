//! [`ModeSwitch`]: chooses what the page shows: a form (a diagnosis of one connection, a scan of
//! a host's ports, an error explained), the History of stored results, or the watches.

use yew::prelude::*;

/// What the page's form runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Diagnose one connection (`whyrefused check`).
    Check,
    /// Scan a host's ports (`whyrefused scan`).
    Scan,
    /// Paste an error and check every target it names (`whyrefused explain`).
    Explain,
    /// Every result the agent stored (`whyrefused history`).
    History,
    /// The watches that run inside the agent (`whyrefused watches`).
    Watches,
}

#[derive(Properties, PartialEq)]
pub struct ModeSwitchProps {
    /// The mode chosen now.
    pub mode: Mode,
    /// Called with the mode the user picks.
    pub onchange: Callback<Mode>,
}

/// Toggle buttons (`#mode-check`, `#mode-scan`, `#mode-explain`, `#mode-history`,
/// `#mode-watches`), each in the tab order and pressed with
/// Enter or Space; `aria-pressed` tells which one is chosen.
#[function_component(ModeSwitch)]
pub fn mode_switch(props: &ModeSwitchProps) -> Html {
    let button = |mode: Mode, id: &'static str, label: &'static str| {
        let onchange = props.onchange.clone();
        let pressed = props.mode == mode;
        html! {
            <button
                type="button"
                {id}
                class={classes!("mode", pressed.then_some("mode--on"))}
                aria-pressed={if pressed { "true" } else { "false" }}
                aria-controls={match mode {
                    Mode::Check => "check-form",
                    Mode::Scan => "scan-form",
                    Mode::Explain => "explain-form",
                    Mode::History => "history",
                    Mode::Watches => "watches",
                }}
                onclick={Callback::from(move |_: MouseEvent| onchange.emit(mode))}
            >
                { label }
            </button>
        }
    };
    html! {
        <div class="mode-switch" role="group" aria-label="What to run">
            { button(Mode::Check, "mode-check", "Diagnose a connection") }
            { button(Mode::Scan, "mode-scan", "Scan ports") }
            { button(Mode::Explain, "mode-explain", "Explain an error") }
            { button(Mode::History, "mode-history", "History") }
            { button(Mode::Watches, "mode-watches", "Watches") }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::render;

    #[test]
    fn the_chosen_mode_is_pressed_and_the_other_is_not() {
        let html =
            render::<ModeSwitch>(ModeSwitchProps { mode: Mode::Scan, onchange: Callback::noop() });
        assert!(html.contains(r#"id="mode-scan" aria-pressed="true""#), "{html}");
        assert!(html.contains(r#"id="mode-check" aria-pressed="false""#), "{html}");
        assert!(html.contains(r#"class="mode mode--on">Scan ports<"#), "{html}");
    }
}
