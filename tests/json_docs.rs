//! `docs/json.md` and the documents the binary prints agree: every field
//! printed is documented, every field documented is printed by some run
//! below, each value has a type its row allows, and each word is one of
//! the row's listed values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::*;

/// One documented field: the types its row allows, for a word the values
/// it lists ("one of `a`, `b`"), and its row's place in its table.
#[derive(Debug)]
struct Field {
    types: Vec<String>,
    words: Option<Vec<String>>,
    row: usize,
}

/// Every section of `docs/json.md`: its name (the `## ` heading) and its
/// table's fields by path.
fn documented() -> BTreeMap<String, BTreeMap<String, Field>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let mut sections: BTreeMap<String, BTreeMap<String, Field>> = BTreeMap::new();
    let mut section = None;
    // Only the rows of a field table: other tables (which command prints
    // which document) list no fields.
    let mut in_fields = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            section = Some(name.trim().to_string());
            continue;
        }
        if line == "| field | type | unit | meaning |" {
            in_fields = true;
            continue;
        }
        in_fields &= line.starts_with('|');
        if !in_fields || !line.starts_with("| `") {
            continue;
        }
        let Some(name) = &section else { continue };
        // `| path | type | unit | meaning |`: no cell holds a `|`.
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 6, "a field row has four cells: {line}");
        let cells = &cells[1..5];
        let path = cells[0].trim_matches('`').to_string();
        let types = cells[1]
            .split(" or ")
            .map(|t| t.trim().to_string())
            .collect::<Vec<_>>();
        for t in &types {
            assert!(
                [
                    "integer", "number", "string", "boolean", "object", "array", "null"
                ]
                .contains(&t.as_str()),
                "{path}: unknown type {t:?}"
            );
        }
        let meaning = cells[3];
        // ASCII lowering keeps every byte where it was.
        let words = meaning.to_ascii_lowercase().find("one of ").map(|at| {
            let list = &meaning[at + "one of ".len()..];
            let list = &list[..list.find(". ").or(list.find(".")).unwrap_or(list.len())];
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let table = sections.entry(name.clone()).or_default();
        let field = Field {
            types,
            words,
            row: table.len(),
        };
        let previous = table.insert(path, field);
        assert!(previous.is_none(), "a field is listed twice in {name}");
    }
    sections
}

/// Whether `value` has one of `types`.
fn has_type(value: &Value, types: &[String]) -> bool {
    types.iter().any(|t| match t.as_str() {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    })
}

/// Which section a nested document belongs to: a comparison's `sales[]`
/// are sales, its `explorations[]` explorations.
const NESTED: &[(&str, &str, &str)] = &[
    ("sales comparison", "sales[]", "sale"),
    ("explorations comparison", "explorations[]", "exploration"),
];

/// Every field path of `value` (`a.b`, `a[].b`) with each value found
/// there, filed under its section.
fn walk(
    section: &str,
    prefix: &str,
    value: &Value,
    found: &mut BTreeMap<String, BTreeMap<String, Vec<Value>>>,
) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                found
                    .entry(section.to_string())
                    .or_default()
                    .entry(path.clone())
                    .or_default()
                    .push(v.clone());
                walk(section, &path, v, found);
            }
        }
        Value::Array(items) => {
            let path = format!("{prefix}[]");
            for item in items {
                match NESTED
                    .iter()
                    .find(|(outer, inner, _)| *outer == section && *inner == path)
                {
                    Some((_, _, nested)) => walk(nested, "", item, found),
                    None => walk(section, &path, item, found),
                }
            }
        }
        _ => {}
    }
}

/// The keys of every object in `json`, in the order printed, by path
/// (`a`, `a.b`, `a[].b`), each object once. `serde_json::Value` sorts its
/// keys, so the order is read from the text itself.
fn printed_order(json: &str) -> Vec<(String, Vec<String>)> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Keys<'a> {
        path: String,
        out: &'a mut Vec<(String, Vec<String>)>,
    }
    impl<'de> DeserializeSeed<'de> for Keys<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                map.next_value_seed(Keys {
                    path,
                    out: &mut *self.out,
                })?;
                keys.push(key);
            }
            self.out.push((self.path, keys));
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let path = format!("{}[]", self.path);
            while seq
                .next_element_seed(Keys {
                    path: path.clone(),
                    out: &mut *self.out,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(json);
    Keys {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de)
    .unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    out
}

/// Runs `ticketlab ARGS` (with `--json` among them) and returns its one
/// JSON object, whatever the exit code: lab 8's comparison exits 1 because
/// its first sale's holder dies, as the lab asks.
fn document(state: &std::path::Path, args: &[&str]) -> Value {
    document_text(state, args).0
}

/// As `document`, with the line as printed.
fn document_text(state: &std::path::Path, args: &[&str]) -> (Value, String) {
    let out = ticketlab()
        .env("XDG_STATE_HOME", state)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    (one_json_object(&out.stdout), text)
}

#[test]
fn json_docs_list_every_field_each_command_prints_and_no_other() {
    let state = tempfile::tempdir().unwrap();
    let answers = state.path().join("answers.txt");
    std::fs::write(&answers, "pair-split = 0\ninterleaved-zero = no\n").unwrap();
    let answers = answers.to_str().unwrap();
    // A SQLite database with one sale, for `sales`.
    let db = state.path().join("sales.sqlite");
    let db = db.to_str().unwrap();
    document(
        state.path(),
        &["sell", "--store", "sqlite", "--db", db, "-w", "2", "--json"],
    );
    // Each run is small; together they print every field, nullable
    // objects and non-empty arrays included.
    let runs: &[(&str, &[&str])] = &[
        // Both buyers read the one ticket before either writes: an
        // oversell, a lost update named, every buyer's share, the events.
        (
            "sale",
            &[
                "sell",
                "-w",
                "2",
                "-t",
                "1",
                "--lock",
                "none",
                "--wants",
                "all",
                "--schedule",
                "1,1,2,2,1,2",
                "--seed",
                "1",
                "--trace",
                "--json",
            ],
        ),
        ("sale", &["step", "-w", "2", "--schedule", "1,2", "--json"]),
        // A database sale: buyer 1's serializable write is refused once.
        (
            "sale",
            &[
                "sell",
                "--store",
                "sqlite",
                "-w",
                "2",
                "--lock",
                "serializable",
                "--schedule",
                "1,1,2,2,2,2,1",
                "--json",
            ],
        ),
        ("database sales", &["sales", "--db", db, "--json"]),
        // A holder that dies: under buy the sale is ended, under robust
        // the mutex is recovered.
        (
            "sales comparison",
            &["run", "8", "-w", "2", "-t", "2", "--json"],
        ),
        ("exploration", &["explore", "--json"]),
        ("explorations comparison", &["run", "10", "--json"]),
        (
            "check",
            &[
                "check",
                "1",
                "--answers-file",
                answers,
                "--json",
                "--lines",
                "2",
            ],
        ),
        ("print", &["print", "-w", "2", "--lines", "2", "--json"]),
        (
            "daemon",
            &[
                "daemon",
                "--parent-runs",
                "0",
                "--child-runs",
                "0",
                "--json",
            ],
        ),
        (
            "bench",
            &["bench", "--rounds", "1", "--only", "stepped", "--json"],
        ),
        (
            "bench",
            &["bench", "--rounds", "1", "--only", "start", "--json"],
        ),
        (
            "bench",
            &["bench", "--rounds", "1", "--only", "server", "--json"],
        ),
    ];
    let mut found = BTreeMap::new();
    let mut orders = Vec::new();
    for (section, args) in runs {
        let (v, text) = document_text(state.path(), args);
        assert_eq!(v["schema_version"], 1, "{args:?}: {v}");
        walk(section, "", &v, &mut found);
        orders.push((*section, text));
    }
    let docs = documented();
    let sections: BTreeSet<&String> = docs.keys().collect();
    assert_eq!(
        sections,
        found.keys().collect::<BTreeSet<_>>(),
        "every documented document is printed by a run here"
    );
    let mut wrong = Vec::new();
    for (section, fields) in &docs {
        let printed = &found[section];
        for path in fields.keys() {
            if !printed.contains_key(path) {
                wrong.push(format!(
                    "{section}: `{path}` is documented but never printed"
                ));
            }
        }
        for (path, values) in printed {
            let Some(field) = fields.get(path) else {
                wrong.push(format!("{section}: `{path}` is printed but not documented"));
                continue;
            };
            for v in values {
                if !has_type(v, &field.types) {
                    wrong.push(format!(
                        "{section}: `{path}` is {v}, not {}",
                        field.types.join(" or ")
                    ));
                }
                if let (Some(words), Some(word)) = (&field.words, v.as_str()) {
                    if !words.iter().any(|w| w == word) {
                        wrong.push(format!(
                            "{section}: `{path}` is {word:?}, not one of {words:?}"
                        ));
                    }
                }
            }
        }
    }
    // A person reads a document in the order of its table: every object
    // prints its fields in the order they are listed.
    for (section, text) in &orders {
        for (path, keys) in printed_order(text) {
            let (section, prefix) = nested_section(section, &path);
            let fields = &docs[section];
            let full = |k: &String| {
                if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                }
            };
            let rows: Vec<Option<usize>> = keys
                .iter()
                .map(|k| fields.get(&full(k)).map(|f| f.row))
                .collect();
            if rows
                .windows(2)
                .any(|w| matches!(w, [Some(a), Some(b)] if a > b))
            {
                wrong.push(format!(
                    "{section}: `{}` prints {keys:?}, not in the table's order",
                    if prefix.is_empty() { "(top)" } else { &prefix }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/json.md disagrees:\n{}",
        wrong.join("\n")
    );
}

/// The section and the path within it of the object at `path` of a
/// `section` document: a comparison's `sales[]` are sale documents.
fn nested_section<'a>(section: &'a str, path: &str) -> (&'a str, String) {
    for (outer, inner, nested) in NESTED {
        if *outer == section {
            if let Some(rest) = path.strip_prefix(inner) {
                return (nested, rest.trim_start_matches('.').to_string());
            }
        }
    }
    (section, path.to_string())
}

/// The parser above must itself be able to fail: a field it cannot see,
/// or a word it does not read, would let every document pass.
#[test]
fn json_docs_tables_are_read_with_their_types_and_words() {
    let docs = documented();
    let sale = &docs["sale"];
    assert_eq!(sale["wants"].types, ["integer", "null"]);
    assert_eq!(
        sale["verdict"].words.as_deref(),
        Some(&["exact", "oversold", "count wrong", "stopped"].map(String::from)[..])
    );
    assert_eq!(
        sale["ending.kind"].words.as_ref().map(Vec::len),
        Some(5),
        "{:?}",
        sale["ending.kind"]
    );
    assert!(sale["seed"].words.is_none());
    for (name, fields) in &docs {
        assert_eq!(
            fields.get("schema_version").map(|f| f.types.clone()),
            Some(vec!["integer".to_string()]),
            "{name} starts with schema_version"
        );
    }
    // Every duration is in milliseconds, named so.
    for (name, fields) in &docs {
        for path in fields.keys() {
            let last = path.rsplit('.').next().unwrap();
            let duration = ["delay", "elapsed", "wait"]
                .iter()
                .any(|d| last.contains(d));
            assert!(
                !duration || last.ends_with("_ms"),
                "{name}: `{path}` is a duration without _ms"
            );
        }
    }
}

/// A seed drawn for a run given none stays below 2^53, where every JSON
/// reader keeps it exact, on every command that draws one; one given is
/// reported as given, however large. (A draw that ignored the bound would
/// pass here once in 2048 runs per command.)
#[test]
fn json_drawn_seeds_are_below_2_pow_53_and_given_ones_kept() {
    let state = tempfile::tempdir().unwrap();
    for args in [
        &["sell", "-w", "1", "-t", "1", "--json"][..],
        &["print", "-w", "1", "--lines", "1", "--json"],
        &["run", "5", "-w", "1", "-t", "10", "--json"],
    ] {
        let v = document(state.path(), args);
        let seeds: Vec<u64> = match v["sales"].as_array() {
            Some(sales) => sales.iter().map(|s| s["seed"].as_u64().unwrap()).collect(),
            None => vec![v["seed"].as_u64().expect("a seed")],
        };
        for seed in seeds {
            assert!(seed < 1 << 53, "{args:?}: seed {seed}");
        }
    }
    let v = document(
        state.path(),
        &[
            "sell",
            "-w",
            "1",
            "-t",
            "1",
            "--seed",
            "18446744073709551615",
            "--json",
        ],
    );
    assert_eq!(v["seed"].as_u64(), Some(u64::MAX), "{v}");
}
