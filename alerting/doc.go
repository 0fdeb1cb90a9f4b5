// Package alerting turns people counts into decisions: comfort levels
// (舒适度) and capacity tiers per zone and area, surge and forecast alerts,
// camera health, diversion advice naming the neighbours with room, the
// alert lifecycle (raise, acknowledge, escalate, resolve), and delivery of
// every alert change through a store-backed outbox to consoles and
// webhooks.
//
// The Engine is deterministic: it sees count samples and camera states
// with their own timestamps and answers with alert changes, so the same
// code runs live, in tests over synthetic series, and in backtests over
// stored history. The Service around it stores each change before any
// notifier sees it. alerting never sees a pixel: it imports neither vision
// nor ingest.
package alerting
