// Package store is flowwatch's SQLite storage. It holds the count history
// (one-second points and one-minute rollups per target), the historical
// heatmaps (density summed per camera per time bucket), the alerts with
// their history, and the outbox of alert notifications; users and the audit
// chain are kept here too as those land.
//
// One database file serves the whole process. Open applies the schema
// migrations in order and records each in the schema_migrations table, so
// a newer flowwatch upgrades an older file in place and an older flowwatch
// refuses a file it does not understand. The file runs in WAL mode, so
// readers (the console) never wait for the writer (the vision stage).
//
// Alerts follow the outbox pattern: SaveAlertChange commits the alert, the
// change to its history and one delivery per notification channel in one
// transaction, before anything is sent; notifiers then take the due
// deliveries (DueDeliveries) and record each outcome (MarkDelivered,
// MarkRetry, MarkDead). Every channel's delivery of one change carries the
// same idempotency key, so a receiver can drop a repeat after a crash
// between sending and recording. The database itself allows at most one
// unresolved alert per key.
//
// Times are stored as unix seconds (counts, heatmaps) or milliseconds
// (alerts, outbox) and returned in UTC.
package store
