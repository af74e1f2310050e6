//! The CSV export of stored results (RFC 4180: a header line, fields quoted when they hold a
//! comma, a quote or a line break, quotes doubled, CRLF line ends).

use super::record::Summary;

/// The header, in the order of each row's fields.
pub const HEADER: [&str; 13] = [
    "id",
    "at",
    "finished_at",
    "kind",
    "target",
    "host",
    "port",
    "vantage",
    "asked_by",
    "source",
    "cause",
    "connect_ms",
    "summary",
];

/// The CSV document of `results`, header first.
pub fn render(results: &[Summary]) -> String {
    let mut out = line(HEADER.iter().map(|h| h.to_string()));
    for result in results {
        out.push_str(&line(
            [
                result.id.clone(),
                result.at.clone(),
                result.finished_at.clone(),
                result.kind.as_str().to_string(),
                result.target.clone(),
                result.host.clone(),
                result.port.map(|p| p.to_string()).unwrap_or_default(),
                result.vantage.clone(),
                result.asked_by.clone().unwrap_or_default(),
                result.source.clone(),
                result.cause.clone().unwrap_or_default(),
                result.connect_ms.map(|ms| format!("{ms:.3}")).unwrap_or_default(),
                result.summary.clone().unwrap_or_default(),
            ]
            .into_iter(),
        ));
    }
    out
}

fn line(fields: impl Iterator<Item = String>) -> String {
    let mut out: String = fields.map(|field| quote(&field)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// A field, quoted when it must be. A field a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-` or `@`) gets a leading apostrophe: targets are other people's text.
fn quote(field: &str) -> String {
    let guarded = match field.starts_with(['=', '+', '-', '@']) {
        true => format!("'{field}"),
        false => field.to_string(),
    };
    match guarded.contains([',', '"', '\r', '\n']) {
        true => format!("\"{}\"", guarded.replace('"', "\"\"")),
        false => guarded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_breaks_are_quoted_and_formulas_defused() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote("=cmd()"), "'=cmd()");
    }

    #[test]
    fn an_empty_history_is_the_header_alone() {
        assert_eq!(render(&[]), format!("{}\r\n", HEADER.join(",")));
    }
}
