// Package secrets seals flowwatch's secrets (camera passwords, webhook
// secrets) for storage: AES-256-GCM with a random 96-bit nonce per seal,
// the ciphertext bound to the secret's name and tagged with the ID of the
// key that sealed it, so that keys can rotate.
//
// The key comes from the environment: FLOWWATCH_SECRET_KEY holds it in
// base64 (32 bytes), or FLOWWATCH_SECRET_KEY_FILE names a file holding it
// that only its owner may read. Either may list older keys after the
// current one (comma or newline separated) to open secrets sealed before a
// rotation. There is no fallback to clear text: without a key nothing is
// sealed or opened.
//
// A config refers to a stored secret as "secret:NAME" (see ParseRef).
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// The environment variables that give the key.
const (
	// KeyEnv holds the key in base64 (32 bytes), optionally followed by
	// older keys, comma separated.
	KeyEnv = "FLOWWATCH_SECRET_KEY"
	// KeyFileEnv names a file holding the key the same way, one key a
	// line; it must not be readable by group or others.
	KeyFileEnv = "FLOWWATCH_SECRET_KEY_FILE"
)

// RefPrefix starts a config value that refers to a stored secret.
const RefPrefix = "secret:"

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// nonceSize is GCM's standard 96-bit nonce.
const nonceSize = 12

// ErrNoKey is returned when neither KeyEnv nor KeyFileEnv is set.
var ErrNoKey = fmt.Errorf("no secret key: set %s to a base64 key of %d bytes (`flowwatch secrets keygen` makes one) or %s to a file holding it",
	KeyEnv, KeySize, KeyFileEnv)

// nameRE is the rule for secret names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName reports whether name may name a secret: 1 to 128 letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("secret name %q: use 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// ParseRef tells whether a config value refers to a stored secret
// ("secret:NAME") and returns the name. The name is not checked.
func ParseRef(value string) (name string, ok bool) {
	return strings.CutPrefix(value, RefPrefix)
}

// Ref returns the config value that refers to the secret name.
func Ref(name string) string { return RefPrefix + name }

// Sealed is a sealed secret: the key's ID and the nonce followed by the
// GCM ciphertext and tag.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// key is one AES-256-GCM key with its ID.
type key struct {
	id   string
	aead cipher.AEAD
}

// Box seals with its current key and opens with any of its keys: named
// secrets for the store (SealSecret, OpenSecret) and self-describing
// blobs for values others keep (Seal, Open). It is safe for concurrent
// use.
type Box struct {
	current key
	byID    map[string]key
}

// NewBox makes a box from raw keys of KeySize bytes: the first seals, all
// open. Two equal keys are refused.
func NewBox(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secrets: no key")
	}
	b := &Box{byID: map[string]key{}}
	for i, raw := range keys {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("secrets: key %d is %d bytes, want %d", i+1, len(raw), KeySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		k := key{id: KeyID(raw), aead: aead}
		if _, dup := b.byID[k.id]; dup {
			return nil, fmt.Errorf("secrets: key %d (ID %s) is given twice", i+1, k.id)
		}
		b.byID[k.id] = k
		if i == 0 {
			b.current = k
		}
	}
	return b, nil
}

// keyIDBytes is the length of a key ID (16 hex digits).
const keyIDBytes = 8

// KeyID is a key's public ID: the first 16 hex digits of a SHA-256 over a
// label and the key. It tells keys apart without revealing them.
func KeyID(raw []byte) string {
	h := sha256.New()
	h.Write([]byte("flowwatch secret key id v1\x00"))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))[:2*keyIDBytes]
}

// KeyID returns the ID of the key that seals.
func (b *Box) KeyID() string { return b.current.id }

// KeyIDs returns the IDs of every key of the box, the current one first.
func (b *Box) KeyIDs() []string {
	ids := []string{b.current.id}
	for id := range b.byID {
		if id != b.current.id {
			ids = append(ids, id)
		}
	}
	return ids
}

// additional binds a ciphertext to the secret's name and key, so that a
// row copied under another name does not open.
func additional(name, keyID string) []byte {
	return []byte("flowwatch secret v1\x00" + name + "\x00" + keyID)
}

// SealSecret encrypts the value of the secret name with the current key
// and a fresh random nonce; the ciphertext opens only under that name.
func (b *Box) SealSecret(name string, value []byte) (Sealed, error) {
	if err := CheckName(name); err != nil {
		return Sealed{}, fmt.Errorf("secrets: seal: %w", err)
	}
	ct, err := b.current.seal(value, additional(name, b.current.id))
	if err != nil {
		return Sealed{}, fmt.Errorf("secrets: seal %q: %w", name, err)
	}
	return Sealed{KeyID: b.current.id, Ciphertext: ct}, nil
}

// OpenSecret decrypts the secret name. It fails, naming the secret and
// the key but never a value, when the key that sealed it is not in the box
// or the ciphertext was changed or belongs to another name.
func (b *Box) OpenSecret(name string, s Sealed) ([]byte, error) {
	k, err := b.key(s.KeyID)
	if err != nil {
		return nil, fmt.Errorf("secrets: secret %q: %w", name, err)
	}
	out, err := k.open(s.Ciphertext, additional(name, s.KeyID))
	if err != nil {
		return nil, fmt.Errorf("secrets: secret %q does not open with key %s: %w", name, s.KeyID, err)
	}
	return out, nil
}

// blobVersion starts every blob of Seal.
const blobVersion = 1

// Seal encrypts plain into a self-describing blob: a version byte, the
// sealing key's ID (8 bytes), the nonce, the ciphertext and the tag. It
// suits values a caller stores itself (console's TOTP secrets); Open
// turns it back.
func (b *Box) Seal(plain []byte) ([]byte, error) {
	id, _ := hex.DecodeString(b.current.id)
	head := append([]byte{blobVersion}, id...)
	ct, err := b.current.seal(plain, append([]byte("flowwatch sealed blob\x00"), head...))
	if err != nil {
		return nil, fmt.Errorf("secrets: seal: %w", err)
	}
	return append(head, ct...), nil
}

// Open decrypts a blob of Seal made with any key of the box. It fails on
// anything Seal did not make with one of its keys.
func (b *Box) Open(blob []byte) ([]byte, error) {
	const head = 1 + keyIDBytes
	if len(blob) < head || blob[0] != blobVersion {
		return nil, errors.New("secrets: open: not a sealed blob of this version")
	}
	k, err := b.key(hex.EncodeToString(blob[1:head]))
	if err != nil {
		return nil, fmt.Errorf("secrets: open: %w", err)
	}
	out, err := k.open(blob[head:], append([]byte("flowwatch sealed blob\x00"), blob[:head]...))
	if err != nil {
		return nil, fmt.Errorf("secrets: open with key %s: %w", k.id, err)
	}
	return out, nil
}

// key returns the box's key id, or an error naming the keys it has.
func (b *Box) key(id string) (key, error) {
	k, ok := b.byID[id]
	if !ok {
		return key{}, fmt.Errorf("sealed with key %s, which is not among the configured keys (%s): add it after the current key in %s or %s",
			id, strings.Join(b.KeyIDs(), ", "), KeyEnv, KeyFileEnv)
	}
	return k, nil
}

// seal encrypts value under a fresh random nonce: nonce, ciphertext, tag.
func (k key) seal(value, ad []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(value)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, value, ad), nil
}

// open reverses seal.
func (k key) open(ct, ad []byte) ([]byte, error) {
	if len(ct) < nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("ciphertext too short (%d bytes)", len(ct))
	}
	out, err := k.aead.Open(nil, ct[:nonceSize], ct[nonceSize:], ad)
	if err != nil {
		return nil, errors.New("it was changed, or sealed for another name or use")
	}
	return out, nil
}

// NewKey returns a fresh random key in base64, as KeyEnv takes it.
func NewKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("secrets: new key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// ParseKeys decodes keys in base64, separated by commas, spaces or new
// lines; lines starting with '#' are comments. from names where they came
// from in errors, which never repeat a key.
func ParseKeys(from, text string) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			raw, err := base64.StdEncoding.DecodeString(f)
			if err != nil {
				raw, err = base64.RawStdEncoding.DecodeString(f)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: key %d (line %d) is not base64", from, len(keys)+1, i+1)
			}
			if len(raw) != KeySize {
				return nil, fmt.Errorf("%s: key %d (line %d) is %d bytes, want %d", from, len(keys)+1, i+1, len(raw), KeySize)
			}
			keys = append(keys, raw)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: holds no key", from)
	}
	return keys, nil
}

// FromEnv makes a box from the key in KeyEnv or the key file named by
// KeyFileEnv, read through getenv (os.Getenv when nil). It returns ErrNoKey
// when neither is set, and refuses both at once and a key file readable by
// group or others.
func FromEnv(getenv func(string) string) (*Box, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	env, file := getenv(KeyEnv), getenv(KeyFileEnv)
	var keys [][]byte
	var err error
	switch {
	case env != "" && file != "":
		return nil, fmt.Errorf("secrets: both %s and %s are set: set only one", KeyEnv, KeyFileEnv)
	case env != "":
		keys, err = ParseKeys("$"+KeyEnv, env)
	case file != "":
		keys, err = readKeyFile(file)
	default:
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return NewBox(keys...)
}

// readKeyFile reads keys from path, which only its owner may read.
func readKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file (%s): %w", KeyFileEnv, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file (%s): %w", KeyFileEnv, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s (%s) is not a regular file", path, KeyFileEnv)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s (%s) has mode %04o: group and others must not be able to read or change it; run chmod 600 %s",
			path, KeyFileEnv, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<16+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s (%s): %w", path, KeyFileEnv, err)
	}
	if len(data) > 1<<16 {
		return nil, fmt.Errorf("key file %s (%s) is larger than 64 KiB", path, KeyFileEnv)
	}
	return ParseKeys("key file "+path, string(data))
}
