package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/secrets"
	"flowwatch/internal/store"
)

// startAlerting builds the alerting service with a webhook notifier per
// configured webhook, whose secrets cfg holds opened (see resolveSecrets).
// Its metrics join /metrics.
func startAlerting(ctx context.Context, cfg *config.Config, db *store.Store, log *slog.Logger) (*alerting.Service, error) {
	var notifiers []alerting.Notifier
	for _, w := range cfg.Notify.Webhooks {
		// serve opens secret: references first (resolveSecrets); one
		// left here would sign with its own text
		if name, ok := secrets.ParseRef(w.Secret); ok {
			return nil, fmt.Errorf("webhook %q: its secret refers to secret %q, which was not opened", w.Name, name)
		}
		n, err := alerting.NewWebhook(alerting.WebhookConfig{Name: w.Name, URL: w.URL, Secret: w.Secret,
			AllowLoopback: cfg.Security.AllowLoopback})
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
