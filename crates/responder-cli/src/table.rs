//! Plain-text tables with padded columns.

use responder_core::text::escape;

/// Renders rows under a header, columns padded to the widest cell, two spaces apart.
/// Cells are escaped (`responder_core::text::escape`): a newline, carriage return or
/// terminal escape in a finding's field cannot break the table or the terminal.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn cells_are_escaped_and_padded_on_their_escaped_width() {
        let rows = vec![
            vec!["a\nb".to_owned(), "x".to_owned()],
            vec!["\u{1b}[2J".to_owned(), "y".to_owned()],
        ];
        assert_eq!(
            render(&["K", "V"], &rows),
            "K          V\na\\nb       x\n\\u{1b}[2J  y\n"
        );
    }
}
