//! `/metrics`: a [`Snapshot`] in the Prometheus text exposition (OpenMetrics), written by
//! the `prometheus-client` crate. The loop counts in plain fields of its own (one thread,
//! no atomics); at each scrape those figures are handed to the crate as constant
//! metrics through a [`Collector`], and the crate writes names, types, help and
//! escaping as the format wants them. Names follow Prometheus's conventions: a
//! `loopchat_` prefix, `_total` on counters, units (`_seconds`, `_bytes`) in the name.

use super::snapshot::{HistogramSnapshot, LinkReport, LinkState, Snapshot, WorkerFigures};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt::Error;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The whole exposition of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::with_prefix("loopchat");
    registry.register_collector(Box::new(Figures(snapshot.clone())));
    let mut text = String::new();
    // Writing to a String cannot fail; an error would be the crate's.
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text = "# EOF\n".to_owned();
    }
    text
}

/// One scrape's figures, as a collector.
#[derive(Debug)]
struct Figures(Snapshot);

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// The buckets as the crate takes them: each upper bound with its own count (the crate
/// makes them cumulative), the open one last, bounded by `f64::MAX`, which it writes as
/// `+Inf`.
fn buckets(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    h.counts
        .iter()
        .enumerate()
        .map(|(i, &count)| (h.bounds.get(i).copied().unwrap_or(f64::MAX), count))
        .collect()
}

fn histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets(h), None)
}

/// One gauge or counter per item, each labelled `label_name="label(item)"`.
#[allow(clippy::too_many_arguments)]
fn labelled<T>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    label_name: &str,
    items: &[T],
    label: impl Fn(&T) -> String,
    value: impl Fn(&T) -> u64,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for item in items {
        let label = label(item);
        let labels = [(label_name, label.as_str())];
        let family = metric.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value(item)).encode(family)?,
            _ => ConstGauge::new(value(item) as i64).encode(family)?,
        }
    }
    Ok(())
}

/// One gauge or counter per link, labelled with its name.
fn per_link(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    links: &[LinkReport],
    value: impl Fn(&LinkReport) -> u64,
) -> Result<(), Error> {
    let label = |l: &LinkReport| l.name.clone();
    labelled(
        encoder,
        name,
        help,
        metric_type,
        "link",
        links,
        label,
        value,
    )
}

/// With several workers, a few of each worker's own figures, labelled `worker="N"`:
/// nothing at all for one loop.
fn workers(e: &mut DescriptorEncoder<'_>, workers: &[WorkerFigures]) -> Result<(), Error> {
    if workers.is_empty() {
        return Ok(());
    }
    type Figure = fn(&WorkerFigures) -> u64;
    let families: [(&str, &str, MetricType, Figure); 7] = [
        (
            "worker_connections",
            "Open client connections of each worker (--workers N; the kernel spreads new connections among them).",
            MetricType::Gauge,
            |w| w.connections,
        ),
        (
            "worker_loop_turns",
            "Turns of each worker's loop.",
            MetricType::Counter,
            |w| w.totals.turns,
        ),
        (
            "worker_accepted_connections",
            "Connections each worker accepted.",
            MetricType::Counter,
            |w| w.totals.accepted,
        ),
        (
            "worker_received_messages",
            "Messages and lines each worker received from its clients.",
            MetricType::Counter,
            |w| w.totals.messages_in,
        ),
        (
            "worker_deliveries",
            "Messages each worker handed to its clients.",
            MetricType::Counter,
            |w| w.totals.deliveries,
        ),
        (
            "worker_received_bytes",
            "Bytes each worker read from its clients.",
            MetricType::Counter,
            |w| w.totals.bytes_in,
        ),
        (
            "worker_sent_bytes",
            "Bytes each worker wrote to its clients.",
            MetricType::Counter,
            |w| w.totals.bytes_out,
        ),
    ];
    for (name, help, metric_type, figure) in families {
        let label = |w: &WorkerFigures| w.worker.to_string();
        labelled(e, name, help, metric_type, "worker", workers, label, figure)?;
    }
    Ok(())
}

/// The application's links (the chat's to Redis): nothing at all without one.
/// prometheus-client 0.24 has no OpenMetrics stateset, so the state is written the way
/// Prometheus writes an enum: one gauge per state, 1 for the current one.
fn links(e: &mut DescriptorEncoder<'_>, links: &[LinkReport]) -> Result<(), Error> {
    if links.is_empty() {
        return Ok(());
    }
    per_link(
        e,
        "link_up",
        "Whether the link to another server (link=\"redis\": the chat's to Redis) is ready: 1, or 0 while connecting or down.",
        MetricType::Gauge,
        links,
        |l| u64::from(l.state == LinkState::Up),
    )?;
    {
        let mut metric = e.encode_descriptor(
            "link_state",
            "Where each link stands, one series per state, 1 for the current one: connecting, up, down (waiting to try again).",
            None,
            MetricType::Gauge,
        )?;
        for link in links {
            for state in LinkState::ALL {
                let labels = [("link", link.name.as_str()), ("state", state.name())];
                ConstGauge::new(i64::from(link.state == state))
                    .encode(metric.encode_family(&labels)?)?;
            }
        }
    }
    per_link(
        e,
        "link_nodes",
        "Servers each link is connected or connecting to: one, or each master of a Redis Cluster; 0 while down.",
        MetricType::Gauge,
        links,
        |l| l.nodes,
    )?;
    per_link(
        e,
        "link_pending_replies",
        "Requests sent on each link and not yet answered.",
        MetricType::Gauge,
        links,
        |l| l.pending_replies,
    )?;
    per_link(
        e,
        "link_reconnects",
        "Attempts to connect each link after the first: after it was lost, or could not be reached.",
        MetricType::Counter,
        links,
        |l| l.reconnects,
    )?;
    per_link(
        e,
        "link_lost",
        "Times each link was lost after it was up (for the chat's link to Redis, each a split of the chat).",
        MetricType::Counter,
        links,
        |l| l.lost,
    )
}

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        let s = &self.0;
        let t = &s.totals;
        let e = &mut e;
        gauge(
            e,
            "uptime_seconds",
            "Seconds since the server started.",
            s.server.uptime_seconds as i64,
        )?;
        {
            let mut metric = e.encode_descriptor(
                "connections",
                "Open connections, by transport (http, websocket, line, admin: the admin port's own) and phase (handshake: reading an HTTP request; open; closing).",
                None,
                MetricType::Gauge,
            )?;
            for (transport, phases) in &s.connections.by_transport {
                for (phase, count) in phases {
                    let labels = [("transport", *transport), ("phase", *phase)];
                    ConstGauge::new(*count as i64).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        counter(
            e,
            "accepted_connections",
            "Connections accepted.",
            t.accepted,
        )?;
        {
            let mut metric = e.encode_descriptor(
                "refused_connections",
                "Connections refused with 503, by reason: full (--max-connections) or out of file descriptors.",
                None,
                MetricType::Counter,
            )?;
            let no_fds = t.refused_no_descriptors.min(t.refused);
            for (reason, count) in [("full", t.refused - no_fds), ("out_of_descriptors", no_fds)] {
                let labels = [("reason", reason)];
                ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "received_messages",
            "Data messages and lines received from clients.",
            t.messages_in,
        )?;
        counter(e, "received_bytes", "Bytes read from clients.", t.bytes_in)?;
        counter(e, "sent_bytes", "Bytes written to clients.", t.bytes_out)?;
        counter(
            e,
            "broadcasts",
            "Broadcasts published to the broadcast log.",
            t.broadcasts,
        )?;
        counter(
            e,
            "deliveries",
            "Messages handed to clients (queued for one, or taken from the broadcast log by one; a broadcast counts once per recipient), whether or not the kernel has taken them yet.",
            t.deliveries,
        )?;
        counter(
            e,
            "writes",
            "write and writev calls to clients that took bytes (not those that would block).",
            t.writes,
        )?;
        counter(
            e,
            "slow_consumers_closed",
            "Clients closed with 1008 for letting their output queue fill.",
            t.slow_closed,
        )?;
        counter(
            e,
            "dropped_messages",
            "Messages dropped for full clients (--slow-consumer drop).",
            t.dropped_messages,
        )?;
        counter(
            e,
            "rate_limited_connections",
            "Connections closed with 1008 for exceeding the message rate.",
            t.rate_limited,
        )?;
        counter(
            e,
            "idle_dropped_connections",
            "Clients dropped after the idle timeout.",
            t.idle_dropped,
        )?;
        counter(
            e,
            "close_timeouts",
            "Connections dropped when the closing handshake timed out.",
            t.close_timed_out,
        )?;
        counter(
            e,
            "deflated_messages",
            "Messages compressed with permessage-deflate, each once however many received it.",
            t.deflated_messages,
        )?;
        counter(
            e,
            "deflate_input_bytes",
            "Bytes of the messages compressed, before compression.",
            t.deflate_bytes_in,
        )?;
        counter(
            e,
            "deflate_output_bytes",
            "Bytes of the messages compressed, after compression: over the input, the compression ratio.",
            t.deflate_bytes_out,
        )?;
        counter(e, "loop_turns", "Turns of the event loop.", t.turns)?;
        counter(
            e,
            "loop_events",
            "Readiness events taken from poll.",
            t.events,
        )?;
        gauge(
            e,
            "queued_outbound_bytes",
            "Bytes queued for clients, all connections together.",
            s.queued_outbound_bytes as i64,
        )?;
        links(e, &s.links)?;
        workers(e, &s.workers)?;
        let h = &s.histograms;
        histogram(
            e,
            "loop_events_per_wakeup",
            "Readiness events per turn of the loop (those of the polls made during a long flush included).",
            &h.events_per_wakeup,
        )?;
        histogram(
            e,
            "loop_writes_per_turn",
            "write calls per turn, for the turns that wrote.",
            &h.writes_per_turn,
        )?;
        histogram(
            e,
            "loop_frames_per_write",
            "Per turn that wrote: messages handed to clients over write calls, the frames one write carries on average (corking).",
            &h.frames_per_write,
        )?;
        let mut metric = e.encode_descriptor(
            "loop_phase_seconds",
            "Time per turn in each phase: poll_wait, dispatch, timers, flush.",
            None,
            MetricType::Histogram,
        )?;
        for (phase, h) in &h.phase_seconds {
            let labels = [("phase", *phase)];
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets(h), None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_exposition_has_each_metric_named_by_the_conventions() {
        let mut snapshot = Snapshot::default();
        snapshot.totals.deliveries = 1234;
        snapshot.connections.by_transport = BTreeMap::from([
            ("websocket", BTreeMap::from([("open", 7), ("closing", 2)])),
            ("line", BTreeMap::from([("open", 1)])),
        ]);
        snapshot.histograms.events_per_wakeup = HistogramSnapshot {
            bounds: vec![1.0, 2.0],
            counts: vec![3, 4, 5],
            sum: 30.0,
            count: 12,
        };
        snapshot.histograms.phase_seconds.insert(
            "flush",
            HistogramSnapshot {
                bounds: vec![0.001],
                counts: vec![2, 1],
                sum: 0.5,
                count: 3,
            },
        );
        let text = render(&snapshot);
        for line in [
            "# TYPE loopchat_deliveries counter",
            "loopchat_deliveries_total 1234",
            "loopchat_refused_connections_total{reason=\"full\"} 0",
            "loopchat_connections{transport=\"websocket\",phase=\"open\"} 7",
            "loopchat_connections{transport=\"websocket\",phase=\"closing\"} 2",
            "loopchat_connections{transport=\"line\",phase=\"open\"} 1",
            "loopchat_loop_events_per_wakeup_bucket{le=\"1.0\"} 3",
            "loopchat_loop_events_per_wakeup_bucket{le=\"2.0\"} 7",
            "loopchat_loop_events_per_wakeup_bucket{le=\"+Inf\"} 12",
            "loopchat_loop_events_per_wakeup_count 12",
            "loopchat_loop_phase_seconds_bucket{le=\"0.001\",phase=\"flush\"} 2",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // No link, no link metric at all.
        assert!(!text.contains("loopchat_link"), "{text}");
    }

    /// The families the README lists, each with its type.
    #[test]
    fn every_family_the_readme_lists_is_written() {
        let snapshot = Snapshot {
            links: vec![LinkReport {
                name: "redis".into(),
                peer: "redis://127.0.0.1:7001/0".into(),
                state: LinkState::Up,
                nodes: 1,
                pending_replies: 0,
                reconnects: 0,
                lost: 0,
            }],
            ..Snapshot::default()
        };
        let text = render(&snapshot);
        for (name, kind) in [
            ("connections", "gauge"),
            ("accepted_connections", "counter"),
            ("refused_connections", "counter"),
            ("received_messages", "counter"),
            ("received_bytes", "counter"),
            ("sent_bytes", "counter"),
            ("broadcasts", "counter"),
            ("deliveries", "counter"),
            ("writes", "counter"),
            ("slow_consumers_closed", "counter"),
            ("dropped_messages", "counter"),
            ("rate_limited_connections", "counter"),
            ("idle_dropped_connections", "counter"),
            ("close_timeouts", "counter"),
            ("loop_turns", "counter"),
            ("loop_events", "counter"),
            ("queued_outbound_bytes", "gauge"),
            ("uptime_seconds", "gauge"),
            ("loop_events_per_wakeup", "histogram"),
            ("loop_phase_seconds", "histogram"),
            ("loop_writes_per_turn", "histogram"),
            ("loop_frames_per_write", "histogram"),
            ("deflated_messages", "counter"),
            ("deflate_input_bytes", "counter"),
            ("deflate_output_bytes", "counter"),
            ("link_up", "gauge"),
            ("link_state", "gauge"),
            ("link_nodes", "gauge"),
            ("link_pending_replies", "gauge"),
            ("link_reconnects", "counter"),
            ("link_lost", "counter"),
        ] {
            let line = format!("# TYPE loopchat_{name} {kind}");
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn each_worker_has_its_own_series_and_one_loop_has_none() {
        let figures = |worker, connections, deliveries| WorkerFigures {
            worker,
            connections,
            totals: super::super::snapshot::Totals {
                deliveries,
                ..Default::default()
            },
            reported_seconds_ago: 0.0,
        };
        let snapshot = Snapshot {
            workers: vec![figures(0, 3, 10), figures(1, 5, 20)],
            ..Snapshot::default()
        };
        let text = render(&snapshot);
        for line in [
            "# TYPE loopchat_worker_connections gauge",
            "loopchat_worker_connections{worker=\"0\"} 3",
            "loopchat_worker_connections{worker=\"1\"} 5",
            "# TYPE loopchat_worker_deliveries counter",
            "loopchat_worker_deliveries_total{worker=\"1\"} 20",
            "# TYPE loopchat_worker_loop_turns counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!render(&Snapshot::default()).contains("worker"));
    }

    #[test]
    fn each_link_has_its_state_as_a_gauge_per_state_and_its_counters() {
        let mut snapshot = Snapshot {
            links: vec![LinkReport {
                name: "redis".into(),
                peer: "redis://127.0.0.1:7001/0".into(),
                state: LinkState::Connecting,
                nodes: 1,
                pending_replies: 3,
                reconnects: 4,
                lost: 2,
            }],
            ..Snapshot::default()
        };
        let text = render(&snapshot);
        for line in [
            "# TYPE loopchat_link_up gauge",
            "loopchat_link_up{link=\"redis\"} 0",
            "# TYPE loopchat_link_state gauge",
            "loopchat_link_state{link=\"redis\",state=\"connecting\"} 1",
            "loopchat_link_state{link=\"redis\",state=\"up\"} 0",
            "loopchat_link_state{link=\"redis\",state=\"down\"} 0",
            "loopchat_link_nodes{link=\"redis\"} 1",
            "loopchat_link_pending_replies{link=\"redis\"} 3",
            "# TYPE loopchat_link_reconnects counter",
            "loopchat_link_reconnects_total{link=\"redis\"} 4",
            "loopchat_link_lost_total{link=\"redis\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        snapshot.links[0].state = LinkState::Up;
        let text = render(&snapshot);
        for line in [
            "loopchat_link_up{link=\"redis\"} 1",
            "loopchat_link_state{link=\"redis\",state=\"up\"} 1",
            "loopchat_link_state{link=\"redis\",state=\"connecting\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
