//! `portcullis import`: bringing users over from another system, with their password hashes,
//! from a JSON Lines or CSV file (see [`super::rows`] for the formats).
//!
//! The file is read as a stream and sent to [`portcullis_core::Core::import_users`] in batches
//! (one database transaction each). A row that cannot be read (not a JSON object, a CSV
//! record of the wrong width) is refused here, with its line number, like a row the core
//! refuses; only a file that cannot be read at all, or a bad CSV header, stops the import
//! before it starts. Progress and every refused row go to standard error; a JSON summary goes
//! to standard output at the end.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use portcullis::config::Config;
use portcullis_core::import::{ImportRow, MAX_BATCH};
use portcullis_core::{Core, TenantId};
use serde_json::{Value, json};

use super::rows::{Format, Header};
use super::{Failure, enabled_tenant, print_json, with_core};

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant to import into.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// The file's format (default: from its extension: .csv, or .jsonl, .ndjson, .json; JSON
    /// Lines for standard input).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Rows per batch; each batch is one database transaction.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    batch_size: u32,
    /// The file to read, or - for standard input. JSON Lines: one object per line, in native
    /// field names plus password_hash, password_format, password_salt, roles, status and
    /// email_verified. CSV: a header row of those names (attributes.NAME for custom attributes,
    /// roles separated by ';', meta as JSON text).
    file: PathBuf,
}

/// One thing read from the file.
enum Item {
    /// A row for the core.
    Row(ImportRow),
    /// A row refused while reading, with its line and the reason.
    Refused(u64, String),
}

/// The rows of a file, in order.
enum Source {
    Jsonl { reader: Box<dyn BufRead>, line: u64, buf: Vec<u8>, since_row: Arc<AtomicUsize> },
    Csv { reader: csv::Reader<Box<dyn Read>>, header: Header, record: csv::ByteRecord, since_row: Arc<AtomicUsize> },
}

/// Longest row accepted, in bytes (a line of JSON Lines, a record of CSV with its quoted line
/// breaks): no user's fields come near it, and a longer one would only fill memory.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// The input, refusing to deliver more than [`MAX_ROW_BYTES`] (plus a reader's buffer) since
/// the last complete row: a file that is one endless line or cell stops the import with an
/// error instead of filling memory.
struct Bounded {
    inner: Box<dyn Read + Send>,
    since_row: Arc<AtomicUsize>,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.since_row.fetch_add(n, Ordering::Relaxed) + n;
        // Readers buffer ahead (64 KiB at most here): allow for it.
        if total > MAX_ROW_BYTES + 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a row is longer than {} MiB", MAX_ROW_BYTES / (1024 * 1024)),
            ));
        }
        Ok(n)
    }
}

impl Source {
    fn open(args: &ImportArgs) -> Result<Self, Failure> {
        let name = args.file.display();
        let format = match args.format.or_else(|| Format::guess(&args.file)) {
            Some(f) => f,
            None => {
                return Err(Failure::usage(format!("cannot tell the format of {name} from its name: give --format")));
            }
        };
        let raw: Box<dyn Read + Send> = if args.file.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(&args.file).map_err(|e| Failure::invalid(format!("cannot read {name}: {e}")))?)
        };
        let since_row = Arc::new(AtomicUsize::new(0));
        let input: Box<dyn Read> = Box::new(Bounded { inner: raw, since_row: since_row.clone() });
        match format {
            Format::Jsonl => {
                Ok(Self::Jsonl { reader: Box::new(BufReader::new(input)), line: 0, buf: Vec::new(), since_row })
            }
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
                let names = reader
                    .headers()
                    .map_err(|e| Failure::invalid(format!("{name}: cannot read the CSV header: {e}")))?;
                let header =
                    Header::parse(names).map_err(|m| Failure::invalid(format!("{name}: bad CSV header: {m}")))?;
                since_row.store(0, Ordering::Relaxed);
                Ok(Self::Csv { reader, header, record: csv::ByteRecord::new(), since_row })
            }
        }
    }

    /// The next row, `None` at the end; `Err` when the file cannot be read any further.
    fn next(&mut self) -> Result<Option<Item>, Failure> {
        match self {
            Self::Jsonl { reader, line, buf, since_row } => loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', buf)
                    .map_err(|e| Failure::invalid(format!("cannot read line {}: {e}", *line + 1)))?;
                since_row.store(0, Ordering::Relaxed);
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let Ok(text) = std::str::from_utf8(buf) else {
                    return Ok(Some(Item::Refused(*line, "not UTF-8 text".into())));
                };
                // Editors on Windows may start a UTF-8 file with a byte-order mark.
                let text = if *line == 1 { text.trim_start_matches('\u{feff}') } else { text };
                if text.trim().is_empty() {
                    continue;
                }
                return Ok(Some(match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(fields)) => Item::Row(ImportRow { line: *line, fields }),
                    Ok(other) => Item::Refused(*line, format!("not a JSON object: found {}", kind(&other))),
                    Err(e) => Item::Refused(*line, format!("not a JSON object: {e}")),
                }));
            },
            Self::Csv { reader, header, record, since_row } => {
                let read = reader.read_byte_record(record);
                since_row.store(0, Ordering::Relaxed);
                let more = match read {
                    Ok(more) => more,
                    // A malformed record (bad quoting) is reported for its line; reading goes on.
                    Err(e) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        return Ok(Some(Item::Refused(line, format!("not a CSV record: {e}"))));
                    }
                    Err(e) => return Err(Failure::invalid(format!("cannot read the CSV file: {e}"))),
                };
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                let Ok(text) = csv::StringRecord::from_byte_record(record.clone()) else {
                    return Ok(Some(Item::Refused(line, "not UTF-8 text".into())));
                };
                Ok(Some(match header.row(&text) {
                    Ok(fields) => Item::Row(ImportRow { line, fields }),
                    Err(reason) => Item::Refused(line, reason),
                }))
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the import did so far.
#[derive(Default)]
struct Tally {
    rows: u64,
    created: u64,
    refused: Vec<(u64, String)>,
    // The last line of the last batch written, for the message when a later batch fails.
    last_line: u64,
}

impl Tally {
    fn refuse(&mut self, line: u64, reason: String) {
        eprintln!("line {line}: {reason}");
        self.rows += 1;
        self.refused.push((line, reason));
    }

    async fn send(&mut self, core: &Core, tenant: TenantId, batch: Vec<ImportRow>) -> Result<(), Failure> {
        if batch.is_empty() {
            return Ok(());
        }
        let last = batch.last().map_or(0, |r| r.line);
        let outcomes = core.import_users(&super::operator(), tenant, batch).await.map_err(|e| {
            let f = Failure::from(e);
            let done = if self.last_line == 0 {
                "nothing was imported".to_owned()
            } else {
                format!("the rows up to line {} were imported ({} users created)", self.last_line, self.created)
            };
            Failure::new(f.code, format!("import stopped: {}; {done}", f.message))
        })?;
        for o in outcomes {
            match o.result {
                Ok(_) => {
                    self.rows += 1;
                    self.created += 1;
                }
                Err(reason) => self.refuse(o.line, reason),
            }
        }
        self.last_line = self.last_line.max(last);
        eprintln!("imported {} rows ({} created, {} rejected)", self.rows, self.created, self.refused.len());
        Ok(())
    }
}

/// Runs `import`.
pub async fn run(config: &Config, args: ImportArgs) -> Result<(), Failure> {
    let mut source = Source::open(&args)?;
    let batch_size = args.batch_size as usize;
    with_core(config, async |core| {
        let tenant = enabled_tenant(core, &args.tenant).await?.id;
        let mut tally = Tally::default();
        let mut batch = Vec::with_capacity(batch_size);
        while let Some(item) = source.next()? {
            match item {
                Item::Row(row) => batch.push(row),
                Item::Refused(line, reason) => tally.refuse(line, reason),
            }
            if batch.len() >= batch_size {
                tally.send(core, tenant, std::mem::replace(&mut batch, Vec::with_capacity(batch_size))).await?;
            }
        }
        tally.send(core, tenant, batch).await?;
        tally.refused.sort_by_key(|(line, _)| *line);
        let rejected = tally.refused.len();
        let rejections: Vec<Value> =
            tally.refused.iter().map(|(line, reason)| json!({"line": line, "reason": reason})).collect();
        print_json(&json!({"created": tally.created, "rejected": rejected, "rejections": rejections}))?;
        if tally.rows > 0 && tally.created == 0 {
            return Err(Failure::invalid(format!("every row was refused ({rejected} rows)")));
        }
        Ok(())
    })
    .await
}
