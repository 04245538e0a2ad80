//! The report's sections: each reads its raw results and gives the figure (SVG) and the
//! table that go between its markers in docs/REPORT.md. Every number shown is read or
//! computed here from the files named in the section's source line.

use super::charts::{self, BUN, BarPanel, LOOPCHAT, LinePanel, OTHER, REFERENCE, Series, WS};
use super::inputs::{Folders, json, json_lines, meta_in, num, provenance};
use plotters::style::RGBColor;
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// One section's generated part.
#[derive(Debug, Clone)]
pub struct Section {
    /// The name in its markers, `<!-- report:NAME:begin -->`.
    pub name: &'static str,
    /// The document the markers are in, from the repository's root: docs/REPORT.md, or
    /// docs/SCALING.md for the model of workers on more cores. Sections of one document
    /// come one after another in [`all`].
    pub document: &'static str,
    /// The Markdown between the markers.
    pub markdown: String,
    /// Its figures: a file name under docs/report/ and the SVG text.
    pub figures: Vec<(String, String)>,
}

type Result<T> = std::result::Result<T, String>;

/// Every section, in the report's order.
pub fn all(folders: &Folders) -> Result<Vec<Section>> {
    Ok(vec![
        corking(folders)?,
        clients(folders)?,
        memory(folders)?,
        stalled(folders)?,
        compression(folders)?,
        tls(folders)?,
        redis_hop(folders)?,
        workers(folders)?,
        workers_model(folders)?,
    ])
}

/// The peers of docs/BENCHMARKS.md, in its order: file name, name shown, colour.
const SERVERS: [(&str, &str, RGBColor); 3] = [
    ("loopchat", "loopchat", LOOPCHAT),
    ("ws", "Node ws", WS),
    ("bun", "Bun", BUN),
];

// ---------------------------------------------------------------------------------------

fn corking(f: &Folders) -> Result<Section> {
    let dir = &f.experiments;
    // The floor was measured more than once (before and after the corking runs): its
    // line is the mean at each K, and the table shows every run.
    let floors: Vec<Value> = numbered_files(dir, "write-floor.", ".json")?
        .into_iter()
        .map(|(_, name)| json(&dir.join(name)))
        .collect::<Result<_>>()?;
    let floor = floors.first().cloned().unwrap_or_default();
    let per_frame = |k: f64| -> Vec<f64> {
        floors
            .iter()
            .flat_map(|f| array(f, "points").iter())
            .filter(|p| num(p, "frames_per_write") == Some(k))
            .filter_map(|p| num(p, "cpu_ns_per_frame"))
            .collect()
    };
    let mut ks: Vec<f64> = array(&floor, "points")
        .iter()
        .filter_map(|p| num(p, "frames_per_write"))
        .collect();
    ks.sort_by(f64::total_cmp);
    let floor_points: Vec<(f64, f64)> = ks
        .iter()
        .filter_map(|&k| {
            let runs = per_frame(k);
            (!runs.is_empty()).then(|| (k, runs.iter().sum::<f64>() / runs.len() as f64))
        })
        .collect();

    let mut rows = Vec::new();
    let mut first_run = None;
    for (window, name) in numbered_files(dir, "corking.w", ".json")? {
        let bench = json(&dir.join(&name))?;
        // The server's own count over the measured window (`loopchat bench
        // --server-stats`), the same window as its CPU time.
        let frames_per_write = num(&bench, "server_counters.frames_per_write");
        let cpu = num(&bench, "server.cpu_ns_per_delivery");
        rows.push(CorkingRow {
            window,
            frames_per_write,
            cpu,
            floor: frames_per_write.and_then(|k| log_interpolate(&floor_points, k)),
            deliveries_per_s: num(&bench, "deliveries_per_s"),
            p99_us: num(&bench, "latency_us.p99"),
            lost: num(&bench, "lost"),
        });
        first_run.get_or_insert(bench);
    }
    let first_run = first_run.unwrap_or_default();
    let windows = match (rows.first(), rows.last()) {
        (Some(a), Some(b)) => format!("window {} to {}", a.window, b.window),
        _ => "no runs".to_owned(),
    };
    let measured: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r.frames_per_write?, r.cpu?)))
        .collect();
    let svg = charts::lines(
        "Corking: server CPU per delivery against frames per write",
        &[LinePanel {
            caption: format!("broadcast, {}; {windows}", load_of(&first_run)),
            x_desc: "frames per write (log)".into(),
            y_desc: "CPU per delivery, ns (log)".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series {
                    name: "loopchat server".into(),
                    color: LOOPCHAT,
                    points: measured,
                    reference: false,
                },
                Series {
                    name: "floor: K frames a write, nothing else (mean of runs)".into(),
                    color: REFERENCE,
                    points: floor_points.clone(),
                    reference: true,
                },
            ],
        }],
    )?;

    let mut md = figure(
        "corking.svg",
        "Server CPU per delivery against frames per write",
    );
    md.push_str(
        "| window | frames per write | server CPU per delivery | floor at that many frames \
         per write | × floor | deliveries/s | p99 latency | lost |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.window,
            opt(r.frames_per_write, |v| format!("{v:.1}")),
            opt(r.cpu, ns),
            opt(r.floor, ns),
            opt(ratio(r.cpu, r.floor), |v| format!("{v:.2}×")),
            opt(r.deliveries_per_s, rate),
            opt(r.p99_us, micros),
            opt(r.lost, count),
        );
    }
    let _ = writeln!(
        md,
        "\nThe floor, measured alone, {} times (`write-floor.N.json`): CPU per write in \
         each run, and per frame (their mean, the line drawn):\n",
        floors.len()
    );
    md.push_str("| frames per write | bytes per write |");
    for n in 1..=floors.len() {
        let _ = write!(md, " CPU per write, run {n} |");
    }
    md.push_str(" CPU per frame |\n|---:|---:|");
    md.push_str(&"---:|".repeat(floors.len() + 1));
    md.push('\n');
    for &(k, mean) in &floor_points {
        let point = |f: &Value| {
            array(f, "points")
                .iter()
                .find(|p| num(p, "frames_per_write") == Some(k))
                .cloned()
                .unwrap_or_default()
        };
        let _ = write!(
            md,
            "| {} | {} |",
            count(k),
            opt(num(&point(&floor), "write_bytes"), count)
        );
        for f in &floors {
            let _ = write!(md, " {} |", opt(num(&point(f), "cpu_ns_per_write"), ns));
        }
        let _ = writeln!(md, " {} |", ns(mean));
    }
    let pinned = match (num(&floor, "writer_cpu"), num(&floor, "reader_cpu")) {
        (Some(w), Some(r)) => {
            format!("the writer pinned to CPU {w:.0} and the reader to CPU {r:.0}")
        }
        _ => "the threads not pinned".to_owned(),
    };
    let _ = write!(
        md,
        "\nFrames per write is the server's count of deliveries ÷ writes over the measured \
         window (`server_counters`). The floor wrote to {} connections in turn, {pinned}. \
         Source: {}.\n",
        opt(num(&floor, "connections"), count),
        provenance(
            dir,
            "docs/report/results/corking.w*.json, write-floor.*.json"
        ),
    );
    Ok(section("corking", md, svg))
}

struct CorkingRow {
    window: u64,
    frames_per_write: Option<f64>,
    cpu: Option<f64>,
    floor: Option<f64>,
    deliveries_per_s: Option<f64>,
    p99_us: Option<f64>,
    lost: Option<f64>,
}

// ---------------------------------------------------------------------------------------

fn clients(f: &Folders) -> Result<Section> {
    let dir = &f.compare;
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    let mut table: Vec<(f64, Vec<String>)> = Vec::new();
    let mut first_point = Value::Null;
    for (i, (file, title, color)) in SERVERS.iter().enumerate() {
        let sweep = json(&dir.join(format!("sweep.{file}.json")))?;
        let points = array(&sweep, "points");
        if first_point.is_null()
            && let Some(p) = points.first()
        {
            first_point = p.clone();
        }
        let series = |key: &str| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter_map(|p| Some((num(p, "clients")?, num(p, key)?)))
                .collect()
        };
        throughput.push(line(title, *color, series("deliveries_per_s")));
        latency.push(line(title, *color, series("latency_us.p99")));
        for p in points {
            let Some(c) = num(p, "clients") else { continue };
            let row = match table.iter().position(|(k, _)| *k == c) {
                Some(at) => at,
                None => {
                    table.push((c, vec!["—".into(); SERVERS.len() * 2]));
                    table.len() - 1
                }
            };
            let cells = &mut table[row].1;
            cells[i] = opt(num(p, "deliveries_per_s"), rate);
            cells[SERVERS.len() + i] = with_loss(opt(num(p, "latency_us.p99"), micros), p);
        }
    }
    table.sort_by(|a, b| a.0.total_cmp(&b.0));
    let svg = charts::lines(
        "Clients against deliveries/s and p99 latency",
        &[
            LinePanel {
                caption: format!("deliveries per second ({})", load_of(&first_point)),
                x_desc: "clients (log)".into(),
                y_desc: "deliveries/s (log)".into(),
                log_x: true,
                log_y: true,
                series: throughput,
            },
            LinePanel {
                caption: "p99 latency".into(),
                x_desc: "clients (log)".into(),
                y_desc: "p99 latency, µs (log)".into(),
                log_x: true,
                log_y: true,
                series: latency,
            },
        ],
    )?;
    let mut md = figure(
        "clients.svg",
        "Deliveries/s and p99 latency against clients",
    );
    md.push_str("| clients |");
    for (_, title, _) in SERVERS {
        let _ = write!(md, " {title} deliveries/s |");
    }
    for (_, title, _) in SERVERS {
        let _ = write!(md, " {title} p99 |");
    }
    md.push_str("\n|---:|");
    md.push_str(&"---:|".repeat(SERVERS.len() * 2));
    md.push('\n');
    for (c, cells) in &table {
        let _ = writeln!(md, "| {} | {} |", count(*c), cells.join(" | "));
    }
    let _ = write!(
        md,
        "\nA p99 marked \\* is of a run that lost messages. Source: {}.\n",
        provenance(dir, "docs/bench/results/sweep.*.json")
    );
    Ok(section("clients", md, svg))
}

// ---------------------------------------------------------------------------------------

fn memory(f: &Folders) -> Result<Section> {
    let dir = &f.compare;
    let scenarios = [
        ("connections", "plain"),
        ("deflate-connections", "permessage-deflate"),
    ];
    let mut series = Vec::new();
    let mut held = None;
    let mut md = figure("memory.svg", "Server memory per idle connection");
    md.push_str(
        "| server | connections | bytes per idle connection | with permessage-deflate | \
         handshakes/s |\n|---|---:|---:|---:|---:|\n",
    );
    for (file, title, color) in SERVERS {
        let runs: Vec<Value> = scenarios
            .iter()
            .map(|(s, _)| json(&dir.join(format!("{s}.{file}.json"))))
            .collect::<Result<_>>()?;
        held = held.or(num(&runs[0], "connections.opened"));
        let per_connection: Vec<Option<f64>> = runs
            .iter()
            .map(|r| num(r, "connections.bytes_per_idle_connection"))
            .collect();
        let _ = writeln!(
            md,
            "| {title} | {} | {} | {} | {} |",
            opt(num(&runs[0], "connections.opened"), count),
            opt(per_connection[0], bytes),
            opt(per_connection[1], bytes),
            opt(num(&runs[0], "connections.handshakes_per_s"), rate),
        );
        series.push((title.to_owned(), color, per_connection));
    }
    let svg = charts::bars(
        "Server memory per idle WebSocket connection",
        &[BarPanel {
            caption: format!(
                "resident memory grown ÷ connections held (C={})",
                opt(held, count)
            ),
            y_desc: "bytes per connection".into(),
            log_y: false,
            groups: scenarios.iter().map(|(_, g)| (*g).to_owned()).collect(),
            series,
        }],
    )?;
    let _ = write!(
        md,
        "\nSource: {}.\n",
        provenance(
            dir,
            "docs/bench/results/connections.*.json, deflate-connections.*.json"
        )
    );
    Ok(section("memory", md, svg))
}

// ---------------------------------------------------------------------------------------

fn stalled(f: &Folders) -> Result<Section> {
    let dir = &f.experiments;
    let policies = [
        ("none", "no stalled reader (close)", REFERENCE),
        ("close", "--slow-consumer close", LOOPCHAT),
        ("drop", "--slow-consumer drop", OTHER),
    ];
    let limit = server_option(dir, "stalled", "close", "--max-outbound-bytes")
        .and_then(|v| v.parse::<f64>().ok());
    let (mut queue, mut rate_series, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let mut intervals = Vec::new();
    let mut md = figure(
        "stalled.svg",
        "A stalled reader under each slow-consumer policy",
    );
    md.push_str(
        "| stalled reader | closed (1008) after | its TCP connection dropped after | \
         messages dropped (server total) | largest queue, peak | server RSS, peak | others: \
         deliveries/s | others: p99 | others: lost | what the stalled reader found at the \
         end |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (policy, title, color) in policies {
        let samples = json_lines(&dir.join(format!("stalled.{policy}.samples.jsonl")))?;
        let bench = json(&dir.join(format!("stalled.{policy}.json")))?;
        let reader_path = dir.join(format!("stalled.{policy}.reader.json"));
        let reader = if policy == "none" {
            None
        } else {
            Some(json(&reader_path)?)
        };
        let at = |key: &str| -> Vec<(f64, f64)> {
            samples
                .iter()
                .filter_map(|s| Some((num(s, "t")?, num(s, key)?)))
                .collect()
        };
        let times: Vec<f64> = samples.iter().filter_map(|s| num(s, "t")).collect();
        intervals.extend(times.windows(2).map(|w| w[1] - w[0]));
        queue.push(line(
            title,
            color,
            at("largest_queue_bytes")
                .into_iter()
                .map(|(t, b)| (t, b / 1024.0))
                .collect(),
        ));
        let deliveries = at("totals.deliveries");
        rate_series.push(line(
            title,
            color,
            deliveries
                .windows(2)
                .filter(|w| w[1].0 > w[0].0)
                .map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0)))
                .collect(),
        ));
        let memory = at("rss_kib");
        rss.push(line(
            title,
            color,
            memory.iter().map(|&(t, k)| (t, k / 1024.0)).collect(),
        ));

        // A counter missing from a sample counts as zero, so that a missing first value
        // cannot make every later sample look like a change.
        let value = |sample: &Value, key: &str| num(sample, key).unwrap_or(0.0);
        let first_change = |key: &str| {
            let start = samples.first().map_or(0.0, |s| value(s, key));
            samples
                .iter()
                .find(|s| value(s, key) > start)
                .and_then(|s| num(s, "t"))
        };
        let closed_at = first_change("totals.slow_closed");
        let dropped_at = first_change("totals.close_timed_out");
        let dropped = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => {
                Some(value(b, "totals.dropped_messages") - value(a, "totals.dropped_messages"))
            }
            _ => None,
        };
        let peak = |series: &[(f64, f64)]| series.iter().map(|p| p.1).reduce(f64::max);
        let found = match &reader {
            None => "—".to_owned(),
            Some(r) => {
                let close = match num(r, "close_code") {
                    Some(code) => format!("a Close {code:.0}"),
                    None => "no Close".to_owned(),
                };
                let ended = match r.get("ended").and_then(Value::as_str) {
                    Some("closed") => ", then the end of the connection",
                    Some("reset") => ", then a reset",
                    Some("open") => ", and the connection still open",
                    _ => "",
                };
                format!(
                    "{} messages, {close}{ended}",
                    opt(num(r, "data_frames"), count)
                )
            }
        };
        let when = |at: Option<f64>| match (policy, at) {
            ("none", _) => "—".to_owned(),
            (_, Some(t)) => format!("{t:.1} s"),
            (_, None) => "never".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {title} | {} | {} | {} | {} | {} | {} | {} | {} | {found} |",
            when(closed_at),
            when(dropped_at),
            opt(dropped, count),
            opt(peak(&at("largest_queue_bytes")), bytes),
            opt(peak(&memory).map(|k| k * 1024.0), bytes),
            opt(num(&bench, "deliveries_per_s"), rate),
            opt(num(&bench, "latency_us.p99"), micros),
            opt(num(&bench, "lost"), count),
        );
    }
    intervals.sort_by(f64::total_cmp);
    let every = intervals.get(intervals.len() / 2).copied();
    let time = "seconds since sampling began";
    let svg = charts::lines(
        "A stalled reader under each slow-consumer policy",
        &[
            LinePanel {
                caption: format!(
                    "the largest output queue (the stalled reader's); limit {}",
                    opt(limit, bytes)
                ),
                x_desc: time.into(),
                y_desc: "KiB queued".into(),
                log_x: false,
                log_y: false,
                series: queue,
            },
            LinePanel {
                caption: "deliveries per second, all clients together".into(),
                x_desc: time.into(),
                y_desc: "deliveries/s".into(),
                log_x: false,
                log_y: false,
                series: rate_series,
            },
            LinePanel {
                caption: "server resident memory".into(),
                x_desc: time.into(),
                y_desc: "MiB".into(),
                log_x: false,
                log_y: false,
                series: rss,
            },
        ],
    )?;
    let _ = write!(
        md,
        "\nThe server's limit on each queue was {}; the load, {}. Times are those of the \
         first sample (one every {}) in which the server's counters had moved \
         (`slow_closed`, then `close_timed_out`), counted from the first sample, taken \
         once the stalled reader had connected and as the load generator began. \
         \"Others\" are the load generator's clients. Source: {}.\n",
        opt(limit, bytes),
        load_of(&json(&dir.join("stalled.none.json"))?),
        opt(every.map(|s| s * 1e3), |ms| format!("{ms:.0} ms")),
        provenance(dir, "docs/report/results/stalled.*")
    );
    Ok(section("stalled", md, svg))
}

/// The value of `option` in the server command that commands.tsv records for
/// `scenario` and `name` (`scenario<TAB>name<TAB>server<TAB>command`).
fn server_option(dir: &Path, scenario: &str, name: &str, option: &str) -> Option<String> {
    let tsv = fs::read_to_string(dir.join("commands.tsv")).ok()?;
    tsv.lines().find_map(|line| {
        let mut fields = line.splitn(4, '\t');
        let (s, n, kind, command) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if (s, n, kind) != (scenario, name, "server") {
            return None;
        }
        let mut words = command.split_whitespace();
        words.find(|w| *w == option)?;
        words.next().map(str::to_owned)
    })
}

// ---------------------------------------------------------------------------------------

fn compression(f: &Folders) -> Result<Section> {
    let dir = &f.compare;
    let scenarios = [
        ("deflate-plain", "no compression"),
        ("deflate", "permessage-deflate"),
    ];
    let groups: Vec<String> = scenarios.iter().map(|(_, g)| (*g).to_owned()).collect();
    let (mut cpu, mut wire, mut throughput) = (Vec::new(), Vec::new(), Vec::new());
    let mut first_run = Value::Null;
    let mut md = figure("compression.svg", "What permessage-deflate costs and saves");
    md.push_str(
        "| server | | deliveries/s | server CPU per delivery | bytes on the wire per \
         delivery | lost |\n|---|---|---:|---:|---:|---:|\n",
    );
    for (file, title, color) in SERVERS {
        let runs: Vec<Value> = scenarios
            .iter()
            .map(|(s, _)| json(&dir.join(format!("{s}.{file}.json"))))
            .collect::<Result<_>>()?;
        if first_run.is_null() {
            first_run = runs[0].clone();
        }
        let each = |key: &str| runs.iter().map(|r| num(r, key)).collect::<Vec<_>>();
        cpu.push((title.to_owned(), color, each("server.cpu_ns_per_delivery")));
        wire.push((
            title.to_owned(),
            color,
            each("wire_bytes_received_per_delivery"),
        ));
        throughput.push((title.to_owned(), color, each("deliveries_per_s")));
        for (run, (_, group)) in runs.iter().zip(scenarios) {
            let _ = writeln!(
                md,
                "| {title} | {group} | {} | {} | {} | {} |",
                opt(num(run, "deliveries_per_s"), rate),
                opt(num(run, "server.cpu_ns_per_delivery"), ns),
                opt(num(run, "wire_bytes_received_per_delivery"), bytes),
                opt(num(run, "lost"), count),
            );
        }
    }
    let title = format!(
        "permessage-deflate: broadcast of {} payloads, {}",
        first_run
            .get("payload")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        load_of(&first_run)
    );
    let svg = charts::bars(
        &title,
        &[
            BarPanel {
                caption: "deliveries per second".into(),
                y_desc: "deliveries/s (log)".into(),
                log_y: true,
                groups: groups.clone(),
                series: throughput,
            },
            BarPanel {
                caption: "server CPU per delivery".into(),
                y_desc: "ns (log)".into(),
                log_y: true,
                groups: groups.clone(),
                series: cpu,
            },
            BarPanel {
                caption: "bytes on the wire per delivery".into(),
                y_desc: "bytes".into(),
                log_y: false,
                groups,
                series: wire,
            },
        ],
    )?;
    let _ = write!(
        md,
        "\nSource: {}.\n",
        provenance(
            dir,
            "docs/bench/results/deflate-plain.*.json, deflate.*.json"
        )
    );
    Ok(section("compression", md, svg))
}

// ---------------------------------------------------------------------------------------

fn tls(f: &Folders) -> Result<Section> {
    let dir = &f.compare;
    // (plain scenario, TLS scenario, what is compared, its JSON field, how it is shown)
    type Show = fn(f64) -> String;
    let rows: [(&str, &str, &str, &str, Show); 5] = [
        (
            "broadcast",
            "tls-broadcast",
            "broadcast: deliveries/s",
            "deliveries_per_s",
            rate,
        ),
        (
            "broadcast",
            "tls-broadcast",
            "broadcast: server CPU per delivery",
            "server.cpu_ns_per_delivery",
            ns,
        ),
        (
            "echo",
            "tls-echo",
            "echo: round trips/s",
            "round_trips_per_s",
            rate,
        ),
        (
            "connections",
            "tls-connections",
            "idle connections: server memory per connection",
            "connections.bytes_per_idle_connection",
            bytes,
        ),
        (
            "connections",
            "tls-connections",
            "idle connections: handshakes/s",
            "connections.handshakes_per_s",
            rate,
        ),
    ];
    let servers = [("loopchat", "loopchat", LOOPCHAT), ("bun", "Bun", BUN)];
    let mut md = figure("tls.svg", "What TLS costs, loopchat beside Bun");
    md.push_str(
        "| | loopchat, plain | loopchat, TLS | TLS ÷ plain | Bun, plain | Bun, TLS | TLS ÷ \
         plain | loopchat ÷ Bun, TLS |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut panels = Vec::new();
    let mut first_run = Value::Null;
    for (plain, secure, what, field, show) in rows {
        let mut cells = Vec::new();
        let mut tls_values = Vec::new();
        let mut series = Vec::new();
        for (file, title, color) in servers {
            let a = json(&dir.join(format!("{plain}.{file}.json")))?;
            let b = json(&dir.join(format!("{secure}.{file}.json")))?;
            if first_run.is_null() && secure == "tls-broadcast" {
                first_run = b.clone();
            }
            let (x, y) = (num(&a, field), num(&b, field));
            cells.push(opt(x, show));
            cells.push(opt(y, show));
            cells.push(opt(ratio(y, x), |v| format!("{v:.2}×")));
            tls_values.push(y);
            series.push((title.to_owned(), color, vec![x, y]));
        }
        let versus = opt(ratio(tls_values[0], tls_values[1]), |v| format!("{v:.2}×"));
        let _ = writeln!(md, "| {what} | {} | {versus} |", cells.join(" | "));
        panels.push(BarPanel {
            caption: what.to_owned(),
            y_desc: what.rsplit(": ").next().unwrap_or(what).to_owned(),
            log_y: false,
            groups: vec!["plain".into(), "TLS".into()],
            series,
        });
    }
    // The figure shows throughput and memory; CPU per delivery and handshakes are in
    // the table.
    panels.remove(4);
    panels.remove(1);
    let svg = charts::bars(
        &format!(
            "TLS: loopchat and Bun, plain and over TLS ({})",
            load_of(&first_run)
        ),
        &panels,
    )?;
    let echo = json(&dir.join("tls-echo.loopchat.json"))?;
    let idle = json(&dir.join("tls-connections.loopchat.json"))?;
    let _ = write!(
        md,
        "\nBroadcast: {}; echo: C={}, window {}, {}; idle connections: C={}. Source: {}.\n",
        load_of(&first_run),
        opt(num(&echo, "clients"), count),
        opt(num(&echo, "window"), count),
        opt(num(&echo, "size"), bytes),
        opt(num(&idle, "connections.opened"), count),
        provenance(
            dir,
            "docs/bench/results/tls-*.json and their plain scenarios"
        )
    );
    Ok(section("tls", md, svg))
}

// ---------------------------------------------------------------------------------------

/// The CPU seconds of a run's threads over the sampled window: the workers' together,
/// and the chat hub's (`workers.NAME.threads.json`, from benches/thread_cpu.py). A
/// single loop runs on the main thread, named after the program.
fn thread_cpu(threads: &Value) -> (Option<f64>, Option<f64>, Option<f64>) {
    let window = num(threads, "window_s");
    let Some(all) = threads.get("threads").and_then(Value::as_object) else {
        return (window, None, None);
    };
    let mut workers = 0.0;
    let mut hub = None;
    for (name, cpu) in all {
        let cpu = cpu.as_f64().unwrap_or(0.0);
        if name == "lc-chat-hub" {
            hub = Some(cpu);
        } else if name.starts_with("lc-worker-") || all.len() == 1 {
            workers += cpu;
        }
    }
    (window, Some(workers), hub)
}

/// One run of the workers experiment, with the costs read from its threads' CPU.
struct WorkersRun {
    run: Value,
    /// The seconds the threads' CPU was sampled over.
    window: Option<f64>,
    /// The workers' CPU seconds in that window, and the hub thread's.
    worker_cpu: Option<f64>,
    hub_cpu: Option<f64>,
    /// Nanoseconds of the workers' CPU per delivery, and of the hub's per chat message.
    per_delivery: Option<f64>,
    per_message: Option<f64>,
}

/// The run `workers.NAME.json` and its `workers.NAME.threads.json`.
fn workers_run(dir: &Path, name: &str) -> Result<WorkersRun> {
    let run = json(&dir.join(format!("workers.{name}.json")))?;
    let threads = json(&dir.join(format!("workers.{name}.threads.json")))?;
    let (window, worker_cpu, hub_cpu) = thread_cpu(&threads);
    let deliveries = num(&run, "deliveries_per_s");
    let messages = num(&run, "rate")
        .zip(num(&run, "senders"))
        .map(|(r, s)| r * s);
    let per_delivery = worker_cpu
        .zip(window)
        .zip(deliveries)
        .map(|((cpu, w), d)| cpu / (w * d) * 1e9);
    let per_message = hub_cpu
        .zip(window)
        .zip(messages)
        .map(|((cpu, w), m)| cpu / (w * m) * 1e9);
    Ok(WorkersRun {
        run,
        window,
        worker_cpu,
        hub_cpu,
        per_delivery,
        per_message,
    })
}

fn workers(f: &Folders) -> Result<Section> {
    let dir = &f.experiments;
    let modes = [
        ("broadcast", "broadcast mode", LOOPCHAT),
        ("chat", "chat", REFERENCE),
        ("chat-light", "chat, light load", OTHER),
    ];
    let mut md = figure("workers.svg", "One worker and two, on two cores");
    md.push_str(
        "| setup | load | server CPUs | deliveries/s | p50 | p99 | lost | workers' CPU, \
         of one core | CPU per delivery, workers | hub thread's CPU, of one core | hub CPU \
         per message |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let (mut rates, mut p99s) = (Vec::new(), Vec::new());
    for (mode, title, color) in modes {
        let (mut rate_row, mut p99_row) = (Vec::new(), Vec::new());
        for n in [1, 2] {
            let w = workers_run(dir, &format!("{mode}-{n}"))?;
            let run = &w.run;
            let deliveries = num(run, "deliveries_per_s");
            let _ = writeln!(
                md,
                "| {mode}, {n} worker{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if n == 1 { "" } else { "s" },
                load_of(run),
                if n == 1 { "CPU 0" } else { "CPUs 0 and 1" },
                with_loss(opt(deliveries, rate), run),
                opt(num(run, "latency_us.p50"), micros),
                opt(num(run, "latency_us.p99"), micros),
                opt(num(run, "lost"), count),
                opt(ratio(w.worker_cpu, w.window), |v| format!(
                    "{:.0} %",
                    v * 100.0
                )),
                opt(w.per_delivery, ns),
                opt(ratio(w.hub_cpu, w.window), |v| format!(
                    "{:.0} %",
                    v * 100.0
                )),
                opt(w.per_message, ns),
            );
            rate_row.push(deliveries);
            p99_row.push(num(run, "latency_us.p99"));
        }
        rates.push((title.to_owned(), color, rate_row));
        p99s.push((title.to_owned(), color, p99_row));
    }
    let groups = vec!["1 worker".to_owned(), "2 workers".to_owned()];
    let svg = charts::bars(
        "Workers: one loop and two, on a two-core machine shared with the load generator",
        &[
            BarPanel {
                caption: "deliveries per second".into(),
                y_desc: "deliveries/s".into(),
                log_y: true,
                groups: groups.clone(),
                series: rates,
            },
            BarPanel {
                caption: "p99 latency, send to receipt".into(),
                y_desc: "µs".into(),
                log_y: true,
                groups,
                series: p99s,
            },
        ],
    )?;
    let _ = write!(
        md,
        "\nWhat more cores would give, as a model computed from these runs: \
         [SCALING.md](SCALING.md#workers-on-more-cores). Source: {}.\n",
        provenance(dir, "docs/report/results/workers.*.json")
    );
    Ok(section("workers", md, svg))
}

/// docs/SCALING.md's model of workers on more cores: K workers, each on a core of its
/// own, and the hub on one more, with the costs of the two-worker runs.
fn workers_model(f: &Folders) -> Result<Section> {
    let dir = &f.experiments;
    let broadcast = workers_run(dir, "broadcast-2")?;
    let chat = workers_run(dir, "chat-2")?;
    let clients = num(&chat.run, "clients");
    let mut md = format!(
        "Inputs, from the two-worker runs: the broadcast mode's workers spent {} of CPU per \
         delivery; the chat's workers {} per delivery, and its hub thread {} per message, \
         with {} clients in the room.\n\n| cores for workers | broadcast mode: deliveries/s \
         ceiling | chat, one room of that many clients: deliveries/s ceiling | the hub's own \
         ceiling, in deliveries/s |\n|---:|---:|---:|---:|\n",
        opt(broadcast.per_delivery, ns),
        opt(chat.per_delivery, ns),
        opt(chat.per_message, ns),
        opt(clients, count),
    );
    let hub = chat.per_message.zip(clients).map(|(ns, c)| c / ns * 1e9);
    for k in [2.0_f64, 8.0, 64.0] {
        let fan_out = |per: Option<f64>| per.map(|ns| k / ns * 1e9);
        let ceiling = match (fan_out(chat.per_delivery), hub) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let _ = writeln!(
            md,
            "| {k:.0} | {} | {} | {} |",
            opt(fan_out(broadcast.per_delivery), rate),
            opt(ceiling, rate),
            opt(hub, rate),
        );
    }
    let _ = write!(
        md,
        "\nComputed, not measured, by `loopchat lab report` from {}.\n",
        provenance(dir, "docs/report/results/workers.*-2.json")
    );
    Ok(Section {
        name: "workers-model",
        document: "docs/SCALING.md",
        markdown: md,
        figures: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------

fn redis_hop(f: &Folders) -> Result<Section> {
    let dir = &f.scaleout;
    let prefix = latest_scaleout_prefix(dir)?;
    let setups = [
        ("loopchat-1", "one loopchat, no Redis", REFERENCE),
        ("loopchat-2", "two loopchat + Redis", LOOPCHAT),
        ("socketio", "two Socket.IO + Redis adapter", OTHER),
    ];
    let (mut p99, mut cpu) = (Vec::new(), Vec::new());
    let mut clients = None;
    let mut md = figure("redis-hop.svg", "What the Redis hop costs");
    md.push_str(
        "| setup | messages/s | deliveries/s | p50 | p99 | lost | servers' CPU, of one core | \
         servers' CPU per delivery | Redis commands per message | load generator CPU |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (setup, title, color) in setups {
        let mut runs: Vec<Value> =
            numbered_files(dir, &format!("{prefix}.{setup}.step-"), ".json")?
                .into_iter()
                .map(|(_, name)| json(&dir.join(name)))
                .collect::<Result<_>>()?;
        runs.sort_by(|a, b| {
            num(a, "total_rate")
                .unwrap_or(0.0)
                .total_cmp(&num(b, "total_rate").unwrap_or(0.0))
        });
        clients = clients.or_else(|| runs.first().and_then(|r| num(r, "clients")));
        let at = |key: &str| -> Vec<(f64, f64)> {
            runs.iter()
                .filter_map(|r| Some((num(r, "total_rate")?, num(r, key)?)))
                .collect()
        };
        p99.push(line(title, color, at("latency_us.p99")));
        cpu.push(line(title, color, at("servers_window.cpu_ns_per_delivery")));
        for r in &runs {
            let _ = writeln!(
                md,
                "| {setup} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                opt(num(r, "total_rate"), count),
                opt(num(r, "deliveries_per_s"), rate),
                opt(num(r, "latency_us.p50"), micros),
                opt(num(r, "latency_us.p99"), micros),
                opt(num(r, "lost"), count),
                opt(
                    ratio(
                        num(r, "servers_window.cpu_s"),
                        num(r, "servers_window.window_s")
                    ),
                    |v| format!("{:.0} %", v * 100.0)
                ),
                opt(num(r, "servers_window.cpu_ns_per_delivery"), ns),
                opt(num(r, "redis.commands_per_message"), |v| format!("{v:.1}")),
                opt(num(r, "bench_cpu_pct"), |v| format!("{v:.0} %")),
            );
        }
    }
    let svg = charts::lines(
        &format!(
            "The Redis hop: one chat on two instances, C={} in one room",
            opt(clients, count)
        ),
        &[
            LinePanel {
                caption: "p99 latency, send to receipt".into(),
                x_desc: "chat messages per second, all senders (log)".into(),
                y_desc: "p99 latency, µs (log)".into(),
                log_x: true,
                log_y: true,
                series: p99,
            },
            LinePanel {
                caption: "servers' CPU per delivery, all instances together".into(),
                x_desc: "chat messages per second, all senders (log)".into(),
                y_desc: "ns (log)".into(),
                log_x: true,
                log_y: true,
                series: cpu,
            },
        ],
    )?;
    let _ = write!(
        md,
        "\n\"messages/s\" is the rate offered, all senders together. Source: \
         `docs/bench/scaleout/{prefix}.*.step-*.json`, measured at commit {prefix} on {}{}.\n",
        scaleout_meta(dir, &prefix, "date_utc").unwrap_or_else(|| "?".into()),
        match scaleout_meta(dir, &prefix, "dirty").as_deref() {
            Some("0") | None => "",
            Some(_) => ", from a tree that differed from it",
        }
    );
    Ok(section("redis-hop", md, svg))
}

/// The commit prefix of the newest run in docs/bench/scaleout/ (its files are named
/// `<commit>.<file>`), by the date in its meta.tsv.
fn latest_scaleout_prefix(dir: &Path) -> Result<String> {
    let mut runs: Vec<(String, String)> = fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let prefix = name.strip_suffix(".meta.tsv")?.to_owned();
            let date = scaleout_meta(dir, &prefix, "date_utc").unwrap_or_default();
            Some((date, prefix))
        })
        .collect();
    runs.sort();
    runs.pop()
        .map(|(_, prefix)| prefix)
        .ok_or_else(|| format!("no *.meta.tsv in {}", dir.display()))
}

fn scaleout_meta(dir: &Path, prefix: &str, key: &str) -> Option<String> {
    let tsv = fs::read_to_string(dir.join(format!("{prefix}.meta.tsv"))).ok()?;
    meta_in(&tsv, key)
}

/// "C=1,000, 10 senders, 64 B, window 8" (or "at R messages/s each"), from a broadcast
/// report's own fields.
fn load_of(run: &Value) -> String {
    let pacing = match (num(run, "window"), num(run, "rate")) {
        (Some(w), _) => format!("window {w:.0}"),
        (None, Some(r)) => format!("{r} messages/s each"),
        _ => "?".to_owned(),
    };
    format!(
        "C={}, {} senders, {}, {pacing}",
        opt(num(run, "clients"), count),
        opt(num(run, "senders"), count),
        opt(num(run, "size"), bytes),
    )
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A section with its one figure, `NAME.svg`.
fn section(name: &'static str, markdown: String, svg: String) -> Section {
    Section {
        name,
        document: "docs/REPORT.md",
        markdown,
        figures: vec![(format!("{name}.svg"), svg)],
    }
}

/// The files `<before>N<after>` in `dir`, by N.
fn numbered_files(dir: &Path, before: &str, after: &str) -> Result<Vec<(u64, String)>> {
    let mut found: Vec<(u64, String)> = fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let n = name
                .strip_prefix(before)?
                .strip_suffix(after)?
                .parse()
                .ok()?;
            Some((n, name))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!("no {before}N{after} in {}", dir.display()));
    }
    Ok(found)
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn line(name: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.to_owned(),
        color,
        points,
        reference: false,
    }
}

fn figure(file: &str, alt: &str) -> String {
    format!("![{alt}](report/{file})\n\n")
}

/// `y` at `x` on the line through `points` (sorted by x), interpolated on log-log axes;
/// none outside the points' range.
pub fn log_interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    if x <= 0.0 {
        return None;
    }
    points.windows(2).find_map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if !(x0..=x1).contains(&x) || x0 <= 0.0 || y0 <= 0.0 || y1 <= 0.0 || x1 <= x0 {
            return None;
        }
        if x == x0 {
            return Some(y0);
        }
        let t = (x.ln() - x0.ln()) / (x1.ln() - x0.ln());
        Some((y0.ln() + t * (y1.ln() - y0.ln())).exp())
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?).filter(|r| r.is_finite())
}

fn opt(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(|| "—".into(), show)
}

/// A p99 cell, starred if the run lost messages.
fn with_loss(cell: String, run: &Value) -> String {
    match num(run, "lost") {
        Some(lost) if lost > 0.0 => format!("{cell}\\*"),
        _ => cell,
    }
}

/// 1,234,567.
pub fn count(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// Nanoseconds: 245 ns, 21,919 ns.
fn ns(v: f64) -> String {
    format!("{} ns", count(v))
}

/// A rate: 2.89 M/s, 46.1 k/s, 950/s.
fn rate(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k/s", v / 1e3),
        v => format!("{v:.0}/s"),
    }
}

/// Microseconds as µs or ms.
fn micros(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} s", v / 1e6)
    } else if v >= 10_000.0 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{} µs", count(v))
    }
}

/// Bytes: 685 B, 1.0 MiB.
fn bytes(v: f64) -> String {
    match v {
        v if v >= 1024.0 * 1024.0 => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        v if v >= 10.0 * 1024.0 => format!("{:.0} KiB", v / 1024.0),
        v => format!("{} B", count(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_is_straight_on_log_axes() {
        let points = [(1.0, 1000.0), (100.0, 10.0)];
        let mid = log_interpolate(&points, 10.0).unwrap();
        assert!((mid - 100.0).abs() < 1e-9, "{mid}");
        assert_eq!(log_interpolate(&points, 1.0), Some(1000.0));
        assert_eq!(log_interpolate(&points, 200.0), None);
        assert_eq!(log_interpolate(&points, 0.5), None);
    }

    #[test]
    fn numbers_are_shown_as_the_tables_want() {
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(ns(21_919.4), "21,919 ns");
        assert_eq!(rate(2_887_821.6), "2.89 M/s");
        assert_eq!(rate(46_123.0), "46.1 k/s");
        assert_eq!(micros(37_552.1), "37.6 ms");
        assert_eq!(micros(963.6), "964 µs");
        assert_eq!(bytes(685.4), "685 B");
        assert_eq!(bytes(1_048_576.0), "1.0 MiB");
        assert_eq!(opt(None, ns), "—");
        assert_eq!(opt(Some(f64::NAN), ns), "—");
    }
}
