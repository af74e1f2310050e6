//! What the page's forms share: reading an optional whole number, and saying which field is
//! wrong and why.

/// What is wrong with a form, and which of its fields to fix (marked invalid and focused).
#[derive(Debug, Clone, PartialEq)]
pub struct FormProblem<F> {
    /// The field at fault.
    pub field: F,
    /// What is wrong, with an example of what is right.
    pub message: String,
}

impl<F> FormProblem<F> {
    /// A problem with `field`.
    pub fn new(field: F, message: impl Into<String>) -> Self {
        FormProblem { field, message: message.into() }
    }
}

/// An empty field is `None`; anything else must be a whole number.
pub fn optional_number(text: &str) -> Result<Option<u32>, std::num::ParseIntError> {
    let text = text.trim();
    if text.is_empty() { Ok(None) } else { text.parse().map(Some) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_field_is_none_and_anything_else_a_whole_number() {
        assert_eq!(optional_number("  "), Ok(None));
        assert_eq!(optional_number(" 250 "), Ok(Some(250)));
        assert!(optional_number("3s").is_err() && optional_number("-1").is_err());
    }
}
