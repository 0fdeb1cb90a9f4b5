package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"flowwatch/internal/config"
	"flowwatch/internal/secrets"
	"flowwatch/internal/store"
)

// secretsStdin is where `secrets set` reads a value; tests replace it.
var secretsStdin io.Reader = os.Stdin

// maxSecretBytes bounds a secret value read by `secrets set`.
const maxSecretBytes = 64 << 10

// runSecrets manages the encrypted secrets: keygen, import, set, list,
// rotate and delete. Values are read from the config (import) or stdin
// (set) and never printed.
func runSecrets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "secrets: say what to do: flowwatch secrets keygen | import -c config.yaml | set NAME | list | rotate | delete NAME [-c config.yaml] [--data DIR]"
	if len(args) == 0 {
		return errors.New(use)
	}
	switch args[0] {
	case "keygen":
		return secretsKeygen(args[1:], stdout, stderr)
	case "import":
		return secretsImport(ctx, args[1:], stdout, stderr)
	case "set":
		return secretsSet(ctx, args[1:], stdout, stderr)
	case "list":
		return secretsList(ctx, args[1:], stdout, stderr)
	case "rotate":
		return secretsRotate(ctx, args[1:], stdout, stderr)
	case "delete":
		return secretsDelete(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("secrets: unknown action %q; %s", args[0], strings.TrimPrefix(use, "secrets: "))
}

// secretsKeygen prints a new random key for FLOWWATCH_SECRET_KEY.
func secretsKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("secrets keygen", stderr)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("secrets keygen: unexpected arguments %q", rest)
	}
	k, err := secrets.NewKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k)
	fmt.Fprintf(stderr, "keep it in %s, or in a file only flowwatch's user may read (chmod 600) named by %s; without it the stored secrets cannot be opened\n",
		secrets.KeyEnv, secrets.KeyFileEnv)
	return nil
}

// secretsSite parses a secrets action's flags (-c, --data) and loads the
// site config; it answers the positional arguments.
func secretsSite(action string, args []string, stderr io.Writer) (*config.Config, siteFlags, []string, error) {
	fs := newFlagSet("secrets "+action, stderr)
	sf := addSiteFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, sf, nil, err
	}
	cfg, err := sf.load()
	if err != nil {
		return nil, sf, nil, err
	}
	return cfg, sf, rest, nil
}

// secretsSiteNoArgs is secretsSite for an action that takes no positional
// arguments.
func secretsSiteNoArgs(action string, args []string, stderr io.Writer) (*config.Config, siteFlags, error) {
	cfg, sf, rest, err := secretsSite(action, args, stderr)
	if err != nil {
		return nil, sf, err
	}
	if len(rest) > 0 {
		return nil, sf, fmt.Errorf("secrets %s: unexpected arguments %q", action, rest)
	}
	return cfg, sf, nil
}

// secretsSiteName is secretsSite for an action on one secret, named by
// the one positional argument; note adds to the error's advice.
func secretsSiteName(action, note string, args []string, stderr io.Writer) (*config.Config, string, error) {
	cfg, _, rest, err := secretsSite(action, args, stderr)
	if err != nil {
		return nil, "", err
	}
	if len(rest) != 1 {
		return nil, "", fmt.Errorf("secrets %s: give one secret NAME%s, got %d arguments", action, note, len(rest))
	}
	return cfg, rest[0], nil
}

// openSecretStore opens (creating when missing) the site's database, for
// an action that stores secrets before serve ever ran.
func openSecretStore(cfg *config.Config) (*store.Store, error) {
	if err := os.MkdirAll(cfg.Storage.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return store.Open(dbPath(cfg))
}

// cliActor names who changed a secret from the command line.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// auditSecret records a secret's change in the audit chain, by name only.
func auditSecret(ctx context.Context, db *store.Store, action, name, detail string) error {
	_, err := db.AppendAudit(ctx, store.AuditEntry{Actor: cliActor(), Role: "cli", Action: action,
		Target: "secret " + name, Detail: detail, Remote: "local"})
	return err
}

// sealAll seals values (by secret name) with box's current key.
func sealAll(box *secrets.Box, values map[string]string, names []string) ([]store.SealedSecret, error) {
	now := time.Now()
	by := cliActor()
	var out []store.SealedSecret
	for _, name := range names {
		s, err := box.SealSecret(name, []byte(values[name]))
		if err != nil {
			return nil, err
		}
		out = append(out, store.SealedSecret{Name: name, Ciphertext: s.Ciphertext, KeyID: s.KeyID, UpdatedAt: now, UpdatedBy: by})
	}
	return out, nil
}

// secretsSet stores the value read from stdin as the secret NAME.
func secretsSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, name, err := secretsSiteName("set", " (the value is read from stdin, never from the command line)", args, stderr)
	if err != nil {
		return err
	}
	if err := secrets.CheckName(name); err != nil {
		return fmt.Errorf("secrets set: %w", err)
	}
	box, err := secrets.FromEnv(nil)
	if err != nil {
		return fmt.Errorf("secrets set: %w", err)
	}
	if f, ok := secretsStdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(stderr, "type the value of %s, then Enter and Ctrl-D (it shows as you type; pipe it in to avoid that)\n", name)
		}
	}
	data, err := io.ReadAll(io.LimitReader(secretsStdin, maxSecretBytes+1))
	if err != nil {
		return fmt.Errorf("secrets set %s: read stdin: %w", name, err)
	}
	if len(data) > maxSecretBytes {
		return fmt.Errorf("secrets set %s: the value is over %d bytes", name, maxSecretBytes)
	}
	value := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if value == "" {
		return fmt.Errorf("secrets set %s: stdin held no value", name)
	}
	if _, ok := secrets.ParseRef(value); ok {
		return fmt.Errorf("secrets set %s: the value is itself a %q reference", name, secrets.RefPrefix)
	}
	db, err := openSecretStore(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	sealed, err := sealAll(box, map[string]string{name: value}, []string{name})
	if err != nil {
		return err
	}
	if err := db.PutSecrets(ctx, sealed...); err != nil {
		return err
	}
	if err := auditSecret(ctx, db, "secret.set", name, "key "+box.KeyID()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stored secret %s (key %s); refer to it as %q\n", name, box.KeyID(), secrets.Ref(name))
	return nil
}

// secretsList prints the stored secrets' names, keys and update times,
// and what in the config refers to each; never a value.
func secretsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := secretsSiteNoArgs("list", args, stderr)
	if err != nil {
		return err
	}
	db, err := openExistingStore("secrets list", cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := db.Secrets(ctx)
	if err != nil {
		return err
	}
	users := map[string][]string{}
	for _, r := range secretRefs(cfg) {
		users[r.name] = append(users[r.name], r.owner)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKEY\tUPDATED\tBY\tUSED BY")
	for _, s := range list {
		used := strings.Join(users[s.Name], ", ")
		if used == "" {
			used = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.KeyID, s.UpdatedAt.Local().Format(time.RFC3339), s.UpdatedBy, used)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	stored := map[string]bool{}
	for _, s := range list {
		stored[s.Name] = true
	}
	for _, r := range secretRefs(cfg) {
		if !stored[r.name] {
			fmt.Fprintf(stdout, "missing: %s refers to secret %q, which is not stored\n", r.owner, r.name)
		}
	}
	return nil
}

// secretsRotate seals again, with the current key, every secret sealed
// with an older one (listed after it in the key variable or file).
func secretsRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := secretsSiteNoArgs("rotate", args, stderr)
	if err != nil {
		return err
	}
	box, err := secrets.FromEnv(nil)
	if err != nil {
		return fmt.Errorf("secrets rotate: %w", err)
	}
	db, err := openExistingStore("secrets rotate", cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := db.Secrets(ctx)
	if err != nil {
		return err
	}
	values := map[string]string{}
	var names []string
	for _, s := range list {
		if s.KeyID == box.KeyID() {
			continue
		}
		v, err := box.OpenSecret(s.Name, secrets.Sealed{KeyID: s.KeyID, Ciphertext: s.Ciphertext})
		if err != nil {
			return fmt.Errorf("secrets rotate: %w", err)
		}
		values[s.Name] = string(v)
		names = append(names, s.Name)
	}
	sealed, err := sealAll(box, values, names)
	if err != nil {
		return err
	}
	if err := db.PutSecrets(ctx, sealed...); err != nil {
		return err
	}
	for _, n := range names {
		if err := auditSecret(ctx, db, "secret.rotate", n, "key "+box.KeyID()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sealed %s again with key %s\n", n, box.KeyID())
	}
	fmt.Fprintf(stdout, "%d of %d secrets sealed again; all are now under key %s and the older keys may be removed\n", len(names), len(list), box.KeyID())
	return nil
}

// secretsDelete removes a stored secret.
func secretsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, name, err := secretsSiteName("delete", "", args, stderr)
	if err != nil {
		return err
	}
	for _, r := range secretRefs(cfg) {
		if r.name == name {
			return fmt.Errorf("secrets delete %s: %s still refers to it", name, r.owner)
		}
	}
	db, err := openExistingStore("secrets delete", cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.DeleteSecret(ctx, name); err != nil {
		return err
	}
	if err := auditSecret(ctx, db, "secret.delete", name, ""); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted secret %s\n", name)
	return nil
}

// secretRef is a config value that refers to a stored secret.
type secretRef struct {
	owner string // `camera "gate" password`, `webhook "ops" secret`
	name  string
}

// secretRefs lists the config's references to stored secrets.
func secretRefs(cfg *config.Config) []secretRef {
	var out []secretRef
	for _, c := range cfg.Cameras {
		if n, ok := secrets.ParseRef(c.Password); ok {
			out = append(out, secretRef{fmt.Sprintf("camera %q password", c.Name), n})
		}
	}
	for _, w := range cfg.Notify.Webhooks {
		if n, ok := secrets.ParseRef(w.Secret); ok {
			out = append(out, secretRef{fmt.Sprintf("webhook %q secret", w.Name), n})
		}
	}
	return out
}

// clearSecrets names the config keys that hold a secret in clear: camera
// passwords and URL passwords, webhook secrets.
func clearSecrets(cfg *config.Config) []string {
	var out []string
	for i, c := range cfg.Cameras {
		if _, ok := secrets.ParseRef(c.Password); !ok && c.Password != "" {
			out = append(out, fmt.Sprintf("cameras[%d].password (%s)", i, c.Name))
		}
		if _, pass, _ := urlUserinfo(c.URL); pass != "" {
			out = append(out, fmt.Sprintf("cameras[%d].url (%s)", i, c.Name))
		}
		if _, pass, _ := urlUserinfo(c.LiveURL); pass != "" {
			out = append(out, fmt.Sprintf("cameras[%d].live_url (%s)", i, c.Name))
		}
	}
	for i, w := range cfg.Notify.Webhooks {
		if _, ok := secrets.ParseRef(w.Secret); !ok && w.Secret != "" {
			out = append(out, fmt.Sprintf("notify.webhooks[%d].secret (%s)", i, w.Name))
		}
	}
	return out
}

// urlUserinfo returns the user and (decoded) password in raw's userinfo,
// and raw without its userinfo; all but stripped are empty when raw has
// none.
func urlUserinfo(raw string) (username, password, stripped string) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", raw
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	at := strings.LastIndexByte(host, '@')
	if at < 0 {
		return "", "", raw
	}
	info := host[:at]
	stripped = scheme + "://" + rest[at+1:]
	user, pass, _ := strings.Cut(info, ":")
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	if p, err := url.PathUnescape(pass); err == nil {
		pass = p
	}
	return user, pass, stripped
}

// secretResolver opens the stored secrets a config refers to. The key is
// read from the environment on first use, so that a config without
// references needs none.
type secretResolver struct {
	db     *store.Store
	getenv func(string) string
	box    *secrets.Box
}

// resolve returns the value of the secret name; owner (`camera "gate"
// password`) is named in errors, which never hold a value.
func (r *secretResolver) resolve(ctx context.Context, owner, name string) (string, error) {
	if err := secrets.CheckName(name); err != nil {
		return "", fmt.Errorf("%s: %w", owner, err)
	}
	if r.box == nil {
		box, err := secrets.FromEnv(r.getenv)
		if err != nil {
			return "", fmt.Errorf("%s refers to secret %q: %w", owner, name, err)
		}
		r.box = box
	}
	s, err := r.db.Secret(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%s refers to secret %q, which is not stored in %s: store it with `flowwatch secrets set %s` or `flowwatch secrets import`",
			owner, name, r.db.Path(), name)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", owner, err)
	}
	v, err := r.box.OpenSecret(name, secrets.Sealed{KeyID: s.KeyID, Ciphertext: s.Ciphertext})
	if err != nil {
		return "", fmt.Errorf("%s: %w", owner, err)
	}
	return string(v), nil
}

// resolveSecrets returns a copy of cfg whose `secret:NAME` camera
// passwords and webhook secrets hold the stored values, for the cameras,
// webhooks and camera tests of one serve. A camera whose password is a
// reference and that has no username takes the one of its URL. It warns,
// by key and never by value, about secrets still in clear in cfg.
func resolveSecrets(ctx context.Context, cfg *config.Config, db *store.Store, getenv func(string) string, log *slog.Logger) (*config.Config, error) {
	if keys := clearSecrets(cfg); len(keys) > 0 {
		log.Warn("the config holds secrets in clear: run `flowwatch secrets import -c CONFIG` to encrypt them",
			"keys", strings.Join(keys, ", "))
	}
	refs := secretRefs(cfg)
	if len(refs) == 0 {
		return cfg, nil
	}
	r := &secretResolver{db: db, getenv: getenv}
	out := *cfg
	out.Cameras = append([]config.Camera(nil), cfg.Cameras...)
	out.Notify.Webhooks = append([]config.Webhook(nil), cfg.Notify.Webhooks...)
	for i := range out.Cameras {
		c := &out.Cameras[i]
		name, ok := secrets.ParseRef(c.Password)
		if !ok {
			continue
		}
		owner := fmt.Sprintf("camera %q password", c.Name)
		v, err := r.resolve(ctx, owner, name)
		if err != nil {
			return nil, err
		}
		if c.Username == "" {
			c.Username, _, _ = urlUserinfo(c.URL)
		}
		if c.Username == "" {
			c.Username, _, _ = urlUserinfo(c.LiveURL)
		}
		if c.Username == "" {
			return nil, fmt.Errorf("%s refers to secret %q but the camera has no username: set cameras[%d].username", owner, name, i)
		}
		c.Password = v
	}
	for i := range out.Notify.Webhooks {
		w := &out.Notify.Webhooks[i]
		name, ok := secrets.ParseRef(w.Secret)
		if !ok {
			continue
		}
		v, err := r.resolve(ctx, fmt.Sprintf("webhook %q secret", w.Name), name)
		if err != nil {
			return nil, err
		}
		w.Secret = v
	}
	log.Info("secrets opened", "count", len(refs), "key", r.box.KeyID())
	return &out, nil
}

// importMove is one clear secret that import moves into the store.
type importMove struct {
	what   string // `camera "gate" password (from url)`
	secret string // the secret's name
	value  string
}

// secretsImport moves the config's clear secrets into the encrypted store
// and rewrites the config with references.
func secretsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, sf, err := secretsSiteNoArgs("import", args, stderr)
	if err != nil {
		return err
	}
	if *sf.cfgPath == "" {
		return errors.New("secrets import: name the config file to rewrite with -c")
	}
	path, err := filepath.EvalSymlinks(*sf.cfgPath)
	if err != nil {
		return fmt.Errorf("secrets import: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("secrets import: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("secrets import: %w", err)
	}
	out, moves, notes, err := importSecretsYAML(path, data)
	if err != nil {
		return fmt.Errorf("secrets import: %w", err)
	}
	if len(moves) == 0 && len(notes) == 0 {
		fmt.Fprintf(stdout, "nothing to import: %s holds no secret in clear\n", path)
		return nil
	}
	// the rewritten config must still load, and hold nothing in clear
	after, err := config.Parse(path, out)
	if err != nil {
		return fmt.Errorf("secrets import: the rewritten config does not load, so %s is left as it was: %w", path, err)
	}
	if left := clearSecrets(after); len(left) > 0 {
		return fmt.Errorf("secrets import: %s would still hold secrets in clear (%s), so it is left as it was", path, strings.Join(left, ", "))
	}
	if len(moves) > 0 {
		box, err := secrets.FromEnv(nil)
		if err != nil {
			return fmt.Errorf("secrets import: %w", err)
		}
		values := map[string]string{}
		var names []string
		for _, m := range moves {
			values[m.secret] = m.value
			names = append(names, m.secret)
		}
		sealed, err := sealAll(box, values, names)
		if err != nil {
			return err
		}
		db, err := openSecretStore(cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		// the store first: should the rewrite fail, importing again
		// stores the same values again
		if err := db.PutSecrets(ctx, sealed...); err != nil {
			return err
		}
		for _, m := range moves {
			if err := auditSecret(ctx, db, "secret.import", m.secret, m.what+" of "+path); err != nil {
				return err
			}
		}
	}
	if err := writeFileAtomic(path, out, st.Mode().Perm()); err != nil {
		return fmt.Errorf("secrets import: %w", err)
	}
	for _, m := range moves {
		fmt.Fprintf(stdout, "moved %s into secret %s\n", m.what, m.secret)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	fmt.Fprintf(stdout, "rewrote %s with %s references; serve needs %s or %s to open them\n", path, secrets.RefPrefix, secrets.KeyEnv, secrets.KeyFileEnv)
	return nil
}

// importSecretsYAML rewrites a config's YAML, moving clear camera
// passwords (field or URL userinfo) and webhook secrets out into secret
// references, and returns the new text, what to store, and notes on
// passwords dropped from URLs that flowwatch did not use. The tree is
// edited in place, so comments and order survive.
func importSecretsYAML(name string, data []byte) ([]byte, []importMove, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, nil, fmt.Errorf("%s: not a YAML mapping", name)
	}
	root := doc.Content[0]
	var moves []importMove
	var notes []string
	if cams := mapValue(root, "cameras"); cams != nil && cams.Kind == yaml.SequenceNode {
		for i, cam := range cams.Content {
			if cam.Kind != yaml.MappingNode {
				continue
			}
			m, n, err := importCamera(i, cam)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			moves = append(moves, m...)
			notes = append(notes, n...)
		}
	}
	if notify := mapValue(root, "notify"); notify != nil {
		if hooks := mapValue(notify, "webhooks"); hooks != nil && hooks.Kind == yaml.SequenceNode {
			for i, w := range hooks.Content {
				if w.Kind != yaml.MappingNode {
					continue
				}
				hook := scalarValue(w, "name")
				sec := mapValue(w, "secret")
				if sec == nil {
					continue
				}
				if sec.Kind != yaml.ScalarNode {
					return nil, nil, nil, fmt.Errorf("%s:%d: notify.webhooks[%d].secret: write the value in place (not as an alias or a list) to import it", name, sec.Line, i)
				}
				if _, ok := secrets.ParseRef(sec.Value); ok || sec.Value == "" {
					continue
				}
				secret := "webhook." + hook
				if err := secrets.CheckName(secret); err != nil {
					return nil, nil, nil, fmt.Errorf("%s: notify.webhooks[%d]: %w", name, i, err)
				}
				moves = append(moves, importMove{what: fmt.Sprintf("webhook %q secret", hook), secret: secret, value: sec.Value})
				setRef(sec, secret)
			}
		}
	}
	if len(moves) == 0 && len(notes) == 0 {
		return data, nil, nil, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: encode: %w", name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: encode: %w", name, err)
	}
	return buf.Bytes(), moves, notes, nil
}

// importCamera moves camera i's clear password (field, or URL userinfo
// when it has no username field) into a reference, and strips every
// password from its URLs.
func importCamera(i int, cam *yaml.Node) ([]importMove, []string, error) {
	camName := scalarValue(cam, "name")
	secret := "camera." + camName
	key := fmt.Sprintf("cameras[%d]", i)
	nodes := map[string]*yaml.Node{}
	for _, k := range []string{"url", "live_url", "username", "password"} {
		n := mapValue(cam, k)
		if n != nil && n.Kind != yaml.ScalarNode {
			return nil, nil, fmt.Errorf("line %d: %s.%s: write the value in place (not as an alias or a list) to import it", n.Line, key, k)
		}
		nodes[k] = n
	}
	str := func(k string) string {
		if nodes[k] == nil {
			return ""
		}
		return nodes[k].Value
	}
	var moves []importMove
	var notes []string
	move := func(what, value string) error {
		if err := secrets.CheckName(secret); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		moves = append(moves, importMove{what: fmt.Sprintf("camera %q %s", camName, what), secret: secret, value: value})
		return nil
	}
	// userinfo of both URLs; without a username field it is in force
	type info struct{ field, user, pass, stripped string }
	var infos []info
	for _, k := range []string{"url", "live_url"} {
		if u, p, s := urlUserinfo(str(k)); s != str(k) {
			infos = append(infos, info{k, u, p, s})
		}
	}
	if str("username") == "" && len(infos) > 0 {
		first := infos[0]
		for _, in := range infos[1:] {
			if in.user != first.user || in.pass != first.pass {
				return nil, nil, fmt.Errorf("%s (camera %q): url and live_url carry different credentials; a camera has one set once its password is a secret: make them the same, then import again",
					key, camName)
			}
		}
		for _, in := range infos {
			nodes[in.field].Value = in.stripped
		}
		if first.user != "" {
			insertAfter(cam, "url", "username", first.user)
		}
		if first.pass != "" {
			if err := move("password (from "+first.field+")", first.pass); err != nil {
				return nil, nil, err
			}
			if nodes["password"] == nil {
				insertAfter(cam, "username", "password", "")
				nodes["password"] = mapValue(cam, "password")
			}
			setRef(nodes["password"], secret)
			return moves, nil, nil
		}
	} else {
		// a username field replaces the URLs' credentials: their
		// passwords are unused, and dropped
		for _, in := range infos {
			nodes[in.field].Value = in.stripped
			if in.pass != "" {
				notes = append(notes, fmt.Sprintf("dropped camera %q's password from %s: unused, since its username field replaces the URL's credentials", camName, in.field))
			}
		}
	}
	if pw := nodes["password"]; pw != nil && pw.Value != "" {
		if _, ok := secrets.ParseRef(pw.Value); !ok {
			if err := move("password", pw.Value); err != nil {
				return nil, nil, err
			}
			setRef(pw, secret)
		}
	}
	return moves, notes, nil
}

// setRef makes the scalar n a reference to the secret name.
func setRef(n *yaml.Node, name string) {
	n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", secrets.Ref(name), yaml.DoubleQuotedStyle
}

// mapValue returns the value node of key in the mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// scalarValue returns the scalar value of key in the mapping m, or "".
func scalarValue(m *yaml.Node, key string) string {
	if n := mapValue(m, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// insertAfter sets key to value in the mapping m: in place when present,
// else right after the key after (or at the end).
func insertAfter(m *yaml.Node, after, key, value string) {
	if n := mapValue(m, key); n != nil {
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", value, 0
		return
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == after {
			at = i + 2
		}
	}
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
}

// writeFileAtomic replaces path with data through a temporary file in the
// same folder and a rename, with the given mode.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is there
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
