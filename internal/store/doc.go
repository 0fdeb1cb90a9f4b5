// Package store is flowwatch's SQLite storage. It holds the historical
// heatmaps (density summed per camera per time bucket) and is where counts,
// alerts, users and the audit chain are kept too as those land.
//
// One database file serves the whole process. Open applies the schema
// migrations in order and records each in the schema_migrations table, so
// a newer flowwatch upgrades an older file in place and an older flowwatch
// refuses a file it does not understand. The file runs in WAL mode, so
// readers (the console) never wait for the writer (the vision stage).
package store
