//! Experiment files: parsing, validation and expansion of the matrix into cells.
//!
//! An experiment TOML has three tables: `[experiment]` (name, tier, description), `[matrix]`
//! (each key a non-empty list; the cross product gives the cells) and `[params]` (values shared
//! by every cell). A cell's configuration is the flat union of one matrix point and the params;
//! its hash (the name of its results directory) is the sha256 of that object's canonical JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use passk_report::tier::Tier;
use serde_json::{Map, Value};

/// A parsed and validated experiment file.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Where it was read from (for error messages).
    pub path: PathBuf,
    /// `[experiment] name`: also the results sub-directory.
    pub name: String,
    /// `[experiment] tier`.
    pub tier: Tier,
    /// `[experiment] description`.
    pub description: String,
    /// Whether `reproduce all` runs it (`[experiment] in_all`, default true).
    pub in_all: bool,
    /// The expanded cells, in matrix order (last key varies fastest, keys sorted by name).
    pub cells: Vec<Cell>,
    /// Whether `cells` is one shard of the matrix (other processes may own the rest).
    pub sharded: bool,
}

impl Experiment {
    /// The cells named by `hashes` alone, marked as a shard (other processes own the rest).
    pub fn only(&self, hashes: &[String]) -> Experiment {
        Experiment {
            cells: self
                .cells
                .iter()
                .filter(|c| hashes.contains(&c.hash))
                .cloned()
                .collect(),
            sharded: true,
            ..self.clone()
        }
    }

    /// Shard `i` (1-based) of `n`: every `n`-th cell in matrix order, starting at cell `i - 1`.
    /// Dealing cells round-robin (rather than in blocks) lets shards start on different seeds,
    /// so they rarely train the same warm start at once, and balances their work.
    pub fn shard(&self, i: usize, n: usize) -> Experiment {
        Experiment {
            cells: self.cells.iter().skip(i - 1).step_by(n).cloned().collect(),
            sharded: true,
            ..self.clone()
        }
    }
}

/// One point of an experiment's matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The canonical flat configuration (keys sorted).
    pub config: Map<String, Value>,
    /// First 16 hex digits of the sha256 of `canonical_json(config)` prefixed by the tier.
    pub hash: String,
    /// The matrix coordinates alone, for progress lines.
    pub coords: Vec<(String, Value)>,
}

/// Reads, validates and expands `path`. Nothing is written.
pub fn load_experiment(path: &Path) -> Result<Experiment> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read experiment file {}", path.display()))?;
    // Read one byte past the cap, so a larger file (or /dev/zero) is refused, not swallowed.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read experiment file {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{}: larger than {MAX_FILE_BYTES} bytes; an experiment file is a short TOML file \
             (the largest committed one is under 10 KB)",
            path.display()
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text; expected TOML", path.display()))?;
    parse_experiment(&text, path)
}

/// The largest experiment file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The most cells one experiment's matrix may have, after exclusions (the largest committed
/// matrix has under 200): a bound that keeps `list` and `run` from allocating without limit.
pub const MAX_CELLS: usize = 100_000;

/// The longest experiment name: it names a folder, and file systems cap a name at 255 bytes.
pub const MAX_NAME_CHARS: usize = 100;

/// Names an experiment cannot take: they are files or folders of the results directory itself
/// (compared ignoring case, for case-insensitive file systems).
pub const RESERVED_NAMES: &[&str] = &["MANIFEST", "ENVIRONMENT.json", "warm-starts"];

/// The most characters of bad input an error message quotes.
pub const EXCERPT_CHARS: usize = 300;

/// `text` cut to [`EXCERPT_CHARS`] characters, with a note of how many more there were.
pub fn excerpt(text: &str) -> String {
    cap(text, EXCERPT_CHARS)
}

fn cap(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_string(),
        Some((end, _)) => format!(
            "{}… ({} more characters)",
            &text[..end],
            text[end..].chars().count()
        ),
    }
}

/// `message` with every line cut to `limit` characters (a parse error quotes the bad line).
fn cap_lines(message: &str, limit: usize) -> String {
    message
        .lines()
        .map(|line| cap(line, limit))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks `experiment.name`, which names `results/<name>/` and `figures/<name>/`.
fn check_name(name: &str, file: &str) -> Result<()> {
    let quoted = format!("{:?}", excerpt(name));
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > MAX_NAME_CHARS {
        Some(format!(
            "has {} characters, more than {MAX_NAME_CHARS}",
            name.chars().count()
        ))
    } else if name.starts_with('.') {
        Some("starts with `.` (hidden names are in-progress temporaries)".to_string())
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator".to_string())
    } else if let Some(r) = RESERVED_NAMES.iter().find(|r| r.eq_ignore_ascii_case(name)) {
        Some(format!(
            "is reserved: results/{r} belongs to passk, not to an experiment"
        ))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("uses characters outside [A-Za-z0-9_-]".to_string())
    } else {
        None
    };
    match problem {
        Some(why) => bail!(
            "{file}: `experiment.name` = {quoted} {why}; it names a directory, so it must be \
             non-empty, use only [A-Za-z0-9_-] and not be one of {RESERVED_NAMES:?}"
        ),
        None => Ok(()),
    }
}

/// Parses experiment TOML `text`; `path` is used only in messages, which quote at most a short
/// excerpt of the input (a one-line file of megabytes gives a short error).
pub fn parse_experiment(text: &str, path: &Path) -> Result<Experiment> {
    parse_uncapped(text, path).map_err(|e| {
        let message = format!("{e:#}");
        // Every quote of input below is already an excerpt; this is the backstop for messages
        // from elsewhere (a tier's validation) that quote a huge key or value.
        if message
            .lines()
            .any(|l| l.chars().count() > 4 * EXCERPT_CHARS)
        {
            anyhow::anyhow!(cap_lines(&message, 4 * EXCERPT_CHARS))
        } else {
            e
        }
    })
}

fn parse_uncapped(text: &str, path: &Path) -> Result<Experiment> {
    let file = path.display();
    let root: toml::Table = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{file}: malformed TOML: {}",
            cap_lines(&e.to_string(), EXCERPT_CHARS)
        )
    })?;
    for key in root.keys() {
        if !["experiment", "matrix", "params", "exclude", "set"].contains(&key.as_str()) {
            bail!(
                "{file}: unknown top-level table `{}`; allowed: [experiment], [matrix], [params], [[exclude]], [[set]]",
                excerpt(key)
            );
        }
    }
    let header = table(&root, "experiment", &file.to_string())?
        .with_context(|| format!("{file}: missing [experiment] table with `name` and `tier`"))?;
    for key in header.keys() {
        if !["name", "tier", "description", "in_all"].contains(&key.as_str()) {
            bail!(
                "{file}: unknown key `experiment.{}`; allowed: name, tier, description, in_all",
                excerpt(key)
            );
        }
    }
    let name = string_key(header, "name", &file.to_string())?;
    check_name(&name, &file.to_string())?;
    let tier_name = string_key(header, "tier", &file.to_string())?;
    let Ok(tier) = Tier::from_name(&tier_name) else {
        let allowed: Vec<&str> = Tier::ALL.iter().map(|t| t.as_str()).collect();
        bail!(
            "{file}: `experiment.tier` = {:?} is not a tier this build runs; allowed: {allowed:?}",
            excerpt(&tier_name)
        );
    };
    let description = match header.get("description") {
        None => String::new(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => bail!("{file}: `experiment.description` must be a string"),
    };
    let in_all = match header.get("in_all") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => bail!("{file}: `experiment.in_all` must be true or false"),
    };

    let empty = toml::Table::new();
    let matrix = table(&root, "matrix", &file.to_string())?.unwrap_or(&empty);
    let params = table(&root, "params", &file.to_string())?.unwrap_or(&empty);
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    for (key, value) in matrix {
        let toml::Value::Array(items) = value else {
            bail!("{file}: `matrix.{key}` must be a list of values (the matrix axis), e.g. {key} = [1, 2]");
        };
        if items.is_empty() {
            bail!("{file}: `matrix.{key}` is an empty list, so the matrix has no cells; give at least one value");
        }
        if lookup(params, key).is_some() {
            bail!("{file}: `{key}` is both in [matrix] and [params]; keep it in one of them");
        }
        let values = items
            .iter()
            .map(|v| to_json(v).with_context(|| format!("{file}: `matrix.{key}`")))
            .collect::<Result<Vec<_>>>()?;
        axes.push((key.clone(), values));
    }
    let mut base = Map::new();
    for (key, value) in params {
        base.insert(
            key.clone(),
            to_json(value).with_context(|| format!("{file}: `params.{key}`"))?,
        );
    }

    // The full cross product's size, before anything is built (saturating: axes of thousands
    // of values multiply past any integer).
    let product = axes
        .iter()
        .fold(1usize, |n, (_, values)| n.saturating_mul(values.len()));
    if product > MAX_CELLS {
        let sizes: Vec<String> = axes
            .iter()
            .map(|(k, v)| format!("{} ({})", excerpt(k), v.len()))
            .collect();
        bail!(
            "{file}: the matrix has {} cells (axes: {}), more than the {MAX_CELLS} one \
             experiment may have; split it into several experiment files",
            if product == usize::MAX {
                "too many".to_string()
            } else {
                product.to_string()
            },
            sizes.join(" x ")
        );
    }
    let excludes = exclusions(&root, &axes, &file.to_string())?;
    let settings = settings(&root, &axes, params, &file.to_string())?;
    let mut cells = Vec::new();
    let mut index = vec![0usize; axes.len()];
    loop {
        let mut config = base.clone();
        let mut coords = Vec::new();
        for (axis, &i) in axes.iter().zip(&index) {
            insert_path(&mut config, &axis.0, axis.1[i].clone())
                .with_context(|| format!("{file}: `matrix.{}`", axis.0))?;
            coords.push((axis.0.clone(), axis.1[i].clone()));
        }
        let at = |point: &[(String, Value)]| {
            point
                .iter()
                .all(|(key, value)| coords.iter().any(|(k, v)| k == key && v == value))
        };
        let excluded = excludes.iter().any(|ex| at(ex));
        let mut set_here: Vec<&str> = Vec::new();
        for s in settings.iter().filter(|s| at(&s.when)) {
            for (key, value) in &s.values {
                if set_here.contains(&key.as_str()) {
                    bail!(
                        "{file}: two [[set]] entries set `{key}` at {}; make their `when` disjoint",
                        describe(&coords)
                    );
                }
                set_here.push(key);
                insert_path(&mut config, key, value.clone())
                    .with_context(|| format!("{file}: [[set]] `{key}`"))?;
            }
        }
        let config = sorted(config);
        if !excluded {
            (crate::tiers::entry(tier).validate)(&config)
                .with_context(|| format!("{file}: cell {}", describe(&coords)))?;
            let hash = cell_hash(tier.as_str(), &config);
            cells.push(Cell {
                config,
                hash,
                coords,
            });
        }
        // Odometer increment, last axis fastest.
        let mut pos = axes.len();
        loop {
            if pos == 0 {
                return finish(path, name, tier, description, in_all, cells);
            }
            pos -= 1;
            index[pos] += 1;
            if index[pos] < axes[pos].1.len() {
                break;
            }
            index[pos] = 0;
        }
    }
}

/// The `[[exclude]]` tables: matrix points (axis key = value, a subset of the axes) whose
/// cells are dropped from the cross product. Each must name only matrix axes, with values the
/// axis has, so a typo cannot silently exclude nothing.
/// One `[[set]]` table: at the matrix points matching `when`, these parameter values.
struct Setting {
    when: Vec<(String, Value)>,
    values: Vec<(String, Value)>,
}

/// The `[[set]]` tables: `when = { axis = value, ... }` (a subset of the axes, as in
/// `[[exclude]]`) and dotted parameter keys that replace their `[params]` value at the matching
/// points, e.g. a control arm with its own SFT schedule in a matrix over q.
fn settings(
    root: &toml::Table,
    axes: &[(String, Vec<Value>)],
    params: &toml::Table,
    file: &str,
) -> Result<Vec<Setting>> {
    let Some(value) = root.get("set") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = value else {
        bail!("{file}: `set` must be an array of tables: [[set]] with `when = {{ axis = value }}` and key = value lines");
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let toml::Value::Table(t) = item else {
            bail!("{file}: set entry {n} must be a table");
        };
        let Some(toml::Value::Table(when)) = t.get("when") else {
            bail!(
                "{file}: set entry {n} needs `when = {{ axis = value, ... }}` naming matrix axes"
            );
        };
        if when.is_empty() {
            bail!("{file}: set entry {n} has an empty `when`; put values that hold everywhere in [params]");
        }
        let mut point = Vec::new();
        for (key, v) in when {
            let v = to_json(v).with_context(|| format!("{file}: `set.when.{key}`"))?;
            let Some((_, values)) = axes.iter().find(|(k, _)| k == key) else {
                bail!("{file}: set entry {n}: `when` names `{key}`, which is not a [matrix] axis");
            };
            if !values.contains(&v) {
                bail!("{file}: set entry {n}: `when` gives `{key}` = {v}, which is not one of the axis values");
            }
            point.push((key.clone(), v));
        }
        let mut values = Vec::new();
        for (key, v) in t.iter().filter(|(k, _)| k.as_str() != "when") {
            if axes.iter().any(|(k, _)| k == key) {
                bail!("{file}: set entry {n} sets `{key}`, which is a [matrix] axis; use [[exclude]] to drop points instead");
            }
            if lookup(params, key).is_none() {
                bail!("{file}: set entry {n} sets `{key}`, which [params] does not give; a set entry replaces a parameter's value, it does not add keys");
            }
            let v = to_json(v).with_context(|| format!("{file}: `set.{key}`"))?;
            values.push((key.clone(), v));
        }
        if values.is_empty() {
            bail!("{file}: set entry {n} sets nothing; add dotted keys such as \"sft.stage1_steps\" = 700");
        }
        out.push(Setting {
            when: point,
            values,
        });
    }
    Ok(out)
}

fn exclusions(
    root: &toml::Table,
    axes: &[(String, Vec<Value>)],
    file: &str,
) -> Result<Vec<Vec<(String, Value)>>> {
    let Some(value) = root.get("exclude") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = value else {
        bail!("{file}: `exclude` must be an array of tables: [[exclude]] then axis = value lines");
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let toml::Value::Table(t) = item else {
            bail!(
                "{file}: exclude entry {} must be a table of axis = value",
                i + 1
            );
        };
        if t.is_empty() {
            bail!(
                "{file}: exclude entry {} is empty and would drop every cell",
                i + 1
            );
        }
        let mut point = Vec::new();
        for (key, v) in t {
            let v = to_json(v).with_context(|| format!("{file}: `exclude.{key}`"))?;
            let Some((_, values)) = axes.iter().find(|(k, _)| k == key) else {
                bail!(
                    "{file}: exclude entry {} names `{key}`, which is not a [matrix] axis",
                    i + 1
                );
            };
            if !values.contains(&v) {
                bail!("{file}: exclude entry {} gives `{key}` = {v}, which is not one of the axis values", i + 1);
            }
            point.push((key.clone(), v));
        }
        out.push(point);
    }
    Ok(out)
}

fn finish(
    path: &Path,
    name: String,
    tier: Tier,
    description: String,
    in_all: bool,
    cells: Vec<Cell>,
) -> Result<Experiment> {
    if cells.is_empty() {
        bail!(
            "{}: the [[exclude]] entries remove every cell of the matrix, so the experiment has \
             nothing to run; drop an exclusion or add matrix values",
            path.display()
        );
    }
    let mut seen = BTreeMap::new();
    for cell in &cells {
        if let Some(previous) = seen.insert(cell.hash.clone(), describe(&cell.coords)) {
            bail!(
                "{}: two matrix points give the same cell ({previous} and {}); remove the duplicate value",
                path.display(),
                describe(&cell.coords)
            );
        }
    }
    Ok(Experiment {
        path: path.to_path_buf(),
        name,
        tier,
        description,
        in_all,
        cells,
        sharded: false,
    })
}

/// `key=value, …` for progress lines and messages.
pub fn describe(coords: &[(String, Value)]) -> String {
    coords
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub use passk_report::manifest::hex;
pub use passk_report::record::{cell_hash, config_sha256};

/// The value at a dotted path (`rl.objective`) in a TOML table.
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Sets a dotted path in a JSON map, creating intermediate objects: a matrix key
/// `"mixture.cue_reliability"` varies one field of a nested parameter table.
fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) -> Result<()> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut current = map;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match entry {
            Value::Object(inner) => inner,
            _ => bail!("`{part}` is not a table, so `{path}` cannot set a field inside it"),
        };
    }
    current.insert(last.to_string(), value);
    Ok(())
}

fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    // serde_json's Map is a BTreeMap without `preserve_order`; rebuild to be explicit.
    map.into_iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

fn table<'a>(root: &'a toml::Table, key: &str, file: &str) -> Result<Option<&'a toml::Table>> {
    match root.get(key) {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t)),
        Some(_) => bail!("{file}: `{key}` must be a table ([{key}])"),
    }
}

fn string_key(table: &toml::Table, key: &str, file: &str) -> Result<String> {
    match table.get(key) {
        Some(toml::Value::String(s)) => Ok(s.clone()),
        Some(_) => bail!("{file}: `experiment.{key}` must be a string"),
        None => bail!("{file}: missing `experiment.{key}`"),
    }
}

fn to_json(value: &toml::Value) -> Result<Value> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            if !f.is_finite() {
                bail!("{f} is not a finite number");
            }
            Value::from(*f)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<Vec<_>>>()?)
        }
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<Map<_, _>>>()?,
        ),
        toml::Value::Datetime(_) => bail!("dates are not allowed in experiment files"),
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
