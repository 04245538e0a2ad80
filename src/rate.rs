//! A token bucket: the rate limit shared by the event loop (messages per connection) and
//! the chat (requests per member). Plain arithmetic over a time the caller passes in, so
//! it is tested without sleeping.

use std::time::Instant;

/// The lowest rate [`Rate::parse`] accepts, in messages per second: one a day.
const MIN_RATE: f64 = 1.0 / 86_400.0;

/// How fast, and how bursty, a client may be: `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// The most tokens held, which is the most requests allowed at once.
    pub burst: u32,
}

/// A token bucket: up to `burst` requests at once, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    /// Requests refused since the last one allowed.
    pub refused: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
            refused: 0,
        }
    }

    /// Takes a token if there is one. `now` comes from the caller, so the bucket is
    /// tested without sleeping.
    pub fn allow(&mut self, now: Instant, rate: f64, burst: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// [`TokenBucket::allow`] with a [`Rate`].
    pub fn allow_at(&mut self, now: Instant, rate: Rate) -> bool {
        self.allow(now, rate.per_second, rate.burst)
    }
}

impl Rate {
    /// Parses `N` or `N/BURST` (messages per second, and optionally the burst; by default
    /// the burst is twice the rate, at least 1). For the command line.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let (rate, burst) = match text.split_once('/') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let per_second: f64 = rate
            .trim()
            .parse()
            .map_err(|_| format!("{rate:?} is not a number of messages per second"))?;
        // Below one message a day is no rate a user means, and the bucket's refill
        // arithmetic wants a rate well away from 0.
        if !(per_second.is_finite() && per_second >= MIN_RATE) {
            return Err("the rate must be at least one message a day".into());
        }
        let burst = match burst {
            Some(burst) => burst
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&b| b > 0)
                .ok_or_else(|| format!("{burst:?} is not a burst of at least 1"))?,
            None => ((per_second * 2.0).ceil() as u32).max(1),
        };
        Ok(Rate { per_second, burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_with_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2, start);
        assert!(bucket.allow(start, 1.0, 2));
        assert!(bucket.allow(start, 1.0, 2));
        assert!(!bucket.allow(start, 1.0, 2));
        assert_eq!(bucket.refused, 1);
        assert!(bucket.allow(start + Duration::from_millis(1000), 1.0, 2));
        assert_eq!(bucket.refused, 0);
    }

    #[test]
    fn rates_parse_with_and_without_a_burst() {
        assert_eq!(
            Rate::parse("100"),
            Ok(Rate {
                per_second: 100.0,
                burst: 200
            })
        );
        assert_eq!(
            Rate::parse("0.5/3"),
            Ok(Rate {
                per_second: 0.5,
                burst: 3
            })
        );
        assert_eq!(Rate::parse("0.2").map(|r| r.burst), Ok(1));
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("-1").is_err());
        assert!(Rate::parse("fast").is_err());
        assert!(Rate::parse("10/0").is_err());
        assert!(Rate::parse("inf").is_err());
        assert!(Rate::parse("1e-9").is_err(), "less than one a day");
        assert!(Rate::parse("0.0001").is_ok());
    }
}
