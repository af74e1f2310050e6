//! [`VantagePanel`]: the vantage points the agent (a hub) can run probes from, each with a
//! checkbox to choose it.

use web_sys::HtmlInputElement;
use whyrefused_shared::{LOCAL_VANTAGE, VantageInfo, version_warning};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct VantagePanelProps {
    /// The hub's last list: `local` first, then the agents that joined it.
    pub vantages: Vec<VantageInfo>,
    /// The names chosen now.
    pub chosen: Vec<String>,
    /// Called with the names chosen after a checkbox changes, in the list's order.
    pub onchange: Callback<Vec<String>>,
}

/// `#vantages`: one line per vantage point (`.vantage[data-name][data-online]`) with its
/// checkbox (`input[name='vantage']`), whether it is online, its host name, version and when the
/// hub last heard from it. With `local` alone, one sentence saying where probes run.
#[function_component(VantagePanel)]
pub fn vantage_panel(props: &VantagePanelProps) -> Html {
    let only_local = props.vantages.iter().all(|info| info.name == LOCAL_VANTAGE);
    if only_local {
        let host = props.vantages.first().map(|info| info.hostname.clone()).unwrap_or_default();
        return html! {
            <section id="vantages" class="vantages vantages--local" aria-label="Vantage points">
                <p class="vantages-note">
                    { "Probes run from this agent (" }<code>{ LOCAL_VANTAGE }</code>
                    if !host.is_empty() { { format!(" on {host}") } }
                    { "). Agents that join it appear here." }
                </p>
            </section>
        };
    }
    let toggle = |name: String| {
        let (vantages, chosen, onchange) =
            (props.vantages.clone(), props.chosen.clone(), props.onchange.clone());
        Callback::from(move |event: Event| {
            let on =
                event.target_dyn_into::<HtmlInputElement>().is_some_and(|input| input.checked());
            onchange.emit(choose(&vantages, &chosen, &name, on));
        })
    };
    html! {
        <section id="vantages" class="vantages" aria-label="Vantage points">
            <fieldset class="vantage-set">
                <legend class="vantages-legend">{ "Run from" }</legend>
                <ul class="vantage-list">
                    { for props.vantages.iter().map(|info| {
                        let checked = props.chosen.contains(&info.name);
                        let id = format!("vantage-{}", info.name);
                        html! {
                            <li
                                class={classes!("vantage", (!info.online).then_some("vantage--offline"))}
                                data-name={info.name.clone()}
                                data-online={info.online.to_string()}
                            >
                                <input
                                    type="checkbox"
                                    id={id.clone()}
                                    name="vantage"
                                    value={info.name.clone()}
                                    {checked}
                                    onchange={toggle(info.name.clone())}
                                />
                                <label for={id}>
                                    <span class="vantage-name mono">{ &info.name }</span>
                                    <span class={classes!("vantage-state",
                                        if info.online { "vantage-state--online" } else { "vantage-state--offline" })}>
                                        { if info.online { "online" } else { "offline" } }
                                    </span>
                                    <span class="vantage-about">{ about(info) }</span>
                                    if let Some(warning) = version_warning(&props.vantages, info) {
                                        <span class="vantage-warning" role="note">{ warning }</span>
                                    }
                                </label>
                            </li>
                        }
                    }) }
                </ul>
            </fieldset>
        </section>
    }
}

/// The names chosen once `name` is ticked (`on`) or unticked, in the list's order; names no
/// longer listed are dropped.
fn choose(vantages: &[VantageInfo], chosen: &[String], name: &str, on: bool) -> Vec<String> {
    vantages
        .iter()
        .map(|info| &info.name)
        .filter(|listed| if *listed == name { on } else { chosen.contains(listed) })
        .cloned()
        .collect()
}

/// The host name, the version and (for a joined agent) when the hub last heard from it.
fn about(info: &VantageInfo) -> String {
    let mut parts = vec![info.hostname.clone(), format!("v{}", info.version)];
    let last_seen = info.last_seen.as_ref().and_then(|at| clock(&at.0));
    if let (false, Some(time)) = (info.name == LOCAL_VANTAGE, last_seen) {
        parts.push(format!("seen {time} UTC"));
    }
    parts.join(" · ")
}

/// The time of day (`HH:MM:SS`) of an RFC 3339 timestamp.
fn clock(timestamp: &str) -> Option<&str> {
    timestamp.split_once('T').and_then(|(_, time)| time.get(..8))
}

#[cfg(test)]
mod tests {
    use whyrefused_shared::Timestamp;

    use super::*;
    use crate::components::render;

    fn info(name: &str, online: bool) -> VantageInfo {
        VantageInfo {
            name: name.into(),
            online,
            version: "0.1.0".into(),
            hostname: format!("{name}-host"),
            addresses: vec![],
            last_seen: Some(Timestamp("2026-11-24T10:00:07.123456Z".into())),
            connected_since: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn ticking_keeps_the_lists_order_and_unticking_removes() {
        let list = [info("local", true), info("a1", true), info("a2", false)];
        assert_eq!(choose(&list, &names(&["local"]), "a2", true), names(&["local", "a2"]));
        assert_eq!(
            choose(&list, &names(&["a2", "local"]), "a1", true),
            names(&["local", "a1", "a2"])
        );
        assert_eq!(choose(&list, &names(&["local", "a1"]), "local", false), names(&["a1"]));
        assert_eq!(choose(&list, &names(&["gone"]), "a1", true), names(&["a1"]));
    }

    #[test]
    fn each_vantage_point_shows_its_state_host_version_and_last_seen() {
        let html = render::<VantagePanel>(VantagePanelProps {
            vantages: vec![info("local", true), info("a1", false)],
            chosen: names(&["local"]),
            onchange: Callback::noop(),
        });
        assert!(html.contains(r#"data-name="a1""#) && html.contains(r#"data-online="false""#));
        assert!(html.contains("a1-host · v0.1.0 · seen 10:00:07 UTC"), "{html}");
        assert!(html.contains("local-host · v0.1.0<"), "no last seen for the hub itself: {html}");
    }

    #[test]
    fn a_joined_agent_of_another_version_than_the_hubs_is_warned_about() {
        let older = VantageInfo { version: "0.0.9".into(), ..info("a1", true) };
        let html = render::<VantagePanel>(VantagePanelProps {
            vantages: vec![info("local", true), older, info("a2", true)],
            chosen: names(&["local"]),
            onchange: Callback::noop(),
        });
        let warning = "a1 runs whyrefused 0.0.9, the hub 0.1.0: install the same version on both";
        assert!(html.contains(warning), "{html}");
        assert_eq!(html.matches("vantage-warning").count(), 1, "a2 runs the hub's: {html}");
    }

    #[test]
    fn the_hub_alone_gets_one_sentence() {
        let html = render::<VantagePanel>(VantagePanelProps {
            vantages: vec![info("local", true)],
            chosen: names(&["local"]),
            onchange: Callback::noop(),
        });
        assert!(html.contains("Agents that join it appear here."), "{html}");
        assert!(!html.contains("checkbox"), "{html}");
    }
}
