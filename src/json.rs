//! What every `--json` document shares: it is one object on one line of
//! stdout, and its first field is `schema_version`. `docs/json.md`
//! documents every field of every document; a test holds the two together.

use std::io::{self, Write};
use std::time::Duration;

use serde::{Serialize, Serializer};

/// The version of the documents' shape. Adding a field keeps it; renaming,
/// removing or retyping one raises it, so a grading script can refuse a
/// shape it was not written for.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `body` with `schema_version` in front of its own fields.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes `body` (a struct or map) as one JSON document on one line.
pub(crate) fn write_document<T: Serialize>(out: &mut dyn Write, body: &T) -> io::Result<()> {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        body,
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

/// A duration as milliseconds, a number: every duration of every document
/// is one, in a field named `*_ms`.
pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        lab: u8,
        #[serde(serialize_with = "millis")]
        read_delay_ms: Duration,
    }

    #[test]
    fn a_document_starts_with_its_schema_version_and_is_one_line() {
        let mut out = Vec::new();
        let body = Body {
            lab: 2,
            read_delay_ms: Duration::from_micros(50),
        };
        write_document(&mut out, &body).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"schema_version\":1,\"lab\":2,\"read_delay_ms\":0.05}\n"
        );
    }
}
