package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T) (string, []byte) {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(raw) != KeySize {
		t.Fatalf("NewKey made %d bytes, err %v", len(raw), err)
	}
	return k, raw
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSealOpenRoundTripWithFreshNonces(t *testing.T) {
	_, raw := testKey(t)
	b, err := NewBox(raw)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte("hunter2-camera-pass")
	s1, err := b.SealSecret("camera.gate", value)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.SealSecret("camera.gate", value)
	if bytes.Equal(s1.Ciphertext, s2.Ciphertext) || bytes.Equal(s1.Ciphertext[:nonceSize], s2.Ciphertext[:nonceSize]) {
		t.Fatal("two seals of one value gave the same nonce or ciphertext")
	}
	if bytes.Contains(s1.Ciphertext, value) || s1.KeyID != b.KeyID() || s1.KeyID != KeyID(raw) {
		t.Fatalf("sealed %+v: holds the value or the wrong key ID", s1)
	}
	got, err := b.OpenSecret("camera.gate", s1)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// bound to its name: a row copied under another name does not open
	if _, err := b.OpenSecret("webhook.ops", s1); err == nil || !strings.Contains(err.Error(), `"webhook.ops"`) {
		t.Fatalf("open under another name: %v", err)
	}
	tampered := Sealed{KeyID: s1.KeyID, Ciphertext: bytes.Clone(s1.Ciphertext)}
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	if _, err := b.OpenSecret("camera.gate", tampered); err == nil {
		t.Fatal("a changed ciphertext opened")
	}
	if _, err := b.OpenSecret("camera.gate", Sealed{KeyID: s1.KeyID, Ciphertext: []byte{1, 2}}); err == nil {
		t.Fatal("a short ciphertext opened")
	}
	if _, err := b.SealSecret("bad name!", value); err == nil {
		t.Fatal("sealed under a bad name")
	}
}

func TestRotationOpensOldKeysAndSealsWithNew(t *testing.T) {
	_, oldRaw := testKey(t)
	_, newRaw := testKey(t)
	old, _ := NewBox(oldRaw)
	s, err := old.SealSecret("webhook.ops", []byte("whsec"))
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := NewBox(newRaw)
	_, err = onlyNew.OpenSecret("webhook.ops", s)
	if err == nil || !strings.Contains(err.Error(), s.KeyID) || !strings.Contains(err.Error(), KeyEnv) {
		t.Fatalf("open with a box lacking the key: %v, want the missing key's ID and the env var", err)
	}
	rotated, err := NewBox(newRaw, oldRaw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.OpenSecret("webhook.ops", s); err != nil || string(got) != "whsec" {
		t.Fatalf("rotated box: %q, %v", got, err)
	}
	if s2, _ := rotated.SealSecret("webhook.ops", []byte("whsec")); s2.KeyID != KeyID(newRaw) {
		t.Fatalf("rotated box sealed with %s, want the new key %s", s2.KeyID, KeyID(newRaw))
	}
	if ids := rotated.KeyIDs(); len(ids) != 2 || ids[0] != KeyID(newRaw) {
		t.Fatalf("KeyIDs %v", ids)
	}
	if _, err := NewBox(newRaw, newRaw); err == nil {
		t.Fatal("a key given twice was taken")
	}
	if _, err := NewBox(oldRaw[:16]); err == nil {
		t.Fatal("a 16-byte key was taken")
	}
}

func TestBlobsOpenWithAnyKeyOfTheBox(t *testing.T) {
	_, oldRaw := testKey(t)
	_, newRaw := testKey(t)
	old, _ := NewBox(oldRaw)
	blob, err := old.Seal([]byte("totp-key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("totp-key")) {
		t.Fatal("the blob holds the value")
	}
	if got, err := old.Open(blob); err != nil || string(got) != "totp-key" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if again, _ := old.Seal([]byte("totp-key")); bytes.Equal(again, blob) {
		t.Fatal("two seals gave one blob")
	}
	rotated, _ := NewBox(newRaw, oldRaw)
	if got, err := rotated.Open(blob); err != nil || string(got) != "totp-key" {
		t.Fatalf("rotated Open = %q, %v", got, err)
	}
	onlyNew, _ := NewBox(newRaw)
	if _, err := onlyNew.Open(blob); err == nil || !strings.Contains(err.Error(), KeyID(oldRaw)) {
		t.Fatalf("open without the sealing key: %v", err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	for _, b := range [][]byte{nil, {2}, blob[:5], bad} {
		if _, err := old.Open(b); err == nil {
			t.Errorf("blob %x opened", b)
		}
	}
	// a named secret's ciphertext is no blob, and the other way round
	s, _ := old.SealSecret("x", []byte("v"))
	if _, err := old.Open(append([]byte{blobVersion}, s.Ciphertext...)); err == nil {
		t.Error("a named secret opened as a blob")
	}
	id, _ := hex.DecodeString(old.KeyID())
	if _, err := old.OpenSecret("x", Sealed{KeyID: old.KeyID(), Ciphertext: blob[1+len(id):]}); err == nil {
		t.Error("a blob opened as a named secret")
	}
}

func TestFromEnv(t *testing.T) {
	k1, raw1 := testKey(t)
	k2, raw2 := testKey(t)
	if _, err := FromEnv(env(nil)); !errors.Is(err, ErrNoKey) ||
		!strings.Contains(err.Error(), KeyEnv) || !strings.Contains(err.Error(), KeyFileEnv) {
		t.Fatalf("no key: %v, want ErrNoKey naming both variables", err)
	}
	b, err := FromEnv(env(map[string]string{KeyEnv: " " + k1 + " , " + k2 + "\n"}))
	if err != nil || b.KeyID() != KeyID(raw1) || len(b.KeyIDs()) != 2 {
		t.Fatalf("env keys: %v", err)
	}
	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, err := FromEnv(env(map[string]string{KeyEnv: bad}))
		if err == nil || !strings.Contains(err.Error(), KeyEnv) || strings.Contains(err.Error(), bad) {
			t.Errorf("bad key %q: %v, want an error naming the variable, not the value", bad, err)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte("# flowwatch key\n"+k2+"\n"+k1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err = FromEnv(env(map[string]string{KeyFileEnv: path}))
	if err != nil || b.KeyID() != KeyID(raw2) || len(b.KeyIDs()) != 2 {
		t.Fatalf("key file: %v", err)
	}
	if _, err := FromEnv(env(map[string]string{KeyEnv: k1, KeyFileEnv: path})); err == nil {
		t.Fatal("both variables set was taken")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := FromEnv(env(map[string]string{KeyFileEnv: path}))
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("key file mode %o: %v, want a refusal naming the file and the fix", mode, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{KeyFileEnv: filepath.Join(dir, "missing")})); err == nil || !strings.Contains(err.Error(), KeyFileEnv) {
		t.Errorf("missing key file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := FromEnv(env(map[string]string{KeyFileEnv: empty})); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("empty key file: %v", err)
	}
}

func TestRefsAndNames(t *testing.T) {
	if n, ok := ParseRef("secret:camera.gate"); !ok || n != "camera.gate" {
		t.Fatalf("ParseRef = %q %v", n, ok)
	}
	if _, ok := ParseRef("hunter2"); ok {
		t.Fatal("a clear value read as a reference")
	}
	if Ref("x") != "secret:x" {
		t.Fatal(Ref("x"))
	}
	for _, good := range []string{"a", "camera.gate-east_1", strings.Repeat("a", 128)} {
		if err := CheckName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"", ".x", "a b", "a/b", strings.Repeat("a", 129), "ü"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	k, _ := NewKey()
	f.Add(k)
	f.Add("# c\n" + k + "," + k)
	f.Add("!!")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeys("fuzz", text)
		if err != nil {
			if len(text) > 8 && !strings.ContainsAny(text, " \n") && strings.Contains(err.Error(), text) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		for _, k := range keys {
			if len(k) != KeySize {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
	})
}
