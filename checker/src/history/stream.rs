//! Reading a Porcupine kv log or a `history.jsonl` in pieces: the file is read a chunk at a
//! time, cut after its last line feed, and each piece is parsed and paired before the next is
//! read, so that a large history never holds its whole text beside the history it becomes (the
//! text alone is most of the peak for a history of many short ops). A jsonl record is one line;
//! an EDN op a piece ends inside of is left, unread, for the next piece (`RecordStream::feed`).
//!
//! The pieces only carry valid input. Any problem (bad UTF-8, a bad record, bad pairing, a
//! file over the size limit, one that cannot be read, a jsonl process named rather than
//! numbered) makes `read` answer `None`, and the caller reads the file whole as before, which
//! names the problem with its line exactly as it always has.

use std::io::Read;
use std::path::Path;

use super::edn::RecordStream;
use super::jsonl::JsonlStream;
use super::text::{strip_bom, MAX_HISTORY_BYTES};
use super::RawRecord;
use super::{Format, History, Pairing, ReadError};
use crate::deadline::{Deadline, Phase};

/// Bytes read at a time; a piece is at most this plus the last form cut short.
const CHUNK_BYTES: usize = 256 << 10;

/// The most a piece may grow to while no cut is found before the file is left to the
/// whole-file reader.
const MAX_PIECE_BYTES: usize = 16 << 20;

/// The fewest bytes a record takes (as `edn::records_expected` bounds kv logs).
const MIN_RECORD_BYTES: u64 = 24;

/// Reads and pairs the history at `path`, a kv log or jsonl (`format`), in pieces; `None`
/// when it has any problem (the caller then reads it whole, for the error). Only the deadline
/// is an error here.
pub(crate) fn read(
    path: &Path,
    format: Format,
    deadline: &Deadline,
) -> Result<Option<History>, ReadError> {
    read_by(path, format, deadline, CHUNK_BYTES)
}

/// `read` reading `chunk_bytes` at a time.
fn read_by(
    path: &Path,
    format: Format,
    deadline: &Deadline,
    chunk_bytes: usize,
) -> Result<Option<History>, ReadError> {
    assert!(chunk_bytes > 0);
    let source_name = path.display().to_string();
    let mut reader = match format {
        Format::PorcupineKv => Reader::Edn(RecordStream::new(&source_name)),
        Format::Jsonl => Reader::Jsonl(JsonlStream::new(&source_name)),
        _ => return Ok(None),
    };
    match read_pieces(path, &source_name, deadline, chunk_bytes, &mut reader) {
        Ok(mut history) => {
            history.format = Some(format);
            Ok(Some(history))
        }
        Err(ReadError::TimeUp(time_up)) => Err(ReadError::TimeUp(time_up)),
        Err(ReadError::Input(_)) => Ok(None),
    }
}

/// One format's reader of pieces.
enum Reader<'n> {
    Edn(RecordStream<'n>),
    Jsonl(JsonlStream<'n>),
}

impl Reader<'_> {
    /// Reads the records of the next piece (which ends after a line feed, unless `last`: no
    /// piece follows) and answers how many of its bytes were consumed; the next piece begins
    /// with the rest.
    fn feed(
        &mut self,
        piece: &str,
        last: bool,
        deadline: &Deadline,
        sink: &mut dyn FnMut(RawRecord) -> Result<(), ReadError>,
    ) -> Result<usize, ReadError> {
        match self {
            Reader::Edn(stream) => stream.feed(piece, last, deadline, sink),
            // A jsonl record is one line: a piece holds whole records only.
            Reader::Jsonl(stream) => stream.feed(piece, deadline, sink).map(|()| piece.len()),
        }
    }
}

fn read_pieces(
    path: &Path,
    source_name: &str,
    deadline: &Deadline,
    chunk_bytes: usize,
    reader: &mut Reader<'_>,
) -> Result<History, ReadError> {
    let problem = |what: String| super::pairing_error(source_name, 0, what);
    // A pipe or FIFO cannot be read a second time: the whole-file reader gets it, so that a
    // problem is named by the reader that read it. Asked of the path before opening it, since
    // opening a FIFO would take its writer.
    let metadata = std::fs::metadata(path).map_err(|error| problem(error.to_string()))?;
    if !metadata.is_file() {
        return Err(problem("not a regular file".to_string()));
    }
    let mut file = std::fs::File::open(path).map_err(|error| problem(error.to_string()))?;
    let file_bytes = metadata.len();
    if file_bytes > MAX_HISTORY_BYTES {
        return Err(problem("over the size limit".to_string()));
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk_bytes.min(file_bytes as usize + 1));
    let mut pairing: Option<Pairing> = None;
    let mut total_bytes = 0u64;
    let mut first_piece = true;
    // Bytes of `buffer` searched for a line feed, and the end of the last one found.
    let mut searched = 0usize;
    let mut cut = 0usize;
    // After a piece that consumed nothing (one op longer than it), the buffer is fed again only
    // once it has doubled, so that a long op is not parsed again for every chunk.
    let mut feed_from_len = 0usize;
    loop {
        deadline.check(Phase::Reading)?;
        let read = (&mut file)
            .take(chunk_bytes as u64)
            .read_to_end(&mut buffer)
            .map_err(|error| problem(error.to_string()))?;
        total_bytes += read as u64;
        if total_bytes > MAX_HISTORY_BYTES {
            return Err(problem("over the size limit".to_string()));
        }
        let last = read == 0;
        if let Some(feed) = buffer[searched..].iter().rposition(|&byte| byte == b'\n') {
            cut = searched + feed + 1;
        }
        searched = buffer.len();
        let end = if last { buffer.len() } else { cut };
        if !last && (end == 0 || buffer.len() < feed_from_len) {
            if buffer.len() > MAX_PIECE_BYTES {
                // No op ends in sight (one long line, lone CR line ends): leave it whole.
                return Err(problem("no place to cut".to_string()));
            }
            continue;
        }
        let piece = std::str::from_utf8(&buffer[..end])
            .map_err(|_| problem("not valid UTF-8".to_string()))?;
        // A byte-order mark is not part of the first record.
        let bom = if first_piece {
            piece.len() - strip_bom(piece).len()
        } else {
            0
        };
        let pairs = pairing.get_or_insert_with(|| {
            Pairing::new(source_name, records_expected(&buffer, file_bytes))
        });
        first_piece = false;
        let consumed = bom
            + reader.feed(&piece[bom..], last, deadline, &mut |record| {
                pairs.push(record, deadline)
            })?;
        if last {
            break;
        }
        feed_from_len = if consumed == bom { buffer.len() * 2 } else { 0 };
        buffer.drain(..consumed);
        searched -= consumed;
        cut = cut.saturating_sub(consumed);
    }
    deadline.check(Phase::Parsing)?;
    let mut history = pairing
        .map(|pairing| pairing.history)
        .unwrap_or_else(|| Pairing::new(source_name, 0).history);
    // Sized from the first chunk's lines: give back what the rest did not need.
    if history.ops.capacity() > history.ops.len() + history.ops.len() / 16 {
        history.ops.shrink_to_fit();
    }
    if history.events.capacity() > history.events.len() + history.events.len() / 16 {
        history.events.shrink_to_fit();
    }
    Ok(history)
}

/// About how many records a file of `file_bytes` holds, from the lines of its first chunk
/// that open a record (`{`: one record a line in kv logs and jsonl), bounded as
/// `edn::records_expected` bounds it. Blank or comment lines do not count, so a file that
/// opens with many of them is not sized as if each were a record.
fn records_expected(first_chunk: &[u8], file_bytes: u64) -> usize {
    let chunk_bytes = (first_chunk.len() as u64).max(1);
    let records = first_chunk
        .split(|&byte| byte == b'\n')
        .filter(|line| line.trim_ascii_start().first() == Some(&b'{'))
        .count() as u64;
    let estimate = records.saturating_mul(file_bytes.max(chunk_bytes)) / chunk_bytes;
    let bounded = estimate.min(file_bytes / MIN_RECORD_BYTES + 1);
    usize::try_from(bounded).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{parse_text, read_file, Format};

    /// A kv log in a temporary file, removed when dropped.
    struct TempLog(std::path::PathBuf);

    impl TempLog {
        fn new(name: &str, text: &str) -> TempLog {
            let path = std::env::temp_dir()
                .join(format!("minos-stream-{}-{name}.txt", std::process::id()));
            std::fs::write(&path, text).expect("write a temporary log");
            TempLog(path)
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const OPS: &str = "{:process 0, :type :invoke, :f :append, :key \"1\", :value \"x 0 0 y\"}\n\
{:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n\
{:process 0, :type :ok, :f :append, :key \"1\", :value \"x 0 0 y\"}\n\
{:process 1, :type :ok, :f :get, :key \"1\", :value \"x 0 0 y\"}\n\
{:process 2, :type :invoke, :f :put, :key \"2\", :value \"x 2 0 y\"}\n\
{:process 2, :type :info, :f :put, :key \"2\", :value \"x 2 0 y\"}\n";

    /// Shapes a kv log may take that the pieces must follow: a vector around it, comments,
    /// a map over several lines, CRLF line ends, a byte-order mark, an escaped quote.
    fn shapes() -> Vec<(&'static str, String)> {
        vec![
            ("plain", OPS.to_string()),
            ("wrapped", format!("[\n{OPS}]\n")),
            ("listed", format!("(\n{OPS})")),
            (
                "comments",
                format!(
                    "; a log (with a bracket\n{}",
                    OPS.replace("\n{:process 2", "\n; between ]\n{:process 2")
                ),
            ),
            ("multiline", OPS.replace(", :f :get,", ",\n :f\n :get,")),
            ("crlf", OPS.replace('\n', "\r\n")),
            ("bom", format!("\u{feff}{OPS}")),
            ("bom wrapped", format!("\u{feff}[\n{OPS}]\n")),
            ("lone cr", OPS.replace('\n', "\r")),
            (
                "escaped",
                OPS.replace("\"x 2 0 y\"", "\"x \\\"2\\\"\n0 y\""),
            ),
            ("no final newline", OPS.trim_end().to_string()),
            ("empty", String::new()),
        ]
    }

    /// Each shape, read in pieces of many sizes, gives the history the whole text gives.
    fn assert_pieces_read_alike(format: Format, shapes: Vec<(&str, String)>) {
        for (name, text) in shapes {
            let whole =
                parse_text(&text, "log", format).unwrap_or_else(|error| panic!("{name}: {error}"));
            let log = TempLog::new(&name.replace(' ', "-"), &text);
            for chunk_bytes in [1, 2, 3, 7, 64, 1 << 20] {
                let pieces = read_by(&log.0, format, &Deadline::NONE, chunk_bytes)
                    .expect("no deadline")
                    .unwrap_or_else(|| panic!("{name}: pieces of {chunk_bytes} bytes failed"));
                assert_eq!(
                    pieces.ops, whole.ops,
                    "{name}, pieces of {chunk_bytes} bytes"
                );
                assert_eq!(pieces.events, whole.events, "{name}, {chunk_bytes}");
                assert_eq!(pieces.format, Some(format));
                assert!(!pieces.independent);
            }
        }
    }

    #[test]
    fn pieces_read_what_the_whole_text_reads() {
        assert_pieces_read_alike(Format::PorcupineKv, shapes());
    }

    const JSONL: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"add","key":"a","value":1}
{"index":1,"time":5,"process":"nemesis","type":"info","f":"partition","value":null}
{"index":2,"time":7,"process":1,"type":"invoke","f":"read","key":7,"value":null}

{"index":3,"time":9,"process":0,"type":"ok","f":"add","key":"a","value":1}
{"index":4,"time":9,"process":1,"type":"ok","f":"read","key":7,"value":3}
{"index":5,"time":12,"process":2,"type":"invoke","f":"add","key":"a","value":"x\ny"}
"#;

    #[test]
    fn jsonl_pieces_read_what_the_whole_text_reads() {
        let shapes = [
            ("jsonl plain", JSONL.to_string()),
            ("jsonl crlf", JSONL.replace('\n', "\r\n")),
            ("jsonl lone cr", JSONL.replace('\n', "\r")),
            ("jsonl bom", format!("\u{feff}{JSONL}")),
            ("jsonl no final newline", JSONL.trim_end().to_string()),
            ("jsonl empty", String::new()),
        ];
        assert_pieces_read_alike(Format::Jsonl, shapes.to_vec());
    }

    #[test]
    fn jsonl_with_a_problem_or_a_named_process_is_left_to_the_whole_file_reader() {
        let cases = [
            (
                "jsonl named",
                JSONL.replace(r#""process":2"#, r#""process":"n1""#),
                true,
            ),
            (
                "jsonl index",
                JSONL.replace(r#""index":4"#, r#""index":2"#),
                false,
            ),
            (
                "jsonl bad",
                JSONL.replace(r#""type":"ok","f":"read""#, r#""type":"ok","f":"#),
                false,
            ),
            (
                "jsonl unpaired",
                JSONL.replace(
                    r#""index":3,"time":9,"process":0,"type":"ok""#,
                    r#""index":3,"time":9,"process":0,"type":"invoke""#,
                ),
                false,
            ),
        ];
        for (name, text, readable) in cases {
            let log = TempLog::new(&name.replace(' ', "-"), &text);
            for chunk_bytes in [1, 5, 1 << 20] {
                let pieces = read_by(&log.0, Format::Jsonl, &Deadline::NONE, chunk_bytes)
                    .expect("no deadline");
                assert!(
                    pieces.is_none(),
                    "{name}: read in pieces of {chunk_bytes} bytes"
                );
            }
            let whole = read_file(&log.0, Format::Jsonl);
            match (readable, whole) {
                (true, Ok(history)) => {
                    let parsed = parse_text(&text, "log", Format::Jsonl).expect("reads");
                    assert_eq!(history.ops, parsed.ops, "{name}");
                    assert!(history.ops.iter().any(|op| op.process_name.is_some()));
                }
                (false, Err(error)) => assert!(error.line > 0, "{name}: {error}"),
                (readable, whole) => panic!("{name}: readable {readable}, got {whole:?}"),
            }
        }
    }

    #[test]
    fn a_jsonl_file_is_read_in_pieces_only_as_jsonl() {
        use crate::history::{read_file_with, Independent};
        let log = TempLog::new("auto", JSONL);
        let path = log.0.with_extension("jsonl");
        std::fs::rename(&log.0, &path).expect("rename to .jsonl");
        let _removed = TempLog(path.clone());
        let whole = parse_text(JSONL, "log", Format::Jsonl).expect("reads");
        let auto = read_file_with(&path, Format::Auto, Independent::Auto).expect("reads");
        assert_eq!(auto.format, Some(Format::Jsonl));
        assert_eq!(auto.ops, whole.ops);
        let error = read_file_with(&path, Format::Jsonl, Independent::Yes)
            .expect_err("--independent is for EDN histories");
        assert!(error.problem.contains("--independent"), "{error}");
    }

    /// Whenever the pieces read a mutated log at all, they read what the whole text reads:
    /// bytes deleted, inserted (brackets, quotes, escapes, comments, line breaks), lines
    /// repeated, at every place a seeded generator picks.
    #[test]
    fn pieces_never_read_a_mutated_log_differently() {
        let mut seed = 0x005e_ed0f_f00d_u64;
        let mut next = |bound: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as usize) % bound.max(1)
        };
        let bases: Vec<(Format, String)> = shapes()
            .into_iter()
            .map(|(_, text)| (Format::PorcupineKv, text))
            .chain([(Format::Jsonl, JSONL.to_string())])
            .collect();
        let inserts = [
            "{", "}", "[", "]", "(", ")", "\"", "\\", ";", "\n", "\r", " ", "#_", ":", ",", "x",
        ];
        let (mut same, mut fell_back) = (0, 0);
        for round in 0..400 {
            let (format, base) = &bases[round % bases.len()];
            let mut text = base.clone();
            for _ in 0..1 + next(3) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 if at < text.len() => {
                        let end = (at + 1..=text.len()).find(|&end| text.is_char_boundary(end));
                        text.replace_range(at..end.unwrap_or(text.len()), "");
                    }
                    1 => {
                        let line_start = text[..at].rfind('\n').map_or(0, |feed| feed + 1);
                        let line_end = text[at..]
                            .find('\n')
                            .map_or(text.len(), |feed| at + feed + 1);
                        let line = text[line_start..line_end].to_string();
                        text.insert_str(line_start, &line);
                    }
                    _ => text.insert_str(at, inserts[next(inserts.len())]),
                }
            }
            let whole = parse_text(&text, "log", *format);
            let log = TempLog::new(&format!("mutated-{round}"), &text);
            for chunk_bytes in [1, 3, 17, 64] {
                let pieces =
                    read_by(&log.0, *format, &Deadline::NONE, chunk_bytes).expect("no deadline");
                match (&pieces, &whole) {
                    (Some(pieces), Ok(whole)) => {
                        assert_eq!(
                            pieces.ops, whole.ops,
                            "round {round}, {chunk_bytes}: {text:?}"
                        );
                        assert_eq!(pieces.events, whole.events, "round {round}: {text:?}");
                        same += 1;
                    }
                    (Some(_), Err(error)) => {
                        panic!("round {round}, {chunk_bytes}: pieces read what the whole text refuses ({error}): {text:?}")
                    }
                    (None, _) => fell_back += 1,
                }
            }
        }
        // Both outcomes must occur, or the mutations test nothing.
        assert!(
            same > 100 && fell_back > 100,
            "{same} read alike, {fell_back} fell back"
        );
    }

    #[test]
    fn a_fifo_is_read_once_by_the_whole_file_reader() {
        let fifo = TempLog::new("fifo", "");
        std::fs::remove_file(&fifo.0).expect("remove the placeholder");
        let made = std::process::Command::new("mkfifo").arg(&fifo.0).status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("SKIPPED: mkfifo is not available here");
            return;
        }
        let unpaired = OPS.replace(":type :ok, :f :append", ":type :invoke, :f :append");
        let path = fifo.0.clone();
        let writer = std::thread::spawn(move || std::fs::write(path, unpaired));
        assert!(read(&fifo.0, Format::PorcupineKv, &Deadline::NONE)
            .expect("no deadline")
            .is_none());
        let error = read_file(&fifo.0, Format::PorcupineKv)
            .expect_err("the pairing problem is found in what the FIFO gave");
        assert_eq!(error.line, 3, "{error}");
        writer.join().expect("writer").expect("write the FIFO");
    }

    #[test]
    fn a_log_with_a_problem_is_left_to_the_whole_file_reader() {
        let broken = [
            (
                "unclosed",
                OPS.replace("{:process 2, :type :info", "{:process 2, :type :info ["),
            ),
            (
                "unpaired",
                OPS.replace(":type :ok, :f :append", ":type :invoke, :f :append"),
            ),
            ("bad utf8", String::new()),
            ("after", format!("[\n{OPS}]\n{{:process 3}}\n")),
            ("open", format!("[\n{OPS}")),
            (
                "odd map",
                OPS.replace(
                    "{:process 1, :type :invoke, :f :get",
                    "{:process 1, :type}\n{:process 1, :type :invoke, :f :get",
                ),
            ),
        ];
        for (name, text) in broken {
            let log = TempLog::new(&name.replace(' ', "-"), &text);
            if name == "bad utf8" {
                let mut bytes = OPS.as_bytes().to_vec();
                bytes.splice(10..10, [0xff, 0xfe]);
                std::fs::write(&log.0, bytes).expect("write");
            }
            for chunk_bytes in [1, 5, 1 << 20] {
                let pieces = read_by(&log.0, Format::PorcupineKv, &Deadline::NONE, chunk_bytes)
                    .expect("no deadline");
                assert!(
                    pieces.is_none(),
                    "{name}: read in pieces of {chunk_bytes} bytes"
                );
            }
            let error = read_file(&log.0, Format::PorcupineKv)
                .expect_err("the whole-file reader names the problem");
            assert!(error.line > 0, "{name}: {error}");
        }
    }
}
