package main

import (
	"context"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

// startAlerting builds the alerting service with a webhook notifier per
// configured webhook. Its metrics join /metrics.
func startAlerting(ctx context.Context, cfg *config.Config, db *store.Store, log *slog.Logger) (*alerting.Service, error) {
	var notifiers []alerting.Notifier
	for _, w := range cfg.Notify.Webhooks {
		n, err := alerting.NewWebhook(alerting.WebhookConfig{Name: w.Name, URL: w.URL, Secret: w.Secret})
		if err != nil {
			return nil, err
		}
		notifiers = append(notifiers, n)
	}
	set := metrics.NewSet()
	svc, err := alerting.NewService(ctx, alerting.ServiceConfig{Config: cfg, Store: db, Notifiers: notifiers,
		Logger: log, Metrics: set})
	if err != nil {
		return nil, err
	}
	metrics.RegisterSet(set)
	return svc, nil
}
