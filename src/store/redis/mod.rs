//! [`RedisStore`]: counters in Redis (or Valkey), shared by every instance
//! of a service.
//!
//! ```no_run
//! use std::time::Duration;
//! use tollgate::store::RedisStore;
//! use tollgate::{Plans, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379/")
//!     .prefix("myapp:ratelimit")
//!     .timeout(Duration::from_millis(50)) // the default
//!     // While Redis cannot answer, each of the 3 instances enforces a
//!     // third of every quota in its own memory (default: 1 instance).
//!     .fallback_local(3)
//!     .build()?;
//! let plans = Plans::builder()
//!     .tier("anonymous", "3/minute")
//!     .tier("basic", "10/minute; 1000/day")
//!     .build()?;
//! let layer = RateLimitLayer::builder(plans).store(store).build()?;
//! # let _ = layer;
//! # Ok(()) }
//! ```
//!
//! # One atomic round trip per check
//!
//! A check is one `EVALSHA` of one Lua script that takes every charge of the
//! request (several limits, several client keys) all or nothing: the script
//! first computes every outcome without writing, and writes only if all of
//! them allow. A check of one GCRA, fixed-window or sliding-window charge,
//! the common case, runs a lean script of its own, sent only the figures it
//! reads, with the same answers for about 60% of the Redis time of the
//! general one (`bash benches/redis-script-cost.sh`); the tests run each of
//! these algorithms' sequences through both. A script is loaded again by
//! itself when Redis has lost it (`NOSCRIPT`, after a restart or
//! `SCRIPT FLUSH`). Needs Redis 5 or later (or any Valkey): the scripts read
//! `TIME` before they write, which relies on effects replication, the
//! default since Redis 5. The clock is Redis's own
//! `TIME`, never the client's, so instances with skewed clocks agree. The
//! answers are those of the in-memory store: the same [`Decision`] figures
//! from the same steps, with windows aligned to the Unix epoch instead of
//! the process's start.
//!
//! The store reads a local clock ([`RedisStoreBuilder::clock`], a
//! monotonic clock by default) only for what it times by itself: the
//! over-limit cache, the breaker's backoff, the local fallback and leases.
//! There it keeps durations Redis answered, counted from a local reading
//! taken before the call, so neither its origin nor its offset from other
//! instances' clocks changes any answer; it must only not run slower than
//! real time.
//!
//! # Delay mode
//!
//! A limit with a [queue](crate::Quota::with_queue) runs its own lean script:
//! it takes the request's place (the arrival time advances) and answers the
//! wait, both from Redis's `TIME`, so the waiters of every instance stand
//! on one timeline and pass at one combined rate. A check of several limits
//! follows the memory store's rule: the wait is the longest any limit asks,
//! and every GCRA is looked at and charged for the instant the request
//! passes. A waiter that leaves before its turn gives its place back
//! ([`Store::cancel`], a script comparing the arrival time its admission
//! set) when no later request reserved one after it. On Redis Cluster, a
//! check whose charges span slots runs the parts holding queued limits
//! first, each answering its wait; a part that answered a shorter wait than
//! the longest is given back and charged again for the longest, and the
//! other parts are charged for it too (`check.lua` reads the wait from the
//! part's nonce), so each counts the request when it passes. Waits are
//! counted from each part's own `TIME`: they differ by the time between the
//! calls, the same order of error as the request's own trip back from
//! Redis. A queued limit is never served from leases.
//!
//! # Keys
//!
//! `<prefix>:{<tag>}:<policy>@<algorithm>`, where the tag stands for the
//! client key, written in hex (IP addresses and byte keys of at most 32
//! bytes) or as the hex SHA-1 of longer byte keys: no client can inject a
//! brace or collide with another client's key. Every key of one client
//! shares the tag, hence one Redis Cluster slot.
//!
//! Counters are named by prefix, policy name, algorithm and client key: every
//! store with the same prefix that binds a limit of the same name and
//! algorithm shares its counters, which is what makes instances enforce one
//! quota together. Give limits that must count apart different names.
//!
//! | algorithm | keys per client and limit | per check |
//! |---|---|---|
//! | GCRA (with or without a queue) | one string: the theoretical arrival time, ns since the epoch | O(1) |
//! | fixed window | one counter per window (`INCRBY`), `…:<window>` | O(1) |
//! | sliding window counter | the counters of this window and the one before | O(1) |
//! | sliding log | a sorted set of admitted requests (score: µs since the epoch) and their cost sum `…:n` | O(expired) amortised; a refusal walks the oldest entries, O(limit) at worst |
//! | concurrency | a sorted set of held slots (score: the slot's expiry) and their cost sum `…:n` | O(expired) amortised |
//!
//! A sliding log holds at most [`SLIDING_LOG_MAX`](crate::algorithm::SLIDING_LOG_MAX)
//! entries per client, since a limit's count is capped there; the walk a
//! refusal makes to compute `Retry-After` is bounded by the count, so keep
//! sliding logs for small counts (a count of 100 000 makes a refused check
//! read up to 100 000 entries inside Redis).
//!
//! Every key gets a TTL covering the life of its state (the TAT, the end of
//! a window, the period of a log, the time to live of a concurrency slot), plus one
//! millisecond, so nothing lives forever.
//!
//! # Concurrency permits
//!
//! An admitted request holds a slot in the limit's sorted set until its
//! response body ends; then the permit's drop spawns a task on the current
//! Tokio runtime that removes the slot (`ZREM`). Without a runtime at drop
//! time, or when Redis does not answer, the slot ends at its expiry
//! ([`RedisStoreBuilder::concurrency_slot_ttl`], default 60 s): expired slots
//! are reclaimed at each check, so a crashed instance frees its slots by
//! itself. A response that lasts longer than that loses its slot early.
//! ("Lease" in these docs is always leased mode's lease of tokens.)
//!
//! # Precision
//!
//! Redis's clock has microseconds; Lua numbers are doubles, exact for
//! integers below 2^53. The script keeps absolute times as microseconds
//! since the epoch or, for the GCRA state, as a decimal string of
//! nanoseconds read in two parts, and computes every duration in
//! nanoseconds as an offset from now: exact while durations stay below
//! 2^53 ns (about 104 days: a period, or a GCRA burst window `burst × period
//! / count`). Longer ones are computed in double precision (relative error
//! 2^-53): within a few microseconds even at the largest burst window a
//! quota allows (2^62 ns).
//!
//! # When Redis is away or slow
//!
//! The store must never become the outage: a healthy Redis under load
//! refuses nothing, and a Redis that cannot answer degrades the service to
//! local limits instead of taking it down.
//!
//! - **Timeout.** Every call is bounded by the store's timeout (default
//!   [`DEFAULT_TIMEOUT`], 50 ms). It was chosen from the call latency of a
//!   healthy local Redis under 64 concurrent tasks on a loaded 2-core VM
//!   (`cargo bench --features redis --bench redis`, `store-allow` at 64:
//!   p99.9 17 to 28 ms, the slowest call 37 ms), so that a scheduling stall
//!   of the host is not an outage. Past it the check is answered by the
//!   failure policy, below.
//! - **Failure policy** ([`RedisStore::when_down`], logged once when the
//!   store is built): by default the [local fallback](#fallback) answers,
//!   this instance enforcing each limit in its own memory, the quota
//!   divided by the number of instances ([`RedisStoreBuilder::fallback_local`],
//!   default 1). With [`RedisStoreBuilder::no_fallback`] a check Redis
//!   cannot answer is [`StoreError::Timeout`] or [`StoreError::Unavailable`],
//!   and the layer applies its [`OnStoreError`](crate::OnStoreError)
//!   policy (503 with `Retry-After`, or fail open).
//! - **Late scripts charge nothing.** A check that timed out has already
//!   written its script to the connection, and Redis runs it when it can
//!   (after a pause, a `DEBUG SLEEP`, a stalled network). So a charging
//!   check sends its script a deadline on Redis's clock, the moment it
//!   gives up plus 2 ms, estimated from the `TIME` earlier answers carried
//!   (the smallest offset seen, never below the true one, so a script that
//!   starts in time is never refused by it); a script that starts later
//!   writes nothing. A request answered without Redis is so never charged
//!   for it when Redis resumes. What remains is a script Redis ran in time
//!   but whose answer came after the timeout (Redis blocked just after
//!   running it): that charge stands, and a concurrency slot it took is
//!   released as a permit would be. Checks made before the store's first
//!   charging answer carry no deadline.
//! - **Connection.** One multiplexed connection (or the cluster client's
//!   connections) shared by every clone, made on the first check and made
//!   again in the background after it is lost (first after 10 ms, then
//!   doubling up to 200 ms): recovery needs no restart. The store needs a
//!   Tokio runtime with its time driver enabled (as `#[tokio::main]` gives).
//!
//! Measured by `tests/redis/chaos.rs` through the layer under load, and
//! longer by `bash benches/chaos.sh`: with Redis paused (SIGSTOP), killed
//! and restarted, `CLIENT PAUSE`, `DEBUG SLEEP`, or every call slowed past
//! the timeout, every answer is a limit's (200 or 429), and the store is
//! back on Redis within a second of Redis answering again (the README's
//! Reliability section has the figures).
//!
//! # Circuit breaker
//!
//! So that requests stop paying the timeout during an outage, the store
//! has a circuit breaker, on by default
//! ([`RedisStoreBuilder::breaker`] with [`BreakerSettings`],
//! [`RedisStoreBuilder::no_breaker`]):
//!
//! - **closed**: checks call Redis; the breaker counts calls and failed
//!   calls (timeouts, or Redis unreachable or answering an error) over a
//!   sliding window ([`DEFAULT_BREAKER_WINDOW`], 1 s) and opens when at
//!   least [`DEFAULT_BREAKER_MIN_CALLS`] (20) calls were made in it and at
//!   least [`DEFAULT_BREAKER_FAILURE_RATE`] (half) of them failed. Every
//!   call in flight timing out together in one stall of a busy host is a
//!   small share of the window's calls: it does not open the breaker. A
//!   service quieter than 20 calls a second never opens it; each check then
//!   waits the timeout before the failure policy answers;
//! - **open**: checks answer at once, without touching the network, by the
//!   failure policy (the [fallback](#fallback) by default, else
//!   [`StoreError::Unavailable`] wrapping [`CircuitOpen`]);
//! - **half-open**: after the backoff (first
//!   [`DEFAULT_BREAKER_INITIAL_BACKOFF`], 50 ms, then doubled after each
//!   failed probe up to [`DEFAULT_BREAKER_MAX_BACKOFF`], 250 ms, plus up to
//!   an eighth as jitter) exactly one check goes to Redis as a probe while
//!   the others still answer at once. Its success closes the breaker,
//!   resets the backoff and empties the window; its failure opens it again.
//!   A probe cancelled before its answer lets the next check probe.
//!
//! Recovery needs no restart: the first probe after Redis is back closes
//! the breaker, at most one capped backoff (about 280 ms) after it returns.
//! The over-limit cache answers before the breaker: a cached refusal is
//! still a refusal while it is open. Each transition is logged once with
//! `tracing::warn!` (never per request) and counted:
//! [`RedisStore::breaker_state`], [`RedisStore::breaker_stats`].
//!
//! ```no_run
//! use std::time::Duration;
//! use tollgate::store::redis::BreakerSettings;
//! # fn main() -> Result<(), tollgate::ConfigError> {
//! let store = tollgate::store::RedisStore::builder("redis://127.0.0.1:6379/")
//!     .breaker(
//!         BreakerSettings::new()
//!             .min_calls(50)
//!             .backoff(Duration::from_millis(20), Duration::from_millis(500)),
//!     )
//!     .build()?;
//! assert_eq!(store.breaker_state(), tollgate::store::redis::BreakerState::Closed);
//! # Ok(()) }
//! ```
//!
//! # Fallback
//!
//! On by default for one instance; [`RedisStoreBuilder::fallback_local`]
//! sets the number of instances, [`RedisStoreBuilder::no_fallback`] turns
//! it off. While Redis cannot answer, checks are answered by a local
//! in-memory limiter enforcing this instance's share of each quota, instead
//! of a [`StoreError`] (so the layer's [`OnStoreError`](crate::OnStoreError)
//! policy is not applied to those checks).
//!
//! ```no_run
//! # fn main() -> Result<(), tollgate::ConfigError> {
//! // Three instances share this Redis: while it is away, each admits a
//! // third of every quota by itself.
//! let store = tollgate::store::RedisStore::builder("redis://127.0.0.1:6379/")
//!     .fallback_local(3)
//!     .build()?;
//! assert_eq!(store.fallback_stats().answers, 0);
//! # Ok(()) }
//! ```
//!
//! Binding a limit also binds, in a private [`MemoryStore`](crate::store::MemoryStore)
//! of the store, a copy with the same name, period and algorithm whose
//! count and burst (or most in flight, for a concurrency limit) are
//! divided by `instances`, **rounded down but at least 1**: `10/minute`
//! over 2 instances is `5/minute` each, over 3 instances `3/minute`, and
//! `2/minute` over 5 instances `1/minute`.
//!
//! The local limiter answers when the circuit breaker is open (at once,
//! [`Checked::Ready`], without touching the network) and when a call to
//! Redis fails with [`StoreError::Timeout`] or
//! [`StoreError::Unavailable`] (inside the check's future, after the
//! timeout or the error). It does not answer for a garbled reply, nor for
//! a check over several client keys on Redis Cluster; those stay errors.
//! The over-limit cache still answers first.
//!
//! While Redis answers, the local limiter is **not charged**: it starts
//! every outage from a full allowance. Hence the bounds, per key and
//! period, once instances are in fallback: the fleet admits at most
//! `instances × share`, which is at most the quota when the count is at
//! least `instances` (and `instances`, above the quota, when it is not),
//! **plus** what Redis had already admitted in the current window before
//! the outage: up to twice the quota in the period the outage starts. It
//! may also admit less than the quota, when traffic is not spread evenly
//! over the instances or fewer instances run than configured. When Redis
//! is back the local state is left as it is and Redis's counters (which
//! did not see the outage's admissions) answer again: they are the one
//! truth, so a client gets exactly its quota from the fleet again.
//!
//! The switch to the fallback and back is logged once each with
//! `tracing::warn!` (never per request) and counted, with the checks it
//! answered: [`RedisStore::fallback_stats`]. The local store tracks at
//! most [`DEFAULT_MAX_KEYS`](crate::store::DEFAULT_MAX_KEYS) keys and
//! evicts idle ones as the memory store does. With the fallback on, each
//! check copies its client keys (one small allocation per byte key), so
//! its future can fall back.
//!
//! # Over-limit cache
//!
//! Opt-in with [`RedisStoreBuilder::over_limit_cache`] (off by default): a
//! client already refused by a rate limit is refused again locally, costing
//! no Redis call, until it may pass again.
//!
//! ```no_run
//! # fn main() -> Result<(), tollgate::ConfigError> {
//! let store = tollgate::store::RedisStore::builder("redis://127.0.0.1:6379/")
//!     .over_limit_cache(10_000)
//!     .build()?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! When Redis refuses a charge of a rate limit, the store remembers, per
//! bound limit and client key, the cost refused and the local instant until
//! which that request is certainly still refused: the local monotonic clock
//! read *before* the script was sent, plus the script's `retry_after`. A
//! duration, so clock skew with Redis does not matter; and the script reads
//! Redis's clock after ours, so the instant is never late. A later check
//! with a charge of that limit and key, of at least that cost, before that
//! instant, answers at once: refused, with that charge as the
//! [`policy`](Decision::policy), remaining 0, the cached limit, the time
//! left as `retry_after` (at least 1 ns, never 0) and the cached
//! effective window minus the time passed. It answers even while Redis is away.
//!
//! Why that is safe: a rate limit's state only moves toward refusal while
//! time stands still (charges from any instance raise a TAT, a count or a
//! log; only time lowers them), so a request refused with `retry_after` is
//! refused until then whatever else happens, and a costlier one too. The
//! cache never admits: a miss, or an entry past its instant, goes to Redis.
//! Never cached: concurrency refusals (a permit released early frees a slot
//! at any time), refusals that never end (cost above the capacity), and a
//! charge whose counter an earlier charge of the same check also charges
//! (its answer counts that earlier charge). The cases where the cache
//! refuses what Redis would admit are state lowered by something other
//! than time: a [refund](#refunds) (after which this store drops the
//! refunded counters' entries, once Redis has the refund; another
//! instance's entries stay), or state removed behind the store's back
//! (`DEL`, `FLUSHDB`, a Redis that lost its data). Then the cache refuses
//! at most until the instant the old state gave: extra refusals, never an
//! admission.
//!
//! Memory is bounded: at most `max_entries` entries. Expired entries are
//! dropped when looked up, and all at once when the cache is full and one
//! has expired; a cache full of live entries takes no new one.
//! [`RedisStore::over_limit_cache_hits`] counts the checks it answered.
//! In [leased mode](#leased-mode), checks answered from leases do not use
//! it: a lease remembers its own refusals the same way.
//!
//! # Leased mode
//!
//! Opt-in with [`RedisStoreBuilder::leased`] (off by default): instead of
//! one script per request, an instance takes a *lease* of up to `tokens`
//! units of a limit for one client key in one script call, which charges
//! them in Redis at once, and spends them locally, without a round trip;
//! the first check that lacks units refills. A hot key costs one Redis call
//! per lease instead of one per request.
//!
//! ```no_run
//! use std::time::Duration;
//! use tollgate::store::redis::TokenLease;
//! # fn main() -> Result<(), tollgate::ConfigError> {
//! let store = tollgate::store::RedisStore::builder("redis://127.0.0.1:6379/")
//!     .leased(TokenLease::new(20).max_age(Duration::from_millis(500)))
//!     .build()?;
//! assert_eq!(store.lease_stats().calls, 0);
//! # Ok(()) }
//! ```
//!
//! - **What it serves**: GCRA and fixed-window limits. A check with a
//!   charge of any other algorithm (sliding window, sliding log,
//!   concurrency), a limit charged twice in one check, a look
//!   ([`Store::peek`]) at a key with no units held, or a new key while the
//!   lease table is full ([`TokenLease::max_keys`]) is checked per request,
//!   as without leases ([`LeaseStats::per_request`]). Leases and checks per
//!   request charge the same counters, so they mix freely.
//! - **Lease size** adapts per (limit, client key): the first lease covers
//!   the request alone; each lease spent out before it ends doubles the
//!   next, up to `tokens`; one that ends with units unspent halves it. A
//!   quiet key costs one call per request and wastes nothing; a busy one
//!   reaches `tokens` in a few leases. Redis grants fewer units than asked
//!   when fewer are left (at least what the request lacks, or none: a
//!   refusal).
//! - **One refill at a time**: per (limit, client key), one check refills;
//!   others that lack units wait for its answer (at most the timeout)
//!   rather than call too, so an instance holds at most one lease per key:
//!   at most `tokens` units, or one request's cost when that is larger. A
//!   lease is not renewed before it runs out. Each key's lease has its own
//!   small mutex, never held across an await; a check over several keys
//!   locks theirs in one order.
//! - **End of a lease**: a fixed-window lease ends with its window, as
//!   Redis saw it: the window's time left, counted on the local clock from
//!   a reading taken before the call, which is never later than the real
//!   end. A GCRA lease ends `max_age` after its call was sent
//!   ([`DEFAULT_LEASE_MAX_AGE`], 1 s). Units unspent at the end are dropped,
//!   not given back: Redis keeps them counted, until the window ends or the
//!   TAT passes. So a crashed instance's lease blocks nobody for longer
//!   than that.
//! - **All or nothing**: a check over several limits takes units from
//!   every lease or from none; units granted for one limit while another
//!   refused stay for later checks.
//! - **Refusals**: a refusal from Redis is remembered in the lease, as the
//!   over-limit cache would: checks of at least that cost are refused
//!   locally until the retry instant.
//! - **Redis away**: units held are still spent. A refill goes through the
//!   circuit breaker and, failing, is answered as any check (the layer's
//!   policy, or the local fallback when on).
//! - On Redis Cluster a check over several client keys refills each
//!   slot's leases in a call of its own; no undo is needed, since leases
//!   need not be all or nothing.
//! - **Refunds**: an admission spent from units held here is refunded to
//!   those units, locally, until their lease ends (see
//!   [Refunds](#refunds)); a lease still holds at most `tokens` units, so
//!   the bounds below are unchanged, a refunded admission counting as none.
//!
//! ## Bounds
//!
//! Every unit an instance spends was charged in Redis before, in the
//! window (or at the instant) of its lease. With `instances` instances
//! sharing the prefix and leases of `tokens`:
//!
//! - **Fixed window: never over the quota.** In every window of Redis's
//!   clock the fleet admits at most the quota: a unit is charged to the
//!   window it is leased in and spent only before that window ends. It may
//!   admit less: units leased and left unspent at the window's end, at
//!   most `instances × tokens` per window.
//! - **GCRA: at most `instances × tokens` over.** In any interval, the
//!   fleet admits at most what the limit allows in that interval plus the
//!   units the instances held when it began: at most `instances ×
//!   tokens`. And since a unit is spent at most `max_age` after it was
//!   charged, never more than the limit allows over the interval begun
//!   `max_age` earlier. From a key's first use, the total admitted never
//!   exceeds what the limit allowed since. It may admit less: units unspent
//!   when a lease ends, at most `tokens` per instance and key per
//!   `max_age`.
//!
//! Both hold as long as the local clock does not run slower than Redis's
//! (a monotonic clock on a machine kept by NTP differs by some parts per
//! million; its offset does not matter).
//!
//! ## Figures
//!
//! A check answered from a lease reports: `remaining`, what Redis had left
//! after this instance's last lease call for the key plus the units this
//! instance still holds (an estimate: other instances' admissions since
//! that call are not seen, nor, for GCRA, what refilled since); `window`,
//! Redis's effective window at that call less the time passed since (a
//! fixed window's end; for GCRA, when the next unit comes); a refusal's
//! `retry_after`, the remembered retry instant less the time passed. A
//! check that called Redis reports Redis's figures. [`RedisStore::lease_stats`]
//! counts what leased mode did; [`RedisStore::leases_held`] the keys it
//! holds a lease (or a remembered refusal) for.
//!
//! # Refunds
//!
//! With [`RateLimitLayerBuilder::refund_when`](crate::RateLimitLayerBuilder::refund_when),
//! an admitted request's charge is given back once its answer is known.
//! The charge is taken on admission, as always, so requests in flight count
//! until their answers: concurrent requests never pass a limit together.
//!
//! **Receipts.** A charging check runs the script in its mode `"2"`, which
//! answers the `TIME` it used after the figures. An admitted check's
//! verdict carries a [`Receipt`]: `at`, that `TIME` in nanoseconds since
//! the Unix epoch; `id`, the check's number, from which the store rebuilds
//! the nonce that named its sorted-set members. A refused check, a look
//! ([`Store::peek`]), an answer from the over-limit cache and an answer of
//! the [local fallback](#fallback) carry none (a fallback answer is not
//! refunded: it was never charged in Redis).
//!
//! **The refund** runs `rollback.lua` on the receipt, in a task of its own
//! on the current Tokio runtime, one call over every charge of the check
//! (per slot on a cluster, below):
//!
//! | algorithm | given back | exact? |
//! |---|---|---|
//! | fixed window | the cost, from the window the charge counted in | yes; a refund arriving after that window ended gives nothing to the new one |
//! | sliding window counter | the cost, from the window the charge counted in | yes; after the window changed, that window's count weighs as the previous one |
//! | sliding log | the check's own entries | yes |
//! | GCRA | the TAT goes back by `cost × T` less the time since the charge | when the bucket was idle before the charge and nothing was charged since (the allowance is then full again); else the time since the charge (the request's time in flight) is not given back: the allowance is what it should be that much later |
//! | concurrency | nothing | its permit gives the slot back when the response body ends |
//!
//! The GCRA rule is the most a refund can give back knowing only the
//! state and the receipt: time passing may already have absorbed part of
//! the charge, and another check arriving since may have been admitted on
//! that room, so giving back the whole `cost × T` could hand out that
//! check's room a second time. No refund ever gives back more than its
//! charge took, so none admits what the request's absence would have
//! refused. A refund Redis does not receive (Redis away, no runtime, the
//! process gone) leaves its charge to expire: refusals too many, never
//! admissions.
//!
//! **Over-limit cache.** A refusal it remembers was true when Redis
//! answered it; a refund may make it stale, and the cache then refuses
//! what Redis would admit: extra refusals, never an admission, since the
//! cache only ever refuses. Once a refund's rollback has answered, the
//! store drops the entries of the refunded counters, so the next check asks
//! Redis again.
//!
//! **Redis Cluster.** A check spread over several slots (below) is
//! refunded part by part, each part by its own rollback in its slot, under
//! the nonce it ran with (the check's nonce and the part's number, which
//! the charges give again). The parts ran at different `TIME`s, on
//! different nodes, and a receipt holds one: it holds the earliest any part
//! answered. That is never later than a part's own `TIME`, and the rollback
//! never gives back more on an earlier time (above, per algorithm), so the
//! refund of a spread check never over-admits either, whatever the clocks
//! of the nodes. It is as exact as on one node for sliding logs and,
//! unless a window boundary fell between the parts, for windows; a GCRA
//! part gets back less by the time between the first part's `TIME` and
//! its own (a round trip, plus any lead its node's clock has over the
//! first one's).
//!
//! **Leased mode.** An answer spent from units this instance holds carries
//! a receipt marking it as leased, whose `at` is the local instant until
//! which those units were spendable (the earliest end of their leases).
//! Its refund gives the units back to the leases held here, at once,
//! without a call: Redis counted them when it granted the lease, so
//! spending them again before that instant is what the lease would have
//! done had the refunded request never come. Units whose lease has ended,
//! or beyond what a lease holds (`tokens`), are dropped, as unspent units
//! are. Checks in leased mode that went to Redis per request are refunded
//! in Redis as above.
//!
//! # Redis Cluster
//!
//! A URL `redis+cluster://[user:password@]host:port,host:port,...` (some of
//! the cluster's nodes) uses the cluster client. A check whose charges all
//! count one client key (one rule, any number of limits) runs as one script
//! in that key's slot, exactly as on one node.
//!
//! A check over several client keys (a rule per API key plus a rule per
//! IP) cannot run as one script on a cluster, since its keys live in
//! different slots (`CROSSSLOT`). It runs part by part instead: one script
//! per slot, in a fixed order (by hash tag), each taking its part all or
//! nothing and answering the `TIME` it used. When a part refuses, or a call
//! fails, the parts already charged are undone by another script: the cost
//! taken back from the window it was counted in (fixed and sliding
//! windows), the request's entry removed (sliding log, concurrency), the
//! TAT moved back by `cost × T` less the time since the charge (GCRA; time
//! may already have absorbed part of it). An undo never gives back more
//! than its charge took, so no check is ever admitted that would have been
//! refused had the undone check never run: **no over-admission**. The
//! price:
//!
//! - one round trip per slot, plus one per part undone after a refusal;
//! - **over-refusal** for about a round trip: while a part is charged and
//!   not yet undone, other checks of that client key see its charge;
//! - an undo that does not reach Redis (Redis away, the check's future
//!   dropped between its parts, the process gone) leaves its charge to
//!   expire with the state it is in: refusals, never admissions;
//! - a refused check reports the first part that refused (later parts are
//!   not asked); a look ([`Store::peek`]) asks every part, writing nothing.
//!
//! On one node (or a proxy in front of a primary) such checks run as one
//! script.

mod breaker;
mod builder;
mod call;
mod cancel;
mod connection;
mod deadline;
mod fallback;
mod future;
mod handle;
mod key;
mod layout;
mod lease;
mod lease_slots;
mod leased;
mod over_limit;
mod refund;
mod reply;
mod scripts;
mod spread;

pub use breaker::{
    BreakerSettings, BreakerState, BreakerStats, CircuitOpen, DEFAULT_BREAKER_FAILURE_RATE,
    DEFAULT_BREAKER_INITIAL_BACKOFF, DEFAULT_BREAKER_MAX_BACKOFF, DEFAULT_BREAKER_MIN_CALLS,
    DEFAULT_BREAKER_WINDOW,
};
pub use builder::RedisStoreBuilder;
pub use fallback::FallbackStats;
pub use future::CheckFuture;
pub use handle::RedisHandle;
pub use lease::{
    LeaseStats, TokenLease, DEFAULT_LEASE_MAX_AGE, DEFAULT_LEASE_MAX_KEYS, MAX_LEASE_TOKENS,
};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use self::breaker::Breaker;
use self::call::Gate;
use self::connection::Backend;
use self::deadline::Deadlines;
use self::fallback::{Fallback, LocalCharge};
use self::handle::Spec;
use self::lease_slots::LeaseSlots;
use self::over_limit::OverLimitCache;
use self::reply::{read_outcome, read_reply, RedisTime};
use self::scripts::{Run, CONCURRENCY, FIXED_WINDOW, GCRA, QUEUED_GCRA, RELEASE};
use super::coalesce::coalesce;
use super::{Charge, Checked, Permit, Permits, Receipt, Store, Verdict};
use crate::clock::Clock;
use crate::decision::Decision;
use crate::error::{ConfigError, StoreError};
use crate::limit::Limit;

/// The default per-call timeout: 50 ms (see the
/// [module docs](self#when-redis-is-away-or-slow) for the latency it was
/// chosen from).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The default key prefix: `tollgate`.
pub const DEFAULT_PREFIX: &str = "tollgate";

/// The default time to live of a concurrency slot held in Redis: 60 s.
pub const DEFAULT_CONCURRENCY_SLOT_TTL: Duration = Duration::from_secs(60);

/// What a [`RedisStore`] answers while Redis cannot: its failure policy,
/// chosen with [`RedisStoreBuilder::fallback_local`] (the default, for 1
/// instance) or [`RedisStoreBuilder::no_fallback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WhenDown {
    /// The local fallback answers: this instance enforces each limit in its
    /// own memory, the quota divided by `instances` (rounded down, at least
    /// 1). See the [module docs](self#fallback).
    LocalFallback {
        /// How many instances share the store.
        instances: u32,
    },
    /// Checks answer a [`StoreError`], and the layer its
    /// [`OnStoreError`](crate::OnStoreError) policy (503 by default, or
    /// fail open).
    StoreError,
}

impl fmt::Display for WhenDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhenDown::LocalFallback { instances } => write!(
                f,
                "checks are answered by the local fallback limiter (each quota divided by \
                 {instances} instance{})",
                if *instances == 1 { "" } else { "s" }
            ),
            WhenDown::StoreError => {
                f.write_str("checks answer a store error (the layer's OnStoreError policy applies)")
            }
        }
    }
}

/// The least time a permit's release may take, whatever the check timeout.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// Marks the [`Receipt::id`] of an answer from leases (the other receipts
/// carry a check's number, always below it); see [`refund`].
const LEASED_RECEIPT: u64 = 1 << 63;

/// The clock the store times its own local state with (never admission:
/// that is Redis's `TIME`).
type LocalClock = Arc<dyn Clock>;

/// Counters in Redis; see the [module docs](self). Clones share one
/// connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    prefix: Box<str>,
    timeout: Duration,
    slot_ttl_ms: u64,
    /// Random per store, so members of sorted sets never clash across
    /// instances.
    nonce_base: u64,
    nonce_next: AtomicU64,
    /// Numbers bound limits, for the over-limit cache.
    serial_next: AtomicU64,
    over_limit: Option<OverLimitCache>,
    breaker: Option<Breaker>,
    /// Charging scripts' deadlines on Redis's clock.
    deadlines: Deadlines,
    fallback: Option<Fallback>,
    /// The local clock: over-limit cache, breaker, fallback, leases.
    clock: LocalClock,
    /// Leased mode's leases, when on.
    leases: Option<LeaseSlots>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::RedisMetrics,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.inner.backend.is_cluster())
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field(
                "over_limit_cache",
                &self
                    .inner
                    .over_limit
                    .as_ref()
                    .map(OverLimitCache::max_entries),
            )
            .field(
                "breaker_min_calls",
                &self.inner.breaker.as_ref().map(Breaker::min_calls),
            )
            .field(
                "fallback_instances",
                &self.inner.fallback.as_ref().map(Fallback::instances),
            )
            .field("leased", &self.inner.leases.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` with default settings; see
    /// [`builder`](Self::builder). Connects on the first check, not here.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] when the URL cannot be read.
    pub fn new(url: &str) -> Result<RedisStore, ConfigError> {
        Self::builder(url).build()
    }

    /// Configures a store on the Redis at `url`: `redis://[user:password@]host:port[/db]`,
    /// `rediss://…` (needs the `redis` crate's TLS features), `unix:///path`,
    /// or `redis+cluster://[user:password@]host:port,host:port,…` for a cluster.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url.into())
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// What checks answer while Redis cannot: the local fallback (the
    /// default) or a store error.
    ///
    /// ```
    /// use tollgate::store::{redis::WhenDown, RedisStore};
    /// # fn main() -> Result<(), tollgate::ConfigError> {
    /// let store = RedisStore::new("redis://127.0.0.1:6379/")?;
    /// assert_eq!(store.when_down(), WhenDown::LocalFallback { instances: 1 });
    /// let strict = RedisStore::builder("redis://127.0.0.1:6379/").no_fallback().build()?;
    /// assert_eq!(strict.when_down(), WhenDown::StoreError);
    /// # Ok(()) }
    /// ```
    pub fn when_down(&self) -> WhenDown {
        match &self.inner.fallback {
            Some(fallback) => WhenDown::LocalFallback {
                instances: fallback.instances(),
            },
            None => WhenDown::StoreError,
        }
    }

    /// Checks answered from the over-limit cache, without Redis, since the
    /// store was built (0 when the cache is off); see the
    /// [module docs](self#over-limit-cache).
    pub fn over_limit_cache_hits(&self) -> u64 {
        self.inner
            .over_limit
            .as_ref()
            .map_or(0, OverLimitCache::hits)
    }

    /// Entries in the over-limit cache now, expired ones not yet dropped
    /// included; never above its `max_entries` (0 when the cache is off).
    pub fn over_limit_cache_len(&self) -> usize {
        self.inner
            .over_limit
            .as_ref()
            .map_or(0, OverLimitCache::len)
    }

    /// Where the circuit breaker stands; [`BreakerState::Closed`] when it
    /// is off. See the [module docs](self#circuit-breaker).
    pub fn breaker_state(&self) -> BreakerState {
        self.inner
            .breaker
            .as_ref()
            .map_or(BreakerState::Closed, Breaker::state)
    }

    /// The circuit breaker's transitions since the store was built, for
    /// tests and metrics; all zero when it is off.
    pub fn breaker_stats(&self) -> BreakerStats {
        self.inner
            .breaker
            .as_ref()
            .map_or_else(BreakerStats::default, Breaker::stats)
    }

    /// What the local fallback has done: checks it answered, switches to
    /// it and back; all zero when it is off. See the
    /// [module docs](self#fallback).
    pub fn fallback_stats(&self) -> FallbackStats {
        self.inner
            .fallback
            .as_ref()
            .map_or_else(FallbackStats::default, Fallback::stats)
    }

    /// What leased mode has done: checks answered from leases, lease
    /// calls, units granted; all zero when it is off. See the
    /// [module docs](self#leased-mode).
    pub fn lease_stats(&self) -> LeaseStats {
        self.inner
            .leases
            .as_ref()
            .map_or_else(LeaseStats::default, LeaseSlots::stats)
    }

    /// Counters with a lease held (or a refusal remembered) here now, idle
    /// ones not yet dropped included; 0 when leased mode is off.
    pub fn leases_held(&self) -> usize {
        self.inner.leases.as_ref().map_or(0, LeaseSlots::len)
    }

    /// [`start`](Self::start) with each counter charged once: a counter
    /// charged twice is one charge of the summed cost, and the decision
    /// names the first place it had in the check.
    fn start_coalesced(
        &self,
        charges: &[Charge<'_, RedisHandle>],
        take: bool,
    ) -> Checked<CheckFuture> {
        let Some((kept, positions)) = coalesce(charges, same_counter) else {
            return self.start(charges, take);
        };
        let renumber = move |verdict: Verdict| {
            let policy = verdict.decision.policy();
            match positions.get(policy) {
                Some(&original) => Verdict {
                    decision: verdict.decision.at_policy(original),
                    ..verdict
                },
                None => verdict,
            }
        };
        match self.start(&kept, take) {
            Checked::Ready(result) => Checked::Ready(result.map(renumber)),
            Checked::Pending(future) => {
                Checked::Pending(CheckFuture::new(async move { future.await.map(renumber) }))
            }
        }
    }

    fn start(&self, charges: &[Charge<'_, RedisHandle>], take: bool) -> Checked<CheckFuture> {
        if charges.is_empty() {
            return Checked::Ready(Ok(Verdict {
                decision: Decision::unlimited(),
                permits: Permits::none(),
                receipt: None,
            }));
        }
        if let Some(checked) = self.start_leased(charges, take) {
            return checked;
        }
        let inner = &self.inner;
        let id = inner.next_id();
        let nonce = inner.nonce_of(id);
        let mut keys = Vec::with_capacity(charges.len());
        let mut args = Vec::with_capacity(layout::check_args(charges.len()));
        // Mode "2" charges and answers the TIME it used: an admitted check
        // gets a receipt a refund can give its charges back with.
        args.push(if take { "2" } else { "0" }.to_owned());
        args.push(nonce.clone());
        let mut slots = Vec::new();
        let mut tag = String::new();
        let cache = inner.over_limit.as_ref();
        let now = cache.map_or(0, OverLimitCache::now);
        let mut remember = Vec::new();
        // Owned copies for the local fallback, when on (and every handle
        // has its local share).
        let mut local = inner
            .fallback
            .as_ref()
            .map(|_| Vec::with_capacity(charges.len()));
        for (i, charge) in charges.iter().enumerate() {
            let spec = &charge.handle.spec;
            if let Some(copies) = &mut local {
                match &spec.local {
                    Some(handle) => copies.push(LocalCharge {
                        handle: handle.clone(),
                        key: charge.key.clone().into_owned(),
                        cost: charge.cost,
                    }),
                    None => local = None,
                }
            }
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            let counter = key::counter(&inner.prefix, &tag, &spec.id);
            if let (Some(cache), true) = (cache, spec.code != CONCURRENCY) {
                if let Some(denied) = cache.lookup(&counter, spec.serial, charge.cost, now) {
                    return Checked::Ready(Ok(Verdict {
                        decision: Decision::from_outcome(i, denied),
                        permits: Permits::none(),
                        receipt: None,
                    }));
                }
                // A charge on a counter an earlier one charges sees that
                // cost too: its refusal may not hold alone.
                if !keys.contains(&counter) {
                    remember.push(Remember {
                        position: i,
                        counter: counter.clone(),
                        serial: spec.serial,
                        cost: charge.cost,
                    });
                }
            }
            args.push(spec.code.to_owned());
            args.push(charge.cost.to_string());
            args.extend(spec.params.iter().map(u64::to_string));
            if take && spec.code == CONCURRENCY {
                // The member the script names this charge's slot with.
                slots.push(Slot {
                    member: format!("{}:{nonce}:{}", charge.cost, i + 1),
                    key: counter.clone(),
                    cost: charge.cost,
                });
            }
            keys.push(counter);
        }
        // After the over-limit cache: a cached refusal still answers.
        let Some(gate) = inner.admit() else {
            return Checked::Ready(inner.circuit_open(local.as_deref(), take));
        };
        let remember = (!remember.is_empty()).then_some((now, remember));
        Checked::Pending(CheckFuture::new(Inner::check(
            gate,
            Call {
                id,
                keys,
                args,
                slots,
                remember,
            },
            local,
            take,
        )))
    }
}

impl Inner {
    /// The number of the next check sent to Redis: its nonce is
    /// [`nonce_of`](Self::nonce_of) it, and an admitted check's
    /// [`Receipt::id`]. Below [`LEASED_RECEIPT`], which marks the receipts
    /// of answers from a lease.
    fn next_id(&self) -> u64 {
        self.nonce_next.fetch_add(1, Ordering::Relaxed) & !LEASED_RECEIPT
    }

    /// The nonce of check number `id` of this store: it names the check's
    /// sorted-set members, so a refund rebuilds it from the receipt.
    fn nonce_of(&self, id: u64) -> String {
        format!("{:016x}.{id:x}", self.nonce_base)
    }

    /// Runs a check let through by the breaker: its one script (or one per
    /// slot on a cluster, [`check_spread`](Self::check_spread)), and reads
    /// the answer.
    async fn check(
        mut gate: Gate,
        call: Call,
        local: Option<Vec<LocalCharge>>,
        take: bool,
    ) -> Result<Verdict, StoreError> {
        let this = Arc::clone(gate.inner());
        if this.backend.is_cluster() && spread::spans_slots(&call.keys) {
            return this.check_spread(gate, call, local, take).await;
        }
        let Call {
            id,
            keys,
            args,
            slots,
            remember,
        } = call;
        let charges = keys.len();
        // Until the answer admits, the concurrency slots this check may have
        // taken are given back if it ends any other way: a call that timed
        // out (or was cancelled) may still have taken them in Redis.
        let mut holds = Unanswered {
            inner: &this,
            slots,
        };
        let reply = gate.script(Run::Check, keys, args).await;
        gate.report(reply.is_ok());
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return this.degrade(error, local.as_deref(), take),
        };
        // A charging check runs in mode "2": its answer ends with the TIME
        // it used, which an admitted check's receipt carries.
        let (decision, clock) = read_reply(&reply, charges, take)?;
        if let (Some(cache), Some((sent, remember)), false) =
            (&this.over_limit, remember, decision.is_allowed())
        {
            for r in remember {
                let figures = layout::outcome_figures(&reply, r.position);
                if let Some(outcome) = figures.and_then(read_outcome) {
                    cache.remember(&r.counter, r.serial, r.cost, sent, &outcome);
                }
            }
        }
        let mut permits = Permits::none();
        let slots = std::mem::take(&mut holds.slots);
        if decision.is_allowed() {
            for slot in slots {
                let inner = Arc::clone(&this);
                permits.push(Permit::from_fn(move || inner.release(slot)));
            }
        }
        let receipt = match (decision.is_allowed(), clock) {
            (true, Some(clock)) => Some(Receipt::new(clock.nanos(), id)),
            _ => None,
        };
        Ok(Verdict {
            decision,
            permits,
            receipt,
        })
    }

    /// Gives back a slot from a dropped permit: a task on the current
    /// runtime removes it; without a runtime it ends at its expiry.
    fn release(self: Arc<Self>, slot: Slot) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                "no Tokio runtime to give back a Redis concurrency slot; it ends at its expiry"
            );
            return;
        };
        runtime.spawn(async move {
            let Slot { key, member, cost } = slot;
            let sum = format!("{key}:n");
            let timeout = self.timeout.max(RELEASE_TIMEOUT);
            let released: Result<i64, StoreError> = self
                .backend
                .invoke(
                    &RELEASE,
                    vec![key, sum],
                    vec![member, cost.to_string()],
                    timeout,
                )
                .await;
            if let Err(error) = released {
                tracing::debug!(%error, "could not give back a Redis concurrency slot; it ends at its expiry");
            }
        });
    }
}

/// The concurrency slots a check's call may have taken, until its answer
/// says whether it did: dropped with any left (the call failed, timed out
/// or was cancelled), it releases them, as permits do. A release of a slot
/// never taken removes nothing, and it runs after the check's own script on
/// the same connection.
struct Unanswered<'a> {
    inner: &'a Arc<Inner>,
    slots: Vec<Slot>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        for slot in self.slots.drain(..) {
            Arc::clone(self.inner).release(slot);
        }
    }
}

/// Whether two charges count on one Redis counter as one limit: the same
/// key, and limits of the same name, algorithm and parameters.
fn same_counter(a: &Charge<'_, RedisHandle>, b: &Charge<'_, RedisHandle>) -> bool {
    let (x, y) = (&a.handle.spec, &b.handle.spec);
    a.key == b.key && x.id == y.id && x.code == y.code && x.params == y.params
}

/// What a check sends to Redis, and what it does with the answer.
struct Call {
    /// The check's number ([`Inner::next_id`]); `args[1]` is its nonce.
    id: u64,
    keys: Vec<String>,
    args: Vec<String>,
    slots: Vec<Slot>,
    remember: Option<(u64, Vec<Remember>)>,
}

/// A concurrency slot an admitted request holds in Redis.
struct Slot {
    key: String,
    member: String,
    cost: u64,
}

/// A rate charge whose refusal the over-limit cache may keep.
struct Remember {
    /// Its position in the check.
    position: usize,
    counter: String,
    serial: u64,
    cost: u64,
}

impl Store for RedisStore {
    type Handle = RedisHandle;
    type Future = CheckFuture;

    /// Binding needs no round trip; the same policy name and algorithm
    /// bound twice (here or in another instance with the same prefix)
    /// share counters.
    fn bind(&self, limit: &Limit) -> RedisHandle {
        let serial = self.inner.serial_next.fetch_add(1, Ordering::Relaxed);
        let local = self.inner.fallback.as_ref().map(|f| f.bind(limit));
        RedisHandle::new(limit, self.inner.slot_ttl_ms, serial, local)
    }

    fn check(&self, charges: &[Charge<'_, RedisHandle>]) -> Checked<CheckFuture> {
        self.start_coalesced(charges, true)
    }

    fn peek(&self, charges: &[Charge<'_, RedisHandle>]) -> Checked<CheckFuture> {
        self.start_coalesced(charges, false)
    }

    fn cancel(&self, charges: &[Charge<'_, RedisHandle>], receipt: Receipt, delay: Duration) {
        match coalesce(charges, same_counter) {
            Some((kept, _)) => self.inner.cancel(&kept, receipt, delay),
            None => self.inner.cancel(charges, receipt, delay),
        }
    }

    fn refund(&self, charges: &[Charge<'_, RedisHandle>], receipt: Receipt) {
        // The charges as the check ran them (sorted-set members are named
        // by their position there).
        match coalesce(charges, same_counter) {
            Some((kept, _)) => self.inner.refund(&kept, receipt),
            None => self.inner.refund(charges, receipt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_rebuild_their_nonce_and_never_look_leased() {
        let store = RedisStore::new("redis://127.0.0.1:1/").expect("store");
        let inner = &store.inner;
        let first = inner.next_id();
        let second = inner.next_id();
        assert_eq!(second, first + 1);
        assert_eq!(first & LEASED_RECEIPT, 0);
        assert_ne!(inner.nonce_of(first), inner.nonce_of(second));
        assert!(inner.nonce_of(second).ends_with(&format!(".{second:x}")));
        // Past 2^63 checks the number wraps below the leased mark.
        inner
            .nonce_next
            .store(LEASED_RECEIPT + 7, Ordering::Relaxed);
        assert_eq!(inner.next_id(), 7);
    }

    #[test]
    fn builder_refuses_unusable_settings() {
        for builder in [
            RedisStore::builder("redis://127.0.0.1:1/").prefix("a{b}"),
            RedisStore::builder("redis://127.0.0.1:1/").prefix(""),
            RedisStore::builder("redis://127.0.0.1:1/").timeout(Duration::ZERO),
            RedisStore::builder("redis://127.0.0.1:1/").concurrency_slot_ttl(Duration::ZERO),
            RedisStore::builder("redis://127.0.0.1:1/")
                .breaker(BreakerSettings::new().min_calls(0)),
            RedisStore::builder("redis://127.0.0.1:1/")
                .breaker(BreakerSettings::new().failure_rate(0.0)),
            RedisStore::builder("redis://127.0.0.1:1/")
                .breaker(BreakerSettings::new().backoff(Duration::ZERO, Duration::from_secs(1))),
            RedisStore::builder("redis://127.0.0.1:1/").breaker(
                BreakerSettings::new().backoff(Duration::from_secs(2), Duration::from_secs(1)),
            ),
            RedisStore::builder("not a url"),
            RedisStore::builder("redis+cluster://"),
            RedisStore::builder("redis://127.0.0.1:1/").fallback_local(0),
        ] {
            assert!(matches!(builder.build(), Err(ConfigError::Store { .. })));
        }
        let secret = RedisStore::builder("redis://:hunter2@127.0.0.1:1/");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let store = secret.build().expect("valid");
        assert_eq!(store.prefix(), DEFAULT_PREFIX);
        assert!(RedisStore::new("redis+cluster://127.0.0.1:1,127.0.0.1:2").is_ok());
    }
}
