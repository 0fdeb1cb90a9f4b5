package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestSnapshotsSaveListGetDelete(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	pic := func(b byte) []byte { return []byte{0xff, 0xd8, b, 0xff, 0xd9} }
	var saved []Snapshot
	for i, c := range []string{"cam", "cam", "gate"} {
		sn, err := s.SaveSnapshot(ctx, Snapshot{Camera: c, At: base.Add(time.Duration(i) * time.Minute), By: "ada",
			Blurred: i != 1, Width: 64, Height: 48}, pic(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		if sn.ID == 0 || sn.Bytes != 5 {
			t.Fatalf("saved %+v", sn)
		}
		saved = append(saved, sn)
	}
	list, err := s.Snapshots(ctx, "cam", 0)
	if err != nil || len(list) != 2 || list[0] != saved[1] || list[1] != saved[0] {
		t.Fatalf("cam's snapshots, newest first: %+v %v\nwant %+v", list, err, saved[:2])
	}
	if list, err := s.Snapshots(ctx, "cam", 1); err != nil || len(list) != 1 || list[0].ID != saved[1].ID {
		t.Fatalf("limit 1: %+v %v", list, err)
	}
	if list, err := s.Snapshots(ctx, "none", 0); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("a camera without snapshots: %#v %v", list, err)
	}
	sn, data, err := s.SnapshotJPEG(ctx, saved[2].ID)
	if err != nil || sn != saved[2] || !bytes.Equal(data, pic(2)) {
		t.Fatalf("snapshot %d: %+v %x %v", saved[2].ID, sn, data, err)
	}
	if sn, data, err := s.LatestSnapshot(ctx, "cam"); err != nil || sn != saved[1] || !bytes.Equal(data, pic(1)) {
		t.Fatalf("latest of cam: %+v %x %v", sn, data, err)
	}
	if _, _, err := s.LatestSnapshot(ctx, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("latest of a camera without one: %v", err)
	}
	if _, _, err := s.SnapshotJPEG(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing snapshot: %v", err)
	}
	if got, err := s.DeleteSnapshot(ctx, saved[1].ID); err != nil || got != saved[1] {
		t.Fatalf("delete: %+v %v", got, err)
	}
	if _, err := s.DeleteSnapshot(ctx, saved[1].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if sn, _, _ := s.LatestSnapshot(ctx, "cam"); sn.ID != saved[0].ID {
		t.Fatalf("latest after the delete: %+v", sn)
	}

	// the period reader: [from, to), oldest first, pictures included
	var seen []int64
	err = s.EachSnapshot(ctx, base, base.Add(2*time.Minute), func(sn Snapshot, data []byte) error {
		if len(data) != 5 {
			t.Errorf("snapshot %d without its picture", sn.ID)
		}
		seen = append(seen, sn.ID)
		return nil
	})
	if err != nil || len(seen) != 1 || seen[0] != saved[0].ID {
		t.Fatalf("snapshots of the first two minutes: %v %v", seen, err)
	}

	if n, err := s.DeleteSnapshotsBefore(ctx, base.Add(90*time.Second)); err != nil || n != 1 {
		t.Fatalf("delete before: %d %v", n, err)
	}
	if list, _ := s.Snapshots(ctx, "gate", 0); len(list) != 1 {
		t.Fatalf("the younger snapshot went too: %+v", list)
	}

	for _, bad := range []struct {
		sn  Snapshot
		pic []byte
	}{
		{Snapshot{At: base, Width: 1, Height: 1}, pic(0)},
		{Snapshot{Camera: "cam", Width: 1, Height: 1}, pic(0)},
		{Snapshot{Camera: "cam", At: base}, pic(0)},
		{Snapshot{Camera: "cam", At: base, Width: 1, Height: 1}, nil},
	} {
		if _, err := s.SaveSnapshot(ctx, bad.sn, bad.pic); err == nil {
			t.Errorf("saved %+v with %d bytes", bad.sn, len(bad.pic))
		}
	}
}
