//! `portcullis export`: a tenant's users, with their password hashes, in the format `import`
//! reads (JSON Lines or CSV, see [`super::rows`]), so that an export imports into another
//! tenant or server unchanged.
//!
//! The output holds password hashes: a file is created readable by its owner only, written
//! under a temporary name and renamed when complete, so an interrupted export never looks like
//! a finished one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use portcullis::config::Config;
use serde_json::{Map, Value};

use super::rows::{Format, export_cells, export_columns};
use super::{EXIT_UNEXPECTED, Failure, any_tenant, with_core};

/// Users per page read from the database.
const PAGE: u32 = 1000;

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tenant to export.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// The output format (default: from the file's extension; JSON Lines for standard output).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The file to write (replaced if it exists), or - for standard output.
    #[arg(default_value = "-")]
    file: PathBuf,
}

/// Where the rows go.
enum Sink {
    Jsonl(Box<dyn Write>),
    Csv { writer: Box<csv::Writer<Box<dyn Write>>>, columns: Vec<String> },
}

impl Sink {
    fn write(&mut self, row: &Map<String, Value>) -> Result<(), Failure> {
        match self {
            Self::Jsonl(w) => {
                serde_json::to_writer(&mut *w, row).map_err(|e| Failure::output(e.into()))?;
                w.write_all(b"\n").map_err(Failure::output)
            }
            Self::Csv { writer, columns } => {
                let cells = export_cells(columns, row).map_err(|m| Failure::new(EXIT_UNEXPECTED, m))?;
                writer.write_record(&cells).map_err(|e| Failure::output(e.into()))
            }
        }
    }

    fn finish(self) -> Result<(), Failure> {
        match self {
            Self::Jsonl(mut w) => w.flush().map_err(Failure::output),
            Self::Csv { mut writer, .. } => writer.flush().map_err(Failure::output),
        }
    }
}

/// A file being written under a temporary name: created beside the target with a random name,
/// exclusively (never an existing file, never through a symbolic link), readable by its owner
/// only from the moment it exists, and renamed into place once complete.
struct Partial {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Partial {
    fn create(path: &Path) -> Result<(Self, File), Failure> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        // `tempfile` opens with O_CREAT | O_EXCL (no symlink is followed, no file reused) and
        // mode 0600: password hashes are readable by the owner only.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| Failure::invalid(format!("cannot create a file in {}: {e}", dir.display())))?;
        let file = tmp.reopen().map_err(|e| Failure::invalid(format!("cannot write in {}: {e}", dir.display())))?;
        Ok((Self { tmp, path: path.to_owned() }, file))
    }

    fn commit(self) -> Result<(), Failure> {
        self.tmp.persist(&self.path).map(drop).map_err(|e| {
            Failure::new(EXIT_UNEXPECTED, format!("cannot rename to {}: {}", self.path.display(), e.error))
        })
    }

    fn abandon(self) {
        // Dropping the temporary file removes it.
        drop(self.tmp);
    }
}

/// Runs `export`.
pub async fn run(config: &Config, args: ExportArgs) -> Result<(), Failure> {
    let to_stdout = args.file.as_os_str() == "-";
    let Some(format) = args.format.or_else(|| Format::guess(&args.file)) else {
        return Err(Failure::usage(format!(
            "cannot tell the format of {} from its name: give --format",
            args.file.display()
        )));
    };
    with_core(config, async |core| {
        // A disabled tenant can still be exported (to move it elsewhere).
        let tenant = any_tenant(core, &args.tenant).await?;
        let columns = match format {
            Format::Csv => {
                let defs = core.list_attributes(&super::operator(), tenant.id).await?;
                export_columns(&defs.into_iter().map(|d| d.name).collect::<Vec<_>>())
            }
            Format::Jsonl => Vec::new(),
        };
        let (partial, out): (Option<Partial>, Box<dyn Write>) = if to_stdout {
            (None, Box::new(BufWriter::new(std::io::stdout())))
        } else {
            let (p, f) = Partial::create(&args.file)?;
            (Some(p), Box::new(BufWriter::new(f)))
        };
        let result = write_all(core, tenant.id, format, columns, out).await;
        match (result, partial) {
            (Ok(n), Some(p)) => {
                p.commit()?;
                eprintln!("exported {n} users to {}", args.file.display());
                Ok(())
            }
            (Ok(n), None) => {
                eprintln!("exported {n} users");
                Ok(())
            }
            (Err(f), p) => {
                if let Some(p) = p {
                    p.abandon();
                }
                Err(f)
            }
        }
    })
    .await
}

async fn write_all(
    core: &portcullis_core::Core,
    tenant: portcullis_core::TenantId,
    format: Format,
    columns: Vec<String>,
    out: Box<dyn Write>,
) -> Result<u64, Failure> {
    let mut sink = match format {
        Format::Jsonl => Sink::Jsonl(out),
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(&columns).map_err(|e| Failure::output(e.into()))?;
            Sink::Csv { writer: Box::new(writer), columns }
        }
    };
    let mut after = None;
    let mut n = 0u64;
    loop {
        let (rows, last) = core.export_users(&super::operator(), tenant, after, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            sink.write(row)?;
        }
        n += rows.len() as u64;
        after = last;
    }
    sink.finish()?;
    Ok(n)
}
