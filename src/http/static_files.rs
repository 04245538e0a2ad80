//! Serving a folder of static files (`--public DIR`) to plain GET and HEAD requests.
//!
//! [`StaticFiles::respond`] turns a request into a response by these rules, in order:
//!
//! 1. **Method.** GET and HEAD are served, and both get the same response, body
//!    included: the event loop leaves the body out for HEAD, and `Content-Length` is
//!    measured from it. Any other method gets 405 with `Allow: GET, HEAD`.
//! 2. **Decoding, once.** The path (the target without its query string) must start with
//!    `/` (else 400). It is percent-decoded exactly once into bytes; a NUL byte or bytes
//!    that are not UTF-8 get 400. Decoding once matters: `%252e%252e` is the literal
//!    name `%2e%2e`, not `..`. A server that decoded again, or that checked for `..`
//!    before decoding and decoded afterwards, would let `%2e%2e` or `%252e%252e`
//!    climb out of the root.
//! 3. **Segments.** The decoded path is split on `/`, so an encoded slash (`..%2f`) splits
//!    too. Empty segments and `.` are skipped, which makes `//etc/passwd` and
//!    `/%2fetc%2fpasswd` plain paths under the root, never absolute ones. A `..` segment, or
//!    any segment the platform would read as more than one ordinary file name (such as a
//!    drive prefix on Windows), gets 404 with the same short body as a missing file, so a
//!    traversal attempt learns nothing. On Unix a decoded `\` is an ordinary character in
//!    a file name.
//! 4. **Resolving, then canonicalizing.** The segments are joined onto the root and the
//!    result is canonicalized (symlinks and all resolved), and it must still lie inside
//!    the canonical root. Checking the joined path alone is not enough: a symlink inside
//!    the root may point anywhere, and only the canonical path says where a file really
//!    is. A symlink to a file inside the root is served; one that leads outside gets 404.
//!    The check comes before anything else is learned about the path, so whether a
//!    directory outside the root exists is never revealed by a redirect either.
//! 5. **Directories.** A directory requested with a trailing slash is answered with its
//!    `index.html` (canonicalized and checked again); without the slash it gets 301 to the
//!    slash form, so that relative links in the index resolve against the directory. The
//!    `Location` is rebuilt from the decoded segments, re-encoded, and never starts with
//!    `//`, so it cannot become a redirect to another host. A directory without
//!    `index.html` gets 404: there are no listings. A file requested with a trailing slash
//!    gets 404.
//! 6. **Files.** Only regular files are served (not FIFOs or devices, which could block or
//!    never end); anything missing, outside, not a regular file or unreadable gets 404
//!    with a short plain-text body that never echoes a filesystem path. A file larger than
//!    [`MAX_STATIC_FILE_BYTES`] gets 403.
//! 7. **Headers.** `Content-Type` is guessed from the extension by `mime_guess`, with
//!    `; charset=utf-8` for text (`text/*`, JavaScript, JSON and XML types, SVG included),
//!    and `application/octet-stream` when the extension is unknown or missing. Every
//!    response carries `X-Content-Type-Options: nosniff`; files also carry
//!    `Cache-Control: no-cache` (the browser revalidates every time) and `Last-Modified`.
//!    `If-Modified-Since` (any of the three HTTP-date forms) answers 304 with an empty
//!    body when the file is not newer, to the second; a date that cannot be parsed or lies
//!    in the future is ignored, as RFC 9110 §13.1.3 says.
//!
//! All of this is synchronous file I/O on the event-loop thread: while a file is read,
//! no other connection is served. That is accepted for small static sites, which is what
//! this is for (the size limit bounds the worst case); a large or busy site belongs behind
//! a real web server. Between the containment check and the read, someone with write
//! access to the root could swap a path for a symlink; the root is assumed to be
//! controlled by the operator.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::request::Request;
use super::response::Response;

/// The largest file served, 64 MiB. A file is read whole into memory on the event-loop
/// thread, so this bounds both the memory and the stall one request can cause.
///
/// A larger file is answered with 403 Forbidden: the server understood the request and
/// refuses it, and repeating it will not help (RFC 9110 §15.5.4). 413 Content Too Large
/// is about the request's own content, 500 and 503 would blame a fault or an overload
/// and invite retries, and 404 would hide from the site's author why the file is not
/// served.
pub const MAX_STATIC_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes percent-encoded in a path segment of a redirect's `Location`: controls,
/// the characters the URL standard encodes in a path, `%` (so a literal `%2e` in a name
/// survives the round trip), and both slashes (a name may hold a `\`, which browsers
/// read as a separator).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%')
    .add(b'/')
    .add(b'\\');

/// A folder of static files, served by [`StaticFiles::respond`] under the rules in the
/// [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFiles {
    /// The canonical path of the folder.
    root: PathBuf,
}

impl StaticFiles {
    /// Serves the folder `dir`, whose canonical path is taken now. Fails if `dir` does
    /// not exist, cannot be resolved, or is not a directory; the error names the path.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let dir = dir.as_ref();
        let root = fs::canonicalize(dir).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("static file folder {}: {error}", dir.display()),
            )
        })?;
        let metadata = fs::metadata(&root).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("static file folder {}: {error}", dir.display()),
            )
        })?;
        if !metadata.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("static file folder {} is not a directory", dir.display()),
            ));
        }
        Ok(StaticFiles { root })
    }

    /// The canonical path of the folder being served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Answers a plain (non-upgrade) request from the folder: 200 with the file, 301 to
    /// add a directory's trailing slash, 304 when `If-Modified-Since` says the client's
    /// copy is current, 400 for a target that is not a decodable path, 403 for a file
    /// over [`MAX_STATIC_FILE_BYTES`], 404 for anything not served (traversal attempts
    /// included), 405 for methods other than GET and HEAD.
    pub fn respond(&self, request: &Request) -> Response {
        if request.method != "GET" && request.method != "HEAD" {
            let mut response = Response::text(
                405,
                "only GET and HEAD are allowed for static files\n".to_owned(),
            );
            response
                .header("Allow", "GET, HEAD")
                .header("X-Content-Type-Options", "nosniff");
            return response;
        }
        match self.serve(request) {
            Ok(response) => response,
            Err(refusal) => refusal.response(),
        }
    }

    fn serve(&self, request: &Request) -> Result<Response, Refusal> {
        let (segments, trailing_slash) = decode_path(request.path())?;
        let mut joined = self.root.clone();
        joined.extend(&segments);
        let resolved = self.contain(&joined)?;
        let metadata = fs::metadata(&resolved).map_err(|_| Refusal::NotFound)?;
        let file = if metadata.is_dir() {
            if !trailing_slash {
                return Ok(redirect_to_directory(&segments, &request.target));
            }
            self.contain(&resolved.join("index.html"))
                .map_err(|_| Refusal::NoIndex)?
        } else if trailing_slash {
            return Err(Refusal::NotFound);
        } else {
            resolved
        };
        // Checked before opening: opening a FIFO would block the event loop.
        let metadata = fs::metadata(&file).map_err(|_| Refusal::NotFound)?;
        if !metadata.is_file() {
            return Err(Refusal::NotFound);
        }
        if metadata.len() > MAX_STATIC_FILE_BYTES {
            return Err(Refusal::TooLarge);
        }
        let modified = metadata.modified().ok().and_then(unix_seconds);
        if let Some(modified) = modified
            && not_modified_since(request, modified)
        {
            let mut response = Response {
                status: 304,
                headers: Vec::new(),
                body: Vec::new(),
            };
            response
                .header("X-Content-Type-Options", "nosniff")
                .header("Cache-Control", "no-cache")
                .header("Last-Modified", http_date(modified));
            return Ok(response);
        }
        let body = read_limited(&file, metadata.len())?;
        let mut response = Response::new(200, &content_type(&file), body);
        response
            .header("X-Content-Type-Options", "nosniff")
            .header("Cache-Control", "no-cache");
        if let Some(modified) = modified {
            response.header("Last-Modified", http_date(modified));
        }
        Ok(response)
    }

    /// The canonical form of `path`, if it exists and lies inside the root.
    fn contain(&self, path: &Path) -> Result<PathBuf, Refusal> {
        let canonical = fs::canonicalize(path).map_err(|_| Refusal::NotFound)?;
        // `starts_with` compares whole components: `/srv/www2` is not inside `/srv/www`.
        if canonical.starts_with(&self.root) {
            Ok(canonical)
        } else {
            Err(Refusal::NotFound)
        }
    }
}

/// Why a request for a static file is refused. The bodies are short and never name a
/// filesystem path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 400: the target is not a path that decodes to a UTF-8 string without NUL.
    BadRequest(&'static str),
    /// 404: missing, outside the root, not a regular file, unreadable, or a traversal
    /// attempt. One body for all of them, so none can be told from another.
    NotFound,
    /// 404: a directory inside the root without `index.html`.
    NoIndex,
    /// 403: larger than [`MAX_STATIC_FILE_BYTES`].
    TooLarge,
}

impl Refusal {
    fn response(self) -> Response {
        let (status, reason) = match self {
            Refusal::BadRequest(reason) => (400, reason),
            Refusal::NotFound => (404, "not found\n"),
            Refusal::NoIndex => (404, "not found: this directory has no index.html\n"),
            Refusal::TooLarge => (403, "file too large to serve\n"),
        };
        let mut response = Response::text(status, reason.to_owned());
        response.header("X-Content-Type-Options", "nosniff");
        response
    }
}

/// Decodes a request path into the file-name segments to join onto the root, and
/// whether it ends with a slash (after decoding).
fn decode_path(path: &str) -> Result<(Vec<String>, bool), Refusal> {
    if !path.starts_with('/') {
        return Err(Refusal::BadRequest(
            "the request target must be a path starting with /\n",
        ));
    }
    // Decoded exactly once; see the module documentation.
    let bytes: Vec<u8> = percent_decode_str(path).collect();
    if bytes.contains(&0) {
        return Err(Refusal::BadRequest("the path contains a NUL byte\n"));
    }
    let decoded = String::from_utf8(bytes)
        .map_err(|_| Refusal::BadRequest("the path is not UTF-8 once percent-decoded\n"))?;
    let mut segments = Vec::new();
    for segment in decoded.split('/') {
        if segment.is_empty() || segment == "." {
            continue;
        }
        // `..` is refused here; the same test refuses whatever else the platform would
        // not read as one plain name (a `C:` prefix or a `\` separator on Windows).
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            // Hidden files and folders (`.git/`, `.env`) are someone's working files,
            // not the site: refused, except `.well-known/` (RFC 8615), which is meant
            // to be served.
            _ if segment.starts_with('.') && segment != ".well-known" => {
                return Err(Refusal::NotFound);
            }
            (Some(Component::Normal(name)), None) if name == segment => {
                segments.push(segment.to_owned());
            }
            _ => return Err(Refusal::NotFound),
        }
    }
    Ok((segments, decoded.ends_with('/')))
}

/// 301 to the directory's slash form. The `Location` is rebuilt from the decoded
/// segments, so it starts with exactly one `/` whatever the client sent; the query
/// string, if any, is kept.
fn redirect_to_directory(segments: &[String], target: &str) -> Response {
    let mut location = String::from("/");
    for segment in segments {
        location.extend(utf8_percent_encode(segment, SEGMENT));
        location.push('/');
    }
    if let Some((_, query)) = target.split_once('?') {
        location.push('?');
        location.push_str(query);
    }
    let mut response = Response::text(301, format!("moved to {location}\n"));
    response
        .header("Location", location)
        .header("X-Content-Type-Options", "nosniff");
    response
}

/// Reads a file of `expected` bytes whole, refusing it if it has grown past the limit
/// since its size was checked. Any error reading it is a 404.
fn read_limited(path: &Path, expected: u64) -> Result<Vec<u8>, Refusal> {
    let file = File::open(path).map_err(|_| Refusal::NotFound)?;
    let capacity = usize::try_from(expected).map_err(|_| Refusal::TooLarge)?;
    let mut body = Vec::with_capacity(capacity);
    file.take(MAX_STATIC_FILE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|_| Refusal::NotFound)?;
    if body.len() as u64 > MAX_STATIC_FILE_BYTES {
        return Err(Refusal::TooLarge);
    }
    Ok(body)
}

/// The `Content-Type` for a file, from its extension.
fn content_type(path: &Path) -> String {
    let Some(mime) = mime_guess::from_path(path).first() else {
        return "application/octet-stream".to_owned();
    };
    let text = mime.type_().as_str() == "text"
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "ecmascript" | "json" | "xml"
        )
        || mime
            .suffix()
            .is_some_and(|suffix| matches!(suffix.as_str(), "json" | "xml"));
    if text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

/// Whether the request's `If-Modified-Since` says the client has the version last
/// modified at `modified` (seconds since the epoch) or a later one. An absent,
/// unparseable or future date says no.
fn not_modified_since(request: &Request, modified: u64) -> bool {
    let Some(since) = request
        .header("if-modified-since")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(parse_http_date)
    else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    since <= now && modified <= since
}

/// Whole seconds since the Unix epoch; `None` for a time before it.
fn unix_seconds(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date in the preferred IMF-fixdate form (RFC 9110 §5.6.7), such as
/// `Sun, 06 Nov 1994 08:49:37 GMT`, from seconds since the epoch.
fn http_date(seconds: u64) -> String {
    let days = seconds / 86_400;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1 January 1970 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// Seconds since the epoch from an HTTP-date in any of the three forms a recipient must
/// accept (RFC 9110 §5.6.7): IMF-fixdate, the obsolete RFC 850 form and asctime. The
/// weekday is required but not checked. An RFC 850 two-digit year is read as 1970–2069.
fn parse_http_date(text: &str) -> Option<u64> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let (day, month, year, time) = match fields.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        // Sunday, 06-Nov-94 08:49:37 GMT
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || year.len() != 2 {
                return None;
            }
            let year: u64 = year.parse().ok()?;
            let year = if year < 70 { 2000 + year } else { 1900 + year };
            (day.parse().ok()?, month, year, *time)
        }
        // Sun Nov  6 08:49:37 1994
        [_weekday, month, day, time, year] => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        _ => return None,
    };
    let month = MONTHS.iter().position(|&m| m == month)? as u64 + 1;
    let mut clock = time.split(':');
    let (hour, minute, second) = (clock.next()?, clock.next()?, clock.next()?);
    if clock.next().is_some() || [hour, minute, second].iter().any(|f| f.len() != 2) {
        return None;
    }
    let (hour, minute, second): (u64, u64, u64) = (
        hour.parse().ok()?,
        minute.parse().ok()?,
        second.parse().ok()?,
    );
    // A leap second (60) is allowed by the grammar; it counts as the next second.
    if year < 1970 || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a date on or after it (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Year, month (1–12) and day (1–31) of a count of days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

    const SECRET: &str = "TOP-SECRET-7f3a9c-do-not-serve";
    /// 1994-11-06 08:49:37 UTC, the example date of RFC 9110.
    const MTIME: u64 = 784_111_777;

    /// A temporary directory holding `secret.txt` and, next to it, the served `public/`.
    struct Site {
        dir: TempDir,
        files: StaticFiles,
    }

    impl Site {
        fn new() -> Site {
            let dir = tempfile::tempdir().unwrap();
            let top = dir.path();
            fs::write(top.join("secret.txt"), SECRET).unwrap();
            let public = top.join("public");
            for folder in ["sub/deeper", "empty", "docs", "a b"] {
                fs::create_dir_all(public.join(folder)).unwrap();
            }
            let write =
                |name: &str, contents: &str| fs::write(public.join(name), contents).unwrap();
            write("index.html", "<h1>home</h1>");
            write("style.css", "body {}");
            write("app.js", "console.log(1)");
            write("logo.png", "\u{89}PNG");
            write("icon.svg", "<svg/>");
            write("data.json", "{}");
            write("blob.qqqzz", "?");
            write("README", "readme");
            write("sub/deeper/page.html", "<p>deep</p>");
            write("empty/notes.txt", "notes");
            write("docs/index.html", "<h1>docs</h1>");
            write("a b/index.html", "spaced");
            write("back\\slash.txt", "backslash");
            symlink(top.join("secret.txt"), public.join("link-out.txt")).unwrap();
            symlink("../secret.txt", public.join("relative-out.txt")).unwrap();
            symlink(top, public.join("dir-out")).unwrap();
            symlink("style.css", public.join("link-in.css")).unwrap();
            symlink("sub", public.join("sub-link")).unwrap();
            symlink("loop", public.join("loop")).unwrap();
            let files = StaticFiles::new(&public).unwrap();
            Site { dir, files }
        }

        fn public(&self) -> PathBuf {
            self.dir.path().join("public")
        }

        fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
            let request = Request {
                method: method.to_owned(),
                target: target.to_owned(),
                minor_version: 1,
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                    .collect(),
            };
            let response = self.files.respond(&request);
            assert!(
                !String::from_utf8_lossy(&response.body).contains(SECRET),
                "{method} {target} leaked the secret"
            );
            let as_text = format!("{response:?}");
            let top = self.dir.path().to_string_lossy().into_owned();
            assert!(
                !as_text.contains(&top),
                "{method} {target} named a filesystem path: {as_text}"
            );
            response
        }

        fn get(&self, target: &str) -> Response {
            self.request("GET", target, &[])
        }
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(response: &Response) -> &str {
        std::str::from_utf8(&response.body).unwrap()
    }

    fn set_mtime(path: &Path, seconds: u64) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
    }

    #[test]
    fn new_requires_an_existing_directory() {
        let site = Site::new();
        assert_eq!(site.files.root(), fs::canonicalize(site.public()).unwrap());
        let missing = StaticFiles::new(site.dir.path().join("nope")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(missing.to_string().contains("nope"), "{missing}");
        let file = StaticFiles::new(site.dir.path().join("secret.txt")).unwrap_err();
        assert_eq!(file.kind(), io::ErrorKind::NotADirectory);
        // A symlink to a directory is fine; its target becomes the root.
        let via_link = StaticFiles::new(site.public().join("sub-link")).unwrap();
        assert_eq!(via_link.root(), site.files.root().join("sub"));
    }

    #[test]
    fn serves_index_at_root_and_nested_files() {
        let site = Site::new();
        let index = site.get("/");
        assert_eq!(index.status, 200);
        assert_eq!(body(&index), "<h1>home</h1>");
        assert_eq!(
            header(&index, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&index, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&index, "cache-control"), Some("no-cache"));
        assert!(header(&index, "last-modified").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(body(&site.get("/?q=1")), "<h1>home</h1>");
        assert_eq!(body(&site.get("/index.html")), "<h1>home</h1>");
        let deep = site.get("/sub/deeper/page.html");
        assert_eq!((deep.status, body(&deep)), (200, "<p>deep</p>"));
        assert_eq!(
            body(&site.get("/sub/deeper/page.html?x=/../..")),
            "<p>deep</p>"
        );
        assert_eq!(body(&site.get("//sub//./deeper/page.html")), "<p>deep</p>");
        assert_eq!(body(&site.get("/sub%2Fdeeper%2fpage.html")), "<p>deep</p>");
        assert_eq!(body(&site.get("/docs/")), "<h1>docs</h1>");
        assert_eq!(body(&site.get("/a%20b/")), "spaced");
        assert_eq!(body(&site.get("/back%5Cslash.txt")), "backslash");
        assert_eq!(body(&site.get("/back\\slash.txt")), "backslash");
    }

    #[test]
    fn content_types() {
        let site = Site::new();
        for (target, expected) in [
            ("/index.html", "text/html; charset=utf-8"),
            ("/style.css", "text/css; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/data.json", "application/json; charset=utf-8"),
            ("/logo.png", "image/png"),
            ("/icon.svg", "image/svg+xml; charset=utf-8"),
            ("/blob.qqqzz", "application/octet-stream"),
            ("/README", "application/octet-stream"),
            ("/link-in.css", "text/css; charset=utf-8"),
        ] {
            let response = site.get(target);
            assert_eq!(response.status, 200, "{target}");
            assert_eq!(
                header(&response, "content-type"),
                Some(expected),
                "{target}"
            );
        }
        assert_eq!(
            content_type(Path::new("x.mjs")),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("feed.atom")),
            "application/atom+xml; charset=utf-8"
        );
    }

    #[test]
    fn missing_and_unservable_are_404() {
        let site = Site::new();
        for target in [
            "/nope.html",
            "/sub/nope",
            "/style.css/",
            "/index.html/x",
            "/loop",
            "/empty/notes.txt/",
        ] {
            let response = site.get(target);
            assert_eq!(
                (response.status, body(&response)),
                (404, "not found\n"),
                "{target}"
            );
            assert_eq!(
                header(&response, "content-type"),
                Some("text/plain; charset=utf-8")
            );
        }
    }

    #[test]
    fn directory_without_index_is_404_without_listing() {
        let site = Site::new();
        for target in ["/empty/", "/sub/", "/sub/deeper/"] {
            let response = site.get(target);
            assert_eq!(response.status, 404, "{target}");
            assert!(!body(&response).contains("notes"), "{target}");
            assert!(!body(&response).contains("page"), "{target}");
        }
    }

    #[test]
    fn directory_without_slash_redirects_to_the_slash_form() {
        let site = Site::new();
        for (target, location) in [
            ("/docs", "/docs/"),
            ("/docs?lang=en", "/docs/?lang=en"),
            ("//docs", "/docs/"),
            ("/%2fdocs", "/docs/"),
            ("/./docs", "/docs/"),
            ("/a%20b", "/a%20b/"),
            ("/sub/deeper", "/sub/deeper/"),
            ("/empty", "/empty/"),
        ] {
            let response = site.get(target);
            assert_eq!(response.status, 301, "{target}");
            assert_eq!(header(&response, "location"), Some(location), "{target}");
        }
        assert_eq!(reason_phrase_of(301), "Moved Permanently");
    }

    fn reason_phrase_of(status: u16) -> &'static str {
        crate::http::response::reason_phrase(status)
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let site = Site::new();
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            for target in ["/", "/style.css", "/../secret.txt"] {
                let response = site.request(method, target, &[]);
                assert_eq!(response.status, 405, "{method} {target}");
                assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
            }
        }
        assert_eq!(site.request("OPTIONS", "*", &[]).status, 405);
    }

    #[test]
    fn head_is_answered_like_get() {
        let site = Site::new();
        for target in [
            "/",
            "/style.css",
            "/nope",
            "/docs",
            "/%00",
            "/../secret.txt",
        ] {
            let get = site.request("GET", target, &[]);
            let head = site.request("HEAD", target, &[]);
            assert_eq!(head, get, "{target}");
        }
        let head = site.request("HEAD", "/style.css", &[]);
        assert_eq!(head.body, b"body {}");
        assert!(
            String::from_utf8(head.encode(true, true))
                .unwrap()
                .contains("Content-Length: 7\r\n")
        );
    }

    #[test]
    fn hidden_files_are_404_but_well_known_is_served() {
        let site = Site::new();
        let public = site.public();
        fs::create_dir_all(public.join(".git")).unwrap();
        fs::create_dir_all(public.join(".well-known")).unwrap();
        fs::write(public.join(".env"), "TOKEN=1").unwrap();
        fs::write(public.join(".git/config"), "[core]").unwrap();
        fs::write(public.join(".well-known/security.txt"), "Contact: x").unwrap();
        for target in ["/.env", "/.git/config", "/%2eenv", "/sub/../.env", "/.git/"] {
            assert_eq!(site.get(target).status, 404, "{target}");
        }
        let known = site.get("/.well-known/security.txt");
        assert_eq!(
            (known.status, known.body.as_slice()),
            (200, &b"Contact: x"[..])
        );
    }

    #[test]
    fn every_traversal_form_is_404() {
        let site = Site::new();
        let top = site.dir.path().to_str().unwrap().to_owned();
        let encoded_top = top.replace('/', "%2f");
        let mut targets = vec![
            "/../secret.txt".to_owned(),
            "/..".to_owned(),
            "/../".to_owned(),
            "/a/../../secret.txt".to_owned(),
            "/sub/../../secret.txt".to_owned(),
            "/sub/../index.html".to_owned(),
            "/%2e%2e/secret.txt".to_owned(),
            "/%2E%2E/secret.txt".to_owned(),
            "/%2E%2E%2Fsecret.txt".to_owned(),
            "/..%2fsecret.txt".to_owned(),
            "/..%2Fsecret.txt".to_owned(),
            "/.%2e/secret.txt".to_owned(),
            "/%2e./secret.txt".to_owned(),
            "/sub%2f..%2f..%2fsecret.txt".to_owned(),
            "/%252e%252e/secret.txt".to_owned(),
            "/%252e%252e%252fsecret.txt".to_owned(),
            "/..%5csecret.txt".to_owned(),
            "/..\\secret.txt".to_owned(),
            "/sub/..%5c..%5csecret.txt".to_owned(),
            "//etc/passwd".to_owned(),
            "/%2fetc%2fpasswd".to_owned(),
            "/etc/passwd".to_owned(),
            format!("/{top}/secret.txt"),
            format!("/{encoded_top}%2fsecret.txt"),
            format!("{top}/secret.txt"),
            "/link-out.txt".to_owned(),
            "/relative-out.txt".to_owned(),
            "/dir-out".to_owned(),
            "/dir-out/".to_owned(),
            "/dir-out/secret.txt".to_owned(),
        ];
        targets.extend(["/x/..", "/x/../.."].map(str::to_owned));
        // Out through a symlink and back in: the canonical path is inside, so it is served.
        assert_eq!(
            body(&site.get("/dir-out/public/index.html")),
            "<h1>home</h1>"
        );
        for target in &targets {
            let response = site.get(target);
            assert_eq!(
                (response.status, body(&response)),
                (404, "not found\n"),
                "{target}"
            );
        }
    }

    #[test]
    fn double_encoding_is_decoded_once() {
        let site = Site::new();
        assert_eq!(site.get("/%252e%252e/x").status, 404);
        // Proof that it was read as the literal name `%2e%2e`, not as `..`.
        fs::create_dir(site.public().join("%2e%2e")).unwrap();
        fs::write(site.public().join("%2e%2e/x"), "literal").unwrap();
        let literal = site.get("/%252e%252e/x");
        assert_eq!((literal.status, body(&literal)), (200, "literal"));
        assert_eq!(site.get("/%2e%2e/x").status, 404);
        let redirect = site.get("/%252e%252e");
        assert_eq!(header(&redirect, "location"), Some("/%252e%252e/"));
    }

    #[test]
    fn bad_targets_are_400() {
        let site = Site::new();
        for target in [
            "/%00",
            "/a%00.html",
            "/index.html%00.png",
            "/%ff",
            "/%c3%28",
        ] {
            let response = site.get(target);
            assert_eq!(response.status, 400, "{target}");
        }
        for target in ["*", "http://example.com/", "index.html", ""] {
            assert_eq!(site.get(target).status, 400, "{target:?}");
        }
        // A malformed escape is not decoded; it is part of a name that does not exist.
        assert_eq!(site.get("/%zz").status, 404);
    }

    #[test]
    fn symlinks_inside_the_root_are_followed() {
        let site = Site::new();
        let linked = site.get("/link-in.css");
        assert_eq!((linked.status, body(&linked)), (200, "body {}"));
        let deep = site.get("/sub-link/deeper/page.html");
        assert_eq!((deep.status, body(&deep)), (200, "<p>deep</p>"));
    }

    #[test]
    fn root_behind_a_symlink_still_confines() {
        let site = Site::new();
        symlink(site.public(), site.dir.path().join("www")).unwrap();
        let files = StaticFiles::new(site.dir.path().join("www")).unwrap();
        let request = |target: &str| Request {
            method: "GET".to_owned(),
            target: target.to_owned(),
            minor_version: 1,
            headers: Vec::new(),
        };
        assert_eq!(files.respond(&request("/style.css")).status, 200);
        for target in ["/../secret.txt", "/link-out.txt", "/dir-out/secret.txt"] {
            let response = files.respond(&request(target));
            assert_eq!(response.status, 404, "{target}");
            assert!(!body(&response).contains(SECRET));
        }
    }

    #[test]
    fn sibling_with_a_common_prefix_is_outside() {
        let site = Site::new();
        let sibling = site.dir.path().join("public2");
        fs::create_dir(&sibling).unwrap();
        fs::write(sibling.join("f.txt"), SECRET).unwrap();
        symlink(sibling.join("f.txt"), site.public().join("prefix.txt")).unwrap();
        assert_eq!(site.get("/prefix.txt").status, 404);
    }

    #[test]
    fn fifo_is_404_without_blocking() {
        let site = Site::new();
        let made = std::process::Command::new("mkfifo")
            .arg(site.public().join("pipe"))
            .status();
        if !made.is_ok_and(|status| status.success()) {
            return; // no mkfifo here
        }
        assert_eq!(site.get("/pipe").status, 404);
    }

    #[test]
    fn unreadable_file_is_404() {
        use std::os::unix::fs::PermissionsExt;
        let site = Site::new();
        let path = site.public().join("locked.txt");
        fs::write(&path, "locked").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(&path).is_ok() {
            return; // running as root: permissions do not stop the read
        }
        let response = site.get("/locked.txt");
        assert_eq!((response.status, body(&response)), (404, "not found\n"));
    }

    #[test]
    fn too_large_is_403() {
        let site = Site::new();
        let big = File::create(site.public().join("big.bin")).unwrap();
        big.set_len(MAX_STATIC_FILE_BYTES + 1).unwrap(); // sparse; never read
        let response = site.get("/big.bin");
        assert_eq!(
            (response.status, body(&response)),
            (403, "file too large to serve\n")
        );
        big.set_len(MAX_STATIC_FILE_BYTES).unwrap();
        assert_eq!(
            read_limited(&site.public().join("big.bin"), 0).map(|b| b.len()),
            Ok(MAX_STATIC_FILE_BYTES as usize)
        );
    }

    #[test]
    fn if_modified_since() {
        let site = Site::new();
        set_mtime(&site.public().join("style.css"), MTIME);
        let fresh = site.get("/style.css");
        assert_eq!(
            header(&fresh, "last-modified"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        let ims = |value: &str| site.request("GET", "/style.css", &[("If-Modified-Since", value)]);
        for same_or_later in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:38 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Thu, 01 Jan 2015 00:00:00 GMT",
        ] {
            let response = ims(same_or_later);
            assert_eq!(response.status, 304, "{same_or_later}");
            assert!(response.body.is_empty());
            assert_eq!(
                header(&response, "last-modified"),
                Some("Sun, 06 Nov 1994 08:49:37 GMT")
            );
            assert_eq!(header(&response, "cache-control"), Some("no-cache"));
            let head = site.request(
                "HEAD",
                "/style.css",
                &[("if-modified-since", same_or_later)],
            );
            assert_eq!(head, response);
        }
        for older_or_ignored in [
            "Sun, 06 Nov 1994 08:49:36 GMT",
            "Sat, 05 Nov 1994 08:49:37 GMT",
            "yesterday",
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 2015 00:00:00 GMT",
            "Fri, 01 Jan 9999 00:00:00 GMT", // in the future: ignored
        ] {
            let response = ims(older_or_ignored);
            assert_eq!(
                (response.status, body(&response)),
                (200, "body {}"),
                "{older_or_ignored:?}"
            );
        }
        // The file's sub-second part does not make it newer than its own Last-Modified.
        let path = site.public().join("app.js");
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_millis(MTIME * 1000 + 900))
            .unwrap();
        let response = site.request(
            "GET",
            "/app.js",
            &[("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")],
        );
        assert_eq!(response.status, 304);
    }

    #[test]
    fn http_dates() {
        for (seconds, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (MTIME, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        ] {
            assert_eq!(http_date(seconds), text);
            assert_eq!(parse_http_date(text), Some(seconds), "{text}");
        }
        // Every day for three centuries round-trips.
        for day in 0..(300 * 366) {
            let seconds = day * 86_400 + 45_296;
            assert_eq!(parse_http_date(&http_date(seconds)), Some(seconds));
        }
        assert_eq!(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Thu Jan  1 00:00:00 1970"), Some(0));
        assert_eq!(
            parse_http_date("Tuesday, 29-Feb-00 00:00:00 GMT"),
            Some(951_782_400)
        );
        for bad in [
            "Thu, 01 Jan 1969 23:59:59 GMT",
            "Thu, 01 Jan 1970 24:00:00 GMT",
            "Thu, 01 Jan 1970 0:00:00 GMT",
            "Thu, 01 Foo 1970 00:00:00 GMT",
            "Thu, 00 Jan 1970 00:00:00 GMT",
            "Thu, 29 Feb 2100 00:00:00 GMT",
            "Thu 01 Jan 1970 00:00:00 GMT",
            "Thursday, 01-Jan-1970 00:00:00 GMT",
            "Thu, 01 Jan 1970 00:00 GMT",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_secret_never_appears() {
        // Every request above already checks this; here, a sweep of methods, targets and
        // conditional headers together.
        let site = Site::new();
        let top = site.dir.path().to_str().unwrap().to_owned();
        let targets = [
            "/secret.txt".to_owned(),
            "/../secret.txt".to_owned(),
            "/%2e%2e/secret.txt".to_owned(),
            "/dir-out/secret.txt".to_owned(),
            "/link-out.txt".to_owned(),
            "/relative-out.txt".to_owned(),
            format!("/{top}/secret.txt"),
            format!("/{}", top.replace('/', "%2F")),
        ];
        for method in ["GET", "HEAD", "POST"] {
            for target in &targets {
                for headers in [
                    &[][..],
                    &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
                ] {
                    let response = site.request(method, target, headers);
                    assert_ne!(response.status, 200, "{method} {target}");
                }
            }
        }
    }
}
