//! Bounds on the work one GraphQL document can cause, checked before anything recursive or
//! costly sees it. The parser recurses once per nesting level of values and selections, and
//! validation walks every fragment spread as often as it is reached, so a few kilobytes can
//! overflow a stack or keep a core busy for minutes. Two passes, each linear in the
//! document and stopping at the first excess:
//! - [`scan`] reads the text as tokens, counting them and the bracket nesting, before the
//!   parser runs;
//! - [`check`] measures the parsed document with every fragment expanded (each fragment
//!   measured once), before validation runs, and counts the root fields of mutations.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};

/// What one document may contain.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Deepest nesting of `{`, `[` and `(` in the text, and of selection sets with fragments
    /// expanded.
    pub nesting: usize,
    /// Most lexical tokens (names, numbers, strings, punctuators).
    pub tokens: usize,
    /// Most selections (fields, fragment spreads, inline fragments) of one operation with
    /// every fragment expanded where it is spread.
    pub selections: usize,
    /// Most root fields of one mutation: each is a separate write.
    pub mutation_fields: usize,
}

/// Why a document was refused; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The document's token count, or why it is refused. Strings and comments are skipped
/// whole, so brackets inside them do not count; the parser reports malformed text itself.
pub fn scan(text: &str, limits: &DocumentLimits) -> Result<usize, Refused> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut tokens = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' => i = skip_string(bytes, i),
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.nesting {
                    return Err(Refused(format!(
                        "the document is nested deeper than {} levels",
                        limits.nesting
                    )));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes.get(i..i + 3) == Some(b"...") => i += 3,
            b'_' | b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len()
                    && matches!(bytes[i], b'_' | b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
                    && bytes.get(i..i + 3) != Some(b"...")
                {
                    i += 1;
                }
            }
            // Punctuators and anything else (the BOM, stray bytes): one token each.
            _ => i += utf8_len(b),
        }
        tokens += 1;
        if tokens > limits.tokens {
            return Err(Refused(format!(
                "the document has more than {} tokens",
                limits.tokens
            )));
        }
    }
    Ok(tokens)
}

/// The index just past the string starting at `start` (a `"` or a `"""` block string).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start..start + 3) == Some(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i] == b'\\' && bytes.get(i + 1..i + 4) == Some(b"\"\"\"") {
                i += 4;
            } else if bytes.get(i..i + 3) == Some(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A string ends at the line; what follows is tokens again.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    i
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The size of a selection set with its fragments expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    selections: u64,
    /// Selection sets nested below this one, this one included.
    depth: usize,
}

/// Measures fragments once each, however often they are spread.
struct Measure<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    limits: &'a DocumentLimits,
    sizes: HashMap<&'a str, Size>,
    /// Fragments being measured, to refuse cycles (validation would recurse through them).
    open: Vec<&'a str>,
}

impl<'a> Measure<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, level: usize) -> Result<Size, Refused> {
        if level > self.limits.nesting {
            return Err(Refused(format!(
                "the document's selections, fragments expanded, are nested deeper than {} levels",
                self.limits.nesting
            )));
        }
        let mut size = Size {
            selections: 0,
            depth: 1,
        };
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => {
                    Size::default()
                }
                Selection::Field(field) => {
                    self.selection_set(&field.node.selection_set.node, level + 1)?
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node, level + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), level + 1)?
                }
            };
            size.selections = size.selections.saturating_add(1 + inner.selections);
            size.depth = size.depth.max(1 + inner.depth);
            if size.selections > self.limits.selections as u64 {
                return Err(self.too_many());
            }
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'a str, level: usize) -> Result<Size, Refused> {
        if let Some(size) = self.sizes.get(name) {
            if level + size.depth > self.limits.nesting + 1 {
                return self.selection_set_too_deep();
            }
            return Ok(*size);
        }
        // An unknown fragment is validation's to report.
        let Some(definition) = self.fragments.get(name) else {
            return Ok(Size::default());
        };
        if self.open.contains(&name) {
            return Err(Refused(format!("fragment {name} spreads itself")));
        }
        self.open.push(name);
        let size = self.selection_set(&definition.node.selection_set.node, level);
        self.open.pop();
        let size = size?;
        self.sizes.insert(name, size);
        Ok(size)
    }

    fn selection_set_too_deep(&self) -> Result<Size, Refused> {
        Err(Refused(format!(
            "the document's selections, fragments expanded, are nested deeper than {} levels",
            self.limits.nesting
        )))
    }

    fn too_many(&self) -> Refused {
        Refused(format!(
            "the operation has more than {} selections with its fragments expanded",
            self.limits.selections
        ))
    }

    /// Root fields of a mutation, through fragments and inline fragments at its root.
    fn root_fields(&self, set: &'a SelectionSet, level: usize) -> u64 {
        if level > self.limits.nesting {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => {
                    self.root_fields(&f.node.selection_set.node, level + 1)
                }
                Selection::FragmentSpread(s) => self
                    .fragments
                    .get(&s.node.fragment_name.node)
                    .map_or(0, |f| {
                        self.root_fields(&f.node.selection_set.node, level + 1)
                    }),
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// Checks a parsed document against `limits`, before it is validated.
pub fn check(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), Refused> {
    let mut measure = Measure {
        fragments: &doc.fragments,
        limits,
        sizes: HashMap::new(),
        open: Vec::new(),
    };
    for (_, operation) in doc.operations.iter() {
        let set = &operation.node.selection_set.node;
        measure.selection_set(set, 1)?;
        if operation.node.ty == OperationType::Mutation
            && measure.root_fields(set, 1) > limits.mutation_fields as u64
        {
            return Err(Refused(format!(
                "a request may carry at most {} mutation fields; use the bulk forms \
                 (many recipients, markAllRead, many preference changes) instead",
                limits.mutation_fields
            )));
        }
    }
    // Fragments no operation spreads are still validated.
    for (name, _) in doc.fragments.iter() {
        measure.fragment(name.as_str(), 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        nesting: 8,
        tokens: 50,
        selections: 20,
        mutation_fields: 2,
    };

    fn parsed(text: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(text).expect("parses")
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        assert!(scan("{ a(x: [[[1]]]) }", &LIMITS).is_ok());
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(7), "]".repeat(7));
        assert!(scan(&deep, &LIMITS).is_err());
        let quoted =
            r#"{ a(x: "[[[[[[[[[[[[", y: """ {{{{{{{{{{ \""" [[[[[[[[[[ """) } # ((((((((((("#;
        assert!(scan(quoted, &LIMITS).is_ok());
    }

    #[test]
    fn tokens_are_counted_up_to_the_first_excess() {
        assert_eq!(scan("{ a b c }", &LIMITS), Ok(5));
        assert_eq!(scan("query Q($v: Int = -1.5e3) { ...F }", &LIMITS), Ok(14));
        let many = format!("{{ {} }}", "a ".repeat(60));
        assert!(scan(&many, &LIMITS).is_err());
    }

    #[test]
    fn fragments_are_measured_expanded_but_once_each() {
        let mut bomb = String::from("{ ...F0 }");
        for i in 0..30 {
            bomb.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        bomb.push_str(" fragment F30 on Query { viewerId }");
        let limits = DocumentLimits {
            nesting: 64,
            tokens: 10_000,
            selections: 2_000,
            mutation_fields: 10,
        };
        let refused = check(&parsed(&bomb), &limits).expect_err("refused");
        assert!(refused.0.contains("selections"), "{refused:?}");
        assert!(check(
            &parsed("{ ...A ...A } fragment A on Query { a b }"),
            &LIMITS
        )
        .is_ok());
    }

    #[test]
    fn cycles_and_deep_fragment_chains_are_refused() {
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(check(&parsed(cycle), &LIMITS).is_err());
        let mut chain = String::from("{ ...F0 }");
        for i in 0..12 {
            chain.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        chain.push_str(" fragment F12 on Query { a }");
        let refused = check(&parsed(&chain), &LIMITS).expect_err("refused");
        assert!(refused.0.contains("nested"), "{refused:?}");
    }

    #[test]
    fn mutations_carry_few_root_fields_even_through_fragments() {
        assert!(check(&parsed("mutation { a b }"), &LIMITS).is_ok());
        assert!(check(&parsed("mutation { a b c }"), &LIMITS).is_err());
        let spread = "mutation { a ...M } fragment M on Mutation { b c }";
        assert!(check(&parsed(spread), &LIMITS).is_err());
        assert!(check(&parsed("{ a b c }"), &LIMITS).is_ok());
    }
}
