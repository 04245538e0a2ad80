//! The payload corpora of sections 12 and 13, generated here instead of shipped.
//!
//! Autobahn's sections 12 and 13 echo slices of five files it ships (a JSON report, a
//! 512×512 grey bitmap, Goethe's *Faust* from Project Gutenberg, an HTML report and a
//! PDF). This suite does not copy them: it generates a corpus of each kind, about as large
//! as Autobahn's file and with the same character for a compressor (structure that repeats,
//! prose, markup, smooth pixels, already-compressed streams), from a seeded PRNG, so every
//! run and every machine sees the same bytes.
//!
//! Messages are cut from a corpus as Autobahn cuts them: message `i` of a case of `len`
//! is the `len` units that follow message `i - 1`, wrapping around at the end. For a text
//! corpus the units are characters (a message is `len` characters of UTF-8, never a
//! broken one); for a binary corpus they are bytes.

use std::fmt::Write as _;
use std::sync::{LazyLock, OnceLock};

/// One of the five corpora, in Autobahn's order (12.1 to 12.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corpus {
    /// 12.1 (and all of 13): chat-like JSON, nested objects and arrays, pretty-printed;
    /// sent as text.
    Json,
    /// 12.2: a 512×512 8-bit greyscale BMP, smooth shapes with dithering noise; binary.
    Bitmap,
    /// 12.3: German prose in the layout of a Gutenberg text (a drama: speakers, verse
    /// lines, CRLF); sent as binary, as Autobahn sends *Faust* (its file is marked binary).
    Prose,
    /// 12.4: an HTML report page (style sheet, tables, lists, links); sent as text.
    Html,
    /// 12.5: a PDF-like file: dictionaries, content streams of text, and streams of
    /// already-compressed data (deflated prose, random "image" bytes); binary.
    Pdf,
}

/// A generated corpus: its bytes and, for text, where each character starts.
pub struct CorpusData {
    pub bytes: Vec<u8>,
    /// For a text corpus, the byte offset of every character (`None` for binary).
    char_starts: Option<Vec<usize>>,
}

impl Corpus {
    pub const ALL: [Corpus; 5] = [
        Corpus::Json,
        Corpus::Bitmap,
        Corpus::Prose,
        Corpus::Html,
        Corpus::Pdf,
    ];

    /// Whether its messages go as text frames (Autobahn's `binary: False`).
    pub fn is_text(self) -> bool {
        matches!(self, Corpus::Json | Corpus::Html)
    }

    /// How Autobahn's report names the kind of data.
    pub fn describe(self) -> &'static str {
        match self {
            Corpus::Json => "JSON (generated chat data)",
            Corpus::Bitmap => "a 512x512 greyscale bitmap (generated)",
            Corpus::Prose => "German prose (generated, sent as binary)",
            Corpus::Html => "an HTML page (generated)",
            Corpus::Pdf => "a PDF-like binary (generated)",
        }
    }

    /// The corpus, generated on first use and shared by every case after.
    pub fn data(self) -> &'static CorpusData {
        static CORPORA: [OnceLock<CorpusData>; 5] = [const { OnceLock::new() }; 5];
        let slot = Corpus::ALL.iter().position(|&c| c == self).unwrap();
        CORPORA[slot].get_or_init(|| {
            let bytes = match self {
                Corpus::Json => json(),
                Corpus::Bitmap => bitmap(),
                Corpus::Prose => prose_document(),
                Corpus::Html => html(),
                Corpus::Pdf => pdf(),
            };
            let char_starts = self.is_text().then(|| {
                let text = std::str::from_utf8(&bytes).expect("a text corpus is UTF-8");
                text.char_indices().map(|(at, _)| at).collect()
            });
            CorpusData { bytes, char_starts }
        })
    }

    /// Message `index` of `len` units (characters for text, bytes for binary), cut as
    /// Autobahn cuts them: right after message `index - 1`, wrapping at the end.
    pub fn message(self, len: usize, index: usize) -> Vec<u8> {
        let data = self.data();
        let units = data.units();
        assert!(len < units, "a message is shorter than its corpus");
        let start = (index * len) % units;
        let end = start + len;
        if end <= units {
            data.bytes[data.offset(start)..data.offset(end)].to_vec()
        } else {
            let mut message = data.bytes[data.offset(start)..].to_vec();
            message.extend_from_slice(&data.bytes[..data.offset(end - units)]);
            message
        }
    }
}

impl CorpusData {
    /// Its length in units: characters or bytes.
    fn units(&self) -> usize {
        self.char_starts.as_ref().map_or(self.bytes.len(), Vec::len)
    }

    /// The byte offset of unit `unit` (`units()` is the end).
    fn offset(&self, unit: usize) -> usize {
        match &self.char_starts {
            Some(starts) => starts.get(unit).copied().unwrap_or(self.bytes.len()),
            None => unit,
        }
    }
}

// ---------------------------------------------------------------------------------------
// A seeded PRNG (SplitMix64): the same sequence everywhere, no dependency.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------

/// German function words and verbs (lower case in a sentence).
static GERMAN_WORDS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "und ich du er sie es wir ihr nicht mit mich mir dich dir sich auf in im an am zu zum \
     von vom aus bei nach für über unter durch ohne gegen so wie was wer wo wohl noch \
     schon auch nur doch ja nein nun dann denn da hier dort immer nie mehr viel wenig \
     ganz gar sehr bald kaum gern ist bin bist sind war hat habe hast wird werden kann \
     muß will soll mag möchte weiß sehe sieht geht gehen kommt kommen bleibt lebt liebt \
     spricht sagt hört fühlt träumt schläft ruft strebt irrt der die das den dem des ein \
     eine einen einem mein dein sein unser euer kein alle jeder manche welche diese jene \
     solche süß schön hoch tief alt jung froh müde dunkel hell still wild leicht schwer \
     groß klein ewig heilig"
        .split_whitespace()
        .collect()
});

/// German nouns (capitalised, as German writes them).
static GERMAN_NOUNS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "Geist Welt Himmel Erde Nacht Tag Herz Seele Liebe Leben Tod Zeit Glück Wissen Buch \
     Studierzimmer Lampe Mond Sonne Stern Natur Brust Hand Auge Wort Tat Kraft Sinn \
     Teufel Herr Doktor Schüler Mädchen Gretchen Garten Straße Kirche Brunnen Kerker Wald \
     Höhle Berg Feuer Wasser Luft Traum Freude Schmerz Qual Trost Gott Engel Hexe Küche \
     Keller Wein Becher Ring Schatz Blume Rose Frühling Glocke Chor"
        .split_whitespace()
        .collect()
});

/// Speakers of the generated drama.
const SPEAKERS: &[&str] = &[
    "FAUST",
    "MEPHISTOPHELES",
    "WAGNER",
    "MARGARETE",
    "MARTHE",
    "DER HERR",
    "CHOR DER ENGEL",
    "SCHÜLER",
];

/// English words, for the JSON's and the HTML's text.
static ENGLISH_WORDS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "the a chat room message server client socket frame window deflate compress echo loop \
     event poll ready test case passed failed close ping pong fragment text binary header \
     offer accept we you they it is are was will can should not and or but so then now \
     later today tomorrow meeting lunch coffee deploy release build bug fix review merge \
     branch great thanks sure maybe really quick slow fast again soon café naïve über \
     jalapeño smörgåsbord déjà vu"
        .split_whitespace()
        .collect()
});

const NICKNAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoë", "josé",
    "łukasz", "søren", "amélie", "jürgen", "ömer", "siân", "björn",
];

const ROOMS: &[&str] = &[
    "#lobby", "#dev", "#random", "#ops", "#release", "#café", "#help", "#music",
];

const EMOJI: &[&str] = &["👍", "🎉", "😀", "❤️", "🚀", "👀", "✅", "🔥"];

/// A sentence of `words` words, each from `word`: the first capitalised, a comma now
/// and then, a stop at the end.
fn sentence_of(rng: &mut Rng, words: usize, word: fn(&mut Rng) -> &'static str) -> String {
    let mut text = String::new();
    for i in 0..words {
        let next = word(rng);
        if i == 0 {
            let mut chars = next.chars();
            text.extend(chars.next().unwrap().to_uppercase());
            text.push_str(chars.as_str());
        } else {
            text.push_str(if rng.chance(8) { ", " } else { " " });
            text.push_str(next);
        }
    }
    text.push(['.', '.', '.', '!', '?'][rng.below(5)]);
    text
}

/// An English sentence of `words` words.
fn sentence(rng: &mut Rng, words: usize) -> String {
    sentence_of(rng, words, |rng| rng.pick(&ENGLISH_WORDS))
}

/// A German sentence of 4 to 14 words, nouns among them.
fn german_sentence(rng: &mut Rng) -> String {
    let words = rng.between(4, 14);
    sentence_of(rng, words, |rng| {
        if rng.chance(30) {
            rng.pick(&GERMAN_NOUNS)
        } else {
            rng.pick(&GERMAN_WORDS)
        }
    })
}

// ---------------------------------------------------------------------------------------
// The five generators
// ---------------------------------------------------------------------------------------

/// About 194 KB of pretty-printed JSON: rooms, their members and their messages, with
/// nested objects, arrays, numbers, booleans, nulls and some non-ASCII text.
fn json() -> Vec<u8> {
    use serde_json::{Value, json};
    let mut rng = Rng(121);
    let mut rooms = Vec::new();
    let mut id = 100_000u64;
    let mut seconds = 1_780_000_000u64;
    let mut size = 0;
    while size < 170_000 {
        let members: Vec<Value> = (0..rng.between(3, 9))
            .map(|_| {
                let nick = rng.pick(NICKNAMES);
                json!({
                    "nick": nick,
                    "id": format!("u-{:08x}", rng.next() as u32),
                    "away": rng.chance(20),
                    "joined": seconds - rng.below(1_000_000) as u64,
                })
            })
            .collect();
        let messages: Vec<Value> = (0..rng.between(10, 40))
            .map(|_| {
                id += rng.between(1, 5) as u64;
                seconds += rng.between(1, 600) as u64;
                let from = members[rng.below(members.len())]["nick"].clone();
                let words = rng.between(2, 24);
                let mut text = sentence(&mut rng, words);
                if rng.chance(15) {
                    text.push(' ');
                    text.push_str(rng.pick(EMOJI));
                }
                let reactions: serde_json::Map<String, Value> = (0..rng.below(3))
                    .map(|_| (rng.pick(EMOJI).to_owned(), json!(rng.between(1, 12))))
                    .collect();
                json!({
                    "id": id,
                    "type": if rng.chance(90) { "message" } else { "notice" },
                    "from": from,
                    "text": text,
                    "sent": seconds,
                    "edited": rng.chance(5),
                    "reply_to": if rng.chance(20) { json!(id - rng.between(1, 40) as u64) } else { Value::Null },
                    "reactions": reactions,
                    "score": (rng.below(10_000) as f64) / 100.0,
                })
            })
            .collect();
        let room = json!({
            "room": rng.pick(ROOMS),
            "topic": sentence(&mut rng, 6),
            "members": members,
            "messages": messages,
        });
        size += serde_json::to_vec_pretty(&room).unwrap().len();
        rooms.push(room);
    }
    serde_json::to_vec_pretty(&json!({ "version": 1, "rooms": rooms })).unwrap()
}

/// A 512×512 8-bit BMP of 263,222 bytes (the size of Autobahn's): a file header, an
/// information header, a palette of 256 greys, and rows of smooth shapes with a little
/// dithering noise, as a photograph has.
fn bitmap() -> Vec<u8> {
    const SIDE: usize = 512;
    let mut rng = Rng(122);
    let pixels_at = 14 + 40 + 256 * 4;
    let size = pixels_at + SIDE * SIDE;
    let mut out = Vec::with_capacity(size);
    // BITMAPFILEHEADER: "BM", file size, two reserved words, offset of the pixels.
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(pixels_at as u32).to_le_bytes());
    // BITMAPINFOHEADER: 40 bytes, width, height, 1 plane, 8 bits per pixel, no
    // compression, image size, 2835 pixels per metre (72 dpi) both ways, 256 colours.
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(SIDE as i32).to_le_bytes());
    out.extend_from_slice(&(SIDE as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&((SIDE * SIDE) as u32).to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&256u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for grey in 0..=255u8 {
        out.extend_from_slice(&[grey, grey, grey, 0]);
    }
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (fx, fy) = (x as f64, y as f64);
            let wave = 55.0 * (fx / 41.0 + (fy / 67.0).sin() * 2.0).sin();
            let ring = 35.0 * (((fx - 300.0).hypot(fy - 210.0)) / 23.0).cos();
            let shade = 0.12 * (fx - fy);
            let noise = rng.below(9) as f64 - 4.0;
            out.push((128.0 + wave + ring + shade + noise).clamp(0.0, 255.0) as u8);
        }
    }
    assert_eq!(out.len(), size);
    out
}

/// About 222 KB of German prose laid out like a Gutenberg drama: a title block, scenes,
/// speakers in capitals, verse lines and stage directions, lines ending in CRLF.
fn prose_document() -> Vec<u8> {
    let mut rng = Rng(123);
    let mut text = String::from(
        "Erzeugter Text im Stil eines Dramas, Zeile für Zeile.\r\n\r\n\
         Der Tragödie erster Teil\r\n\r\n\r\n",
    );
    let mut scene = 1;
    while text.len() < 222_000 {
        if rng.chance(4) || scene == 1 {
            let place = rng.pick(&GERMAN_NOUNS);
            write!(text, "\r\n\r\nSzene {scene}. {place}.\r\n\r\n").unwrap();
            scene += 1;
        }
        write!(text, "{}:\r\n", rng.pick(SPEAKERS)).unwrap();
        if rng.chance(15) {
            write!(
                text,
                "(Er {} {}.)\r\n",
                rng.pick(&GERMAN_WORDS),
                rng.pick(&GERMAN_NOUNS)
            )
            .unwrap();
        }
        for _ in 0..rng.between(1, 8) {
            let line = german_sentence(&mut rng);
            write!(text, "{line}\r\n").unwrap();
        }
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// About 263 KB of HTML: a style sheet, then a report of sections, each a heading, a
/// paragraph, a table of results and a list of links.
fn html() -> Vec<u8> {
    let mut rng = Rng(124);
    let mut page = String::from(
        "<!DOCTYPE html>\n<html>\n   <head>\n      <meta charset=\"utf-8\" />\n      \
         <title>loopchat report</title>\n      <style lang=\"css\">\n",
    );
    for class in [
        "block",
        "case_ok",
        "case_failed",
        "case_info",
        "heading",
        "note",
    ] {
        write!(
            page,
            "\n.{class} {{\n   background-color: #{:06X};\n   color: #{:03X};\n   \
             padding: {}px {}px;\n   font-family: Segoe UI,Tahoma,Arial,Verdana,sans-serif;\n}}\n",
            rng.next() & 0xff_ffff,
            rng.next() & 0xfff,
            rng.between(2, 12),
            rng.between(2, 24)
        )
        .unwrap();
    }
    page.push_str("      </style>\n   </head>\n   <body>\n      <div id=\"content\">\n");
    let mut section = 1;
    while page.len() < 262_000 {
        let words = rng.between(8, 40);
        write!(
            page,
            "         <h2 class=\"heading\">{section} {}</h2>\n         <p class=\"note\">{}</p>\n\
             \x20        <table class=\"block\">\n",
            sentence(&mut rng, 3),
            sentence(&mut rng, words),
        )
        .unwrap();
        for case in 1..=rng.between(5, 25) {
            let ok = rng.chance(85);
            write!(
                page,
                "            <tr>\n               <td class=\"case_info\"><a href=\"#case_{section}_{case}\">\
                 Case {section}.{case}</a></td>\n               <td class=\"{}\">{}</td>\n               \
                 <td>{} ms</td>\n            </tr>\n",
                if ok { "case_ok" } else { "case_failed" },
                if ok { "Pass" } else { "Fail" },
                rng.below(5000)
            )
            .unwrap();
        }
        page.push_str("         </table>\n         <ul>\n");
        for _ in 0..rng.between(1, 6) {
            writeln!(
                page,
                "            <li><a href=\"https://example.org/{}/{}\">{}</a></li>",
                rng.pick(&ENGLISH_WORDS),
                rng.below(1000),
                sentence(&mut rng, 4)
            )
            .unwrap();
        }
        page.push_str("         </ul>\n");
        section += 1;
    }
    page.push_str("      </div>\n   </body>\n</html>\n");
    page.into_bytes()
}

/// About 1 MB shaped like a PDF: a header with binary marker bytes, numbered objects
/// (page dictionaries, text content streams, streams deflated with zlib, and "image"
/// streams of random bytes, as JPEG data looks to a compressor), a cross-reference table
/// and a trailer. Mostly incompressible, like Autobahn's PDF.
fn pdf() -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut rng = Rng(125);
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = 1;
    while out.len() < 1_040_000 {
        offsets.push(out.len());
        let body: Vec<u8> = match object % 4 {
            0 => format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
                 /Resources << /Font << /F1 {} 0 R >> /XObject << /Im{} {} 0 R >> >> >>",
                object + 1,
                rng.between(3, 9),
                object,
                object + 2
            )
            .into_bytes(),
            1 => {
                let mut content = String::from("BT\n/F1 10 Tf\n72 720 Td\n");
                for _ in 0..rng.between(10, 40) {
                    let line = sentence(&mut rng, 10);
                    writeln!(content, "({line}) Tj\n0 -12 Td").unwrap();
                }
                content.push_str("ET");
                stream(
                    &format!("<< /Length {} >>", content.len()),
                    content.as_bytes(),
                )
            }
            2 => {
                let mut text = String::new();
                for _ in 0..rng.between(20, 80) {
                    text.push_str(&german_sentence(&mut rng));
                    text.push(' ');
                }
                let mut deflate = Compress::new(Compression::default(), true);
                let mut packed = Vec::with_capacity(text.len() + 64);
                deflate
                    .compress_vec(text.as_bytes(), &mut packed, FlushCompress::Finish)
                    .unwrap();
                stream(
                    &format!("<< /Length {} /Filter /FlateDecode >>", packed.len()),
                    &packed,
                )
            }
            _ => {
                let size = rng.between(2_000, 16_000);
                let image = rng.bytes(size);
                stream(
                    &format!(
                        "<< /Type /XObject /Subtype /Image /Width {} /Height {} \
                         /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode \
                         /Length {} >>",
                        rng.between(64, 640),
                        rng.between(64, 480),
                        image.len()
                    ),
                    &image,
                )
            }
        };
        out.extend_from_slice(format!("{object} 0 obj\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\nendobj\n");
        object += 1;
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1);
    for offset in &offsets {
        writeln!(table, "{offset:010} 00000 n ").unwrap();
    }
    write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    )
    .unwrap();
    out.extend_from_slice(table.as_bytes());
    out
}

/// A PDF stream object's body: its dictionary, then the data between `stream` and
/// `endstream`.
fn stream(dictionary: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!("{dictionary}\nstream\n").into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    body
}

#[test]
fn corpora_are_deterministic_of_their_kind_and_cut_as_autobahn_cuts() {
    for corpus in Corpus::ALL {
        let data = corpus.data();
        assert!(data.bytes.len() > 190_000, "{corpus:?}");
        if corpus.is_text() {
            assert!(std::str::from_utf8(&data.bytes).is_ok(), "{corpus:?}");
        }
        // Consecutive messages are consecutive slices, wrapping at the end.
        let units = data.units();
        let len = 131_072;
        let whole: Vec<u8> = (0..2 * units / len)
            .flat_map(|i| corpus.message(len, i))
            .collect();
        let twice: Vec<u8> = data.bytes.iter().chain(&data.bytes).copied().collect();
        assert_eq!(&whole[..], &twice[..whole.len()], "{corpus:?}");
        if corpus.is_text() {
            for i in 0..8 {
                let message = String::from_utf8(corpus.message(1000, i)).unwrap();
                assert_eq!(message.chars().count(), 1000, "{corpus:?}");
            }
        }
    }
    // The kinds differ as a compressor sees them: text and markup shrink a lot, the
    // bitmap some, the PDF little.
    let ratio = |corpus: Corpus| {
        use flate2::{Compress, Compression, FlushCompress};
        let bytes = &corpus.data().bytes;
        let mut out = Vec::with_capacity(bytes.len() + 1024);
        Compress::new(Compression::default(), false)
            .compress_vec(bytes, &mut out, FlushCompress::Finish)
            .unwrap();
        out.len() as f64 / bytes.len() as f64
    };
    assert!(ratio(Corpus::Json) < 0.25, "{}", ratio(Corpus::Json));
    assert!(ratio(Corpus::Html) < 0.25, "{}", ratio(Corpus::Html));
    assert!(ratio(Corpus::Prose) < 0.5, "{}", ratio(Corpus::Prose));
    assert!(ratio(Corpus::Bitmap) < 0.9, "{}", ratio(Corpus::Bitmap));
    assert!(ratio(Corpus::Pdf) > 0.6, "{}", ratio(Corpus::Pdf));
    // The same bytes every time: a fixed seed and no other input.
    assert!(json() == Corpus::Json.data().bytes);
    assert!(pdf() == Corpus::Pdf.data().bytes);
}
