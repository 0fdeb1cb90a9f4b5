package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSecretsPutReplaceListDelete(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	if _, err := s.Secret(ctx, "camera.gate"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"camera.gate"`) {
		t.Fatalf("no secret yet: %v, want ErrNotFound naming it", err)
	}
	gate := SealedSecret{Name: "camera.gate", Ciphertext: []byte("\x00sealed-gate"), KeyID: "k1", UpdatedAt: t0, UpdatedBy: "cli:ada"}
	hook := SealedSecret{Name: "webhook.ops", Ciphertext: []byte("sealed-hook"), KeyID: "k1", UpdatedAt: t0, UpdatedBy: "cli:ada"}
	if err := s.PutSecrets(ctx, hook, gate); err != nil {
		t.Fatal(err)
	}
	got, err := s.Secret(ctx, "camera.gate")
	if err != nil || !bytes.Equal(got.Ciphertext, gate.Ciphertext) || got.KeyID != "k1" || !got.UpdatedAt.Equal(t0) || got.UpdatedBy != "cli:ada" {
		t.Fatalf("Secret = %+v, %v", got, err)
	}
	// a put replaces, keeping one row per name
	gate2 := SealedSecret{Name: "camera.gate", Ciphertext: []byte("sealed-again"), KeyID: "k2", UpdatedAt: t0.Add(time.Hour), UpdatedBy: "cli:bob"}
	if err := s.PutSecrets(ctx, gate2); err != nil {
		t.Fatal(err)
	}
	list, err := s.Secrets(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "camera.gate" || list[1].Name != "webhook.ops" ||
		list[0].KeyID != "k2" || string(list[0].Ciphertext) != "sealed-again" || list[0].UpdatedBy != "cli:bob" {
		t.Fatalf("Secrets = %+v, %v", list, err)
	}
	// all or none: one bad secret stores nothing
	if err := s.PutSecrets(ctx, SealedSecret{Name: "x", Ciphertext: []byte("c"), KeyID: "k", UpdatedAt: t0},
		SealedSecret{Name: "y", KeyID: "k", UpdatedAt: t0}); err == nil || !strings.Contains(err.Error(), `"y"`) {
		t.Fatalf("put without ciphertext: %v", err)
	}
	if _, err := s.Secret(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused put stored part: %v", err)
	}
	for _, bad := range []SealedSecret{{Ciphertext: []byte("c"), KeyID: "k", UpdatedAt: t0}, {Name: "n", Ciphertext: []byte("c"), UpdatedAt: t0},
		{Name: "n", Ciphertext: []byte("c"), KeyID: "k"}} {
		if err := s.PutSecrets(ctx, bad); err == nil {
			t.Errorf("put %+v taken", bad)
		}
	}
	if err := s.DeleteSecret(ctx, "webhook.ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret(ctx, "webhook.ops"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// survives a reopen
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if list, err := s2.Secrets(ctx); err != nil || len(list) != 1 || list[0].Name != "camera.gate" {
		t.Fatalf("after reopen: %+v, %v", list, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
