//! Human output (aligned tables, key/value blocks) and `--json` output.

use serde::Serialize;

use crate::error::CliError;

/// A table printed with columns aligned to the widest cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table; the last column is not padded (no trailing spaces).
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::new();
            for (i, c) in cells.enumerate().take(n) {
                if i + 1 < n {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(c.chars().count());
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad + 2));
                } else {
                    s.push_str(c);
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut self.headers.iter().copied());
        for r in &self.rows {
            line(&mut r.iter().map(String::as_str));
        }
        out
    }
}

/// Key/value lines with the keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{k:<w$}  {v}\n"));
    }
    out
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(value).map_err(|e| CliError::Component {
        component: "json output",
        reason: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["ID", "STATUS", "CALLER"]);
        t.row(vec!["a".into(), "sealed".into(), "C-7KQ2-9XMD".into()]);
        t.row(vec!["bbbb".into(), "erased".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "ID    STATUS  CALLER\na     sealed  C-7KQ2-9XMD\nbbbb  erased  -\n"
        );
    }

    #[test]
    fn fields_align_keys() {
        assert_eq!(
            fields(&[("id", "1".into()), ("status", "x".into())]),
            "id      1\nstatus  x\n"
        );
    }
}
