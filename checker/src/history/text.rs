//! Text handling shared by every history reader: line splitting that accepts LF, CRLF and
//! CR-only endings alike, the limits every reader honours (file size, nesting depth), and
//! bounded quotation of input in error messages (a 50 MB line must not become a 50 MB message).

use crate::deadline::{Deadline, Phase, TimeUp};

/// Largest history file read (bytes). Larger files are refused as bad input rather than
/// exhausting memory while reading; the search has its own memory budget after that.
pub const MAX_HISTORY_BYTES: u64 = 1 << 30;

/// Deepest nesting of brackets in an EDN history (the outer vector of the file included),
/// the same bound serde_json puts on our jsonl lines. Deeper input is refused before it is
/// parsed: the value trees built from it are walked recursively.
pub const MAX_NESTING: usize = 128;

/// Characters of input quoted in an error message; longer input is cut with an ellipsis and
/// its size in bytes.
pub const QUOTE_MAX_CHARS: usize = 120;

/// Characters of a whole problem description; longer ones keep their start and end.
pub const PROBLEM_MAX_CHARS: usize = 600;

/// The lines of `text`, numbered from 1, without their line ending. A line ends at LF, at
/// CRLF or at a CR not followed by LF, so files from any platform read alike.
pub fn lines(text: &str) -> Lines<'_> {
    Lines {
        rest: text,
        number: 0,
    }
}

pub struct Lines<'t> {
    rest: &'t str,
    number: usize,
}

impl<'t> Iterator for Lines<'t> {
    type Item = (usize, &'t str);

    fn next(&mut self) -> Option<(usize, &'t str)> {
        if self.rest.is_empty() {
            return None;
        }
        self.number += 1;
        let bytes = self.rest.as_bytes();
        match bytes
            .iter()
            .position(|&byte| byte == b'\n' || byte == b'\r')
        {
            None => {
                let line = self.rest;
                self.rest = "";
                Some((self.number, line))
            }
            Some(end) => {
                let line = &self.rest[..end];
                let ending = if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[end + ending..];
                Some((self.number, line))
            }
        }
    }
}

/// Line breaks in `consumed`, a prefix of `whole`: LF, CRLF (once) and lone CR each count one.
pub fn line_breaks(consumed: &str, whole: &str) -> usize {
    // Most files end lines with LF alone: counted eight bytes at a time.
    if !consumed.as_bytes().contains(&b'\r') {
        return count_byte(consumed.as_bytes(), b'\n');
    }
    let bytes = whole.as_bytes();
    consumed
        .bytes()
        .enumerate()
        .filter(|&(position, byte)| {
            byte == b'\n' || (byte == b'\r' && bytes.get(position + 1) != Some(&b'\n'))
        })
        .count()
}

/// How many bytes of `bytes` are `needle`, eight at a time: a byte of `word ^ pattern` is
/// zero exactly where `needle` was, and the expression below sets the high bit of each zero
/// byte only (the additions stay within their bytes).
pub fn count_byte(bytes: &[u8], needle: u8) -> usize {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = 0x0101_0101_0101_0101u64 * u64::from(needle);
    let mut chunks = bytes.chunks_exact(8);
    let mut count = 0usize;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ pattern;
        let zero_bytes = !(((word & LOW_SEVEN).wrapping_add(LOW_SEVEN)) | word | LOW_SEVEN);
        count += zero_bytes.count_ones() as usize;
    }
    count
        + chunks
            .remainder()
            .iter()
            .filter(|&&byte| byte == needle)
            .count()
}

/// `text` without a leading UTF-8 byte-order mark (some Windows tools write one).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// `text` quoted for a message: whole when short, else its first `QUOTE_MAX_CHARS` characters,
/// an ellipsis and its size, e.g. `"INFO  jepsen.util - 1 ..."… (52428800 bytes)`.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// `text` as it is when short, else cut like `quote` does (for input already in a notation
/// of its own, such as an EDN value).
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// `problem` bounded to about `PROBLEM_MAX_CHARS` characters: a long one keeps its start and
/// its end (where a column or an expectation is usually said) around a note of what was cut.
pub fn bound_problem(problem: &str) -> String {
    let count = problem.chars().count();
    if count <= PROBLEM_MAX_CHARS {
        return problem.to_string();
    }
    let keep_head = PROBLEM_MAX_CHARS * 2 / 3;
    let keep_tail = PROBLEM_MAX_CHARS - keep_head;
    let head_end = problem
        .char_indices()
        .nth(keep_head)
        .map_or(problem.len(), |(at, _)| at);
    let tail_start = problem
        .char_indices()
        .nth(count - keep_tail)
        .map_or(problem.len(), |(at, _)| at);
    format!(
        "{}… ({} bytes cut) …{}",
        &problem[..head_end],
        tail_start - head_end,
        &problem[tail_start..]
    )
}

/// Where EDN `text` nests brackets deeper than `MAX_NESTING` (counting `depth_before` levels
/// already open around it): the 1-based line, relative to `text`. The scan over-counts
/// rather than under-counts (every `(`, `[` and `{` outside strings, comments and character
/// literals opens a level), so input it passes cannot nest deeper when parsed.
pub fn edn_too_deep(text: &str, depth_before: usize) -> Option<usize> {
    edn_too_deep_until(text, depth_before, &Deadline::NONE).expect("no deadline")
}

/// Bytes scanned between two looks at the clock by `edn_too_deep_until` (about a millisecond).
const SCAN_BYTES_PER_CHECK: usize = 1 << 20;

/// The bytes `edn_too_deep` acts on outside strings.
const OUTSIDE_STRINGS: [bool; 256] = {
    let mut table = [false; 256];
    let mut index = 0;
    let special = b"\"\\;([{)]}";
    while index < special.len() {
        table[special[index] as usize] = true;
        index += 1;
    }
    table
};

/// As `edn_too_deep`, giving up with `TimeUp` once `deadline` passes.
pub fn edn_too_deep_until(
    text: &str,
    depth_before: usize,
    deadline: &Deadline,
) -> Result<Option<usize>, TimeUp> {
    let bytes = text.as_bytes();
    let mut depth = depth_before;
    let mut position = 0;
    let mut in_string = false;
    let mut next_check = SCAN_BYTES_PER_CHECK;
    while position < bytes.len() {
        if position >= next_check {
            deadline.check(Phase::Parsing)?;
            next_check = position + SCAN_BYTES_PER_CHECK;
        }
        // Skip to the next byte that matters in this state (most bytes do not).
        let skipped = if in_string {
            bytes[position..]
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\')
        } else {
            bytes[position..]
                .iter()
                .position(|&byte| OUTSIDE_STRINGS[usize::from(byte)])
        };
        match skipped {
            Some(offset) => position += offset,
            None => break,
        }
        let byte = bytes[position];
        if in_string {
            match byte {
                b'\\' => position += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                // A character literal such as `\(` or `\"`.
                b'\\' => position += 1,
                b';' => {
                    while position < bytes.len() && !matches!(bytes[position], b'\n' | b'\r') {
                        position += 1;
                    }
                    continue;
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Ok(Some(1 + line_breaks(&text[..position], text)));
                    }
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        position += 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_a_byte_eight_at_a_time_agrees_with_counting_one_by_one() {
        let mut seed = 3u64;
        for length in 0..300 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| match crate::fxhash::splitmix64(&mut seed) % 4 {
                    0 => b'\n',
                    1 => 0x8a,
                    2 => 0x0b,
                    _ => crate::fxhash::splitmix64(&mut seed) as u8,
                })
                .collect();
            for needle in [b'\n', 0x8a, 0, 0xff] {
                let expected = bytes.iter().filter(|&&byte| byte == needle).count();
                assert_eq!(count_byte(&bytes, needle), expected, "{bytes:?} {needle}");
            }
        }
    }

    #[test]
    fn every_line_ending_splits_lines() {
        for text in ["a\nb\nc", "a\r\nb\r\nc\r\n", "a\rb\rc\r", "a\nb\r\nc\r"] {
            let got: Vec<(usize, &str)> = lines(text).collect();
            assert_eq!(got, vec![(1, "a"), (2, "b"), (3, "c")], "{text:?}");
        }
        let got: Vec<(usize, &str)> = lines("a\n\nb").collect();
        assert_eq!(got, vec![(1, "a"), (2, ""), (3, "b")]);
        assert_eq!(line_breaks("a\r\nb\rc\n", "a\r\nb\rc\nd"), 3);
        // A CR at the end of the consumed part followed by LF in the rest counts once, later.
        assert_eq!(line_breaks("a\r", "a\r\nb"), 0);
    }

    #[test]
    fn quotes_and_problems_are_bounded() {
        assert_eq!(quote("short"), "\"short\"");
        let long = "x".repeat(1_000_000);
        let quoted = quote(&long);
        assert!(quoted.len() < 200, "{quoted}");
        assert!(quoted.ends_with("… (1000000 bytes)"), "{quoted}");
        let problem = format!("start {long} end (column 9)");
        let bounded = bound_problem(&problem);
        assert!(
            bounded.chars().count() < PROBLEM_MAX_CHARS + 40,
            "{bounded}"
        );
        assert!(bounded.starts_with("start "));
        assert!(bounded.ends_with(" end (column 9)"));
        // Multi-byte characters are cut at character boundaries.
        let wide = "é".repeat(5_000);
        assert!(quote(&wide).ends_with("… (10000 bytes)"));
        assert!(bound_problem(&wide).contains("bytes cut"));
    }

    /// The scan byte by byte, as it was written first: the skipping scan must agree.
    fn reference_too_deep(text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let (mut depth, mut position, mut in_string) = (0usize, 0usize, false);
        while position < bytes.len() {
            let byte = bytes[position];
            if in_string {
                match byte {
                    b'\\' => position += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match byte {
                    b'"' => in_string = true,
                    b'\\' => position += 1,
                    b';' => {
                        while position < bytes.len() && !matches!(bytes[position], b'\n' | b'\r') {
                            position += 1;
                        }
                        continue;
                    }
                    b'(' | b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return Some(1 + line_breaks(&text[..position], text));
                        }
                    }
                    b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            position += 1;
        }
        None
    }

    #[test]
    fn skipping_scan_agrees_with_the_byte_by_byte_one() {
        let alphabet = b"[[[[{{((]]})\"\"\\;\n\r ax";
        let mut seed = 11u64;
        for round in 0..3_000 {
            let length = 50 + round % 400;
            let text: String = (0..length)
                .map(|_| {
                    let pick = crate::fxhash::splitmix64(&mut seed) as usize % alphabet.len();
                    alphabet[pick] as char
                })
                .collect();
            assert_eq!(
                edn_too_deep(&text, 0),
                reference_too_deep(&text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn nesting_is_measured_outside_strings_comments_and_characters() {
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert_eq!(edn_too_deep(&deep, 0), Some(1));
        let fine = format!("{}1{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert_eq!(edn_too_deep(&fine, 0), None);
        assert_eq!(edn_too_deep(&fine, 1), Some(1));
        let hidden = format!(
            "[\"{}\" \\( ; {}\n \\\" 1]",
            "[".repeat(500),
            "(".repeat(500)
        );
        assert_eq!(edn_too_deep(&hidden, 0), None);
        let later = format!("[1]\r\n[2]\r{}", "{".repeat(MAX_NESTING + 1));
        assert_eq!(edn_too_deep(&later, 0), Some(3));
    }
}
