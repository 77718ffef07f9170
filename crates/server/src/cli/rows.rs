//! The file formats of `import` and `export`, and the one mapping between a CSV row and an
//! import row, used in both directions so that what `export` writes, `import` reads back.
//!
//! An import row is a JSON object in native field names (see [`portcullis_core::import`]).
//! JSON Lines holds exactly that, one object per line. In CSV the header names the fields;
//! `attributes.NAME` columns are the entries of `attributes`; `roles` holds role names
//! separated by `;`; `meta` holds JSON text; `newsletter` and `email_verified` hold `true`,
//! `false`, `1` or `0`; an empty cell is an absent field.

use std::path::Path;

use portcullis_core::profile::{TextField, is_profile_field};
use serde_json::{Map, Value, json};

/// A file format of import and export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// CSV with a header row of field names.
    Csv,
}

impl Format {
    /// The format a file name implies; JSON Lines for standard input (`-`). `None` when the
    /// extension says nothing.
    pub fn guess(path: &Path) -> Option<Self> {
        if path.as_os_str() == "-" {
            return Some(Self::Jsonl);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

const IDENTIFIERS: [&str; 3] = ["username", "email", "phone"];
const FLAGS: [&str; 2] = ["newsletter", "email_verified"];
const PASSWORD_COLUMNS: [&str; 3] = ["password_format", "password_hash", "password_salt"];
const ATTRIBUTE_PREFIX: &str = "attributes.";

/// What a CSV column holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Column {
    /// A text field of this name.
    Text(String),
    /// `newsletter` or `email_verified`.
    Flag(String),
    /// `meta`, JSON text.
    Meta,
    /// `roles`, names separated by `;`.
    Roles,
    /// One custom attribute.
    Attribute(String),
}

impl Column {
    fn parse(name: &str) -> Result<Self, String> {
        if let Some(attr) = name.strip_prefix(ATTRIBUTE_PREFIX) {
            if attr.is_empty() {
                return Err(format!("column {name:?} names no attribute"));
            }
            return Ok(Self::Attribute(attr.to_owned()));
        }
        match name {
            "meta" => Ok(Self::Meta),
            "roles" => Ok(Self::Roles),
            _ if FLAGS.contains(&name) => Ok(Self::Flag(name.to_owned())),
            _ if IDENTIFIERS.contains(&name)
                || PASSWORD_COLUMNS.contains(&name)
                || name == "status"
                || is_profile_field(name) =>
            {
                Ok(Self::Text(name.to_owned()))
            }
            "password" => Err("a password column is not accepted: import takes password_hash (with \
                               password_format and password_salt), never clear passwords"
                .into()),
            _ => Err(format!(
                "unknown column {name:?} (columns are field names such as username, email, first_name, \
                 attributes.NAME, roles, status, password_hash)"
            )),
        }
    }
}

/// The columns of a CSV file, from its header.
#[derive(Debug)]
pub struct Header(Vec<Column>);

impl Header {
    /// Reads a header row: every column must name a field, once.
    pub fn parse(names: &csv::StringRecord) -> Result<Self, String> {
        let mut columns: Vec<Column> = Vec::with_capacity(names.len());
        for name in names {
            let c = Column::parse(name.trim())?;
            if columns.contains(&c) {
                return Err(format!("column {:?} appears twice", name.trim()));
            }
            columns.push(c);
        }
        if columns.is_empty() {
            return Err("the header row is empty".into());
        }
        Ok(Self(columns))
    }

    /// The import row a CSV record holds, or why it cannot be one.
    pub fn row(&self, record: &csv::StringRecord) -> Result<Map<String, Value>, String> {
        if record.len() != self.0.len() {
            return Err(format!("has {} cells where the header has {}", record.len(), self.0.len()));
        }
        let mut row = Map::new();
        let mut attributes = Map::new();
        for (column, cell) in self.0.iter().zip(record) {
            let cell = restore(cell);
            let cell = cell.as_str();
            if cell.trim().is_empty() {
                continue;
            }
            match column {
                Column::Text(name) => {
                    row.insert(name.clone(), json!(cell));
                }
                Column::Flag(name) => {
                    let flag = match cell.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(format!("{name}: must be true, false, 1 or 0")),
                    };
                    row.insert(name.clone(), json!(flag));
                }
                Column::Meta => {
                    let meta: Value = serde_json::from_str(cell).map_err(|e| format!("meta: not valid JSON ({e})"))?;
                    row.insert("meta".into(), meta);
                }
                Column::Roles => {
                    let names: Vec<&str> = cell.split(';').map(str::trim).filter(|n| !n.is_empty()).collect();
                    row.insert("roles".into(), json!(names));
                }
                Column::Attribute(name) => {
                    attributes.insert(name.clone(), json!(cell));
                }
            }
        }
        if !attributes.is_empty() {
            row.insert("attributes".into(), Value::Object(attributes));
        }
        Ok(row)
    }
}

/// The columns `export` writes: every field of the import format, in a fixed order, with one
/// `attributes.NAME` column per attribute the tenant defines (sorted). Every column is written
/// whether or not a user has a value in it, so the header is known before the first row and
/// the export streams in constant memory.
pub fn export_columns(attributes: &[String]) -> Vec<String> {
    let mut names: Vec<String> = IDENTIFIERS.iter().map(|s| (*s).to_owned()).collect();
    names.extend(TextField::ALL.iter().map(|f| f.name().to_owned()));
    names.extend(["birth_date", "newsletter", "meta", "status", "email_verified", "roles"].map(str::to_owned));
    let mut attributes: Vec<&String> = attributes.iter().collect();
    attributes.sort();
    names.extend(attributes.into_iter().map(|a| format!("{ATTRIBUTE_PREFIX}{a}")));
    names.extend(PASSWORD_COLUMNS.map(str::to_owned));
    names
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cells of an exported row under `columns` (from [`export_columns`]). A field with no
/// column is an error rather than a silent loss.
pub fn export_cells(columns: &[String], row: &Map<String, Value>) -> Result<Vec<String>, String> {
    let empty = Map::new();
    let attributes = match row.get("attributes") {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    for key in row.keys() {
        if key != "attributes" && !columns.iter().any(|c| c == key) {
            return Err(format!("the field {key:?} has no CSV column; export as JSON Lines"));
        }
    }
    for name in attributes.keys() {
        if !columns.iter().any(|c| c.strip_prefix(ATTRIBUTE_PREFIX) == Some(name)) {
            return Err(format!("the attribute {name:?} has no CSV column; export as JSON Lines"));
        }
    }
    let mut cells = Vec::with_capacity(columns.len());
    for c in columns {
        let cell = if let Some(attr) = c.strip_prefix(ATTRIBUTE_PREFIX) {
            attributes.get(attr).map(scalar_text).unwrap_or_default()
        } else {
            match (c.as_str(), row.get(c)) {
                (_, None) => String::new(),
                ("meta", Some(v @ Value::Object(_))) => v.to_string(),
                ("roles", Some(Value::Array(roles))) => {
                    let names: Vec<String> = roles.iter().map(scalar_text).collect();
                    if let Some(bad) = names.iter().find(|n| n.contains(';')) {
                        return Err(format!("the role name {bad:?} contains ';'; export as JSON Lines"));
                    }
                    names.join(";")
                }
                (_, Some(v)) => scalar_text(v),
            }
        };
        cells.push(defuse(cell));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn headers_name_fields_once() {
        assert!(Header::parse(&record(&["username", "email", "attributes.team", "roles"])).is_ok());
        assert!(Header::parse(&record(&["username", "favourite_colour"])).unwrap_err().contains("unknown column"));
        assert!(Header::parse(&record(&["email", "email"])).unwrap_err().contains("twice"));
        assert!(Header::parse(&record(&["email", "password"])).unwrap_err().contains("never clear passwords"));
        assert!(Header::parse(&record(&["attributes."])).is_err());
    }

    #[test]
    fn cells_become_typed_fields() {
        let h = Header::parse(&record(&["email", "newsletter", "meta", "roles", "attributes.team", "city"])).unwrap();
        let row = h.row(&record(&["a@example.com", "1", r#"{"a": 1}"#, "member; admin;", "core", ""])).unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"email": "a@example.com", "newsletter": true, "meta": {"a": 1},
                   "roles": ["member", "admin"], "attributes": {"team": "core"}})
        );
        assert!(h.row(&record(&["a@example.com", "maybe", "", "", "", ""])).unwrap_err().contains("newsletter"));
        assert!(h.row(&record(&["a@example.com", "", "{", "", "", ""])).unwrap_err().contains("meta"));
        assert!(h.row(&record(&["a@example.com"])).unwrap_err().contains("1 cells"));
    }

    #[test]
    fn export_cells_read_back_as_the_same_row() {
        let columns = export_columns(&["team".to_owned(), "age".to_owned()]);
        let row = json!({"username": "ada", "newsletter": true, "meta": {"k": [1, 2]}, "roles": ["a", "b"],
                         "attributes": {"team": "core", "age": 36}, "status": "disabled", "email_verified": true,
                         "password_format": "sha1", "password_hash": "ab"});
        let Value::Object(row) = row else { unreachable!() };
        let cells = export_cells(&columns, &row).unwrap();
        let header = Header::parse(&csv::StringRecord::from(columns.clone())).unwrap();
        let back = header.row(&csv::StringRecord::from(cells)).unwrap();
        let mut expected = row.clone();
        // CSV carries attribute values as text; the core coerces them to the attribute's type.
        expected.insert("attributes".into(), json!({"age": "36", "team": "core"}));
        assert_eq!(Value::Object(back), Value::Object(expected));
        let mut bad = row;
        bad.insert("shoe_size".into(), json!(44));
        assert!(export_cells(&columns, &bad).unwrap_err().contains("shoe_size"));
    }
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as `export` writes it: one that a spreadsheet would read as a formula (or that
/// starts with the quote this escape adds) gets a leading `'`, so that opening an export in a
/// spreadsheet runs nothing. [`restore`] undoes it on import.
pub fn defuse(cell: String) -> String {
    match cell.chars().next() {
        Some(c) if FORMULA_START.contains(&c) || c == '\'' => format!("'{cell}"),
        _ => cell,
    }
}

/// A cell as `import` reads it: the leading `'` [`defuse`] added is dropped (only where
/// `defuse` would have added it, so other files' cells that start with a quote are kept).
pub fn restore(cell: &str) -> String {
    let mut chars = cell.chars();
    match (chars.next(), chars.next()) {
        (Some('\''), Some(c)) if FORMULA_START.contains(&c) || c == '\'' => cell[1..].to_owned(),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod formula_tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_defused_and_read_back_unchanged() {
        for cell in ["=1+1", "+14165550100", "-2", "@SUM(A1)", "\tx", "'", "'=x", "''", "plain", "", "$2b$12$x"] {
            let written = defuse(cell.to_owned());
            assert!(!written.starts_with(FORMULA_START), "{cell:?} -> {written:?}");
            assert_eq!(restore(&written), cell, "{cell:?} round trip");
        }
        assert_eq!(defuse("=HYPERLINK(\"x\")".into()), "'=HYPERLINK(\"x\")");
        assert_eq!(restore("'Ana"), "'Ana", "a quote another file holds is kept");
    }
}
